//! Microsoft Teams: a message with one Adaptive Card, posted to a Workflows webhook
//! URL (or a legacy incoming webhook's), as Teams documents for both.
//!
//! Adaptive Card text blocks read Markdown, and a user's text (a monitor's name, a
//! heartbeat's message) must show as typed: every line is a `RichTextBlock` of
//! `TextRun`s, which Teams renders without Markdown, so no `[link](…)`, emphasis or
//! list can be written. Mentions need an entity pushmon never sends.

use serde_json::{Value, json};

use crate::domain::alert::AlertKind;

use super::chat::{link, text};
use super::{Message, summary};

/// Teams refuses cards over about 28 KB; the text is kept well below.
const MAX_TEXT: usize = 8000;

pub fn body(message: Message<'_>, public_url: &str) -> Vec<u8> {
    let (color, title) = match message {
        Message::Alert(alert) if alert.kind == AlertKind::Down => ("Attention", summary(message)),
        Message::Alert(_) => ("Good", summary(message)),
        Message::Test(_) => ("Accent", summary(message)),
    };
    let target = link(message, public_url);
    // The details: the chat text without its first line (the title) and its link.
    let full = text(message, str::to_owned, "", MAX_TEXT);
    let details: Vec<Value> = full
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| {
            json!({
                "type": "RichTextBlock",
                "inlines": [{ "type": "TextRun", "text": line }],
            })
        })
        .collect();
    let mut blocks = vec![json!({
        "type": "RichTextBlock",
        "inlines": [{
            "type": "TextRun",
            "text": title,
            "weight": "Bolder",
            "size": "Medium",
            "color": color,
        }],
    })];
    if let Message::Alert(alert) = message {
        blocks.push(json!({
            "type": "RichTextBlock",
            "inlines": [{ "type": "TextRun", "text": alert.at.to_rfc3339(), "isSubtle": true }],
        }));
    }
    blocks.extend(details);
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": blocks,
                "actions": [{
                    "type": "Action.OpenUrl",
                    "title": "Open in pushmon",
                    "url": target,
                }],
            },
        }],
    })
    .to_string()
    .into_bytes()
}

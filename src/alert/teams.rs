//! Microsoft Teams: a message with one Adaptive Card, posted to a Workflows webhook
//! URL (or a legacy incoming webhook's), as Teams documents for both.
//!
//! Adaptive Card text blocks read Markdown, and a user's text (a monitor's name, a
//! heartbeat's message) must show as typed: every line is a `RichTextBlock` of
//! `TextRun`s, which Teams renders without Markdown, so no `[link](…)`, emphasis or
//! list can be written. Mentions need an entity pushmon never sends.

use serde_json::json;

use crate::domain::alert::AlertKind;

use super::chat::{link, text};
use super::{Message, summary};

/// Teams refuses cards over about 28 KB; the text is kept well below.
pub const MAX_TEXT: usize = 8000;

pub fn body(message: Message<'_>, public_url: &str) -> Vec<u8> {
    let (color, title) = match message {
        Message::Alert(alert) if alert.kind == AlertKind::Down => ("Attention", summary(message)),
        Message::Alert(_) => ("Good", summary(message)),
        Message::Test(_) => ("Accent", summary(message)),
    };
    let target = link(message, public_url);
    // The details: the chat text without its first line (the title) and its link.
    let full = text(message, str::to_owned, "", MAX_TEXT);
    let lines: Vec<String> = full
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    let at = match message {
        Message::Alert(alert) => Some(alert.at.to_rfc3339()),
        Message::Test(_) => None,
    };
    card(&title, color, at.as_deref(), &lines, &target)
}

/// The message: a card titled `title` in `color`, a subtle `subtitle` (a time), one
/// block a line, and a button to `target`. Every text is a `TextRun`.
pub fn card(
    title: &str,
    color: &str,
    subtitle: Option<&str>,
    lines: &[String],
    target: &str,
) -> Vec<u8> {
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
    if let Some(subtitle) = subtitle {
        blocks.push(json!({
            "type": "RichTextBlock",
            "inlines": [{ "type": "TextRun", "text": subtitle, "isSubtle": true }],
        }));
    }
    for line in lines {
        blocks.push(json!({
            "type": "RichTextBlock",
            "inlines": [{ "type": "TextRun", "text": line }],
        }));
    }
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

//! Slack and Discord incoming webhooks: a short human message in each one's format.

use serde_json::json;

use crate::domain::alert::AlertKind;

use super::{Message, summary};

fn text(message: Message<'_>, public_url: &str) -> String {
    let alert = match message {
        Message::Test(_) => return format!("🔔 {}.\n{public_url}", summary(message)),
        Message::Alert(alert) => alert,
    };
    let icon = match alert.kind {
        AlertKind::Down => "🔴",
        AlertKind::Up => "🟢",
    };
    let mut text = format!("{icon} {} at {}", summary(message), alert.at.to_rfc3339());
    if let Some(msg) = &alert.msg {
        text.push_str(&format!("\nLast message: {}", msg.as_str()));
    }
    if let Some(value) = alert.value {
        text.push_str(&format!("\nLast value: {value}"));
    }
    text.push_str(&format!("\n{public_url}/api/monitors/{}", alert.monitor_id));
    text
}

pub fn slack_body(message: Message<'_>, public_url: &str) -> Vec<u8> {
    json!({ "text": text(message, public_url) })
        .to_string()
        .into_bytes()
}

pub fn discord_body(message: Message<'_>, public_url: &str) -> Vec<u8> {
    // Discord caps content at 2000 characters.
    let content: String = text(message, public_url).chars().take(2000).collect();
    json!({ "content": content }).to_string().into_bytes()
}

//! Telegram: the Bot API's `sendMessage` (`POST <api_url>/bot<token>/sendMessage`)
//! with `parse_mode: HTML`. Whatever a user wrote is escaped as Telegram's HTML
//! style asks (`&`, `<` and `>` as entities), so it shows as typed and no tag, link
//! or mention can be written; link previews are off.

use serde_json::json;

use super::Message;
use super::chat::{link, text};

/// Telegram's Bot API.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// Telegram refuses a text longer than 4096 characters.
pub const MAX_TEXT: usize = 4096;

/// Text for Telegram's HTML parse mode.
pub fn html_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// The method's URL; the token is a secret, so this string is never logged.
pub fn endpoint(api_url: Option<&str>, bot_token: &str) -> String {
    format!(
        "{}/bot{bot_token}/sendMessage",
        api_url.unwrap_or(DEFAULT_API_URL).trim_end_matches('/')
    )
}

pub fn body(message: Message<'_>, chat_id: &str, public_url: &str) -> Vec<u8> {
    let target = html_escape(&link(message, public_url));
    body_with_text(chat_id, &text(message, html_escape, &target, MAX_TEXT))
}

/// `sendMessage`'s body for `text`, already escaped for the HTML parse mode.
pub fn body_with_text(chat_id: &str, text: &str) -> Vec<u8> {
    json!({
        "chat_id": chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": { "is_disabled": true },
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape("<a href=\"x\">@all</a> & co"),
            "&lt;a href=\"x\"&gt;@all&lt;/a&gt; &amp; co"
        );
    }
}

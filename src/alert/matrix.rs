//! Matrix: `PUT <homeserver>/_matrix/client/v3/rooms/<room>/send/m.room.message/<txn>`
//! with the access token as a bearer. The transaction id is made from the alert's id
//! and the channel's, so a re-send of one alert (a retry, a restart) is the same
//! transaction, which the homeserver answers without posting it twice.
//!
//! The body is plain text (`m.text`, no `formatted_body`), so nothing a user wrote is
//! read as HTML; an empty `m.mentions` tells clients and servers that it mentions
//! nobody, so an `@room` in a monitor's name notifies no one.

use serde_json::json;

use super::Message;
use super::chat::{link, text};

/// The message's text is kept under this many characters.
pub const MAX_TEXT: usize = 16000;

/// The transaction id for alert (or test) `id` sent through channel `channel`: only
/// characters that need no escaping in a path.
pub fn transaction_id(id: &str, channel: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("pushmon.{safe}.{channel}")
}

/// The request's URL; `None` if the homeserver's URL cannot take a path.
pub fn endpoint(homeserver: &str, room_id: &str, transaction: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(homeserver).ok()?;
    url.path_segments_mut().ok()?.pop_if_empty().extend([
        "_matrix",
        "client",
        "v3",
        "rooms",
        room_id,
        "send",
        "m.room.message",
        transaction,
    ]);
    Some(url.to_string())
}

pub fn body(message: Message<'_>, public_url: &str) -> Vec<u8> {
    body_with_text(&text(
        message,
        str::to_owned,
        &link(message, public_url),
        MAX_TEXT,
    ))
}

/// A plain `m.text` message of `text`, mentioning nobody.
pub fn body_with_text(text: &str) -> Vec<u8> {
    json!({
        "msgtype": "m.text",
        "body": text,
        "m.mentions": {},
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_escaped_in_the_path() {
        assert_eq!(
            endpoint("https://matrix.example/", "!abc:matrix.example", "t1").as_deref(),
            Some(
                "https://matrix.example/_matrix/client/v3/rooms/!abc:matrix.example/send/m.room.message/t1"
            )
        );
        let escaped = endpoint("https://m.example", "#a/b?c", "t").expect("a URL");
        assert!(
            escaped.ends_with("/rooms/%23a%2Fb%3Fc/send/m.room.message/t"),
            "{escaped}"
        );
        assert_eq!(transaction_id("0190-ab:17", "c1"), "pushmon.0190-ab.17.c1");
    }
}

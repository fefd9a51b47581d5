//! Phone push services: ntfy, Gotify and Pushover. Each shows plain text (none is
//! asked to read Markdown or HTML), so names and messages go in as they are; a `down`
//! is sent with the channel's priority (high by default), an `up` and a test with
//! the service's normal one.

use serde_json::json;

use crate::domain::alert::AlertKind;
use crate::domain::ids::Timestamp;

use super::chat::{link, text};
use super::{Message, summary};

/// Pushover's API.
pub const PUSHOVER_API_URL: &str = "https://api.pushover.net";

/// Whether `message` is a `down` (sent with the channel's priority).
fn is_down(message: Message<'_>) -> bool {
    matches!(message, Message::Alert(alert) if alert.kind == AlertKind::Down)
}

/// The message's lines without its first (the title) and its link.
fn details(message: Message<'_>, limit: usize) -> String {
    let full = text(message, str::to_owned, "", limit);
    let lines: Vec<&str> = full
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .collect();
    if lines.is_empty() {
        summary(message)
    } else {
        lines.join("\n")
    }
}

/// ntfy's JSON publishing: `POST` to the server's root with the topic in the body
/// (headers could not carry a name that is not ASCII). `url` is the topic's URL.
pub fn ntfy(
    message: Message<'_>,
    url: &str,
    priority: Option<u8>,
    public_url: &str,
) -> (String, Vec<u8>) {
    let (priority, tag) = match message {
        Message::Alert(alert) if alert.kind == AlertKind::Down => {
            (priority.unwrap_or(4), "rotating_light")
        }
        Message::Alert(_) => (3, "white_check_mark"),
        Message::Test(_) => (3, "bell"),
    };
    ntfy_with(
        url,
        &summary(message),
        &details(message, 4000),
        priority,
        tag,
        &link(message, public_url),
    )
}

/// [`ntfy`]'s request for a given title, message, priority, tag and link.
pub fn ntfy_with(
    url: &str,
    title: &str,
    message: &str,
    priority: u8,
    tag: &str,
    click: &str,
) -> (String, Vec<u8>) {
    let (server, topic) = ntfy_split(url).unwrap_or((url, ""));
    let body = json!({
        "topic": topic,
        "title": title,
        "message": message,
        "priority": priority,
        "tags": [tag],
        "click": click,
    });
    (format!("{server}/"), body.to_string().into_bytes())
}

/// A topic URL's server (without the trailing `/`) and topic.
pub fn ntfy_split(url: &str) -> Option<(&str, &str)> {
    let url = url.trim_end_matches('/');
    let (server, topic) = url.rsplit_once('/')?;
    let valid = !topic.is_empty()
        && topic.len() <= 64
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (valid && server.contains("://") && !server.ends_with('/') && server.len() > "http://".len())
        .then_some((server, topic))
}

/// Gotify: `POST <url>/message`, the application's token in `X-Gotify-Key`.
pub fn gotify(
    message: Message<'_>,
    url: &str,
    priority: Option<u8>,
    public_url: &str,
) -> (String, Vec<u8>) {
    let priority = if is_down(message) {
        priority.unwrap_or(8)
    } else {
        4
    };
    let mut text = details(message, 8000);
    text.push('\n');
    text.push_str(&link(message, public_url));
    gotify_with(url, &summary(message), &text, priority)
}

/// [`gotify`]'s request for a given title, message and priority.
pub fn gotify_with(url: &str, title: &str, message: &str, priority: u8) -> (String, Vec<u8>) {
    let body = json!({
        "title": title,
        "message": message,
        "priority": priority,
        "extras": { "client::display": { "contentType": "text/plain" } },
    });
    (
        format!("{}/message", url.trim_end_matches('/')),
        body.to_string().into_bytes(),
    )
}

/// Pushover: `POST <api_url>/1/messages.json`, form-encoded as its API documents.
pub fn pushover(
    message: Message<'_>,
    keys: PushoverKeys<'_>,
    priority: Option<i8>,
    public_url: &str,
) -> (String, String) {
    let priority = if is_down(message) {
        priority.unwrap_or(1)
    } else {
        0
    };
    let at = match message {
        Message::Alert(alert) => alert.at,
        Message::Test(test) => test.at,
    };
    pushover_with(
        keys,
        &summary(message),
        &details(message, 1024),
        priority,
        at,
        &link(message, public_url),
    )
}

/// Where a Pushover message goes and who sends it.
#[derive(Clone, Copy)]
pub struct PushoverKeys<'a> {
    pub user_key: &'a str,
    pub app_token: &'a str,
    pub api_url: Option<&'a str>,
}

/// [`pushover`]'s request for a given title, message, priority, time and link.
pub fn pushover_with(
    keys: PushoverKeys<'_>,
    title: &str,
    message: &str,
    priority: i8,
    at: Timestamp,
    target: &str,
) -> (String, String) {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", keys.app_token)
        .append_pair("user", keys.user_key)
        .append_pair("title", &cut(title, 250))
        .append_pair("message", &cut(message, 1024))
        .append_pair("priority", &priority.to_string())
        .append_pair("timestamp", &(at.as_millis() / 1000).to_string())
        .append_pair("url", target)
        .append_pair("url_title", "Open in pushmon")
        .finish();
    (
        format!(
            "{}/1/messages.json",
            keys.api_url
                .unwrap_or(PUSHOVER_API_URL)
                .trim_end_matches('/')
        ),
        form,
    )
}

fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntfy_topic_urls_split_into_server_and_topic() {
        assert_eq!(
            ntfy_split("https://ntfy.sh/alerts"),
            Some(("https://ntfy.sh", "alerts"))
        );
        assert_eq!(
            ntfy_split("http://host:8080/ntfy/my_topic-1/"),
            Some(("http://host:8080/ntfy", "my_topic-1"))
        );
        assert_eq!(ntfy_split("https://ntfy.sh/"), None);
        assert_eq!(ntfy_split("https://ntfy.sh/a b"), None);
    }
}

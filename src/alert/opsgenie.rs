//! Opsgenie's Alert API: a `down` (and a reminder) creates an alert
//! (`POST <api_url>/v2/alerts`) with the monitor's alias, `pushmon-<monitor id>`, so
//! Opsgenie keeps one open alert per monitor; the `up` that follows closes it
//! (`POST <api_url>/v2/alerts/<alias>/close?identifierType=alias`). The key goes in
//! `Authorization: GenieKey <key>`. A test creates a `P5` alert of its own alias and
//! closes it at once.

use serde_json::{Value, json};

use crate::domain::alert::AlertKind;

use super::chat::{link, text};
use super::{Message, summary};

/// Opsgenie's API in the US; the EU's is `https://api.eu.opsgenie.com`.
pub const DEFAULT_API_URL: &str = "https://api.opsgenie.com";

/// Opsgenie cuts a message at 130 characters, a description at 15000.
const MAX_MESSAGE: usize = 130;
const MAX_DESCRIPTION: usize = 15000;

/// One request: the path under the API URL (with its query) and the JSON body.
pub struct Call {
    pub path: String,
    pub body: Value,
}

pub fn alias(message: Message<'_>) -> String {
    match message {
        Message::Alert(alert) => format!("pushmon-{}", alert.monitor_id),
        Message::Test(test) => format!("pushmon-test-{}", test.channel.id),
    }
}

/// The calls to make, in order.
pub fn calls(
    message: Message<'_>,
    priority: Option<&str>,
    id: &str,
    public_url: &str,
) -> Vec<Call> {
    let alias = alias(message);
    let close = |note: String| Call {
        path: format!("/v2/alerts/{alias}/close?identifierType=alias"),
        body: json!({ "source": "pushmon", "note": note }),
    };
    let create = |priority: Option<&str>| {
        let mut body = json!({
            "message": cut(&summary(message), MAX_MESSAGE),
            "alias": alias,
            "description": text(message, str::to_owned, &link(message, public_url), MAX_DESCRIPTION),
            "source": "pushmon",
            "tags": ["pushmon"],
        });
        if let Some(priority) = priority {
            body["priority"] = json!(priority);
        }
        body
    };
    match message {
        Message::Alert(alert) if alert.kind == AlertKind::Up => vec![close(summary(message))],
        Message::Alert(alert) => {
            let mut body = create(priority);
            body["entity"] = json!(alert.monitor_name);
            body["details"] = json!({
                "monitor_id": alert.monitor_id.to_string(),
                "reason": alert.reason,
                "notice": alert.notice.as_str(),
                "alert_id": id,
            });
            vec![Call {
                path: "/v2/alerts".to_owned(),
                body,
            }]
        }
        Message::Test(_) => {
            let mut body = create(Some("P5"));
            body["details"] = json!({ "test_id": id });
            vec![
                Call {
                    path: "/v2/alerts".to_owned(),
                    body,
                },
                close("a test of the channel: closed at once".to_owned()),
            ]
        }
    }
}

fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

//! PagerDuty Events API v2: `POST <api_url>/v2/enqueue`. A `down` (and a reminder)
//! is a `trigger`, the `up` that follows a `resolve`, both with the monitor's dedup
//! key, `pushmon-<monitor id>`, so the recovery resolves the incident the `down`
//! opened. A test triggers an `info` event of its own key and resolves it at once.

use serde_json::{Value, json};

use crate::domain::alert::AlertKind;

use super::chat::link;
use super::{Message, rule, summary};

/// PagerDuty's Events API.
pub const DEFAULT_API_URL: &str = "https://events.pagerduty.com";

/// PagerDuty cuts a summary at 1024 characters.
const MAX_SUMMARY: usize = 1024;

pub fn endpoint(api_url: Option<&str>) -> String {
    format!(
        "{}/v2/enqueue",
        api_url.unwrap_or(DEFAULT_API_URL).trim_end_matches('/')
    )
}

/// The dedup key of `message`: one per monitor, one per tested channel.
pub fn dedup_key(message: Message<'_>) -> String {
    match message {
        Message::Alert(alert) => format!("pushmon-{}", alert.monitor_id),
        Message::Test(test) => format!("pushmon-test-{}", test.channel.id),
    }
}

/// The events to send, in order: one for an alert, a trigger and its resolve for a
/// test.
pub fn events(message: Message<'_>, routing_key: &str, id: &str, public_url: &str) -> Vec<Value> {
    let dedup_key = dedup_key(message);
    let resolve = json!({
        "routing_key": routing_key,
        "event_action": "resolve",
        "dedup_key": dedup_key,
    });
    let alert = match message {
        Message::Alert(alert) if alert.kind == AlertKind::Up => return vec![resolve],
        Message::Alert(alert) => alert,
        Message::Test(test) => {
            let trigger = json!({
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": dedup_key,
                "payload": {
                    "summary": format!("{} (a test: it is resolved at once)", cut(&summary(message))),
                    "source": "pushmon",
                    "severity": "info",
                    "timestamp": test.at.to_rfc3339(),
                    "class": "test",
                    "custom_details": { "channel": test.channel.name, "test_id": id },
                },
                "client": "pushmon",
                "client_url": public_url,
            });
            return vec![trigger, resolve];
        }
    };
    vec![json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": cut(&summary(message)),
            "source": "pushmon",
            "severity": "critical",
            "timestamp": alert.at.to_rfc3339(),
            "component": alert.monitor_name,
            "class": rule(alert),
            "custom_details": {
                "monitor_id": alert.monitor_id.to_string(),
                "monitor_name": alert.monitor_name,
                "reason": alert.reason,
                "notice": alert.notice.as_str(),
                "msg": alert.msg.as_ref().map(|msg| msg.as_str()),
                "value": alert.value,
                "exit_status": alert.exit_status,
                "output": alert.output,
                "alert_id": id,
            },
        },
        "client": "pushmon",
        "client_url": link(message, public_url),
    })]
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_SUMMARY {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_SUMMARY - 1).collect();
    cut.push('…');
    cut
}

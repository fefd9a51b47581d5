//! Prometheus Alertmanager: `POST <url>/api/v2/alerts`. A `down` fires an alert, the
//! `up` that follows resolves it (same labels, `endsAt` set), so routing, silences and
//! inhibition work as for any Prometheus alert.

use serde_json::{Value, json};

use crate::domain::alert::AlertKind;
use crate::domain::ids::Timestamp;

use super::{Message, summary};

/// A firing alert stays firing until pushmon resolves it: Alertmanager would otherwise
/// resolve it after its `resolve_timeout` (5 minutes by default).
const FIRING_FOR_MILLIS: i64 = 365 * 24 * 3600 * 1000;

/// The one-element array posted.
pub fn body(message: Message<'_>, public_url: &str) -> Value {
    let alert = match message {
        Message::Alert(alert) => alert,
        Message::Test(test) => {
            let ends_at =
                Timestamp::from_millis(test.at.as_millis().saturating_add(FIRING_FOR_MILLIS));
            return json!([{
                "labels": {
                    "alertname": "PushmonTest",
                    "channel": test.channel.name,
                    "channel_id": test.channel.id.to_string(),
                    "severity": "critical",
                    "source": "pushmon",
                },
                "annotations": {
                    "summary": summary(message),
                },
                "startsAt": test.at.to_rfc3339(),
                "endsAt": ends_at.to_rfc3339(),
                "generatorURL": public_url,
            }]);
        }
    };
    let ends_at = match alert.kind {
        AlertKind::Up => alert.at,
        AlertKind::Down => {
            Timestamp::from_millis(alert.at.as_millis().saturating_add(FIRING_FOR_MILLIS))
        }
    };
    json!([{
        "labels": {
            "alertname": "PushmonMonitorDown",
            "monitor": alert.monitor_name,
            "monitor_id": alert.monitor_id.to_string(),
            "severity": "critical",
            "source": "pushmon",
        },
        "annotations": {
            "summary": summary(message),
            "reason": alert.reason,
            "description": alert.msg.as_ref().map(|msg| msg.as_str()).unwrap_or(""),
        },
        "startsAt": alert.at.to_rfc3339(),
        "endsAt": ends_at.to_rfc3339(),
        "generatorURL": format!("{public_url}/api/monitors/{}", alert.monitor_id),
    }])
}

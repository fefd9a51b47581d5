//! Prometheus Alertmanager: `POST <url>/api/v2/alerts`. A `down` fires an alert, the
//! `up` that follows resolves it (same labels, `endsAt` set), so routing, silences and
//! inhibition work as for any Prometheus alert. A test fires an alert of its own that
//! resolves itself a few minutes later.

use serde_json::{Map, Value, json};

use crate::domain::alert::{Alert, AlertKind};
use crate::domain::ids::Timestamp;
use crate::domain::labels::sanitized_name;

use super::{Message, summary};

/// A firing alert stays firing until pushmon resolves it: Alertmanager would otherwise
/// resolve it after its `resolve_timeout` (5 minutes by default).
const FIRING_FOR_MILLIS: i64 = 365 * 24 * 3600 * 1000;

/// How long a test alert fires. Long enough for Alertmanager's `group_wait` (30 s by
/// default) to pass and the test to reach its receivers; nobody resolves it but time.
pub const TEST_FIRES_FOR_MILLIS: i64 = 5 * 60 * 1000;

/// The labels every monitor's alert has; a monitor label whose sanitized name is one
/// of them is prefixed `label_` (`docs/alerts.md`, "Alertmanager").
const FIXED_LABELS: [&str; 5] = ["alertname", "monitor", "monitor_id", "severity", "source"];

/// An alert's labels: the fixed ones, the monitor's severity, and each monitor label
/// under its key made a label name (`domain::labels::sanitized_name`). Two keys that
/// sanitize alike (`a.b`, `a_b`) keep the value of the first in key order.
fn labels(alert: &Alert) -> Value {
    let mut labels = Map::new();
    for (key, value) in alert.labels.iter() {
        let mut name = sanitized_name(key);
        if FIXED_LABELS.contains(&name.as_str()) {
            name = format!("label_{name}");
        }
        labels
            .entry(name)
            .or_insert_with(|| Value::String(value.to_owned()));
    }
    for (name, value) in [
        ("alertname", "PushmonMonitorDown".to_owned()),
        ("monitor", alert.monitor_name.clone()),
        ("monitor_id", alert.monitor_id.to_string()),
        ("severity", alert.severity.as_str().to_owned()),
        ("source", "pushmon".to_owned()),
    ] {
        labels.insert(name.to_owned(), Value::String(value));
    }
    Value::Object(labels)
}

/// The one-element array posted; `id` is the alert's id (`InstallationId::alert_id`),
/// an annotation, since the labels must be the same for the `down` and its `up`.
pub fn body(message: Message<'_>, id: &str, public_url: &str) -> Value {
    let alert = match message {
        Message::Alert(alert) => alert,
        Message::Test(test) => {
            let ends_at =
                Timestamp::from_millis(test.at.as_millis().saturating_add(TEST_FIRES_FOR_MILLIS));
            return json!([{
                "labels": {
                    "alertname": "PushmonTest",
                    "channel": test.channel.name,
                    "channel_id": test.channel.id.to_string(),
                    "severity": "info",
                    "source": "pushmon",
                    "test": "true",
                },
                "annotations": {
                    "summary": format!("{}: this is a test, it resolves itself in 5 minutes", summary(message)),
                    "description": "A test of the channel, asked for on pushmon; no monitor changed state.",
                    "alert_id": id,
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
        "labels": labels(alert),
        "annotations": {
            "summary": summary(message),
            "reason": alert.reason,
            "description": alert.msg.as_ref().map(|msg| msg.as_str()).unwrap_or(""),
            "alert_id": id,
            "notice": alert.notice.as_str(),
            "exit_status": alert.exit_status.map(|status| status.to_string()).unwrap_or_default(),
            "output": alert.output.as_deref().unwrap_or(""),
            "missing_instances": alert.missing_instances.join(", "),
        },
        "startsAt": alert.at.to_rfc3339(),
        "endsAt": ends_at.to_rfc3339(),
        "generatorURL": format!("{public_url}/api/monitors/{}", alert.monitor_id),
    }])
}

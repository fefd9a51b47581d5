//! Prometheus Alertmanager: `POST <url>/api/v2/alerts`. A `down` fires an alert, the
//! `up` that follows resolves it (same labels, `endsAt` set), so routing, silences and
//! inhibition work as for any Prometheus alert.

use serde_json::{Value, json};

use crate::domain::alert::{Alert, AlertKind};
use crate::domain::ids::Timestamp;

use super::{NotifyError, post_json, summary};

/// A firing alert stays firing until pushmon resolves it: Alertmanager would otherwise
/// resolve it after its `resolve_timeout` (5 minutes by default).
const FIRING_FOR_MILLIS: i64 = 365 * 24 * 3600 * 1000;

pub fn body(alert: &Alert, public_url: &str) -> Value {
    let ends_at = match alert.kind {
        AlertKind::Up => alert.at,
        AlertKind::Down | AlertKind::Test => {
            Timestamp::from_millis(alert.at.as_millis().saturating_add(FIRING_FOR_MILLIS))
        }
    };
    let alertname = match alert.kind {
        AlertKind::Test => "PushmonTest",
        AlertKind::Down | AlertKind::Up => "PushmonMonitorDown",
    };
    json!([{
        "labels": {
            "alertname": alertname,
            "monitor": alert.monitor_name,
            "monitor_id": alert.monitor_id.to_string(),
            "severity": "critical",
            "source": "pushmon",
        },
        "annotations": {
            "summary": summary(alert),
            "reason": alert.reason,
            "description": alert.msg.as_ref().map(|msg| msg.as_str()).unwrap_or(""),
        },
        "startsAt": alert.at.to_rfc3339(),
        "endsAt": ends_at.to_rfc3339(),
        "generatorURL": format!("{public_url}/api/monitors/{}", alert.monitor_id),
    }])
}

pub async fn send(
    http: &reqwest::Client,
    url: &str,
    alert: &Alert,
    public_url: &str,
) -> Result<(), NotifyError> {
    let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
    let body = body(alert, public_url).to_string().into_bytes();
    post_json(http, &endpoint, body, &[]).await
}

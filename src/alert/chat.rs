//! Slack and Discord incoming webhooks: a short human message in each one's format.

use serde_json::json;

use crate::domain::alert::{Alert, AlertKind};

use super::{NotifyError, post_json, summary};

fn text(alert: &Alert, public_url: &str) -> String {
    let icon = match alert.kind {
        AlertKind::Down => "🔴",
        AlertKind::Up => "🟢",
        AlertKind::Test => "🔔",
    };
    let mut text = format!("{icon} {} at {}", summary(alert), alert.at.to_rfc3339());
    if let Some(msg) = &alert.msg {
        text.push_str(&format!("\nLast message: {}", msg.as_str()));
    }
    if let Some(value) = alert.value {
        text.push_str(&format!("\nLast value: {value}"));
    }
    text.push_str(&format!("\n{public_url}/api/monitors/{}", alert.monitor_id));
    text
}

pub async fn send_slack(
    http: &reqwest::Client,
    url: &str,
    alert: &Alert,
    public_url: &str,
) -> Result<(), NotifyError> {
    let body = json!({ "text": text(alert, public_url) })
        .to_string()
        .into_bytes();
    post_json(http, url, body, &[]).await
}

pub async fn send_discord(
    http: &reqwest::Client,
    url: &str,
    alert: &Alert,
    public_url: &str,
) -> Result<(), NotifyError> {
    // Discord caps content at 2000 characters.
    let content: String = text(alert, public_url).chars().take(2000).collect();
    let body = json!({ "content": content }).to_string().into_bytes();
    post_json(http, url, body, &[]).await
}

//! The generic webhook: the JSON of `docs/alerts.md` ("Webhook"), signed with
//! `X-Pushmon-Signature: sha256=<hex HMAC-SHA256 of the raw body>` when a secret is set,
//! and carrying `X-Pushmon-Alert-Id` for deduplication. The body is data: names and
//! messages go in as they are, and the receiver escapes them for wherever it shows them.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::Message;

pub const SIGNATURE_HEADER: &str = "X-Pushmon-Signature";

/// The alert's id (`InstallationId::alert_id`): the same on every attempt and every
/// re-send after a restart of one alert, and unique across installations, so a
/// receiver can drop the duplicates that at-least-once delivery allows.
pub const ALERT_ID_HEADER: &str = "X-Pushmon-Alert-Id";

/// The body (`docs/alerts.md`, "Webhook"); a test names its channel, and no monitor.
pub fn body(message: Message<'_>) -> Vec<u8> {
    let payload = match message {
        Message::Alert(alert) => json!({
            "event": alert.kind.as_str(),
            "reason": alert.reason,
            "at": alert.at.to_rfc3339(),
            "monitor": {
                "id": alert.monitor_id.to_string(),
                "name": alert.monitor_name,
                "severity": alert.severity.as_str(),
                "labels": alert.labels.iter().collect::<std::collections::BTreeMap<_, _>>(),
                "tags": alert.tags,
            },
            "msg": alert.msg.as_ref().map(|msg| msg.as_str()),
            "value": alert.value,
            "notice": alert.notice.as_str(),
            "exit_status": alert.exit_status,
            "output": alert.output,
            "missing_instances": alert.missing_instances,
        }),
        Message::Test(test) => json!({
            "event": "test",
            "reason": "test",
            "at": test.at.to_rfc3339(),
            "monitor": null,
            "channel": { "id": test.channel.id.to_string(), "name": test.channel.name },
            "msg": null,
            "value": null,
        }),
    };
    payload.to_string().into_bytes()
}

/// `sha256=<hex>` of the body under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

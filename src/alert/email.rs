//! Email over SMTP with lettre: `smtp://host:port` (plain, for local relays),
//! `smtp://host:587?tls=required` (STARTTLS) or `smtps://host` (implicit TLS), with
//! optional `user:pass@` credentials.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::alert::Alert;

use super::{NotifyError, summary};

/// Checks an address; the API uses it to reject a bad channel up front.
pub fn parse_mailbox(address: &str) -> Result<Mailbox, NotifyError> {
    address
        .parse::<Mailbox>()
        .map_err(|error| NotifyError::permanent(format!("invalid address {address:?}: {error}")))
}

/// Checks an SMTP URL without connecting.
pub fn check_smtp_url(smtp_url: &str) -> Result<(), NotifyError> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
        .map(|_| ())
        .map_err(|error| NotifyError::permanent(format!("invalid smtp_url: {error}")))
}

pub fn message(
    from: &str,
    to: &[String],
    alert: &Alert,
    public_url: &str,
) -> Result<Message, NotifyError> {
    let mut builder = Message::builder()
        .from(parse_mailbox(from)?)
        .subject(format!("[pushmon] {}", summary(alert)));
    for address in to {
        builder = builder.to(parse_mailbox(address)?);
    }
    let mut body = format!(
        "{}\n\nMonitor: {} ({})\nEvent: {}\nReason: {}\nAt: {}\n",
        summary(alert),
        alert.monitor_name,
        alert.monitor_id,
        alert.kind.as_str(),
        alert.reason,
        alert.at.to_rfc3339(),
    );
    if let Some(msg) = &alert.msg {
        body.push_str(&format!("Last message: {}\n", msg.as_str()));
    }
    if let Some(value) = alert.value {
        body.push_str(&format!("Last value: {value}\n"));
    }
    body.push_str(&format!(
        "\n{public_url}/api/monitors/{}\n",
        alert.monitor_id
    ));
    builder
        .body(body)
        .map_err(|error| NotifyError::permanent(format!("cannot build the message: {error}")))
}

pub async fn send(
    smtp_url: &str,
    from: &str,
    to: &[String],
    alert: &Alert,
    public_url: &str,
    timeout: Duration,
) -> Result<(), NotifyError> {
    let message = message(from, to, alert, public_url)?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
        .map_err(|error| NotifyError::permanent(format!("invalid smtp_url: {error}")))?
        .timeout(Some(timeout))
        .build();
    transport.send(message).await.map(|_| ()).map_err(|error| {
        if error.is_permanent() {
            NotifyError::permanent(format!("SMTP server refused the message: {error}"))
        } else {
            NotifyError::transient(format!("SMTP delivery failed: {error}"))
        }
    })
}

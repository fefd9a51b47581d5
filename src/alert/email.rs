//! Email over SMTP with lettre: `smtp://host:port` (plain, for local relays),
//! `smtp://host:587?tls=required` (STARTTLS) or `smtps://host` (implicit TLS), with
//! optional `user:pass@` credentials. The mail is `text/plain`: names and messages go
//! in as they are, and are shown as text.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Mail, Tokio1Executor};

use super::destination::{AddressPolicy, CheckFailed};
use super::{Message, NotifyError, one_line, summary};

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

/// The mail for `message`. Its `Message-ID` is made from the alert's `id`, so every
/// re-send of one alert has the same one (mail systems that deduplicate drop the
/// copies).
pub fn message(
    from: &str,
    to: &[String],
    message: Message<'_>,
    id: &str,
    public_url: &str,
) -> Result<Mail, NotifyError> {
    let subject = match message {
        Message::Alert(_) => format!("[pushmon] {}", summary(message)),
        Message::Test(test) => format!(
            "[pushmon] Test: channel \u{201c}{}\u{201d} works",
            one_line(&test.channel.name)
        ),
    };
    let mut builder = Mail::builder()
        .from(parse_mailbox(from)?)
        .subject(subject)
        .message_id(Some(format!("<{}@pushmon>", id.replace(':', "."))))
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        builder = builder.to(parse_mailbox(address)?);
    }
    let body = match message {
        Message::Alert(alert) => {
            let mut body = format!(
                "{}\n\nMonitor: {} ({})\nEvent: {}\nReason: {}\nAt: {}\n",
                summary(message),
                alert.monitor_name,
                alert.monitor_id,
                alert.kind.as_str(),
                alert.reason,
                alert.at.to_rfc3339(),
            );
            for (name, line) in super::context_lines(alert) {
                body.push_str(&format!("{name}: {line}\n"));
            }
            if let Some(msg) = &alert.msg {
                body.push_str(&format!("Last message: {}\n", msg.as_str()));
            }
            if let Some(value) = alert.value {
                body.push_str(&format!("Last value: {value}\n"));
            }
            if let Some(status) = alert.exit_status {
                body.push_str(&format!("Exit status: {status}\n"));
            }
            if let Some(output) = &alert.output {
                body.push_str(&format!("Output (its end):\n{output}\n"));
            }
            body.push_str(&format!(
                "\n{public_url}/api/monitors/{}\n",
                alert.monitor_id
            ));
            body
        }
        Message::Test(test) => format!(
            "{}.\n\nThis is a test of the channel, asked for at {}; no monitor changed \
             state.\n\n{public_url}\n",
            summary(message),
            test.at.to_rfc3339(),
        ),
    };
    builder
        .body(body)
        .map_err(|error| NotifyError::permanent(format!("cannot build the message: {error}")))
}

pub async fn send(
    smtp_url: &str,
    mail: Mail,
    timeout: Duration,
    addresses: AddressPolicy,
) -> Result<(), NotifyError> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
        .map_err(|error| NotifyError::permanent(format!("invalid smtp_url: {error}")))?
        .timeout(Some(timeout))
        .build();
    // lettre resolves the host itself, so it is resolved here first and refused if any
    // of its addresses is private (a name that changes its answer in between is the
    // one gap; `docs/alerts.md`, "Private addresses").
    if let Some(host) = reqwest::Url::parse(smtp_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
    {
        match addresses.check_host(&host, 25).await {
            Ok(()) => {}
            Err(CheckFailed::Denied(denied)) => return Err(denied.into()),
            Err(CheckFailed::Unresolved) => {
                return Err(NotifyError::transient(
                    "SMTP delivery failed: cannot resolve the SMTP server",
                ));
            }
        }
    }
    transport.send(mail).await.map(|_| ()).map_err(|error| {
        if error.is_permanent() {
            NotifyError::permanent(format!("SMTP server refused the message: {error}"))
        } else {
            NotifyError::transient(format!("SMTP delivery failed: {error}"))
        }
    })
}

//! Alert delivery: channels, the notifiers (one file per kind), and the dispatcher
//! that works through the durable outbox.
//!
//! A change of state and the deliveries it owes are written in one atomic batch by the
//! monitor's actor (`store::Append::owed`). The dispatcher sends each, retrying with
//! backoff, and reports the outcome on a channel; the monitor side reads it and has the
//! monitor's actor record it, which removes the outbox entry in the same batch. A burst
//! of alerts to one channel goes out as one digest (`digest.rs`). Nothing here imports
//! `monitor`, and nothing here blocks heartbeat ingestion.

pub mod alertmanager;
pub mod channels;
pub mod chat;
pub mod destination;
pub mod digest;
pub mod dispatcher;
pub mod email;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::alert::{Alert, AlertKind, AlertNotice, InstallationId};
use crate::domain::channel::{Channel, ChannelKind};
use crate::domain::ids::Timestamp;

pub use channels::Channels;
pub use destination::AddressPolicy;
pub use digest::DigestPolicy;
pub use dispatcher::{Dispatcher, RetryPolicy};

/// Why a send failed. `permanent` errors are not retried (a malformed address, say).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    pub permanent: bool,
    pub message: String,
}

impl NotifyError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            permanent: false,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            message: message.into(),
        }
    }
}

impl From<destination::Denied> for NotifyError {
    fn from(denied: destination::Denied) -> Self {
        Self::permanent(denied.to_string())
    }
}

/// What a notifier sends: an alert, or a channel's test message.
#[derive(Clone, Copy, Debug)]
pub enum Message<'a> {
    Alert(&'a Alert),
    Test(Test<'a>),
}

/// A test message (`POST /api/channels/{id}/test`): it names the channel it tests and
/// no monitor, since no monitor changed state.
#[derive(Clone, Copy, Debug)]
pub struct Test<'a> {
    pub channel: &'a Channel,
    pub at: Timestamp,
}

/// What a [`Notifier`] is made from.
#[derive(Clone, Debug)]
pub struct NotifierSettings {
    /// Base URL of this server, for links in messages.
    pub public_url: String,
    /// The time one attempt may take.
    pub timeout: Duration,
    /// The store's installation id, which makes alert ids unique.
    pub installation: InstallationId,
    pub addresses: AddressPolicy,
}

/// What every notifier needs.
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    public_url: String,
    timeout: Duration,
    installation: InstallationId,
    addresses: AddressPolicy,
}

impl Notifier {
    pub fn new(settings: NotifierSettings) -> Result<Self, NotifyError> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("pushmon/", env!("CARGO_PKG_VERSION")))
            // A redirect is a failed delivery with its status: following it would send
            // the alert, and its signature, somewhere the channel does not name.
            .redirect(reqwest::redirect::Policy::none());
        if settings.addresses == AddressPolicy::DenyPrivate {
            // A proxy would connect to the destination for us, unchecked.
            builder = builder
                .dns_resolver(Arc::new(destination::PublicOnly))
                .no_proxy();
        }
        let http = builder.build().map_err(|error| {
            NotifyError::permanent(format!("cannot build HTTP client: {error}"))
        })?;
        Ok(Self {
            http,
            public_url: settings.public_url,
            timeout: settings.timeout,
            installation: settings.installation,
            addresses: settings.addresses,
        })
    }

    /// Sends `alert` through `channel`, once.
    pub async fn send(&self, channel: &Channel, alert: &Alert) -> Result<(), NotifyError> {
        let id = self.installation.alert_id(alert.alert_seq);
        self.deliver(channel, Message::Alert(alert), &id).await
    }

    /// Sends `channel`'s test message, once.
    pub async fn send_test(&self, channel: &Channel, at: Timestamp) -> Result<(), NotifyError> {
        let id = self.installation.test_id(rand::random());
        self.deliver(channel, Message::Test(Test { channel, at }), &id)
            .await
    }

    /// Whether a failed test may say why it failed. With private addresses refused,
    /// it may not: "cannot connect" against "answered 404" would map the network for
    /// whoever may test channels (`SECURITY.md`).
    pub fn tells_why_a_test_failed(&self) -> bool {
        self.addresses == AddressPolicy::AllowAll
    }

    /// Refuses a channel whose destination, as written, the address policy forbids
    /// (the API checks a channel before creating it). The error names the field.
    pub fn check_destination(&self, kind: &ChannelKind) -> Result<(), String> {
        let (field, url) = match kind {
            ChannelKind::Webhook { url, .. }
            | ChannelKind::Slack { url }
            | ChannelKind::Discord { url }
            | ChannelKind::Alertmanager { url } => ("url", url),
            ChannelKind::Email { smtp_url, .. } => ("smtp_url", smtp_url),
        };
        match reqwest::Url::parse(url) {
            Ok(parsed) => self
                .addresses
                .check_new_url(&parsed)
                .map_err(|denied| format!("{field}: {denied}")),
            Err(_) => Ok(()),
        }
    }

    async fn deliver(
        &self,
        channel: &Channel,
        message: Message<'_>,
        id: &str,
    ) -> Result<(), NotifyError> {
        match &channel.kind {
            ChannelKind::Webhook { url, secret } => {
                let body = webhook::body(message);
                let mut headers = vec![(webhook::ALERT_ID_HEADER, id.to_owned())];
                if let Some(secret) = secret {
                    headers.push((webhook::SIGNATURE_HEADER, webhook::signature(secret, &body)));
                }
                self.post_json(url, body, &headers).await
            }
            ChannelKind::Slack { url } => {
                let body = chat::slack_body(message, &self.public_url);
                self.post_json(url, body, &[]).await
            }
            ChannelKind::Discord { url } => {
                let body = chat::discord_body(message, &self.public_url);
                self.post_json(url, body, &[]).await
            }
            ChannelKind::Email { smtp_url, from, to } => {
                let mail = email::message(from, to, message, id, &self.public_url)?;
                email::send(smtp_url, mail, self.timeout, self.addresses).await
            }
            ChannelKind::Alertmanager { url } => {
                let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
                let body = alertmanager::body(message, id, &self.public_url)
                    .to_string()
                    .into_bytes();
                self.post_json(&endpoint, body, &[]).await
            }
        }
    }

    /// Posts a JSON body; any 2xx is success, anything else (a redirect too) a
    /// transient error.
    async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<(), NotifyError> {
        // The resolver checks names; an address written in the URL is never resolved.
        if let Ok(parsed) = reqwest::Url::parse(url) {
            self.addresses.check_url(&parsed)?;
        }
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|error| http_error(&error))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(NotifyError::transient(format!(
                "receiver answered {status}"
            )))
        }
    }
}

fn http_error(error: &reqwest::Error) -> NotifyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(denied) = cause.downcast_ref::<destination::Denied>() {
            return denied.clone().into();
        }
        source = cause.source();
    }
    NotifyError::transient(if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        // reqwest errors include the URL, which can hold a secret (Slack, Discord).
        "request failed"
    })
}

/// A name on one line: control characters (a newline, say) become spaces, so a name
/// cannot add lines of its own to a message or a mail header.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A one-line human summary, shared by chat, email and Alertmanager, with the names
/// in it as they are.
pub fn summary(message: Message<'_>) -> String {
    summary_escaped(message, str::to_owned)
}

/// The rule an alert names, as words: `timeout`, `exit status 3`, `max runtime`…
pub fn rule(alert: &Alert) -> String {
    match (alert.reason.as_str(), alert.exit_status) {
        ("exit_status", Some(status)) => format!("exit status {status}"),
        (reason, _) => reason.replace('_', " "),
    }
}

/// [`summary`] with each name passed through `escape` (the chat formats' rules).
pub fn summary_escaped(message: Message<'_>, escape: impl Fn(&str) -> String) -> String {
    match message {
        Message::Alert(alert) => {
            let name = escape(&one_line(&alert.monitor_name));
            let rule = rule(alert);
            match (alert.kind, alert.notice) {
                (AlertKind::Down, AlertNotice::Change) => format!("{name} is DOWN ({rule})"),
                (AlertKind::Down, AlertNotice::Reminder) => {
                    format!("{name} is still DOWN ({rule})")
                }
                (AlertKind::Down, AlertNotice::AfterMaintenance) => {
                    format!("{name} went DOWN during maintenance ({rule})")
                }
                (AlertKind::Up, AlertNotice::AfterMaintenance) => {
                    format!("{name} is UP again (recovered during maintenance)")
                }
                (AlertKind::Up, _) => format!("{name} is UP again"),
            }
        }
        Message::Test(test) => format!(
            "Test from pushmon: channel \u{201c}{}\u{201d} works",
            escape(&one_line(&test.channel.name))
        ),
    }
}

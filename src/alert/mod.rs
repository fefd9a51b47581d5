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
pub mod matrix;
pub mod opsgenie;
pub mod pagerduty;
pub mod push;
pub mod teams;
pub mod telegram;
pub mod template;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::alert::{Alert, AlertKind, AlertNotice, InstallationId};
use crate::domain::channel::{Channel, ChannelKind, HttpMethod};
use crate::domain::ids::Timestamp;
use crate::domain::labels::Severity;

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

/// The clustered mode's say over deliveries (`app/cluster/alerts.rs`): which pod
/// sends a monitor's alerts, and the alert ids every pod agrees on.
pub trait ClusterDelivery: Send + Sync + 'static {
    /// The alert's id (`docs/alerts.md`, "Alert ids"), the same on every pod and
    /// under every owner.
    fn alert_id(&self, alert: &Alert) -> String;

    /// Whether this pod may send `monitor`'s alerts now: it owns the monitor's shard
    /// under the current epoch and has folded the shard up to the takeover.
    fn may_send(&self, monitor: crate::domain::ids::MonitorId) -> bool;
}

/// What every notifier needs.
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    public_url: String,
    timeout: Duration,
    installation: InstallationId,
    addresses: AddressPolicy,
    /// Set once a clustered pod has joined; shared by every clone.
    cluster: Arc<std::sync::OnceLock<Arc<dyn ClusterDelivery>>>,
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
            cluster: Arc::default(),
        })
    }

    /// The clustered mode: alert ids and who sends come from `cluster` from now on
    /// (every clone of this notifier).
    pub fn set_cluster(&self, cluster: Arc<dyn ClusterDelivery>) {
        let _ = self.cluster.set(cluster);
    }

    /// The clustered mode's say over deliveries, once joined.
    pub fn cluster(&self) -> Option<&Arc<dyn ClusterDelivery>> {
        self.cluster.get()
    }

    /// `alert`'s id: `<installation id>:<seq>` on a single node; from the shard log
    /// in the clustered mode ([`ClusterDelivery::alert_id`]).
    pub fn alert_id(&self, alert: &Alert) -> String {
        match self.cluster.get() {
            Some(cluster) => cluster.alert_id(alert),
            None => self.installation.alert_id(alert.alert_seq),
        }
    }

    /// Sends `alert` through `channel`, once.
    pub async fn send(&self, channel: &Channel, alert: &Alert) -> Result<(), NotifyError> {
        let id = self.alert_id(alert);
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
            | ChannelKind::Alertmanager { url }
            | ChannelKind::Template { url, .. }
            | ChannelKind::Teams { url }
            | ChannelKind::Ntfy { url, .. }
            | ChannelKind::Gotify { url, .. }
            | ChannelKind::Matrix { url, .. } => ("url", url.as_str()),
            ChannelKind::Email { smtp_url, .. } => ("smtp_url", smtp_url.as_str()),
            ChannelKind::Telegram { api_url, .. } => (
                "api_url",
                api_url.as_deref().unwrap_or(telegram::DEFAULT_API_URL),
            ),
            ChannelKind::PagerDuty { api_url, .. } => (
                "api_url",
                api_url.as_deref().unwrap_or(pagerduty::DEFAULT_API_URL),
            ),
            ChannelKind::Opsgenie { api_url, .. } => (
                "api_url",
                api_url.as_deref().unwrap_or(opsgenie::DEFAULT_API_URL),
            ),
            ChannelKind::Pushover { api_url, .. } => (
                "api_url",
                api_url.as_deref().unwrap_or(push::PUSHOVER_API_URL),
            ),
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
            ChannelKind::Template {
                method,
                url,
                headers,
                body,
            } => {
                let content_type = headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                    .map(|(_, value)| value.as_str());
                let mut request = Request::new(method_of(*method), url.clone());
                request.header(webhook::ALERT_ID_HEADER, id);
                for (name, value) in headers {
                    request.header(name, value);
                }
                if let Some(template) = body {
                    let content_type = content_type.unwrap_or("application/json");
                    let values = template::Values {
                        message,
                        channel,
                        alert_id: id,
                        public_url: &self.public_url,
                    };
                    let escape = template::Escape::for_content_type(content_type);
                    let rendered = template::render(template, &values, escape);
                    request.body = Some((content_type.to_owned(), rendered.into_bytes()));
                }
                self.send_request(request).await
            }
            ChannelKind::Teams { url } => {
                let body = teams::body(message, &self.public_url);
                self.send_request(Request::json(reqwest::Method::POST, url, body))
                    .await
            }
            ChannelKind::Telegram {
                bot_token,
                chat_id,
                api_url,
            } => {
                let endpoint = telegram::endpoint(api_url.as_deref(), bot_token);
                let body = telegram::body(message, chat_id, &self.public_url);
                self.send_request(Request::json(reqwest::Method::POST, &endpoint, body))
                    .await
            }
            ChannelKind::PagerDuty {
                routing_key,
                api_url,
            } => {
                let endpoint = pagerduty::endpoint(api_url.as_deref());
                for event in pagerduty::events(message, routing_key, id, &self.public_url) {
                    let body = event.to_string().into_bytes();
                    self.send_request(Request::json(reqwest::Method::POST, &endpoint, body))
                        .await?;
                }
                Ok(())
            }
            ChannelKind::Opsgenie {
                api_key,
                api_url,
                priority,
            } => {
                let base = api_url
                    .as_deref()
                    .unwrap_or(opsgenie::DEFAULT_API_URL)
                    .trim_end_matches('/');
                for call in opsgenie::calls(message, priority.as_deref(), id, &self.public_url) {
                    let body = call.body.to_string().into_bytes();
                    let mut request =
                        Request::json(reqwest::Method::POST, &format!("{base}{}", call.path), body);
                    request.header("Authorization", &format!("GenieKey {api_key}"));
                    self.send_request(request).await?;
                }
                Ok(())
            }
            ChannelKind::Ntfy {
                url,
                token,
                priority,
            } => {
                let (endpoint, body) = push::ntfy(message, url, *priority, &self.public_url);
                let mut request = Request::json(reqwest::Method::POST, &endpoint, body);
                if let Some(token) = token {
                    request.header("Authorization", &format!("Bearer {token}"));
                }
                self.send_request(request).await
            }
            ChannelKind::Gotify {
                url,
                app_token,
                priority,
            } => {
                let (endpoint, body) = push::gotify(message, url, *priority, &self.public_url);
                let mut request = Request::json(reqwest::Method::POST, &endpoint, body);
                request.header("X-Gotify-Key", app_token);
                self.send_request(request).await
            }
            ChannelKind::Pushover {
                user_key,
                app_token,
                api_url,
                priority,
            } => {
                let keys = push::PushoverKeys {
                    user_key,
                    app_token,
                    api_url: api_url.as_deref(),
                };
                let (endpoint, form) = push::pushover(message, keys, *priority, &self.public_url);
                let mut request = Request::new(reqwest::Method::POST, endpoint);
                request.body = Some((
                    "application/x-www-form-urlencoded".to_owned(),
                    form.into_bytes(),
                ));
                self.send_request(request).await
            }
            ChannelKind::Matrix {
                url,
                access_token,
                room_id,
            } => {
                let transaction = matrix::transaction_id(id, &channel.id.to_string());
                let endpoint = matrix::endpoint(url, room_id, &transaction)
                    .ok_or_else(|| NotifyError::permanent("url cannot take a path"))?;
                let body = matrix::body(message, &self.public_url);
                let mut request = Request::json(reqwest::Method::PUT, &endpoint, body);
                request.header("Authorization", &format!("Bearer {access_token}"));
                self.send_request(request).await
            }
        }
    }

    /// Sends one request of the kinds added with `send_on` (format version 4): any
    /// 2xx is success; a 4xx but 408 and 429 a permanent error (the request itself
    /// is wrong: a bad token, a room the bot cannot write to), anything else (5xx, a
    /// redirect, no answer) a transient one.
    async fn send_request(&self, request: Request) -> Result<(), NotifyError> {
        // The resolver checks names; an address written in the URL is never resolved.
        let url = reqwest::Url::parse(&request.url)
            .map_err(|_| NotifyError::permanent("the channel's URL is not a valid URL"))?;
        self.addresses.check_url(&url)?;
        let mut builder = self.http.request(request.method, url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some((content_type, body)) = request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        let response = builder.send().await.map_err(|error| http_error(&error))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            Err(NotifyError::permanent(format!(
                "receiver answered {status}"
            )))
        } else {
            Err(NotifyError::transient(format!(
                "receiver answered {status}"
            )))
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

/// One HTTP request of a notifier.
struct Request {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, String)>,
    /// Its content type and bytes.
    body: Option<(String, Vec<u8>)>,
}

impl Request {
    fn new(method: reqwest::Method, url: String) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    fn json(method: reqwest::Method, url: &str, body: Vec<u8>) -> Self {
        let mut request = Self::new(method, url.to_owned());
        request.body = Some(("application/json".to_owned(), body));
        request
    }

    fn header(&mut self, name: &str, value: &str) {
        self.headers.push((name.to_owned(), value.to_owned()));
    }
}

fn method_of(method: HttpMethod) -> reqwest::Method {
    match method {
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Get => reqwest::Method::GET,
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

/// The monitor's context as `(name, text)` lines for messages people read: its
/// severity and its labels (`env=prod, team=payments`). None for a `critical` monitor
/// without labels, so the usual message stays as short as it was.
/// A fleet's alert also names its missing instances (`Missing instances`).
pub fn context_lines(alert: &Alert) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if !alert.labels.is_empty() || alert.severity != Severity::Critical {
        lines.push(("Severity", alert.severity.as_str().to_owned()));
    }
    if !alert.labels.is_empty() {
        let labels: Vec<String> = alert
            .labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        lines.push(("Labels", labels.join(", ")));
    }
    if let Some(missing) = missing_line(alert) {
        lines.push(("Missing instances", missing));
    }
    lines
}

/// The fleet instances an alert names as missing, as a line for messages people
/// read (`None` when it names none); at most 20 names, then how many more.
pub fn missing_line(alert: &Alert) -> Option<String> {
    const SHOWN: usize = 20;
    if alert.missing_instances.is_empty() {
        return None;
    }
    let mut line = alert
        .missing_instances
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if alert.missing_instances.len() > SHOWN {
        line.push_str(&format!(
            " and {} more",
            alert.missing_instances.len() - SHOWN
        ));
    }
    Some(line)
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
                (AlertKind::Down, AlertNotice::AfterDependency) => {
                    format!("{name} is DOWN ({rule}; held while a monitor it depends on was down)")
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

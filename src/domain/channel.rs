//! Notification channels: where and how alerts are delivered.
//!
//! Stored with bincode by `store::codec`: never reorder variants or fields.

use serde::{Deserialize, Serialize};

use super::alert::AlertKind;
use super::ids::{ChannelId, Timestamp};

/// Where and how a channel delivers. Its `Debug` names the kind only: most kinds
/// hold a secret (a token, a key, a URL that is one).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelKind {
    /// The JSON of `docs/alerts.md` ("Webhook"), HMAC-signed when a secret is set.
    Webhook { url: String, secret: Option<String> },
    /// A Slack incoming webhook.
    Slack { url: String },
    /// A Discord webhook.
    Discord { url: String },
    /// Mail over SMTP. `smtp_url` is `smtp://[user:pass@]host[:port][?tls=required]`
    /// (STARTTLS when required) or `smtps://…` (implicit TLS).
    Email {
        smtp_url: String,
        from: String,
        to: Vec<String>,
    },
    /// A Prometheus Alertmanager; alerts go to `<url>/api/v2/alerts`.
    Alertmanager { url: String },
    // Format version 4: the kinds below were appended.
    /// Any HTTP service: `method` to `url` with `headers` and a `body` template whose
    /// placeholders name the alert's fields (`alert/template.rs`).
    Template {
        method: HttpMethod,
        url: String,
        /// Names and values, in the order the API's object had them.
        headers: Vec<(String, String)>,
        body: Option<String>,
    },
    /// A Microsoft Teams workflow (or incoming webhook) URL: an Adaptive Card.
    Teams { url: String },
    /// A Telegram bot: `sendMessage` of the Bot API at `api_url` (Telegram's when
    /// `None`).
    Telegram {
        bot_token: String,
        chat_id: String,
        api_url: Option<String>,
    },
    /// PagerDuty Events API v2: a `down` triggers, an `up` resolves (one dedup key
    /// per monitor).
    PagerDuty {
        routing_key: String,
        api_url: Option<String>,
    },
    /// Opsgenie's Alert API: a `down` creates an alert, an `up` closes it (one alias
    /// per monitor).
    Opsgenie {
        api_key: String,
        api_url: Option<String>,
        /// `P1` … `P5`; `None` is Opsgenie's default (`P3`).
        priority: Option<String>,
    },
    /// An ntfy topic URL (`https://ntfy.sh/mytopic`), with a bearer token or none.
    Ntfy {
        url: String,
        token: Option<String>,
        /// 1 … 5, for a `down`; `None` is 4 (high).
        priority: Option<u8>,
    },
    /// A Gotify server and an application's token.
    Gotify {
        url: String,
        app_token: String,
        /// 0 … 10, for a `down`; `None` is 8.
        priority: Option<u8>,
    },
    /// Pushover: a user (or group) key and an application's token.
    Pushover {
        user_key: String,
        app_token: String,
        api_url: Option<String>,
        /// -2 … 1, for a `down`; `None` is 1 (high). Emergency (2) needs a receipt
        /// flow pushmon does not run.
        priority: Option<i8>,
    },
    /// A Matrix room, written to with a user's (or bot's) access token.
    Matrix {
        url: String,
        access_token: String,
        room_id: String,
    },
}

/// The method of a templated webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpMethod {
    Post,
    Put,
    Patch,
    Get,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Get => "GET",
        }
    }

    /// `POST`, `PUT`, `PATCH` or `GET`, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "PATCH" => Some(Self::Patch),
            "GET" => Some(Self::Get),
            _ => None,
        }
    }
}

/// Which changes of state a channel is told about (`send_on`). A channel owes no
/// delivery for an alert it is not told about (`domain::alert::owed_deliveries`'s
/// callers, and the store's writer, which decides in the log's order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendOn {
    /// Every alert: `down` (reminders too) and `up`. What channels did before
    /// `send_on` existed.
    #[default]
    Both,
    /// `down` alerts and their reminders only.
    Down,
    /// `up` (recovery) alerts only.
    Up,
}

impl SendOn {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Down => "down",
            Self::Up => "up",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "both" => Some(Self::Both),
            "down" => Some(Self::Down),
            "up" => Some(Self::Up),
            _ => None,
        }
    }

    /// Whether an alert of `kind` is sent.
    pub fn includes(self, kind: AlertKind) -> bool {
        match (self, kind) {
            (Self::Both, _) | (Self::Down, AlertKind::Down) | (Self::Up, AlertKind::Up) => true,
            (Self::Down, AlertKind::Up) | (Self::Up, AlertKind::Down) => false,
        }
    }
}

impl std::fmt::Debug for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.name()).finish_non_exhaustive()
    }
}

impl ChannelKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Slack { .. } => "slack",
            Self::Discord { .. } => "discord",
            Self::Email { .. } => "email",
            Self::Alertmanager { .. } => "alertmanager",
            Self::Template { .. } => "template",
            Self::Teams { .. } => "teams",
            Self::Telegram { .. } => "telegram",
            Self::PagerDuty { .. } => "pagerduty",
            Self::Opsgenie { .. } => "opsgenie",
            Self::Ntfy { .. } => "ntfy",
            Self::Gotify { .. } => "gotify",
            Self::Pushover { .. } => "pushover",
            Self::Matrix { .. } => "matrix",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: ChannelId,
    pub name: String,
    pub kind: ChannelKind,
    pub created_at: Timestamp,
    /// The stable key of a channel declared in a monitors file. (Format version 2.)
    pub key: Option<String>,
    /// Which alerts it is told about. (Format version 4.)
    pub send_on: SendOn,
}

/// What happened to a channel, as stored in its log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelEvent {
    Created(Channel),
    Deleted,
    /// The channel's new name and settings (a redeclared channel).
    Updated(Channel),
}

//! Notification channels: where and how alerts are delivered.
//!
//! Stored with bincode by `store::codec`: never reorder variants or fields.

use serde::{Deserialize, Serialize};

use super::ids::{ChannelId, Timestamp};

/// Where and how a channel delivers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl ChannelKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Slack { .. } => "slack",
            Self::Discord { .. } => "discord",
            Self::Email { .. } => "email",
            Self::Alertmanager { .. } => "alertmanager",
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
}

/// What happened to a channel, as stored in its log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelEvent {
    Created(Channel),
    Deleted,
    /// The channel's new name and settings (a redeclared channel).
    Updated(Channel),
}

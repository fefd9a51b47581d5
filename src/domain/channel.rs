//! Notification channels and the alerts they carry.
//!
//! Stored with bincode by `store::codec`: never reorder variants or fields.

use serde::{Deserialize, Serialize};

use super::event::{DownReason, Event, Msg};
use super::ids::{ChannelId, MonitorId, Timestamp};
use super::machine::Monitor;

/// Where and how a channel delivers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelKind {
    /// SPEC 5's JSON, HMAC-signed when a secret is set.
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

/// Which change of state an alert reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertEvent {
    Down,
    Up,
    /// Sent by `POST /api/channels/{id}/test`; never stored.
    Test,
}

impl AlertEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Up => "up",
            Self::Test => "test",
        }
    }
}

/// One change of state to tell a channel about (SPEC 5's payload, before rendering).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The sequence number of the `down`/`up` event; with the channel, names a delivery.
    pub alert_seq: u64,
    pub event: AlertEvent,
    /// `timeout`, `manual` or `heartbeat`.
    pub reason: String,
    pub at: Timestamp,
    pub monitor_id: MonitorId,
    pub monitor_name: String,
    pub msg: Option<Msg>,
    pub value: Option<f64>,
}

impl Alert {
    /// The alert an event owes, given the monitor's state after it; `None` if the event
    /// is not a change of state that alerts.
    pub fn for_event(monitor: &Monitor, at: Timestamp, event: &Event) -> Option<Self> {
        let (alert_event, reason) = match event {
            Event::WentDown { reason } => (
                AlertEvent::Down,
                match reason {
                    DownReason::Timeout => "timeout",
                    DownReason::Manual => "manual",
                },
            ),
            Event::Recovered => (AlertEvent::Up, "heartbeat"),
            _ => return None,
        };
        Some(Self {
            alert_seq: 0,
            event: alert_event,
            reason: reason.to_owned(),
            at,
            monitor_id: monitor.id,
            monitor_name: monitor.config.name.clone(),
            msg: monitor.last_msg.clone(),
            value: monitor.last_value,
        })
    }
}

/// An alert owed to one channel: the outbox record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: ChannelId,
    pub alert: Alert,
}

/// How a delivery ended, as recorded in the monitor's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryOutcome {
    pub channel: ChannelId,
    pub alert_seq: u64,
    pub attempts: u32,
    /// `None` on success; the last error otherwise.
    pub error: Option<String>,
}

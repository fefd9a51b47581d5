//! Alerts: what a change of state tells a channel, which channels are owed one, and
//! the id that names an alert everywhere (`docs/alerts.md`, "Alert ids").
//!
//! `Alert` and `Delivery` are the outbox records, stored with bincode by
//! `store::codec`: never reorder variants or fields.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::event::{DownReason, Event, HeartbeatText, Stamped};
use super::ids::{ChannelId, MonitorId, Timestamp};
use super::machine::Monitor;

/// 128 random bits made when the store is created and never changed: with an alert's
/// sequence number, it names the alert uniquely across installations, so two servers
/// (or one whose store was lost and started again) never send the same id for
/// different alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstallationId(uuid::Uuid);

impl InstallationId {
    /// An id from 16 random bytes (shown as a UUID version 4).
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Uuid::from_bytes(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id of the alert with sequence number `alert_seq`: `<installation>:<seq>`.
    /// The same on every attempt and every re-send after a restart.
    pub fn alert_id(&self, alert_seq: u64) -> String {
        format!("{self}:{alert_seq}")
    }

    /// The id of one test message, made from 16 random bytes: `<installation>:test-<hex>`.
    /// It never equals an alert's id, nor (but by chance) another test's.
    pub fn test_id(&self, random: [u8; 16]) -> String {
        format!("{self}:test-{}", uuid::Uuid::from_bytes(random).simple())
    }
}

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Which change of state an alert reports (`event` in the webhook payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertKind {
    Down,
    Up,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Up => "up",
        }
    }
}

/// One change of state to tell a channel about (the payload of `docs/alerts.md`,
/// before rendering).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The sequence number of the `down`/`up` event; with the channel, names a delivery.
    pub alert_seq: u64,
    pub kind: AlertKind,
    /// `timeout`, `manual` or `heartbeat`.
    pub reason: String,
    pub at: Timestamp,
    pub monitor_id: MonitorId,
    pub monitor_name: String,
    pub msg: Option<HeartbeatText>,
    pub value: Option<f64>,
}

impl Alert {
    /// The alert an event owes, given the monitor's state after it; `None` if the event
    /// is not a change of state that alerts.
    pub fn for_event(monitor: &Monitor, at: Timestamp, event: &Event) -> Option<Self> {
        let (kind, reason) = match event {
            Event::WentDown { reason } => (
                AlertKind::Down,
                match reason {
                    DownReason::Timeout => "timeout",
                    DownReason::Manual => "manual",
                },
            ),
            Event::Recovered => (AlertKind::Up, "heartbeat"),
            _ => return None,
        };
        Some(Self {
            alert_seq: 0,
            kind,
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

/// The deliveries `events` owe, given the monitor's state after them: one per alert per
/// channel of the monitor for which `exists` holds (a channel deleted meanwhile is owed
/// nothing). Each comes with the index of its event in `events`; its `alert_seq` is 0
/// until the log numbers that event.
pub fn owed_deliveries(
    monitor: &Monitor,
    events: &[Stamped],
    exists: impl Fn(ChannelId) -> bool,
) -> Vec<(usize, Delivery)> {
    let mut owed = Vec::new();
    for (index, stamped) in events.iter().enumerate() {
        let Some(alert) = Alert::for_event(monitor, stamped.at, &stamped.event) else {
            continue;
        };
        for channel in &monitor.config.channels {
            if exists(*channel) {
                owed.push((
                    index,
                    Delivery {
                        channel: *channel,
                        alert: alert.clone(),
                    },
                ));
            }
        }
    }
    owed
}

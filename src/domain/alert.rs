//! Alerts: what a change of state tells a channel, which channels are owed one, and
//! the id that names an alert everywhere (`docs/alerts.md`, "Alert ids").
//!
//! `Alert` and `Delivery` are the outbox records, stored with bincode by
//! `store::codec`: never reorder variants or fields.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::event::{DownReason, Event, HeartbeatText, Notice, RunOutcome, Stamped};
use super::ids::{ChannelId, MonitorId, Timestamp};
use super::labels::{Labels, Severity};
use super::machine::{self, Monitor};

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

/// Why an alert is sent now (`notice` in the webhook payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertNotice {
    /// The monitor changed state just now.
    Change,
    /// Still down: a reminder (`realert_every_seconds`).
    Reminder,
    /// The monitor changed state during a maintenance window that has just ended.
    AfterMaintenance,
    // Format version 7 (appended).
    /// The monitor went down while a parent was down; the parent has been up again
    /// for the dependency grace and the monitor is still down.
    AfterDependency,
}

impl AlertNotice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Change => "change",
            Self::Reminder => "reminder",
            Self::AfterMaintenance => "after_maintenance",
            Self::AfterDependency => "after_dependency",
        }
    }
}

/// One alert to tell a channel about (the payload of `docs/alerts.md`, before
/// rendering).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The sequence number of the event that owes it; with the channel, names a
    /// delivery.
    pub alert_seq: u64,
    pub kind: AlertKind,
    /// The rule that fired for a `down` (`timeout`, `manual`, `exit_status`,
    /// `max_runtime`, `too_fast`, `schedule`); `heartbeat` for an `up`.
    pub reason: String,
    pub at: Timestamp,
    pub monitor_id: MonitorId,
    pub monitor_name: String,
    pub msg: Option<HeartbeatText>,
    pub value: Option<f64>,
    // Format version 3.
    pub notice: AlertNotice,
    /// The exit status of the run the alert is about, if it reported one.
    pub exit_status: Option<u8>,
    /// The end of that run's output (`Output::excerpt`).
    pub output: Option<String>,
    // Format version 5: the monitor's labels, severity and tags when the alert was
    // owed (so a `down` and the `up` after it carry the same, unless they changed).
    // Boxed to keep an alert small in the dispatcher's messages; bincode writes a box
    // as what it holds.
    pub severity: Severity,
    pub labels: Box<Labels>,
    pub tags: Box<[String]>,
    // Format version 7.
    /// A fleet monitor's instances that did not report in time, when the alert was
    /// owed (none for other monitors).
    pub missing_instances: Box<[String]>,
}

impl Alert {
    /// The alert an event owes, given the monitor's state after it; `None` if the event
    /// owes none.
    pub fn for_event(monitor: &Monitor, at: Timestamp, event: &Event) -> Option<Self> {
        let (kind, reason, notice) = match event {
            Event::WentDown { reason } => (AlertKind::Down, Some(*reason), AlertNotice::Change),
            Event::Recovered => (AlertKind::Up, None, AlertNotice::Change),
            Event::Reminder { reason } => (AlertKind::Down, Some(*reason), AlertNotice::Reminder),
            Event::AlertReleased(Notice::Down(reason)) => (
                AlertKind::Down,
                Some(*reason),
                AlertNotice::AfterMaintenance,
            ),
            Event::AlertReleased(Notice::Up) => {
                (AlertKind::Up, None, AlertNotice::AfterMaintenance)
            }
            _ => return None,
        };
        // The run the alert is about: the one that just ended, or, for a reminder or
        // a release of a `down` a run caused, the last one.
        let run = monitor.last_run.as_deref().filter(|run| match notice {
            AlertNotice::Change => run.ended_at == at,
            AlertNotice::Reminder
            | AlertNotice::AfterMaintenance
            | AlertNotice::AfterDependency => {
                matches!(
                    (reason, run.outcome),
                    (Some(_), RunOutcome::Failure(failure)) if Some(failure) == reason
                )
            }
        });
        Some(Self {
            alert_seq: 0,
            kind,
            reason: reason.map_or("heartbeat", DownReason::as_str).to_owned(),
            at,
            monitor_id: monitor.id,
            monitor_name: monitor.config.name.clone(),
            msg: monitor.last_msg.clone(),
            value: monitor.last_value,
            notice,
            exit_status: run.and_then(|run| run.exit_status),
            output: run.and_then(|run| run.output_excerpt.clone()),
            severity: monitor.config.severity,
            labels: Box::new(monitor.config.labels.clone()),
            tags: monitor.config.tags.clone().into_boxed_slice(),
            missing_instances: monitor
                .missing_instances(at)
                .into_iter()
                .map(|instance| instance.as_str().to_owned())
                .collect(),
        })
    }
}

/// An alert owed to one channel: the outbox record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: ChannelId,
    pub alert: Alert,
}

/// The deliveries `events` owe, `before` being the monitor's state before them: one
/// per alert per channel of the monitor for which `wants(channel, kind)` holds (a
/// channel deleted meanwhile is owed nothing, nor one whose `send_on` leaves the
/// alert's kind out), each alert made from the state right after its event.
/// An alert right after an `AlertSuppressed`, or of a muted monitor, is owed nothing,
/// nor one held for a parent (`AlertHeld`) until its release. Each comes with the
/// index of its event in `events`; its `alert_seq` is 0 until the log numbers that
/// event.
pub fn owed_deliveries(
    before: &Monitor,
    events: &[Stamped],
    wants: impl Fn(ChannelId, AlertKind) -> bool,
) -> Vec<(usize, Delivery)> {
    let mut owed = Vec::new();
    if !events.iter().any(|stamped| stamped.event.is_alert()) {
        return owed;
    }
    let mut monitor = before.clone();
    for (index, stamped) in events.iter().enumerate() {
        // A timed mute over at the event's time has recorded its `Unmuted` before it
        // (`machine::decide`), so the state alone tells.
        let releasing = matches!(stamped.event, Event::AlertReleased(_));
        let held = monitor.held_alert.is_some();
        let suppressed =
            monitor.suppress_next_alert || monitor.mute.is_some() || (held && !releasing);
        let seq = monitor.last_seq;
        machine::apply(&mut monitor, seq, stamped.at, &stamped.event);
        if suppressed || !stamped.event.is_alert() {
            continue;
        }
        let Some(mut alert) = Alert::for_event(&monitor, stamped.at, &stamped.event) else {
            continue;
        };
        if held && releasing {
            alert.notice = AlertNotice::AfterDependency;
        }
        for channel in &monitor.config.channels {
            if wants(*channel, alert.kind) {
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

//! Format versions 5 and 6, frozen: the layouts before fleets, dependencies and
//! signed pushes (version 7) gave `Heartbeat` an instance, `MonitorConfig` its fleet,
//! dependency and push-restriction settings, the monitor's state its instances and a
//! held alert, and `Alert` the missing instances.

use std::sync::Arc;

use serde::Deserialize;

use crate::domain::alert::{self, AlertKind, AlertNotice};
use crate::domain::event::{
    self, DeliveryOutcome, DownReason, HeartbeatText, LogEntry, Notice, PushStatus, RunEnd, RunRef,
    RunStart, UnmuteReason,
};
use crate::domain::ids::{ChannelId, MonitorId, PushToken, Timestamp};
use crate::domain::labels::{Labels, Severity};
use crate::domain::machine::{self, Grace, LastRun, Mute, OpenRun, Status};
use crate::domain::schedule::{CronSchedule, MaintenanceWindow};

/// A heartbeat of every format before 7: no instance.
#[derive(Deserialize)]
pub struct Heartbeat {
    status: PushStatus,
    msg: Option<HeartbeatText>,
    value: Option<f64>,
}

impl Heartbeat {
    pub fn upcast(self) -> event::Heartbeat {
        event::Heartbeat::new(self.status, self.msg, self.value)
    }
}

#[derive(Deserialize)]
pub struct MonitorConfig {
    name: String,
    timeout_seconds: u32,
    interval_seconds: u32,
    channels: Vec<ChannelId>,
    key: Option<String>,
    tags: Vec<String>,
    schedule: Option<CronSchedule>,
    max_runtime_seconds: Option<u32>,
    min_runtime_seconds: Option<u32>,
    failure_threshold: u32,
    recovery_threshold: u32,
    realert_every_seconds: Option<u32>,
    maintenance: Vec<MaintenanceWindow>,
    slug: Option<String>,
    labels: Labels,
    severity: Severity,
}

impl MonitorConfig {
    /// Not a fleet, no parents, pushes from anywhere, unsigned.
    pub(super) fn upcast(self) -> event::MonitorConfig {
        event::MonitorConfig {
            name: self.name,
            timeout_seconds: self.timeout_seconds,
            interval_seconds: self.interval_seconds,
            channels: self.channels,
            key: self.key,
            tags: self.tags,
            schedule: self.schedule,
            max_runtime_seconds: self.max_runtime_seconds,
            min_runtime_seconds: self.min_runtime_seconds,
            failure_threshold: self.failure_threshold,
            recovery_threshold: self.recovery_threshold,
            realert_every_seconds: self.realert_every_seconds,
            maintenance: self.maintenance,
            slug: self.slug,
            labels: self.labels,
            severity: self.severity,
            ..event::MonitorConfig::new("", 0)
        }
    }
}

#[derive(Deserialize)]
pub enum Event {
    Created {
        config: Box<MonitorConfig>,
        token: PushToken,
    },
    Updated {
        config: Box<MonitorConfig>,
    },
    TokenRotated {
        token: PushToken,
    },
    Deleted,
    HeartbeatReceived(Heartbeat),
    WentDown {
        reason: DownReason,
    },
    Recovered,
    Paused,
    Resumed,
    GraceGranted {
        deadline: Timestamp,
        until: Timestamp,
    },
    DeliveryRecorded(DeliveryOutcome),
    WentUp,
    RunStarted(RunStart),
    RunEnded(RunEnd),
    LogReceived(LogEntry),
    RunOverran(RunRef),
    FailureCounted {
        reason: DownReason,
        count: u32,
    },
    SuccessCounted {
        count: u32,
    },
    Reminder {
        reason: DownReason,
    },
    AlertSuppressed(Notice),
    AlertReleased(Notice),
    Muted {
        until: Option<Timestamp>,
        until_recovery: bool,
    },
    Unmuted {
        reason: UnmuteReason,
    },
    AlertMuted(Notice),
}

impl Event {
    fn upcast(self) -> event::Event {
        use event::Event as Current;
        match self {
            Self::Created { config, token } => Current::Created {
                config: Box::new(config.upcast()),
                token,
            },
            Self::Updated { config } => Current::Updated {
                config: Box::new(config.upcast()),
            },
            Self::TokenRotated { token } => Current::TokenRotated { token },
            Self::Deleted => Current::Deleted,
            Self::HeartbeatReceived(heartbeat) => Current::HeartbeatReceived(heartbeat.upcast()),
            Self::WentDown { reason } => Current::WentDown { reason },
            Self::Recovered => Current::Recovered,
            Self::Paused => Current::Paused,
            Self::Resumed => Current::Resumed,
            Self::GraceGranted { deadline, until } => Current::GraceGranted { deadline, until },
            Self::DeliveryRecorded(outcome) => Current::DeliveryRecorded(outcome),
            Self::WentUp => Current::WentUp,
            Self::RunStarted(start) => Current::RunStarted(start),
            Self::RunEnded(end) => Current::RunEnded(end),
            Self::LogReceived(entry) => Current::LogReceived(entry),
            Self::RunOverran(run) => Current::RunOverran(run),
            Self::FailureCounted { reason, count } => Current::FailureCounted { reason, count },
            Self::SuccessCounted { count } => Current::SuccessCounted { count },
            Self::Reminder { reason } => Current::Reminder { reason },
            Self::AlertSuppressed(notice) => Current::AlertSuppressed(notice),
            Self::AlertReleased(notice) => Current::AlertReleased(notice),
            Self::Muted {
                until,
                until_recovery,
            } => Current::Muted {
                until,
                until_recovery,
            },
            Self::Unmuted { reason } => Current::Unmuted { reason },
            Self::AlertMuted(notice) => Current::AlertMuted(notice),
        }
    }
}

#[derive(Deserialize)]
pub struct StoredEvent {
    at: Timestamp,
    event: Event,
}

impl StoredEvent {
    pub fn upcast(self) -> super::StoredEvent {
        super::StoredEvent {
            at: self.at,
            event: self.event.upcast(),
        }
    }
}

/// The state of version 6 (version 5's, plus `mute`).
#[derive(Deserialize)]
pub struct Monitor {
    id: MonitorId,
    config: MonitorConfig,
    token: PushToken,
    status: Status,
    created_at: Timestamp,
    last_heartbeat_at: Option<Timestamp>,
    last_status_change_at: Option<Timestamp>,
    last_msg: Option<HeartbeatText>,
    last_value: Option<f64>,
    clock_started_at: Timestamp,
    grace: Option<Grace>,
    last_event_at: Timestamp,
    last_seq: u64,
    runs: Vec<OpenRun>,
    last_run: Option<Box<LastRun>>,
    last_success_at: Option<Timestamp>,
    consecutive_failures: u32,
    consecutive_successes: u32,
    last_down_reason: Option<DownReason>,
    alerted_down: bool,
    last_alerted_at: Option<Timestamp>,
    suppress_next_alert: bool,
    mute: Option<Mute>,
}

impl Monitor {
    /// No instances seen, no alert held.
    pub fn upcast(self) -> machine::Monitor {
        machine::Monitor {
            id: self.id,
            config: Arc::new(self.config.upcast()),
            token: self.token,
            status: self.status,
            created_at: self.created_at,
            last_heartbeat_at: self.last_heartbeat_at,
            last_status_change_at: self.last_status_change_at,
            last_msg: self.last_msg,
            last_value: self.last_value,
            clock_started_at: self.clock_started_at,
            grace: self.grace,
            last_event_at: self.last_event_at,
            last_seq: self.last_seq,
            runs: self.runs,
            last_run: self.last_run,
            last_success_at: self.last_success_at,
            consecutive_failures: self.consecutive_failures,
            consecutive_successes: self.consecutive_successes,
            last_down_reason: self.last_down_reason,
            alerted_down: self.alerted_down,
            last_alerted_at: self.last_alerted_at,
            suppress_next_alert: self.suppress_next_alert,
            mute: self.mute,
            instances: Vec::new(),
            held_alert: None,
        }
    }
}

#[derive(Deserialize)]
pub struct Alert {
    alert_seq: u64,
    kind: AlertKind,
    reason: String,
    at: Timestamp,
    monitor_id: MonitorId,
    monitor_name: String,
    msg: Option<HeartbeatText>,
    value: Option<f64>,
    notice: AlertNotice,
    exit_status: Option<u8>,
    output: Option<String>,
    severity: Severity,
    labels: Box<Labels>,
    tags: Box<[String]>,
}

#[derive(Deserialize)]
pub struct Delivery {
    channel: ChannelId,
    alert: Alert,
}

impl Delivery {
    /// No missing instances.
    pub fn upcast(self) -> alert::Delivery {
        let old = self.alert;
        alert::Delivery {
            channel: self.channel,
            alert: alert::Alert {
                alert_seq: old.alert_seq,
                kind: old.kind,
                reason: old.reason,
                at: old.at,
                monitor_id: old.monitor_id,
                monitor_name: old.monitor_name,
                msg: old.msg,
                value: old.value,
                notice: old.notice,
                exit_status: old.exit_status,
                output: old.output,
                severity: old.severity,
                labels: old.labels,
                tags: old.tags,
                missing_instances: Box::default(),
            },
        }
    }
}

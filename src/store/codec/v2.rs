use std::sync::Arc;

use serde::Deserialize;

use crate::domain::alert::{self, AlertKind, AlertNotice};
use crate::domain::event::{self, DeliveryOutcome, DownReason, HeartbeatText};
use crate::domain::ids::{self, ChannelId, MonitorId, Timestamp};
use crate::domain::labels::Severity;
use crate::domain::machine::{self, Grace, Status};

/// A version 2 push token: always 16 bytes.
#[derive(Deserialize)]
pub struct PushToken(pub [u8; 16]);

impl PushToken {
    fn upcast(self) -> ids::PushToken {
        ids::PushToken::from_bytes(self.0)
    }
}

#[derive(Deserialize)]
pub struct MonitorConfig {
    pub name: String,
    pub timeout_seconds: u32,
    pub interval_seconds: u32,
    pub channels: Vec<ChannelId>,
    pub key: Option<String>,
    pub tags: Vec<String>,
}

impl MonitorConfig {
    fn upcast(self) -> event::MonitorConfig {
        event::MonitorConfig {
            interval_seconds: self.interval_seconds,
            channels: self.channels,
            key: self.key,
            tags: self.tags,
            ..event::MonitorConfig::new(self.name, self.timeout_seconds)
        }
    }
}

#[derive(Deserialize)]
pub enum Event {
    Created {
        config: MonitorConfig,
        token: PushToken,
    },
    Updated {
        config: MonitorConfig,
    },
    TokenRotated {
        token: PushToken,
    },
    Deleted,
    HeartbeatReceived(super::v6::Heartbeat),
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
}

impl Event {
    fn upcast(self) -> event::Event {
        use event::Event as Current;
        match self {
            Self::Created { config, token } => Current::Created {
                config: Box::new(config.upcast()),
                token: token.upcast(),
            },
            Self::Updated { config } => Current::Updated {
                config: Box::new(config.upcast()),
            },
            Self::TokenRotated { token } => Current::TokenRotated {
                token: token.upcast(),
            },
            Self::Deleted => Current::Deleted,
            Self::HeartbeatReceived(heartbeat) => Current::HeartbeatReceived(heartbeat.upcast()),
            Self::WentDown { reason } => Current::WentDown { reason },
            Self::Recovered => Current::Recovered,
            Self::Paused => Current::Paused,
            Self::Resumed => Current::Resumed,
            Self::GraceGranted { deadline, until } => Current::GraceGranted { deadline, until },
            Self::DeliveryRecorded(outcome) => Current::DeliveryRecorded(outcome),
            Self::WentUp => Current::WentUp,
        }
    }
}

#[derive(Deserialize)]
pub struct StoredEvent {
    pub at: Timestamp,
    pub event: Event,
}

impl StoredEvent {
    pub fn upcast(self) -> super::StoredEvent {
        super::StoredEvent {
            at: self.at,
            event: self.event.upcast(),
        }
    }
}

#[derive(Deserialize)]
pub struct Monitor {
    pub id: MonitorId,
    pub config: MonitorConfig,
    pub token: PushToken,
    pub status: Status,
    pub created_at: Timestamp,
    pub last_heartbeat_at: Option<Timestamp>,
    pub last_status_change_at: Option<Timestamp>,
    pub last_msg: Option<HeartbeatText>,
    pub last_value: Option<f64>,
    pub clock_started_at: Timestamp,
    pub grace: Option<Grace>,
    pub last_event_at: Timestamp,
    pub last_seq: u64,
}

impl Monitor {
    /// Every `down` of version 2 was alerted (no maintenance windows then): the
    /// channels were told what the state says.
    pub fn upcast(self) -> machine::Monitor {
        let mut monitor = machine::Monitor::created(
            self.id,
            self.created_at,
            self.config.upcast(),
            self.token.upcast(),
        );
        monitor.config = Arc::clone(&monitor.config);
        machine::Monitor {
            status: self.status,
            last_heartbeat_at: self.last_heartbeat_at,
            last_status_change_at: self.last_status_change_at,
            last_msg: self.last_msg,
            last_value: self.last_value,
            clock_started_at: self.clock_started_at,
            grace: self.grace,
            last_event_at: self.last_event_at,
            last_seq: self.last_seq,
            alerted_down: self.status == Status::Down,
            ..monitor
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
}

#[derive(Deserialize)]
pub struct Delivery {
    channel: ChannelId,
    alert: Alert,
}

impl Delivery {
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
                notice: AlertNotice::Change,
                exit_status: None,
                output: None,
                severity: Severity::Critical,
                labels: Box::default(),
                tags: Box::default(),
                missing_instances: Box::default(),
            },
        }
    }
}

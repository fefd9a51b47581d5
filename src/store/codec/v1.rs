use serde::Deserialize;

use super::v2 as machine;
use super::v2::{self as event, PushToken};
use crate::domain::channel::ChannelKind;
use crate::domain::event::{DeliveryOutcome, DownReason, HeartbeatText};
use crate::domain::ids::{ChannelId, MonitorId, Timestamp};
use crate::domain::machine::{Grace, Status};

#[derive(Deserialize)]
pub struct MonitorConfig {
    name: String,
    timeout_seconds: u32,
    interval_seconds: u32,
    channels: Vec<ChannelId>,
}

impl MonitorConfig {
    fn upcast(self) -> event::MonitorConfig {
        event::MonitorConfig {
            name: self.name,
            timeout_seconds: self.timeout_seconds,
            interval_seconds: self.interval_seconds,
            channels: self.channels,
            key: None,
            tags: Vec::new(),
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
}

impl Event {
    fn upcast(self) -> event::Event {
        use event::Event as Current;
        match self {
            Self::Created { config, token } => Current::Created {
                config: config.upcast(),
                token,
            },
            Self::Updated { config } => Current::Updated {
                config: config.upcast(),
            },
            Self::TokenRotated { token } => Current::TokenRotated { token },
            Self::Deleted => Current::Deleted,
            Self::HeartbeatReceived(heartbeat) => Current::HeartbeatReceived(heartbeat),
            Self::WentDown { reason } => Current::WentDown { reason },
            Self::Recovered => Current::Recovered,
            Self::Paused => Current::Paused,
            Self::Resumed => Current::Resumed,
            Self::GraceGranted { deadline, until } => Current::GraceGranted { deadline, until },
            Self::DeliveryRecorded(outcome) => Current::DeliveryRecorded(outcome),
        }
    }
}

#[derive(Deserialize)]
pub struct Channel {
    id: ChannelId,
    name: String,
    kind: ChannelKind,
    created_at: Timestamp,
}

impl Channel {
    pub fn upcast(self) -> super::v3::Channel {
        super::v3::Channel {
            id: self.id,
            name: self.name,
            kind: self.kind,
            created_at: self.created_at,
            key: None,
        }
    }
}

#[derive(Deserialize)]
pub enum ChannelEvent {
    Created(Channel),
    Deleted,
    Updated(Channel),
}

#[derive(Deserialize)]
pub struct StoredChannelEvent {
    at: Timestamp,
    event: ChannelEvent,
}

impl StoredChannelEvent {
    pub fn upcast(self) -> super::v3::StoredChannelEvent {
        super::v3::StoredChannelEvent {
            at: self.at,
            event: match self.event {
                ChannelEvent::Created(channel) => {
                    super::v3::ChannelEvent::Created(channel.upcast())
                }
                ChannelEvent::Deleted => super::v3::ChannelEvent::Deleted,
                ChannelEvent::Updated(channel) => {
                    super::v3::ChannelEvent::Updated(channel.upcast())
                }
            },
        }
    }
}

#[derive(Deserialize)]
pub struct StoredEvent {
    at: Timestamp,
    event: Event,
}

impl StoredEvent {
    pub fn upcast(self) -> super::v2::StoredEvent {
        super::v2::StoredEvent {
            at: self.at,
            event: self.event.upcast(),
        }
    }
}

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
}

impl Monitor {
    pub fn upcast(self) -> machine::Monitor {
        machine::Monitor {
            id: self.id,
            config: self.config.upcast(),
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
        }
    }
}

use std::sync::Arc;

use serde::Deserialize;

use crate::domain::event::{DownReason, HeartbeatText};
use crate::domain::ids::{MonitorId, PushToken, Timestamp};
use crate::domain::machine::{self, Grace, LastRun, OpenRun, Status};

#[derive(Deserialize)]
pub struct Monitor {
    id: MonitorId,
    config: super::v6::MonitorConfig,
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
}

impl Monitor {
    /// No mute: there was none before version 6.
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
            mute: None,
            instances: Vec::new(),
            held_alert: None,
        }
    }
}

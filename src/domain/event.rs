//! The facts of a monitor's life, in the past tense, as they are stored in the log.
//!
//! These types are encoded with bincode by `store::codec`. Never reorder, remove or
//! change the fields of a variant: add a variant, or a new envelope version with an
//! upcaster in `codec.rs`. No serde `flatten`, `skip`, `tag` or `untagged` here.

use serde::{Deserialize, Serialize};

use super::ids::{ChannelId, PushToken, Timestamp};

/// The most bytes of a heartbeat's `msg` that are kept; longer ones are truncated.
pub const MAX_MSG_BYTES: usize = 1024;

/// What a heartbeat reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushStatus {
    Up,
    Down,
}

impl PushStatus {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "up" => Some(Self::Up),
            "down" => Some(Self::Down),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// Why a monitor went down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownReason {
    /// No heartbeat arrived before the deadline.
    Timeout,
    /// A heartbeat said `status=down`.
    Manual,
}

impl DownReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Manual => "manual",
        }
    }
}

/// A heartbeat's free text (a push's `msg`), at most [`MAX_MSG_BYTES`] long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatText(String);

impl HeartbeatText {
    /// Keeps at most [`MAX_MSG_BYTES`] bytes, cutting at a char boundary.
    pub fn truncated(mut text: String) -> Self {
        if text.len() > MAX_MSG_BYTES {
            let mut end = MAX_MSG_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A heartbeat as received from a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub status: PushStatus,
    pub msg: Option<HeartbeatText>,
    /// Always finite: the ingress rejects NaN and infinities.
    pub value: Option<f64>,
}

/// A monitor's user-set configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub name: String,
    pub timeout_seconds: u32,
    pub interval_seconds: u32,
    pub channels: Vec<ChannelId>,
    /// The stable key of a monitor declared in a monitors file; `None` for monitors
    /// made through the API. (Stored format version 2.)
    pub key: Option<String>,
    /// Free-form labels. (Stored format version 2.)
    pub tags: Vec<String>,
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

/// Everything that can happen to a monitor. Variant order is part of the stored format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Created {
        config: MonitorConfig,
        token: PushToken,
    },
    /// The whole configuration after the change.
    Updated {
        config: MonitorConfig,
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
    /// After a restart, a deadline that fell while the server was stopped was pushed
    /// back to `until`. Recorded so the grace is granted once per deadline.
    GraceGranted {
        deadline: Timestamp,
        until: Timestamp,
    },
    /// An alert delivery to one channel ended, in success or after its last attempt.
    DeliveryRecorded(DeliveryOutcome),
    /// `pending` → `up`: the first `up` heartbeat since creation or a resume. A change
    /// of state but not a recovery, so it owes no alert (`Recovered` is `down` → `up`).
    /// Logs written before this variant existed have only the heartbeat, which
    /// `machine::apply` still moves out of `pending` on its own.
    WentUp,
}

impl Event {
    /// The `kind` the API shows; `None` for internal bookkeeping events.
    pub fn kind(&self) -> Option<&'static str> {
        Some(match self {
            Self::Created { .. } => "created",
            Self::Updated { .. } => "updated",
            Self::TokenRotated { .. } => "token_rotated",
            Self::Deleted => "deleted",
            Self::HeartbeatReceived(_) => "heartbeat",
            Self::WentDown { .. } => "down",
            Self::Recovered | Self::WentUp => "up",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::DeliveryRecorded(_) => "delivery",
            Self::GraceGranted { .. } => return None,
        })
    }

    /// Whether this event is a change of state that owes an alert.
    pub fn is_alert(&self) -> bool {
        matches!(self, Self::WentDown { .. } | Self::Recovered)
    }
}

/// An event with the moment it happened, before the log gives it a sequence number.
#[derive(Clone, Debug, PartialEq)]
pub struct Stamped {
    pub at: Timestamp,
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_is_truncated_at_a_char_boundary() {
        let short = HeartbeatText::truncated("hello".to_owned());
        assert_eq!(short.as_str(), "hello");

        // 1023 ASCII bytes then a 3-byte char straddling the limit: the char is dropped.
        let straddling = format!("{}€tail", "a".repeat(1023));
        let cut = HeartbeatText::truncated(straddling);
        assert_eq!(cut.as_str().len(), 1023);
        assert!(cut.as_str().chars().all(|c| c == 'a'));

        let exact = HeartbeatText::truncated("b".repeat(2000));
        assert_eq!(exact.as_str().len(), MAX_MSG_BYTES);
    }
}

//! What a job tells its monitor besides "alive" (`docs/push.md`, "Runs"): that a run
//! started, how it ended (success, failure, an exit status), or some output to keep.
//! The ingress turns a push or a ping into a [`Signal`]; `machine::decide` turns it
//! into events.

use serde::{Deserialize, Serialize};

use super::event::{Heartbeat, HeartbeatText, InstanceName, Output, PushStatus, RunId};

/// The kind of a signal (Healthchecks' `/start`, success, `/fail`, `/log`).
/// Stored in a shard log's signal record (`store::codec::StoredSignal`): never reorder
/// variants; append new ones at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalKind {
    Start,
    Success,
    Fail,
    Log,
}

impl SignalKind {
    /// `start`, `success`, `fail` or `log`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "start" => Some(Self::Start),
            "success" => Some(Self::Success),
            "fail" => Some(Self::Fail),
            "log" => Some(Self::Log),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Success => "success",
            Self::Fail => "fail",
            Self::Log => "log",
        }
    }
}

/// One signal from a job. An exit status decides success (0) or failure (1–255)
/// whatever the kind says, except that a `fail` with exit status 0 is a failure.
/// Stored in a shard log's signal record (`store::codec::StoredSignal`): never reorder
/// fields; a new one means a new version of that record's envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub kind: SignalKind,
    pub exit_status: Option<u8>,
    pub rid: Option<RunId>,
    pub msg: Option<HeartbeatText>,
    /// Always finite: the ingress rejects NaN and infinities.
    pub value: Option<f64>,
    /// The request body, cut to the ping body limit (`Output::from_body`).
    pub output: Option<Output>,
    /// The fleet instance it comes from (`instance=`).
    pub instance: Option<InstanceName>,
}

impl Signal {
    /// A signal of `kind` carrying nothing else.
    pub fn new(kind: SignalKind) -> Self {
        Self {
            kind,
            exit_status: None,
            rid: None,
            msg: None,
            value: None,
            output: None,
            instance: None,
        }
    }

    /// A job's exit status, as Healthchecks' `/ping/{token}/{status}`: 0 is a success,
    /// 1 to 255 a failure with that status.
    pub fn exit(exit_status: u8) -> Self {
        Self {
            exit_status: Some(exit_status),
            ..Self::new(if exit_status == 0 {
                SignalKind::Success
            } else {
                SignalKind::Fail
            })
        }
    }

    /// The same as a native push: `status=up` (a success) or `status=down` (a fail).
    pub fn from_heartbeat(heartbeat: Heartbeat) -> Self {
        Self {
            msg: heartbeat.msg,
            value: heartbeat.value,
            instance: heartbeat.instance,
            ..Self::new(match heartbeat.status {
                PushStatus::Up => SignalKind::Success,
                PushStatus::Down => SignalKind::Fail,
            })
        }
    }

    /// Whether it ends in failure: a `fail`, or a non-zero exit status.
    pub fn is_failure(&self) -> bool {
        self.kind == SignalKind::Fail || self.exit_status.is_some_and(|status| status != 0)
    }
}

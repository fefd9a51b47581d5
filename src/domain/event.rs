//! The facts of a monitor's life, in the past tense, as they are stored in the log.
//!
//! These types are encoded with bincode by `store::codec`. Never reorder, remove or
//! change the fields of a variant: add a variant, or a new envelope version with an
//! upcaster in `codec.rs`. No serde `flatten`, `skip`, `tag` or `untagged` here.

use serde::{Deserialize, Serialize};

use super::ids::{ChannelId, MonitorId, PushToken, Timestamp};
use super::labels::{Labels, Severity};
use super::schedule::{CronSchedule, MaintenanceWindow};

/// The most bytes of a heartbeat's `msg` that are kept; longer ones are truncated.
pub const MAX_MSG_BYTES: usize = 1024;

/// The most bytes of a job's output kept by default (`--ping-body-limit`), like
/// Healthchecks' 10 KB.
pub const DEFAULT_OUTPUT_LIMIT: usize = 10_000;

/// The most bytes of a job's output any setting may keep: a push body's limit.
pub const MAX_OUTPUT_LIMIT: usize = 65_536;

/// The most bytes of a run's output the monitor's state and its alerts carry (the
/// end of the output, where a failing job says why).
pub const EXCERPT_BYTES: usize = 1024;

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

/// Why a monitor went down, or why a failure was counted: the rule that fired.
/// Stored: append only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownReason {
    /// No heartbeat arrived before the deadline.
    Timeout,
    /// A heartbeat said `status=down`, or a job reported `fail`.
    Manual,
    /// A job reported a non-zero exit status.
    ExitStatus,
    /// A run went on longer than `max_runtime_seconds`.
    MaxRuntime,
    /// A run reported success sooner than `min_runtime_seconds` after it started.
    TooFast,
    /// A cron monitor's slot (plus its grace) passed with no success.
    Schedule,
    // Format version 7.
    /// A fleet monitor has fewer than `min_instances` instances reporting.
    Instances,
}

impl DownReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Manual => "manual",
            Self::ExitStatus => "exit_status",
            Self::MaxRuntime => "max_runtime",
            Self::TooFast => "too_fast",
            Self::Schedule => "schedule",
            Self::Instances => "instances",
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

/// Cuts `text` to at most `limit` bytes, at a char boundary.
fn truncate_at_char(text: &mut String, limit: usize) {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// The run id a client picks (`rid`): any UUID, telling concurrent runs of one job
/// apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunId(uuid::Uuid);

impl RunId {
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Uuid::from_bytes(bytes))
    }

    /// Any UUID in its usual text forms; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::try_parse(text).ok().map(Self)
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(formatter)
    }
}

/// A job's output, as a ping's body brought it: text (invalid UTF-8 replaced by
/// U+FFFD), its first `limit` bytes kept, cut at a char boundary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output(String);

impl Output {
    /// `None` for an empty body. `limit` is the ping body limit, at most
    /// [`MAX_OUTPUT_LIMIT`].
    pub fn from_body(body: &[u8], limit: usize) -> Option<Self> {
        let limit = limit.min(MAX_OUTPUT_LIMIT);
        if body.is_empty() || limit == 0 {
            return None;
        }
        let head = &body[..body.len().min(limit + 3)];
        let mut text = String::from_utf8_lossy(head).into_owned();
        truncate_at_char(&mut text, limit);
        Some(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its first `limit` bytes, cut at a char boundary; `None` if nothing is left.
    pub fn cut(mut self, limit: usize) -> Option<Self> {
        truncate_at_char(&mut self.0, limit);
        (!self.0.is_empty()).then_some(self)
    }

    /// The last [`EXCERPT_BYTES`] bytes, cut at a char boundary, starting with `…`
    /// when cut.
    pub fn excerpt(&self) -> String {
        if self.0.len() <= EXCERPT_BYTES {
            return self.0.clone();
        }
        let mut start = self.0.len() - EXCERPT_BYTES + '…'.len_utf8();
        while !self.0.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &self.0[start..])
    }
}

/// Names one run: its `rid` (if the client gave one) and when it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunRef {
    pub rid: Option<RunId>,
    pub started_at: Timestamp,
}

/// A run began (`start`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    pub rid: Option<RunId>,
    pub msg: Option<HeartbeatText>,
    pub output: Option<Output>,
    /// The oldest open run, forgotten to keep at most `machine::MAX_OPEN_RUNS` open.
    pub dropped: Option<RunRef>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunOutcome {
    Success,
    /// `Manual` (a `fail`), `ExitStatus` or `TooFast`.
    Failure(DownReason),
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure(_) => "failure",
        }
    }
}

/// A job reported how it ended (`success`, `fail`, an exit status), with what it
/// said about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunEnd {
    pub rid: Option<RunId>,
    /// The open run this ends; `None` if none was open (a success without a `start`).
    pub run: Option<RunRef>,
    pub exit_status: Option<u8>,
    pub outcome: RunOutcome,
    pub output: Option<Output>,
}

/// A job recorded output (`log`) without saying how it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub rid: Option<RunId>,
    pub msg: Option<HeartbeatText>,
    pub output: Option<Output>,
}

/// The alert a change of state owes: held back by a maintenance window, or released
/// at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    Down(DownReason),
    Up,
}

/// The longest instance name.
pub const MAX_INSTANCE_BYTES: usize = 64;

/// The instance of a fleet a heartbeat comes from (`instance=`): 1 to
/// [`MAX_INSTANCE_BYTES`] bytes of ASCII letters, digits, `.`, `_`, `:` and `-` (a
/// pod's or a host's name fits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceName(String);

impl InstanceName {
    /// `None` for an empty, too long or otherwise invalid name.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = !text.is_empty()
            && text.len() <= MAX_INSTANCE_BYTES
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(&byte));
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for InstanceName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A heartbeat as received from a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub status: PushStatus,
    pub msg: Option<HeartbeatText>,
    /// Always finite: the ingress rejects NaN and infinities.
    pub value: Option<f64>,
    /// The fleet instance it comes from (`instance=`), if it named one. (Format
    /// version 7.)
    pub instance: Option<InstanceName>,
}

impl Heartbeat {
    /// A heartbeat that names no instance.
    pub fn new(status: PushStatus, msg: Option<HeartbeatText>, value: Option<f64>) -> Self {
        Self {
            status,
            msg,
            value,
            instance: None,
        }
    }
}

/// A monitor's user-set configuration.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub name: String,
    /// Unused (and kept, for a switch back) while `schedule` is set.
    pub timeout_seconds: u32,
    pub interval_seconds: u32,
    pub channels: Vec<ChannelId>,
    /// The stable key of a monitor declared in a monitors file; `None` for monitors
    /// made through the API. (Stored format version 2.)
    pub key: Option<String>,
    /// Free-form labels. (Stored format version 2.)
    pub tags: Vec<String>,
    /// A cron monitor's schedule; `None`: due every `interval_seconds`, down after
    /// `timeout_seconds`. (Format version 3, as every field below.)
    pub schedule: Option<CronSchedule>,
    pub max_runtime_seconds: Option<u32>,
    pub min_runtime_seconds: Option<u32>,
    /// Failures in a row it takes to go down (1: the first).
    pub failure_threshold: u32,
    /// Successes in a row it takes to recover (1: the first).
    pub recovery_threshold: u32,
    /// While down (and alerted), a reminder every this many seconds; `None`: never.
    pub realert_every_seconds: Option<u32>,
    pub maintenance: Vec<MaintenanceWindow>,
    /// The name its slug ping URL reaches it by (`domain::slug`), unique among
    /// monitors; `None`: no slug URL.
    pub slug: Option<String>,
    /// Key/value labels, checked as Kubernetes' (`domain::labels`). (Format version 5,
    /// as `severity`.)
    pub labels: Labels,
    /// The `severity` of its alerts.
    pub severity: Severity,
    // Format version 7.
    /// A fleet monitor: up while at least this many distinct instances (`instance=`)
    /// reported within the timeout. `None`: an ordinary monitor.
    pub min_instances: Option<u32>,
    /// A fleet forgets an instance silent for longer than this; `None`: the default.
    pub instance_retention_seconds: Option<u32>,
    /// Monitors this one depends on: while one of them is down, this one's alerts are
    /// held.
    pub parents: Vec<MonitorId>,
    /// How long a parent must have been up again before held alerts are sent; `None`:
    /// the default.
    pub dependency_grace_seconds: Option<u32>,
    /// Source addresses its pushes are accepted from; empty: any.
    pub allowed_sources: Vec<ipnet::IpNet>,
    /// The HMAC key its pushes must be signed with; `None`: pushes need no signature.
    pub signing_secret: Option<String>,
}

/// Shows every field but the signing secret, which reads `<redacted>`: a
/// configuration printed by mistake must not give the secret away.
impl std::fmt::Debug for MonitorConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so a new field cannot be left out unnoticed.
        let Self {
            name,
            timeout_seconds,
            interval_seconds,
            channels,
            key,
            tags,
            schedule,
            max_runtime_seconds,
            min_runtime_seconds,
            failure_threshold,
            recovery_threshold,
            realert_every_seconds,
            maintenance,
            slug,
            labels,
            severity,
            min_instances,
            instance_retention_seconds,
            parents,
            dependency_grace_seconds,
            allowed_sources,
            signing_secret,
        } = self;
        formatter
            .debug_struct("MonitorConfig")
            .field("name", name)
            .field("timeout_seconds", timeout_seconds)
            .field("interval_seconds", interval_seconds)
            .field("channels", channels)
            .field("key", key)
            .field("tags", tags)
            .field("schedule", schedule)
            .field("max_runtime_seconds", max_runtime_seconds)
            .field("min_runtime_seconds", min_runtime_seconds)
            .field("failure_threshold", failure_threshold)
            .field("recovery_threshold", recovery_threshold)
            .field("realert_every_seconds", realert_every_seconds)
            .field("maintenance", maintenance)
            .field("slug", slug)
            .field("labels", labels)
            .field("severity", severity)
            .field("min_instances", min_instances)
            .field("instance_retention_seconds", instance_retention_seconds)
            .field("parents", parents)
            .field("dependency_grace_seconds", dependency_grace_seconds)
            .field("allowed_sources", allowed_sources)
            .field("signing_secret", &signing_secret.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// What a secret reads as in debug output.
pub const REDACTED: &str = "<redacted>";

impl MonitorConfig {
    /// An interval monitor with everything else at its default.
    pub fn new(name: impl Into<String>, timeout_seconds: u32) -> Self {
        Self {
            name: name.into(),
            timeout_seconds,
            interval_seconds: timeout_seconds,
            channels: Vec::new(),
            key: None,
            tags: Vec::new(),
            schedule: None,
            max_runtime_seconds: None,
            min_runtime_seconds: None,
            failure_threshold: 1,
            recovery_threshold: 1,
            realert_every_seconds: None,
            maintenance: Vec::new(),
            slug: None,
            labels: Labels::default(),
            severity: Severity::Critical,
            min_instances: None,
            instance_retention_seconds: None,
            parents: Vec::new(),
            dependency_grace_seconds: None,
            allowed_sources: Vec::new(),
            signing_secret: None,
        }
    }
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
    /// The configuration is boxed: it is much larger than the other events, and every
    /// heartbeat's event would otherwise be as large.
    Created {
        config: Box<MonitorConfig>,
        token: PushToken,
    },
    /// The whole configuration after the change.
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
    // Format version 3: jobs.
    RunStarted(RunStart),
    /// After the `HeartbeatReceived` of a success or failure that ends a run or says
    /// more than a heartbeat does (an exit status, output, a run id).
    RunEnded(RunEnd),
    LogReceived(LogEntry),
    /// An open run passed `max_runtime_seconds` (judged once per run).
    RunOverran(RunRef),
    /// A failure that did not reach `failure_threshold`: the monitor stays up. One
    /// for a missed deadline restarts the timeout clock at the deadline.
    FailureCounted {
        reason: DownReason,
        count: u32,
    },
    /// A success of a `down` monitor that did not reach `recovery_threshold`.
    SuccessCounted {
        count: u32,
    },
    /// Still down: the reminder `realert_every_seconds` asks for. Owes a `down` alert.
    Reminder {
        reason: DownReason,
    },
    /// The alert of the change of state that follows is not sent: a maintenance
    /// window was on.
    AlertSuppressed(Notice),
    /// A maintenance window ended on a state the channels were not told about: the
    /// alert that was held back is owed now.
    AlertReleased(Notice),
    // Format version 6: muting (`docs/states.md`, "Muting").
    /// Muted: changes of state are still recorded, but alert nothing until `until`, or
    /// (with `until_recovery`, "acknowledged") until the next recovery. Replaces any
    /// mute on already.
    Muted {
        until: Option<Timestamp>,
        until_recovery: bool,
    },
    /// The mute ended.
    Unmuted {
        reason: UnmuteReason,
    },
    /// The alert of the change of state that follows is not sent: the monitor is
    /// muted. Unlike a maintenance window's hold, it is never released: the channels
    /// count as told.
    AlertMuted(Notice),
    // Format version 7.
    /// A missed deadline judged while the guard held verdicts (a collapse of all
    /// arrivals, more likely pushmon's or the network's fault than the jobs'): the
    /// monitor is `unknown`, and nothing is alerted until the guard decides.
    VerdictHeld {
        reason: DownReason,
        deadline: Timestamp,
    },
    /// The alert of the change of state that follows is held: the parent `parent` is
    /// down. Sent (`AlertReleased`) if still owed once the parent has been up for the
    /// dependency grace.
    AlertHeld {
        notice: Notice,
        parent: MonitorId,
    },
    /// A fleet instance silent for longer than the retention was forgotten.
    InstanceForgotten {
        instance: InstanceName,
    },
}

/// Why a mute ended. Stored: append only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnmuteReason {
    /// Asked for (`POST /api/monitors/{id}/unmute`).
    Manual,
    /// Its `until` passed.
    Expired,
    /// A mute until recovery, ended by the recovery.
    Recovered,
}

impl UnmuteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Expired => "expired",
            Self::Recovered => "recovered",
        }
    }
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
            Self::RunStarted(_) => "run_started",
            Self::RunEnded(_) => "run_ended",
            Self::LogReceived(_) => "log",
            Self::RunOverran(_) => "run_overran",
            Self::FailureCounted { .. } => "failure_counted",
            Self::SuccessCounted { .. } => "success_counted",
            Self::Reminder { .. } => "reminder",
            Self::AlertSuppressed(_) => "alert_suppressed",
            Self::AlertReleased(_) => "alert_released",
            Self::Muted { .. } => "muted",
            Self::Unmuted { .. } => "unmuted",
            Self::AlertMuted(_) => "alert_suppressed",
            Self::VerdictHeld { .. } => "unknown",
            Self::AlertHeld { .. } => "alert_held",
            Self::InstanceForgotten { .. } => "instance_forgotten",
            Self::GraceGranted { .. } => return None,
        })
    }

    /// Whether this event owes an alert, unless an `AlertSuppressed` precedes it or
    /// the monitor is muted: a
    /// change of state (`down`, a recovery), a reminder, or an alert released.
    pub fn is_alert(&self) -> bool {
        matches!(
            self,
            Self::WentDown { .. }
                | Self::Recovered
                | Self::Reminder { .. }
                | Self::AlertReleased(_)
        )
    }

    /// What a job pinged (a heartbeat, a run's start or end, a log): what retention
    /// prunes beyond the history limits.
    pub fn is_ping(&self) -> bool {
        matches!(
            self,
            Self::HeartbeatReceived(_)
                | Self::RunStarted(_)
                | Self::RunEnded(_)
                | Self::LogReceived(_)
        )
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
    fn output_keeps_its_head_and_excerpts_its_tail_at_char_boundaries() {
        assert_eq!(Output::from_body(b"", 100), None);
        let kept = Output::from_body("héllo".as_bytes(), 2).expect("output");
        assert_eq!(kept.as_str(), "h");
        let lossy = Output::from_body(&[b'o', b'k', 0xff], 100).expect("output");
        assert_eq!(lossy.as_str(), "ok\u{fffd}");
        let capped = Output::from_body(&vec![b'x'; 100_000], usize::MAX).expect("output");
        assert_eq!(capped.as_str().len(), MAX_OUTPUT_LIMIT);
        let long = Output::from_body(format!("{}€end", "a".repeat(2000)).as_bytes(), 10_000)
            .expect("output");
        let excerpt = long.excerpt();
        assert!(
            excerpt.starts_with('…') && excerpt.ends_with("€end"),
            "{excerpt}"
        );
        assert!(excerpt.len() <= EXCERPT_BYTES, "{}", excerpt.len());
        let short = Output::from_body(b"done", 10_000).expect("output");
        assert_eq!(short.excerpt(), "done");
        let cut = Output::from_body("héllo".as_bytes(), 100).expect("output");
        assert_eq!(
            cut.clone().cut(2).map(|output| output.0),
            Some("h".to_owned())
        );
        assert_eq!(cut.clone().cut(100), Some(cut.clone()));
        assert_eq!(cut.cut(0), None);
    }

    #[test]
    fn a_signing_secret_never_shows_in_debug_output() {
        let config = MonitorConfig {
            signing_secret: Some("0123456789abcdef-secret".to_owned()),
            ..MonitorConfig::new("signed", 60)
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(
            shown.contains(r#"signing_secret: Some("<redacted>")"#),
            "{shown}"
        );
        assert!(shown.contains(r#"name: "signed""#), "{shown}");
        let unsigned = format!("{:?}", MonitorConfig::new("plain", 60));
        assert!(unsigned.contains("signing_secret: None"), "{unsigned}");
    }

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

//! The monitor state machine of `docs/states.md`, pure: no I/O, no clock, no runtime.
//!
//! `decide` turns a command into the events it causes (or a rejection), `apply` folds
//! an event into the state, and `next_wakeup` says when the monitor must be looked at
//! next (a deadline, a run's max runtime, the end of a maintenance window, a
//! reminder). Live traffic and start-up replay both go through `apply`, so they
//! cannot disagree.
//!
//! A command that sets off several rules is decided step by step on a copy of the
//! state (`decide::Decision`), each step applied before the next looks: a run that overran
//! and then a missed deadline count as two failures, a release at the end of a
//! maintenance window comes before the change it precedes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::event::{
    DeliveryOutcome, DownReason, Event, Heartbeat, HeartbeatText, InstanceName, LogEntry,
    MonitorConfig, Notice, PushStatus, RunEnd, RunId, RunOutcome, RunRef, RunStart, Stamped,
    UnmuteReason,
};
use super::ids::{ChannelId, MonitorId, PushToken, Timestamp};
use super::labels::{Labels, Severity};
use super::schedule::{
    CronSchedule, DEFAULT_GRACE_SECONDS, DEFAULT_TIMEZONE, MaintenanceWindow, maintenance_until,
};
use super::signal::{Signal, SignalKind};

mod decide;
mod fold;

pub use decide::{decide, decide_with};
pub use fold::{apply, replay};

/// Runs a monitor keeps open at most; a `start` beyond them forgets the oldest.
pub const MAX_OPEN_RUNS: usize = 16;

/// The highest `failure_threshold` or `recovery_threshold`.
pub const MAX_THRESHOLD: u32 = 1000;

/// The most instances a fleet monitor keeps; a new one beyond them forgets the one
/// silent the longest (`Event::InstanceForgotten`).
pub const MAX_INSTANCES: usize = 1000;

/// How long a fleet keeps an instance that stopped reporting, unless
/// `instance_retention_seconds` says otherwise: a day.
pub const DEFAULT_INSTANCE_RETENTION_SECONDS: u32 = 86_400;

/// The instance a fleet counts a heartbeat without `instance=` as.
pub const DEFAULT_INSTANCE: &str = "default";

/// The most parents a monitor names.
pub const MAX_PARENTS: usize = 32;

/// How long a parent must be up again before a held alert is sent, unless
/// `dependency_grace_seconds` says otherwise.
pub const DEFAULT_DEPENDENCY_GRACE_SECONDS: u32 = 60;

/// The state a monitor is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Up,
    Down,
    Paused,
    // Format version 7.
    /// A missed deadline held by the guard (`Event::VerdictHeld`): neither up nor
    /// down until the guard releases or confirms it.
    Unknown,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Up,
        Status::Down,
        Status::Paused,
        Status::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Up => "up",
            Self::Down => "down",
            Self::Paused => "paused",
            Self::Unknown => "unknown",
        }
    }

    /// Whether deadlines are judged: `pending` and `up`.
    fn is_running(self) -> bool {
        matches!(self, Self::Pending | Self::Up)
    }
}

/// A partial change of a monitor's configuration (`PATCH`). `Some(None)` turns an
/// optional setting off.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConfigPatch {
    pub name: Option<String>,
    pub timeout_seconds: Option<u32>,
    pub interval_seconds: Option<u32>,
    pub channels: Option<Vec<ChannelId>>,
    pub tags: Option<Vec<String>>,
    /// `Some(None)` clears the key (a monitor no longer declared in a file).
    pub key: Option<Option<String>>,
    /// `Some(None)` makes a cron monitor an interval monitor again.
    pub schedule: Option<Option<String>>,
    pub timezone: Option<String>,
    pub grace_seconds: Option<u32>,
    pub max_runtime_seconds: Option<Option<u32>>,
    pub min_runtime_seconds: Option<Option<u32>>,
    pub failure_threshold: Option<u32>,
    pub recovery_threshold: Option<u32>,
    pub realert_every_seconds: Option<Option<u32>>,
    pub maintenance: Option<Vec<MaintenanceWindow>>,
    /// `Some(None)` takes the slug away.
    pub slug: Option<Option<String>>,
    /// All the labels (replacing the old ones). Boxed: a patch travels in `Command`.
    pub labels: Option<Box<Labels>>,
    pub severity: Option<Severity>,
    /// `Some(None)` makes a fleet monitor an ordinary one.
    pub min_instances: Option<Option<u32>>,
    pub instance_retention_seconds: Option<Option<u32>>,
    /// All the parents (replacing the old ones).
    pub parents: Option<Vec<MonitorId>>,
    pub dependency_grace_seconds: Option<Option<u32>>,
    /// All the allowed source ranges (replacing the old ones); empty: any source.
    pub allowed_sources: Option<Vec<ipnet::IpNet>>,
    /// `Some(None)` stops requiring signed pushes.
    pub signing_secret: Option<Option<String>>,
}

/// Shows every field but the signing secret, which reads `<redacted>`.
impl std::fmt::Debug for ConfigPatch {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so a new field cannot be left out unnoticed.
        let Self {
            name,
            timeout_seconds,
            interval_seconds,
            channels,
            tags,
            key,
            schedule,
            timezone,
            grace_seconds,
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
            .debug_struct("ConfigPatch")
            .field("name", name)
            .field("timeout_seconds", timeout_seconds)
            .field("interval_seconds", interval_seconds)
            .field("channels", channels)
            .field("tags", tags)
            .field("key", key)
            .field("schedule", schedule)
            .field("timezone", timezone)
            .field("grace_seconds", grace_seconds)
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
            .field(
                "signing_secret",
                &signing_secret
                    .as_ref()
                    .map(|secret| secret.as_ref().map(|_| super::event::REDACTED)),
            )
            .finish()
    }
}

impl ConfigPatch {
    /// The patch that makes a monitor's configuration `config` (a redeclared one).
    pub fn replacing_with(config: MonitorConfig) -> Self {
        let (schedule, timezone, grace_seconds) = match config.schedule {
            Some(schedule) => (
                Some(Some(schedule.expression)),
                Some(schedule.timezone),
                Some(schedule.grace_seconds),
            ),
            None => (Some(None), None, None),
        };
        Self {
            name: Some(config.name),
            timeout_seconds: Some(config.timeout_seconds),
            interval_seconds: Some(config.interval_seconds),
            channels: Some(config.channels),
            tags: Some(config.tags),
            key: Some(config.key),
            schedule,
            timezone,
            grace_seconds,
            max_runtime_seconds: Some(config.max_runtime_seconds),
            min_runtime_seconds: Some(config.min_runtime_seconds),
            failure_threshold: Some(config.failure_threshold),
            recovery_threshold: Some(config.recovery_threshold),
            realert_every_seconds: Some(config.realert_every_seconds),
            maintenance: Some(config.maintenance),
            slug: Some(config.slug),
            labels: Some(Box::new(config.labels)),
            severity: Some(config.severity),
            min_instances: Some(config.min_instances),
            instance_retention_seconds: Some(config.instance_retention_seconds),
            parents: Some(config.parents),
            dependency_grace_seconds: Some(config.dependency_grace_seconds),
            allowed_sources: Some(config.allowed_sources),
            signing_secret: Some(config.signing_secret),
        }
    }

    /// Whether it changes how a monitor is timed (what `check` looks at).
    fn touches_timing(&self) -> bool {
        self.timeout_seconds.is_some()
            || self.interval_seconds.is_some()
            || self.schedule.is_some()
            || self.timezone.is_some()
            || self.grace_seconds.is_some()
            || self.max_runtime_seconds.is_some()
            || self.min_runtime_seconds.is_some()
    }

    /// Whether it changes what a fleet monitor may be combined with (what
    /// `check_fleet` looks at).
    fn touches_fleet(&self) -> bool {
        self.touches_timing()
            || self.min_instances.is_some()
            || self.instance_retention_seconds.is_some()
            || self.failure_threshold.is_some()
            || self.recovery_threshold.is_some()
    }

    /// The configuration with this patch applied. While the interval equals the
    /// timeout (its default), a patch of the timeout alone moves the interval with it.
    /// A schedule set without a zone or grace keeps the monitor's, or takes the
    /// defaults.
    pub fn applied_to(&self, config: &MonitorConfig) -> MonitorConfig {
        let interval_seconds = match (self.interval_seconds, self.timeout_seconds) {
            (Some(interval), _) => interval,
            (None, Some(timeout)) if config.interval_seconds == config.timeout_seconds => timeout,
            (None, _) => config.interval_seconds,
        };
        let schedule = match (&self.schedule, &config.schedule) {
            (Some(None), _) => None,
            (Some(Some(expression)), current) => Some(CronSchedule {
                expression: expression.clone(),
                timezone: self
                    .timezone
                    .clone()
                    .or_else(|| current.as_ref().map(|schedule| schedule.timezone.clone()))
                    .unwrap_or_else(|| DEFAULT_TIMEZONE.to_owned()),
                grace_seconds: self
                    .grace_seconds
                    .or(current.as_ref().map(|schedule| schedule.grace_seconds))
                    .unwrap_or(DEFAULT_GRACE_SECONDS),
            }),
            (None, Some(current)) => Some(CronSchedule {
                expression: current.expression.clone(),
                timezone: self
                    .timezone
                    .clone()
                    .unwrap_or_else(|| current.timezone.clone()),
                grace_seconds: self.grace_seconds.unwrap_or(current.grace_seconds),
            }),
            (None, None) => None,
        };
        MonitorConfig {
            name: self.name.clone().unwrap_or_else(|| config.name.clone()),
            timeout_seconds: self.timeout_seconds.unwrap_or(config.timeout_seconds),
            interval_seconds,
            channels: self
                .channels
                .clone()
                .unwrap_or_else(|| config.channels.clone()),
            key: self.key.clone().unwrap_or_else(|| config.key.clone()),
            tags: self.tags.clone().unwrap_or_else(|| config.tags.clone()),
            schedule,
            max_runtime_seconds: self
                .max_runtime_seconds
                .unwrap_or(config.max_runtime_seconds),
            min_runtime_seconds: self
                .min_runtime_seconds
                .unwrap_or(config.min_runtime_seconds),
            failure_threshold: self.failure_threshold.unwrap_or(config.failure_threshold),
            recovery_threshold: self.recovery_threshold.unwrap_or(config.recovery_threshold),
            realert_every_seconds: self
                .realert_every_seconds
                .unwrap_or(config.realert_every_seconds),
            maintenance: self
                .maintenance
                .clone()
                .unwrap_or_else(|| config.maintenance.clone()),
            slug: self.slug.clone().unwrap_or_else(|| config.slug.clone()),
            labels: self
                .labels
                .as_deref()
                .cloned()
                .unwrap_or_else(|| config.labels.clone()),
            severity: self.severity.unwrap_or(config.severity),
            min_instances: self.min_instances.unwrap_or(config.min_instances),
            instance_retention_seconds: self
                .instance_retention_seconds
                .unwrap_or(config.instance_retention_seconds),
            parents: self
                .parents
                .clone()
                .unwrap_or_else(|| config.parents.clone()),
            dependency_grace_seconds: self
                .dependency_grace_seconds
                .unwrap_or(config.dependency_grace_seconds),
            allowed_sources: self
                .allowed_sources
                .clone()
                .unwrap_or_else(|| config.allowed_sources.clone()),
            signing_secret: self
                .signing_secret
                .clone()
                .unwrap_or_else(|| config.signing_secret.clone()),
        }
    }
}

/// Why a command is refused: it would leave the monitor in a state it must not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A job expected every `interval_seconds` would time out between two runs.
    IntervalAboveTimeout {
        interval_seconds: u32,
        timeout_seconds: u32,
    },
    /// A monitor without a schedule needs a timeout.
    TimeoutRequired,
    /// `timeout_seconds` or `interval_seconds` given for a monitor with a schedule.
    TimingWithSchedule { field: &'static str },
    /// `timezone` or `grace_seconds` given for a monitor without a schedule.
    NeedsSchedule { field: &'static str },
    /// A run could never be both long enough and short enough.
    MinRuntimeNotBelowMax {
        min_runtime_seconds: u32,
        max_runtime_seconds: u32,
    },
    /// More than [`MAX_CHANNELS_PER_MONITOR`] channels (a bulk `add_channels`).
    TooManyChannels,
    /// A fleet monitor (`min_instances`) with a setting that has no meaning for one.
    NotForFleet { field: &'static str },
    /// A fleet would forget instances before they time out.
    RetentionBelowTimeout {
        instance_retention_seconds: u32,
        timeout_seconds: u32,
    },
}

/// The most channels one monitor alerts.
pub const MAX_CHANNELS_PER_MONITOR: usize = 64;

impl Rejection {
    /// The field the API names in its `422`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::IntervalAboveTimeout { .. } => "interval_seconds",
            Self::TimeoutRequired => "timeout_seconds",
            Self::TimingWithSchedule { field } | Self::NeedsSchedule { field } => field,
            Self::MinRuntimeNotBelowMax { .. } => "min_runtime_seconds",
            Self::TooManyChannels => "channels",
            Self::NotForFleet { field } => field,
            Self::RetentionBelowTimeout { .. } => "instance_retention_seconds",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IntervalAboveTimeout {
                interval_seconds,
                timeout_seconds,
            } => write!(
                formatter,
                "interval_seconds ({interval_seconds}) must not be greater than \
                 timeout_seconds ({timeout_seconds})"
            ),
            Self::TimeoutRequired => {
                formatter.write_str("timeout_seconds is required for a monitor without a schedule")
            }
            Self::TooManyChannels => write!(
                formatter,
                "channels: at most {MAX_CHANNELS_PER_MONITOR} per monitor"
            ),
            Self::NotForFleet { field } => write!(
                formatter,
                "{field} cannot be set on a fleet monitor (min_instances): its quorum is \
                 judged on timeout_seconds alone"
            ),
            Self::RetentionBelowTimeout {
                instance_retention_seconds,
                timeout_seconds,
            } => write!(
                formatter,
                "instance_retention_seconds ({instance_retention_seconds}) must not be less \
                 than timeout_seconds ({timeout_seconds})"
            ),
            Self::TimingWithSchedule { field } => write!(
                formatter,
                "{field} cannot be set on a monitor with a schedule (set schedule to null to \
                 time it by {field} again)"
            ),
            Self::NeedsSchedule { field } => {
                write!(
                    formatter,
                    "{field} applies only to a monitor with a schedule"
                )
            }
            Self::MinRuntimeNotBelowMax {
                min_runtime_seconds,
                max_runtime_seconds,
            } => write!(
                formatter,
                "min_runtime_seconds ({min_runtime_seconds}) must be less than \
                 max_runtime_seconds ({max_runtime_seconds})"
            ),
        }
    }
}

/// Whether a monitor may have `config`. (The API checks each field on its own before;
/// this checks how they go together.)
pub fn check_config(config: &MonitorConfig) -> Result<(), Rejection> {
    if config.schedule.is_none() {
        if config.timeout_seconds == 0 {
            return Err(Rejection::TimeoutRequired);
        }
        if config.interval_seconds > config.timeout_seconds {
            return Err(Rejection::IntervalAboveTimeout {
                interval_seconds: config.interval_seconds,
                timeout_seconds: config.timeout_seconds,
            });
        }
    }
    if let (Some(min_runtime_seconds), Some(max_runtime_seconds)) =
        (config.min_runtime_seconds, config.max_runtime_seconds)
        && min_runtime_seconds >= max_runtime_seconds
    {
        return Err(Rejection::MinRuntimeNotBelowMax {
            min_runtime_seconds,
            max_runtime_seconds,
        });
    }
    check_fleet(config)
}

/// Whether a fleet monitor's settings go together: its quorum is judged on the
/// timeout alone (no schedule, no run rules, no thresholds), and it keeps instances
/// at least as long as they count.
fn check_fleet(config: &MonitorConfig) -> Result<(), Rejection> {
    if let Some(retention) = config.instance_retention_seconds
        && retention < config.timeout_seconds
    {
        return Err(Rejection::RetentionBelowTimeout {
            instance_retention_seconds: retention,
            timeout_seconds: config.timeout_seconds,
        });
    }
    if config.min_instances.is_none() {
        return Ok(());
    }
    let field = if config.schedule.is_some() {
        "schedule"
    } else if config.max_runtime_seconds.is_some() {
        "max_runtime_seconds"
    } else if config.min_runtime_seconds.is_some() {
        "min_runtime_seconds"
    } else if config.failure_threshold > 1 {
        "failure_threshold"
    } else if config.recovery_threshold > 1 {
        "recovery_threshold"
    } else {
        return Ok(());
    };
    Err(Rejection::NotForFleet { field })
}

/// Whether `command` may be decided on `monitor`. A change of the timings must leave
/// a valid configuration; other changes are never refused, so a monitor stored before
/// a check existed (with an interval above its timeout) can still be renamed.
pub fn check(monitor: &Monitor, command: &Command) -> Result<(), Rejection> {
    match command {
        Command::Update(patch) if patch.touches_timing() => {
            let config = patch.applied_to(&monitor.config);
            if config.schedule.is_some() {
                if patch.timeout_seconds.is_some() {
                    return Err(Rejection::TimingWithSchedule {
                        field: "timeout_seconds",
                    });
                }
                if patch.interval_seconds.is_some() {
                    return Err(Rejection::TimingWithSchedule {
                        field: "interval_seconds",
                    });
                }
            } else {
                if patch.timezone.is_some() {
                    return Err(Rejection::NeedsSchedule { field: "timezone" });
                }
                if patch.grace_seconds.is_some() {
                    return Err(Rejection::NeedsSchedule {
                        field: "grace_seconds",
                    });
                }
            }
            check_config(&config)
        }
        Command::Update(patch) if patch.touches_fleet() => {
            check_fleet(&patch.applied_to(&monitor.config))
        }
        _ => Ok(()),
    }
}

/// A restart grace: deadlines at or before `deadline` (those that fell while the
/// server was stopped) are pushed back to `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grace {
    pub deadline: Timestamp,
    pub until: Timestamp,
}

/// A run that started and has not ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRun {
    pub rid: Option<RunId>,
    pub started_at: Timestamp,
    /// Judged past `max_runtime_seconds` already (once per run).
    pub overran: bool,
}

impl OpenRun {
    pub fn reference(&self) -> RunRef {
        RunRef {
            rid: self.rid,
            started_at: self.started_at,
        }
    }

    fn is(&self, run: &RunRef) -> bool {
        self.rid == run.rid && self.started_at == run.started_at
    }
}

/// How the newest run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// `None` for a run whose start was not reported.
    pub started_at: Option<Timestamp>,
    pub ended_at: Timestamp,
    pub exit_status: Option<u8>,
    pub outcome: RunOutcome,
    /// The end of its output (`Output::excerpt`).
    pub output_excerpt: Option<String>,
}

impl LastRun {
    pub fn duration_ms(&self) -> Option<u64> {
        self.started_at
            .map(|started| started.millis_until(self.ended_at))
    }
}

/// A mute that is on (`docs/states.md`, "Muting").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    /// When it was asked for.
    pub since: Timestamp,
    /// When it ends by itself; `None`: only by an unmute (or a recovery).
    pub until: Option<Timestamp>,
    /// It ends at the next recovery ("acknowledged").
    pub until_recovery: bool,
}

/// Everything known about one monitor: the fold of its events.
///
/// This is also the snapshot the store keeps beside the log (stored format: add fields
/// only with a new codec version).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    pub id: MonitorId,
    /// Shared: a heartbeat copies the state, and the configuration rarely changes.
    pub config: Arc<MonitorConfig>,
    pub token: PushToken,
    pub status: Status,
    pub created_at: Timestamp,
    pub last_heartbeat_at: Option<Timestamp>,
    pub last_status_change_at: Option<Timestamp>,
    pub last_msg: Option<HeartbeatText>,
    pub last_value: Option<f64>,
    /// When the timeout clock last started: creation, resume, the last success, or a
    /// missed deadline counted below the failure threshold.
    pub clock_started_at: Timestamp,
    pub grace: Option<Grace>,
    /// The time of the newest event applied; events of one monitor never go back in time.
    pub last_event_at: Timestamp,
    /// The sequence number of the newest event applied (0 before the log assigns one).
    pub last_seq: u64,
    // Format version 3.
    /// Runs started and not ended, oldest first, at most [`MAX_OPEN_RUNS`].
    pub runs: Vec<OpenRun>,
    pub last_run: Option<Box<LastRun>>,
    pub last_success_at: Option<Timestamp>,
    /// Failures in a row counted toward `failure_threshold` (while `pending`/`up`).
    pub consecutive_failures: u32,
    /// Successes in a row counted toward `recovery_threshold` (while `down`).
    pub consecutive_successes: u32,
    pub last_down_reason: Option<DownReason>,
    /// Whether the channels were last told "down" (a maintenance window can leave
    /// them behind the state, until its end releases the alert).
    pub alerted_down: bool,
    /// When a `down` (or a reminder of it) was last alerted: reminders count from it.
    pub last_alerted_at: Option<Timestamp>,
    /// Set by `AlertSuppressed`, taken by the change of state right after it.
    pub suppress_next_alert: bool,
    // Format version 6.
    /// The mute on, if any. Alerts owed while it is on are not sent, ever.
    pub mute: Option<Mute>,
    // Format version 7.
    /// A fleet monitor's instances, by name, each with when it last reported.
    pub instances: Vec<InstanceSeen>,
    /// An alert held while a parent is down (`Event::AlertHeld`).
    pub held_alert: Option<HeldAlert>,
}

/// A fleet instance: when it last reported, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSeen {
    pub name: InstanceName,
    pub last_seen: Timestamp,
    pub status: PushStatus,
}

/// An alert held because a parent was down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldAlert {
    pub notice: Notice,
    pub parent: MonitorId,
    pub since: Timestamp,
}

/// Something asked of a monitor.
// `Update`'s patch is the largest variant (272 bytes with labels and severity). A
// command travels to its actor boxed (`MonitorMsg::Execute`), so no mailbox holds
// its size; boxing the patch too would only add a second allocation to each change.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Heartbeat(Heartbeat),
    /// A job's signal (a run's start or end, an exit status, output).
    Signal(Box<Signal>),
    /// The timer fired: judge deadlines and runs, release an alert a maintenance
    /// window held back, send a reminder. With `hold` (the guard is tripped,
    /// `domain::guard`), a missed deadline is held as `unknown` instead of judged.
    CheckDeadline {
        hold: bool,
    },
    /// The guard released: a monitor holding a verdict (`unknown`) has
    /// `grace_seconds` from now to report before it goes down.
    ReleaseHeld {
        grace_seconds: u32,
    },
    /// Change the fields that are `Some`; the others keep their values.
    Update(ConfigPatch),
    /// Take a deleted channel off the monitor's `channels`, if it lists it. Decided on
    /// the monitor's own state, so it cannot undo a change made meanwhile.
    ForgetChannel(ChannelId),
    RotateToken(PushToken),
    Pause,
    Resume,
    /// Mute until `until`, or until the next recovery; replaces a mute on already.
    Mute {
        until: Option<Timestamp>,
        until_recovery: bool,
    },
    Unmute,
    Delete,
    /// Record how an alert delivery ended.
    RecordDelivery(DeliveryOutcome),
    /// Judge deadlines that may have fallen while the server was stopped
    /// (`docs/states.md`, "After a restart of the server").
    JudgeAfterRestart {
        /// When the stored log last recorded the server alive; `None` if never.
        last_alive: Option<Timestamp>,
        restart_grace_seconds: u32,
    },
}

impl Monitor {
    /// The state right after `Created`.
    pub fn created(id: MonitorId, at: Timestamp, config: MonitorConfig, token: PushToken) -> Self {
        Self {
            id,
            config: Arc::new(config),
            token,
            status: Status::Pending,
            created_at: at,
            last_heartbeat_at: None,
            last_status_change_at: None,
            last_msg: None,
            last_value: None,
            clock_started_at: at,
            grace: None,
            last_event_at: at,
            last_seq: 0,
            runs: Vec::new(),
            last_run: None,
            last_success_at: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_down_reason: None,
            alerted_down: false,
            last_alerted_at: None,
            suppress_next_alert: false,
            mute: None,
            instances: Vec::new(),
            held_alert: None,
        }
    }

    /// Whether a mute is on at `at` (a timed one is over at its `until`, even before
    /// its `Unmuted` is recorded).
    pub fn muted_at(&self, at: Timestamp) -> bool {
        self.mute
            .is_some_and(|mute| mute.until.is_none_or(|until| at < until))
    }

    /// The end of a timed mute that is over at `now` (and whose `Unmuted` is owed).
    fn mute_expired_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.mute?.until.filter(|until| *until <= now)
    }

    /// When the job is next expected: the last success (or creation, resume, a
    /// counted miss) plus `interval_seconds`, or the next slot of its schedule after
    /// it. `None` while `down` or `paused`.
    pub fn next_due_at(&self) -> Option<Timestamp> {
        if !self.status.is_running() {
            return None;
        }
        match &self.config.schedule {
            None => Some(
                self.clock_started_at
                    .plus_seconds(self.config.interval_seconds),
            ),
            Some(schedule) => schedule.next_after(self.clock_started_at),
        }
    }

    /// The reason a missed deadline gives: `schedule` for a cron monitor,
    /// `instances` for a fleet, else `timeout`.
    pub fn missed_reason(&self) -> DownReason {
        if self.config.schedule.is_some() {
            DownReason::Schedule
        } else if self.is_fleet() {
            DownReason::Instances
        } else {
            DownReason::Timeout
        }
    }

    /// When a missing success makes the monitor fail, ignoring any restart grace: the
    /// clock's start plus `timeout_seconds`, or the next slot plus `grace_seconds`;
    /// no earlier than the max runtime of an open run (a job at work is not late).
    pub fn due_deadline(&self) -> Option<Timestamp> {
        if !self.status.is_running() {
            return None;
        }
        let due = match &self.config.schedule {
            // A fleet: no sooner than its quorum lasts (`quorum_until`).
            None => self
                .clock_started_at
                .plus_seconds(self.config.timeout_seconds)
                .max(self.quorum_until().unwrap_or(Timestamp::from_millis(0))),
            Some(schedule) => schedule
                .next_after(self.clock_started_at)?
                .plus_seconds(schedule.grace_seconds),
        };
        let running_until = self.config.max_runtime_seconds.and_then(|max| {
            self.runs
                .iter()
                .filter(|run| !run.overran)
                .map(|run| run.started_at.plus_seconds(max))
                .max()
        });
        Some(running_until.map_or(due, |until| due.max(until)))
    }

    /// The deadlines (open runs' max runtimes and the due deadline) at or before `now`,
    /// earliest first: what a judgement after a restart looks at.
    pub fn fallen_deadlines(&self, now: Timestamp) -> Vec<Timestamp> {
        let mut fallen: Vec<Timestamp> = self
            .run_deadlines()
            .into_iter()
            .map(|(deadline, _)| deadline)
            .chain(self.due_deadline())
            .filter(|deadline| *deadline <= now)
            .collect();
        fallen.sort();
        fallen
    }

    /// Whether a judgement after an outage, from `since` (excluded) to `until`
    /// (included), grants this monitor a restart grace at `now`: its earliest fallen deadline fell during the outage, and no grace
    /// was granted yet for its latest one. A monitor held `unknown` is left to its
    /// guard.
    pub fn owes_outage_grace(&self, since: Timestamp, until: Timestamp, now: Timestamp) -> bool {
        if self.status == Status::Unknown {
            return false;
        }
        let fallen = self.fallen_deadlines(now);
        let (Some(earliest), Some(latest)) = (fallen.first(), fallen.last()) else {
            return false;
        };
        *earliest > since
            && *earliest <= until
            && self.grace.is_none_or(|grace| grace.deadline < *latest)
    }

    /// The open runs not yet judged, with when each passes `max_runtime_seconds`,
    /// earliest first.
    fn run_deadlines(&self) -> Vec<(Timestamp, RunRef)> {
        let Some(max) = self.config.max_runtime_seconds else {
            return Vec::new();
        };
        if !self.status.is_running() {
            return Vec::new();
        }
        let mut deadlines: Vec<(Timestamp, RunRef)> = self
            .runs
            .iter()
            .filter(|run| !run.overran)
            .map(|run| (run.started_at.plus_seconds(max), run.reference()))
            .collect();
        deadlines.sort_by_key(|(deadline, _)| *deadline);
        deadlines
    }

    /// The earliest deadline of any rule (the due deadline, an open run's max
    /// runtime), ignoring any restart grace.
    pub fn base_deadline(&self) -> Option<Timestamp> {
        let run = self.run_deadlines().first().map(|(deadline, _)| *deadline);
        match (self.due_deadline(), run) {
            (Some(due), Some(run)) => Some(due.min(run)),
            (due, run) => due.or(run),
        }
    }

    /// `deadline`, pushed back by a restart grace granted for it.
    fn graced(&self, deadline: Timestamp) -> Timestamp {
        match self.grace {
            Some(grace) if deadline <= grace.deadline => deadline.max(grace.until),
            _ => deadline,
        }
    }

    /// When the monitor goes down (or counts a failure) if nothing arrives: the
    /// earliest deadline, pushed back by a restart grace granted for it.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        if self.status == Status::Unknown {
            // Held: looked at again only once released, at the end of its grace.
            return self.grace.map(|grace| grace.until);
        }
        let run = self
            .run_deadlines()
            .first()
            .map(|(deadline, _)| self.graced(*deadline));
        let due = self.due_deadline().map(|due| self.graced(due));
        match (due, run) {
            (Some(due), Some(run)) => Some(due.min(run)),
            (due, run) => due.or(run),
        }
    }

    /// If `at` is inside a maintenance window, when the maintenance ends.
    pub fn maintenance_until(&self, at: Timestamp) -> Option<Timestamp> {
        if self.config.maintenance.is_empty() {
            return None;
        }
        maintenance_until(&self.config.maintenance, at)
    }

    /// Whether an `up` heartbeat would record only itself, whatever its instance, its
    /// time and the parents' states: the monitor is up, owes its channels nothing,
    /// holds no alert, is not muted and is no fleet (`decide_with`'s push path, with
    /// none of the questions that path asks of the heartbeat, the time or the parents).
    pub fn quiet(&self) -> bool {
        self.status == Status::Up
            && self.release_due().is_none()
            && self.held_alert.is_none()
            && self.mute.is_none()
            && !self.is_fleet()
    }

    /// The alert a maintenance window held back and that is owed once it is over:
    /// the channels were told something else than the state. None while a parent's
    /// hold is on (`held_release_at` says when that one is released).
    pub fn release_due(&self) -> Option<Notice> {
        if self.held_alert.is_some() {
            return None;
        }
        self.channels_behind()
    }

    /// What the channels were not told: the state differs from what they last heard.
    pub fn channels_behind(&self) -> Option<Notice> {
        match self.status {
            Status::Down if !self.alerted_down => Some(Notice::Down(
                self.last_down_reason.unwrap_or(DownReason::Timeout),
            )),
            Status::Up if self.alerted_down => Some(Notice::Up),
            _ => None,
        }
    }

    /// When the next reminder is due, if one will be (down, alerted, reminders on).
    pub fn reminder_due_at(&self) -> Option<Timestamp> {
        // A mute holds reminders too; they count again from its end.
        if self.status != Status::Down || !self.alerted_down || self.mute.is_some() {
            return None;
        }
        let every = self.config.realert_every_seconds?;
        Some(self.last_alerted_at?.plus_seconds(every))
    }

    /// When the monitor must next be looked at (`Command::CheckDeadline`), seen at
    /// `now`: its next deadline, its next reminder, and (for an alert held back, or a
    /// reminder, inside a maintenance window) the window's end; `now` itself for an
    /// alert a window held back and that is owed already; the end of a timed mute.
    pub fn next_wakeup(&self, now: Timestamp) -> Option<Timestamp> {
        // A reminder or a release that falls inside a window waits for its end.
        let outside = |at: Timestamp| self.maintenance_until(at).unwrap_or(at);
        let reminder = self.reminder_due_at().map(|due| outside(due.max(now)));
        let release = self.release_due().map(|_| outside(now));
        let mute_end = self.mute.and_then(|mute| mute.until);
        [
            self.next_deadline(),
            reminder,
            release,
            mute_end,
            self.next_forget_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// [`next_wakeup`](Self::next_wakeup), and the release of an alert held for a
    /// parent, seen with what is known of the parents.
    pub fn next_wakeup_with(&self, now: Timestamp, parents: &Parents) -> Option<Timestamp> {
        let outside = |at: Timestamp| self.maintenance_until(at).unwrap_or(at);
        let held = self.held_release_at(parents).map(|at| outside(at.max(now)));
        [self.next_wakeup(now), held].into_iter().flatten().min()
    }

    /// Whether it is a fleet monitor (`min_instances`).
    pub fn is_fleet(&self) -> bool {
        self.config.min_instances.is_some()
    }

    /// How many instances a fleet needs reporting (at least one).
    fn min_instances(&self) -> usize {
        self.config
            .min_instances
            .map_or(1, |minimum| minimum.max(1) as usize)
    }

    /// How long a fleet keeps a silent instance: the setting or the default, and
    /// never less than the timeout.
    pub fn instance_retention_seconds(&self) -> u32 {
        self.config
            .instance_retention_seconds
            .unwrap_or(DEFAULT_INSTANCE_RETENTION_SECONDS)
            .max(self.config.timeout_seconds)
    }

    /// Whether `instance` counts toward the quorum at `at`: its last report was a
    /// success, less than `timeout_seconds` before.
    pub fn instance_reporting(&self, instance: &InstanceSeen, at: Timestamp) -> bool {
        instance.status == PushStatus::Up
            && instance.last_seen.plus_seconds(self.config.timeout_seconds) > at
    }

    /// How many instances count toward the quorum at `at`.
    pub fn instances_reporting(&self, at: Timestamp) -> usize {
        self.instances
            .iter()
            .filter(|instance| self.instance_reporting(instance, at))
            .count()
    }

    /// The instances a fleet knows that do not count at `at` (silent past the
    /// timeout, or whose last report was a failure), by name.
    pub fn missing_instances(&self, at: Timestamp) -> Vec<&InstanceName> {
        self.instances
            .iter()
            .filter(|instance| !self.instance_reporting(instance, at))
            .map(|instance| &instance.name)
            .collect()
    }

    /// Until when at least `min_instances` instances count, if nothing more arrives:
    /// the `min_instances`-th latest expiry. `None` for a monitor that is no fleet or
    /// a fleet without that many successes.
    fn quorum_until(&self) -> Option<Timestamp> {
        if !self.is_fleet() {
            return None;
        }
        let mut expiries: Vec<Timestamp> = self
            .instances
            .iter()
            .filter(|instance| instance.status == PushStatus::Up)
            .map(|instance| instance.last_seen.plus_seconds(self.config.timeout_seconds))
            .collect();
        expiries.sort_unstable_by(|a, b| b.cmp(a));
        expiries.get(self.min_instances() - 1).copied()
    }

    /// When the instance silent the longest is forgotten.
    fn next_forget_at(&self) -> Option<Timestamp> {
        let retention = self.instance_retention_seconds();
        self.instances
            .iter()
            .map(|instance| instance.last_seen.plus_seconds(retention))
            .min()
    }

    /// The instances silent past the retention at `now`, oldest first, each with
    /// when it passed it.
    fn instances_to_forget(&self, now: Timestamp) -> Vec<(Timestamp, InstanceName)> {
        let retention = self.instance_retention_seconds();
        let mut forgotten: Vec<(Timestamp, InstanceName)> = self
            .instances
            .iter()
            .map(|instance| (instance.last_seen.plus_seconds(retention), instance))
            .filter(|(at, _)| *at <= now)
            .map(|(at, instance)| (at, instance.name.clone()))
            .collect();
        forgotten.sort();
        forgotten
    }

    /// The instance a heartbeat from `instance` makes a full fleet forget: the one
    /// silent the longest, when `instance` is new and [`MAX_INSTANCES`] are kept.
    fn evicted_by(&self, instance: &InstanceName) -> Option<InstanceName> {
        if !self.is_fleet()
            || self.instances.len() < MAX_INSTANCES
            || self.instance_index(instance).is_ok()
        {
            return None;
        }
        self.instances
            .iter()
            .min_by(|a, b| (a.last_seen, &a.name).cmp(&(b.last_seen, &b.name)))
            .map(|instance| instance.name.clone())
    }

    /// Where `instance` is in `instances` (kept sorted by name), or would go.
    fn instance_index(&self, instance: &InstanceName) -> Result<usize, usize> {
        self.instances
            .binary_search_by(|seen| seen.name.cmp(instance))
    }

    /// How long a parent must be up again before a held alert is sent.
    pub fn dependency_grace_seconds(&self) -> u32 {
        self.config
            .dependency_grace_seconds
            .unwrap_or(DEFAULT_DEPENDENCY_GRACE_SECONDS)
    }

    /// When the alert held for a parent is owed (`None` if none is held, or a parent
    /// is still down): once every parent has been up for the dependency grace.
    pub fn held_release_at(&self, parents: &Parents) -> Option<Timestamp> {
        let held = self.held_alert?;
        if parents.down().is_some() {
            return None;
        }
        let grace = self.dependency_grace_seconds();
        let released = parents
            .0
            .iter()
            .map(|parent| parent.since.plus_seconds(grace))
            .max()
            .unwrap_or(held.since);
        Some(released.max(held.since))
    }
}

/// What a monitor knows of its parents when it decides (`docs/states.md`,
/// "Dependencies"): each parent's state as the registry last heard it. A parent
/// missing from it (deleted) holds nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parents(pub Vec<ParentState>);

/// One parent's state, as its children see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentState {
    pub id: MonitorId,
    /// `down` (or `unknown`: a verdict the guard holds).
    pub down: bool,
    /// When it last changed state.
    pub since: Timestamp,
}

impl ParentState {
    /// How monitor `monitor` looks to its children.
    pub fn of(monitor: &Monitor) -> Self {
        Self {
            id: monitor.id,
            down: matches!(monitor.status, Status::Down | Status::Unknown),
            since: monitor.last_status_change_at.unwrap_or(monitor.created_at),
        }
    }
}

impl Parents {
    /// The first parent that is down, if any.
    pub fn down(&self) -> Option<MonitorId> {
        self.0
            .iter()
            .find(|parent| parent.down)
            .map(|parent| parent.id)
    }
}

#[cfg(test)]
mod dependency_tests;
#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod job_tests;
#[cfg(test)]
mod mute_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patchs_signing_secret_never_shows_in_debug_output() {
        let config = MonitorConfig {
            signing_secret: Some("0123456789abcdef-secret".to_owned()),
            ..MonitorConfig::new("signed", 60)
        };
        let shown = format!("{:?}", ConfigPatch::replacing_with(config));
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(
            shown.contains(r#"signing_secret: Some(Some("<redacted>"))"#),
            "{shown}"
        );
        assert!(shown.contains(r#"name: Some("signed")"#), "{shown}");
    }
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn config(timeout_seconds: u32) -> MonitorConfig {
        MonitorConfig::new("backup", timeout_seconds)
    }

    fn new_monitor(timeout_seconds: u32) -> Monitor {
        Monitor::created(
            MonitorId::generate(T0),
            T0,
            config(timeout_seconds),
            PushToken::from_bytes([1; 16]),
        )
    }

    fn secs(seconds: i64) -> Timestamp {
        Timestamp::from_millis(T0.as_millis() + seconds * 1000)
    }

    fn beat(status: PushStatus) -> Command {
        Command::Heartbeat(Heartbeat {
            status,
            msg: None,
            value: None,
            instance: None,
        })
    }

    /// given a monitor, when a command arrives at `now`: apply what it decided and
    /// return the event kinds.
    fn when(monitor: &mut Monitor, command: Command, now: Timestamp) -> Vec<Event> {
        let events = decide(monitor, command, now);
        for (index, stamped) in events.iter().enumerate() {
            let seq = monitor.last_seq + 1 + index as u64;
            apply(monitor, seq, stamped.at, &stamped.event);
        }
        events.into_iter().map(|stamped| stamped.event).collect()
    }

    #[test]
    fn pending_goes_up_on_first_heartbeat_with_an_event_but_no_alert() {
        let mut monitor = new_monitor(60);
        let events = when(&mut monitor, beat(PushStatus::Up), secs(5));
        assert!(matches!(
            events.as_slice(),
            [Event::HeartbeatReceived(_), Event::WentUp]
        ));
        assert!(events.iter().all(|event| !event.is_alert()));
        assert_eq!(monitor.status, Status::Up);
        assert_eq!(monitor.last_status_change_at, Some(secs(5)));
        assert_eq!(monitor.next_deadline(), Some(secs(65)));
        // Only the first one: later heartbeats change nothing.
        let again = when(&mut monitor, beat(PushStatus::Up), secs(6));
        assert!(matches!(again.as_slice(), [Event::HeartbeatReceived(_)]));
    }

    #[test]
    fn resumed_then_up_records_went_up_without_alert() {
        let mut monitor = new_monitor(60);
        when(&mut monitor, beat(PushStatus::Up), secs(1));
        when(&mut monitor, Command::Pause, secs(2));
        assert_eq!(
            when(&mut monitor, Command::Resume, secs(3)),
            vec![Event::Resumed]
        );
        assert_eq!(monitor.status, Status::Pending);
        let events = when(&mut monitor, beat(PushStatus::Up), secs(4));
        assert!(matches!(
            events.as_slice(),
            [Event::HeartbeatReceived(_), Event::WentUp]
        ));
        assert_eq!(monitor.status, Status::Up);
        assert_eq!(monitor.last_status_change_at, Some(secs(4)));
    }

    #[test]
    fn a_log_from_before_went_up_still_leaves_pending_on_its_heartbeat() {
        // Stores written before `WentUp` existed hold only the heartbeat.
        let mut monitor = new_monitor(60);
        let heartbeat = Event::HeartbeatReceived(Heartbeat {
            status: PushStatus::Up,
            msg: None,
            value: None,
            instance: None,
        });
        apply(&mut monitor, 2, secs(5), &heartbeat);
        assert_eq!(monitor.status, Status::Up);
        assert_eq!(monitor.last_status_change_at, Some(secs(5)));
        // In a newer log the `WentUp` that follows changes nothing more.
        let before = monitor.clone();
        apply(&mut monitor, 3, secs(5), &Event::WentUp);
        assert_eq!(
            monitor,
            Monitor {
                last_seq: 3,
                ..before
            }
        );
    }

    /// The state an event of a change of state leads to.
    fn state_after(event: &Event) -> Option<Status> {
        match event {
            Event::WentUp | Event::Recovered => Some(Status::Up),
            Event::WentDown { .. } => Some(Status::Down),
            Event::Paused => Some(Status::Paused),
            Event::Resumed => Some(Status::Pending),
            Event::VerdictHeld { .. } => Some(Status::Unknown),
            _ => None,
        }
    }

    #[test]
    fn never_heard_monitor_goes_down_at_creation_plus_timeout() {
        let mut monitor = new_monitor(60);
        assert!(
            when(
                &mut monitor,
                Command::CheckDeadline { hold: false },
                secs(59)
            )
            .is_empty()
        );
        let decided = decide(&monitor, Command::CheckDeadline { hold: false }, secs(61));
        assert_eq!(decided.len(), 1);
        assert_eq!(decided[0].at, secs(60), "down is stamped at the deadline");
        assert_eq!(
            decided[0].event,
            Event::WentDown {
                reason: DownReason::Timeout
            }
        );
    }

    #[test]
    fn timeout_then_recovery_alerts_once_each() {
        let mut monitor = new_monitor(10);
        when(&mut monitor, beat(PushStatus::Up), secs(1));
        let down = when(
            &mut monitor,
            Command::CheckDeadline { hold: false },
            secs(11),
        );
        assert_eq!(down.len(), 1);
        assert!(
            when(
                &mut monitor,
                Command::CheckDeadline { hold: false },
                secs(30)
            )
            .is_empty()
        );
        let up = when(&mut monitor, beat(PushStatus::Up), secs(31));
        assert!(matches!(
            up.as_slice(),
            [Event::HeartbeatReceived(_), Event::Recovered]
        ));
        assert_eq!(monitor.status, Status::Up);
    }

    #[test]
    fn manual_down_alerts_once_and_repeated_down_is_only_recorded() {
        let mut monitor = new_monitor(10);
        let first = when(&mut monitor, beat(PushStatus::Down), secs(1));
        assert_eq!(
            first[1],
            Event::WentDown {
                reason: DownReason::Manual
            }
        );
        let second = when(&mut monitor, beat(PushStatus::Down), secs(2));
        assert!(matches!(second.as_slice(), [Event::HeartbeatReceived(_)]));
        assert_eq!(monitor.status, Status::Down);
    }

    #[test]
    fn paused_records_heartbeats_and_never_times_out() {
        let mut monitor = new_monitor(10);
        when(&mut monitor, Command::Pause, secs(1));
        assert_eq!(monitor.next_deadline(), None);
        assert!(
            when(
                &mut monitor,
                Command::CheckDeadline { hold: false },
                secs(1000)
            )
            .is_empty()
        );
        let events = when(&mut monitor, beat(PushStatus::Down), secs(1001));
        assert!(matches!(events.as_slice(), [Event::HeartbeatReceived(_)]));
        assert_eq!(monitor.status, Status::Paused);
        assert_eq!(monitor.last_heartbeat_at, Some(secs(1001)));
        // Pausing twice records nothing.
        assert!(when(&mut monitor, Command::Pause, secs(1002)).is_empty());
        when(&mut monitor, Command::Resume, secs(1003));
        assert_eq!(monitor.status, Status::Pending);
        assert_eq!(monitor.next_deadline(), Some(secs(1013)));
    }

    #[test]
    fn shortening_the_timeout_stamps_down_no_earlier_than_the_update() {
        let mut monitor = new_monitor(100);
        let patch = ConfigPatch {
            timeout_seconds: Some(5),
            ..ConfigPatch::default()
        };
        when(&mut monitor, Command::Update(patch), secs(50));
        let decided = decide(&monitor, Command::CheckDeadline { hold: false }, secs(50));
        assert_eq!(decided[0].at, secs(50));
    }

    #[test]
    fn an_outage_owes_a_grace_only_to_deadlines_that_fell_in_it_and_only_once() {
        let mut monitor = new_monitor(30);
        when(&mut monitor, beat(PushStatus::Up), secs(0));
        // The deadline fell at 30 s.
        assert!(monitor.owes_outage_grace(secs(20), secs(100), secs(100)));
        // Before the outage began: overdue already, judged at once.
        assert!(!monitor.owes_outage_grace(secs(30), secs(100), secs(100)));
        // After the takeover ended the outage: an ordinary missed deadline.
        assert!(!monitor.owes_outage_grace(secs(0), secs(29), secs(100)));
        // Not fallen yet.
        assert!(!monitor.owes_outage_grace(secs(20), secs(100), secs(29)));
        let granted = when(
            &mut monitor,
            Command::JudgeAfterRestart {
                last_alive: Some(secs(20)),
                restart_grace_seconds: 60,
            },
            secs(100),
        );
        assert!(matches!(granted.as_slice(), [Event::GraceGranted { .. }]));
        // Granted: the grace's end is judged as any deadline.
        assert!(!monitor.owes_outage_grace(secs(20), secs(100), secs(131)));
    }

    #[test]
    fn deadline_that_fell_while_stopped_gets_a_grace_once() {
        let mut monitor = new_monitor(30);
        when(&mut monitor, beat(PushStatus::Up), secs(0));
        // The server was last alive at 20 s; the deadline fell at 30 s; ready at 100 s.
        let judge = Command::JudgeAfterRestart {
            last_alive: Some(secs(20)),
            restart_grace_seconds: 60,
        };
        let granted = when(&mut monitor, judge.clone(), secs(100));
        assert!(matches!(granted.as_slice(), [Event::GraceGranted { .. }]));
        assert_eq!(monitor.status, Status::Up);
        // The grace is min(timeout, restart grace) = 30 s from the restart.
        assert_eq!(monitor.next_deadline(), Some(secs(130)));
        // A second restart after the grace ran out grants nothing more: down at once,
        // stamped at the end of the grace.
        let judge_again = Command::JudgeAfterRestart {
            last_alive: Some(secs(101)),
            restart_grace_seconds: 60,
        };
        let down = decide(&monitor, judge_again, secs(500));
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].at, secs(130));
    }

    #[test]
    fn deadline_that_fell_before_the_stop_goes_down_at_once() {
        let mut monitor = new_monitor(30);
        let judge = Command::JudgeAfterRestart {
            last_alive: Some(secs(45)),
            restart_grace_seconds: 60,
        };
        let events = when(&mut monitor, judge, secs(100));
        assert_eq!(
            events,
            vec![Event::WentDown {
                reason: DownReason::Timeout
            }]
        );
        assert_eq!(monitor.last_status_change_at, Some(secs(30)));
    }

    #[test]
    fn zero_restart_grace_disables_the_grace() {
        let mut monitor = new_monitor(30);
        let judge = Command::JudgeAfterRestart {
            last_alive: Some(secs(10)),
            restart_grace_seconds: 0,
        };
        assert_eq!(when(&mut monitor, judge, secs(100)).len(), 1);
        assert_eq!(monitor.status, Status::Down);
    }

    #[test]
    fn future_deadline_is_left_to_the_timer_after_restart() {
        let mut monitor = new_monitor(300);
        let judge = Command::JudgeAfterRestart {
            last_alive: Some(secs(10)),
            restart_grace_seconds: 60,
        };
        assert!(when(&mut monitor, judge, secs(100)).is_empty());
    }

    #[test]
    fn replay_equals_live_folding_and_deleted_yields_none() {
        let mut monitor = new_monitor(10);
        let id = monitor.id;
        let created = Event::Created {
            config: Box::new((*monitor.config).clone()),
            token: monitor.token.clone(),
        };
        let mut log = vec![(1, T0, created)];
        for (offset, command) in [
            beat(PushStatus::Up),
            Command::CheckDeadline { hold: false },
            beat(PushStatus::Up),
            Command::RotateToken(PushToken::from_bytes([9; 16])),
            Command::Pause,
        ]
        .into_iter()
        .enumerate()
        {
            let now = secs(offset as i64 * 20);
            for stamped in decide(&monitor, command, now) {
                let seq = log.len() as u64 + 1;
                apply(&mut monitor, seq, stamped.at, &stamped.event);
                log.push((seq, stamped.at, stamped.event));
            }
        }
        let replayed = replay(id, log.iter().map(|(seq, at, event)| (*seq, *at, event)));
        assert_eq!(replayed.as_ref(), Some(&monitor));
        log.push((99, secs(500), Event::Deleted));
        assert_eq!(
            replay(id, log.iter().map(|(seq, at, event)| (*seq, *at, event))),
            None
        );
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        prop_oneof![
            4 => any::<bool>().prop_map(|up| beat(if up { PushStatus::Up } else { PushStatus::Down })),
            4 => Just(Command::CheckDeadline { hold: false }),
            2 => Just(Command::CheckDeadline { hold: true }),
            1 => (0u32..120).prop_map(|grace_seconds| Command::ReleaseHeld { grace_seconds }),
            1 => (1u32..120).prop_map(|timeout| Command::Update(ConfigPatch { timeout_seconds: Some(timeout), ..ConfigPatch::default() })),
            1 => Just(Command::Pause),
            1 => Just(Command::Resume),
            1 => any::<[u8; 16]>().prop_map(|bytes| Command::RotateToken(PushToken::from_bytes(bytes))),
            1 => (0i64..10_000, 0u32..120).prop_map(|(alive, grace)| Command::JudgeAfterRestart {
                last_alive: Some(Timestamp::from_millis(T0.as_millis() + alive * 100)),
                restart_grace_seconds: grace,
            }),
        ]
    }

    proptest! {
        /// Invariants over any sequence of commands at non-decreasing times.
        #[test]
        fn invariants_hold_for_any_history(
            timeout in 1u32..120,
            steps in proptest::collection::vec((0i64..5_000, arb_command()), 1..60),
        ) {
            let mut monitor = new_monitor(timeout);
            let mut now = T0;
            let mut last_alert: Option<Event> = None;
            for (advance_millis, command) in steps {
                now = Timestamp::from_millis(now.as_millis() + advance_millis * 10);
                let before = monitor.clone();
                if command == Command::Resume && before.status == Status::Paused {
                    // A resume starts afresh (pending), as in Healthchecks: the next
                    // alert may be a down again.
                    last_alert = None;
                }
                let held_by_guard = matches!(command, Command::CheckDeadline { hold: true });
                let events = decide(&monitor, command, now);
                let alerts: Vec<&Event> = events.iter().map(|s| &s.event).filter(|e| e.is_alert()).collect();
                // Never two alerts for one change of state.
                prop_assert!(alerts.len() <= 1);
                // Paused never alerts.
                if before.status == Status::Paused {
                    prop_assert!(alerts.is_empty());
                }
                for stamped in &events {
                    // Events of a monitor never go back in time.
                    prop_assert!(stamped.at >= monitor.last_event_at);
                    let seq = monitor.last_seq + 1;
                    let status_before = monitor.status;
                    apply(&mut monitor, seq, stamped.at, &stamped.event);
                    // Every change of state is an event of its own, naming the new
                    // state: the history alone tells when the monitor was up.
                    if monitor.status != status_before {
                        let recorded = events.iter().filter_map(|s| state_after(&s.event)).next_back();
                        prop_assert_eq!(recorded, Some(monitor.status));
                    }
                }
                if let Some(alert) = alerts.first() {
                    // Alerts alternate: a down is never followed by another down.
                    prop_assert_ne!(last_alert.as_ref().map(std::mem::discriminant), Some(std::mem::discriminant(*alert)));
                    last_alert = Some((*alert).clone());
                }
                // The deadline is always the clock start plus the timeout, or a grace.
                match monitor.status {
                    Status::Pending | Status::Up => {
                        let base = monitor.clock_started_at.plus_seconds(monitor.config.timeout_seconds);
                        let deadline = monitor.next_deadline().expect("running monitors have a deadline");
                        match monitor.grace {
                            Some(grace) if base <= grace.deadline => prop_assert_eq!(deadline, base.max(grace.until)),
                            _ => prop_assert_eq!(deadline, base),
                        }
                    }
                    Status::Down | Status::Paused => prop_assert_eq!(monitor.next_deadline(), None),
                    // Held: looked at again only at the end of a release's grace.
                    Status::Unknown => prop_assert_eq!(monitor.next_deadline(), monitor.grace.map(|grace| grace.until)),
                }
                // Only a missed deadline judged while the guard holds is held (never
                // a job's own `down`), and a held one alerts nothing.
                if monitor.status == Status::Unknown && before.status != Status::Unknown {
                    prop_assert!(held_by_guard);
                    prop_assert!(alerts.is_empty());
                }
            }
        }

        /// A monitor that hears `up` heartbeats more often than its timeout never goes down.
        #[test]
        fn steady_heartbeats_never_time_out(timeout in 1u32..60, gaps in proptest::collection::vec(0u32..1000, 1..50)) {
            let mut monitor = new_monitor(timeout);
            let mut now = T0;
            for gap in gaps {
                // Each gap is a fraction of the timeout: strictly less than it.
                let millis = i64::from(timeout) * 1000 * i64::from(gap) / 1000;
                now = Timestamp::from_millis(now.as_millis() + millis);
                let judged = when(&mut monitor, Command::CheckDeadline { hold: false }, now);
                prop_assert!(judged.is_empty());
                let held = when(&mut monitor, Command::CheckDeadline { hold: true }, now);
                prop_assert!(held.is_empty());
                when(&mut monitor, beat(PushStatus::Up), now);
                prop_assert_eq!(monitor.status, Status::Up);
            }
        }
    }

    #[test]
    fn the_interval_follows_the_timeout_while_it_is_the_default_and_never_exceeds_it() {
        let update = |timeout: Option<u32>, interval: Option<u32>| {
            Command::Update(ConfigPatch {
                timeout_seconds: timeout,
                interval_seconds: interval,
                ..ConfigPatch::default()
            })
        };
        let with_interval = |interval: u32| {
            let mut monitor = new_monitor(60);
            Arc::make_mut(&mut monitor.config).interval_seconds = interval;
            monitor
        };
        let rejected = |interval_seconds, timeout_seconds| {
            Err(Rejection::IntervalAboveTimeout {
                interval_seconds,
                timeout_seconds,
            })
        };
        // (interval before, timeout 60 before, patch) → (timeout, interval) or refusal.
        type Outcome = Result<(u32, u32), Rejection>;
        let table: [(u32, Command, Outcome); 9] = [
            // The default (interval = timeout): the interval follows, down and up.
            (60, update(Some(30), None), Ok((30, 30))),
            (60, update(Some(90), None), Ok((90, 90))),
            // An interval of its own stays, as long as it fits.
            (30, update(Some(45), None), Ok((45, 30))),
            (30, update(Some(20), None), rejected(30, 20)),
            (30, update(None, Some(60)), Ok((60, 60))),
            (30, update(None, Some(61)), rejected(61, 60)),
            (60, update(Some(30), Some(40)), rejected(40, 30)),
            (60, update(Some(30), Some(10)), Ok((30, 10))),
            // Stored before the check: anything but the timings can still change.
            (
                600,
                Command::Update(ConfigPatch {
                    name: Some("renamed".to_owned()),
                    ..ConfigPatch::default()
                }),
                Ok((60, 600)),
            ),
        ];
        for (interval, command, expected) in table {
            let mut monitor = with_interval(interval);
            let outcome = check(&monitor, &command).map(|()| {
                when(&mut monitor, command.clone(), secs(1));
                (
                    monitor.config.timeout_seconds,
                    monitor.config.interval_seconds,
                )
            });
            assert_eq!(outcome, expected, "interval {interval}, {command:?}");
        }
        assert_eq!(check_config(&config(5)), Ok(()));
    }

    #[test]
    fn forgetting_a_channel_keeps_the_others_and_records_only_a_change() {
        let mut monitor = new_monitor(10);
        let [kept, gone, other] = [1, 2, 3].map(|n| ChannelId::generate(secs(n)));
        let patch = ConfigPatch {
            channels: Some(vec![kept, gone]),
            ..ConfigPatch::default()
        };
        when(&mut monitor, Command::Update(patch), secs(1));
        assert!(when(&mut monitor, Command::ForgetChannel(other), secs(2)).is_empty());
        let events = when(&mut monitor, Command::ForgetChannel(gone), secs(3));
        assert!(matches!(events.as_slice(), [Event::Updated { .. }]));
        assert_eq!(monitor.config.channels, vec![kept]);
        assert!(when(&mut monitor, Command::ForgetChannel(gone), secs(4)).is_empty());
    }

    #[test]
    fn a_patch_changes_only_the_fields_it_names() {
        let mut monitor = new_monitor(10);
        let channel = ChannelId::generate(T0);
        let patch = ConfigPatch {
            name: Some("renamed".to_owned()),
            channels: Some(vec![channel]),
            ..ConfigPatch::default()
        };
        let events = when(&mut monitor, Command::Update(patch.clone()), secs(1));
        assert_eq!(events.len(), 1);
        assert_eq!(monitor.config.name, "renamed");
        assert_eq!(monitor.config.channels, vec![channel]);
        assert_eq!(monitor.config.timeout_seconds, 10);
        // The same patch again changes nothing and records nothing.
        assert!(when(&mut monitor, Command::Update(patch), secs(2)).is_empty());
    }
}

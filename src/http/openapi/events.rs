//! Schemas of events, uptime and incidents.

use super::*;

/// What an event records (`docs/api.md`, "The Event object").
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Updated,
    TokenRotated,
    Heartbeat,
    Down,
    Up,
    Paused,
    Resumed,
    Delivery,
    RunStarted,
    RunEnded,
    Log,
    RunOverran,
    FailureCounted,
    SuccessCounted,
    Reminder,
    AlertSuppressed,
    AlertReleased,
    Muted,
    Unmuted,
    AlertHeld,
    InstanceForgotten,
    /// The guard held a missed deadline (`docs/states.md`, "The guard").
    Unknown,
}

/// An event's `reason`: why it went down (`down`, `failure_counted`, `reminder`, a
/// run's failure), how it came up (`heartbeat`, `first_heartbeat`), or why a mute
/// ended (`unmuted`: `manual`, `expired`, `recovered`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventReason {
    Timeout,
    Schedule,
    Manual,
    ExitStatus,
    MaxRuntime,
    TooFast,
    Instances,
    Heartbeat,
    FirstHeartbeat,
    Expired,
    Recovered,
}

/// What held an alert back: a maintenance window (`alert_suppressed`, released at
/// its end), a mute (`alert_suppressed`, never sent), or a parent that is down
/// (`alert_held`, released once it has been up for the dependency grace); what held
/// a verdict (`unknown`): the guard.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HeldBy {
    Maintenance,
    Mute,
    Dependency,
    Guard,
}

/// Which alert a maintenance window held back or released.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    Down,
    Up,
}

/// The oldest open run, forgotten by a `run_started` because 16 were open.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DroppedRun {
    #[schema(required = true, value_type = Option<uuid::Uuid>)]
    pub rid: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: String,
}

/// The Event object (`docs/api.md`, "The Event object"): `seq`, `at` and `kind`, and
/// the fields of its kind.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub seq: u64,
    #[schema(format = DateTime)]
    pub at: String,
    pub kind: EventKind,
    /// `heartbeat`: `up` or `down`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub status: Option<PushStatus>,
    /// `heartbeat`, `run_started`, `log`: the message, or null.
    #[serde(default)]
    pub msg: Option<String>,
    /// `heartbeat`: its value, or null.
    #[serde(default)]
    pub value: Option<f64>,
    /// `heartbeat`: the fleet instance it named (`instance=`), or null;
    /// `instance_forgotten`: the instance forgotten.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]+$")]
    pub instance: Option<String>,
    /// `alert_held`: the parent that was down.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>, nullable = false)]
    pub parent: Option<String>,
    /// `created`, `updated`: a fleet's `min_instances`, or null.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub min_instances: Option<u32>,
    /// `created`, `updated`: or null (the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub instance_retention_seconds: Option<u32>,
    /// `created`, `updated`: the parents' ids.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, nullable = false)]
    pub parents: Option<Vec<String>>,
    /// `created`, `updated`: or null (the default).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 31_536_000)]
    pub dependency_grace_seconds: Option<u32>,
    /// `down`, `failure_counted`, `reminder`: why it failed; `unknown`: the verdict
    /// held (`timeout`, `schedule`); `up`: `heartbeat` or
    /// `first_heartbeat`; `alert_suppressed`, `alert_released`: the alert's;
    /// `run_ended`: a failure's (`manual`, `exit_status`, `too_fast`), null for a
    /// success.
    #[serde(default)]
    pub reason: Option<EventReason>,
    /// `created`, `updated`: the configuration (as on the Monitor).
    #[serde(default)]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// `created`, `updated`: null with a schedule.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub timeout_seconds: Option<u32>,
    /// `created`, `updated`: null with a schedule.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub interval_seconds: Option<u32>,
    /// `created`, `updated`: channel ids.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, nullable = false)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub tags: Option<Vec<String>>,
    /// `created`, `updated`: every label.
    #[serde(default)]
    #[schema(nullable = false)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// `created`, `updated`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub severity: Option<Severity>,
    /// `created`, `updated`: the addresses and ranges pushes are taken from.
    #[serde(default)]
    #[schema(nullable = false)]
    pub allowed_sources: Option<Vec<String>>,
    /// `created`, `updated`: whether pushes must be signed.
    #[serde(default)]
    #[schema(nullable = false)]
    pub signed: Option<bool>,
    /// `created`, `updated`: the monitors file's key, or null.
    #[serde(default)]
    pub key: Option<String>,
    /// `created`, `updated`: the slug, or null.
    #[serde(default)]
    pub slug: Option<String>,
    /// `created`, `updated`: the cron pattern, or null.
    #[serde(default)]
    pub schedule: Option<String>,
    /// `created`, `updated`: the schedule's zone, or null.
    #[serde(default)]
    pub timezone: Option<String>,
    /// `created`, `updated`: null without a schedule.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub grace_seconds: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub max_runtime_seconds: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub min_runtime_seconds: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub failure_threshold: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub recovery_threshold: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub realert_every_seconds: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, max_items = 16)]
    pub maintenance: Option<Vec<MaintenanceWindow>>,
    /// `delivery`: the channel's id.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>, nullable = false)]
    pub channel: Option<String>,
    /// `delivery`: the `seq` of the alerted event.
    #[serde(default)]
    #[schema(nullable = false)]
    pub alert_seq: Option<u64>,
    /// `delivery`: `success` or `failure`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub result: Option<DeliveryResult>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub attempts: Option<u32>,
    /// `delivery`: why it failed, or null.
    #[serde(default)]
    pub error: Option<String>,
    /// `run_started`, `run_ended`, `log`, `run_overran`: the run id, or null.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub rid: Option<String>,
    /// `run_started`, `run_ended`, `log`: the output kept, or null.
    #[serde(default)]
    pub output: Option<String>,
    /// `run_started`: the run forgotten to make room, or null.
    #[serde(default)]
    pub dropped_run: Option<DroppedRun>,
    /// `run_ended`: the start of the run it ended, or null if none was open;
    /// `run_overran`: the run's start.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// `run_ended`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub outcome: Option<RunOutcome>,
    /// `run_ended`: 0 to 255, or null.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 255)]
    pub exit_status: Option<u8>,
    /// `failure_counted`, `success_counted`: the count so far.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub count: Option<u32>,
    /// `alert_suppressed`, `alert_released`, `alert_held`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub alert: Option<AlertKind>,
    /// `alert_suppressed`, `alert_held`: what held the alert back; `unknown`: `guard`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub held_by: Option<HeldBy>,
    /// `unknown`: the deadline that was missed.
    #[serde(default)]
    #[schema(format = DateTime, nullable = false)]
    pub deadline: Option<String>,
    /// `muted`: when it ends by itself, or null.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub until: Option<String>,
    /// `muted`: whether it ends at the next recovery.
    #[serde(default)]
    #[schema(nullable = false)]
    pub until_recovery: Option<bool>,
}

/// A delivery's result.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryResult {
    Success,
    Failure,
}

/// `GET /api/monitors/{id}/events`, newest first.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventList {
    pub events: Vec<Event>,
}

/// The time a monitor spent in each state over one window.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UptimeWindow {
    /// The window's length.
    pub seconds: u32,
    /// `up_seconds / (up_seconds + down_seconds)`; null if never up or down in it.
    #[schema(required = true, minimum = 0, maximum = 1)]
    pub ratio: Option<f64>,
    pub up_seconds: f64,
    pub down_seconds: f64,
    pub pending_seconds: f64,
    pub paused_seconds: f64,
}

/// `GET /api/monitors/{id}/uptime`: by window name (`24h`, `7d`, `30d`, or the
/// `window` asked for).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UptimeAnswer {
    pub uptime: std::collections::BTreeMap<String, UptimeWindow>,
}

/// The Incident object: an outage, from a `down` to the next change of state.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// The `seq` of the `down` event that started it.
    pub seq: u64,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(required = true, format = DateTime)]
    pub ended_at: Option<String>,
    /// The state it ended in (`up` or `paused`); null while it lasts.
    #[schema(required = true)]
    pub ended_by: Option<MonitorStatus>,
    pub duration_seconds: f64,
    /// What put it down.
    #[schema(required = true)]
    pub reason: Option<DownReason>,
}

/// `GET /api/monitors/{id}/incidents`, newest first.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentList {
    pub incidents: Vec<Incident>,
}

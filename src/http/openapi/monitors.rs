//! Schemas of the errors, monitors and their runs.

use super::*;

/// Every error: `{"error": "<what is wrong>"}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"error": "monitor not found"}))]
pub struct ErrorBody {
    pub error: String,
}

/// `{"ok": true}`: an accepted push, a delivered test message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    /// Always true.
    pub ok: bool,
}

/// A monitor's state.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorStatus {
    Pending,
    Up,
    Down,
    Paused,
    /// A missed deadline held by the guard (`docs/states.md`, "The guard").
    Unknown,
}

/// The Monitor object (`docs/api.md`, "The Monitor object").
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub status: MonitorStatus,
    /// Null for a monitor timed by a schedule.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub timeout_seconds: Option<u32>,
    /// Null for a monitor timed by a schedule.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub interval_seconds: Option<u32>,
    /// The push URL's secret; null for a read key.
    #[schema(required = true)]
    pub push_token: Option<String>,
    /// `<public URL>/api/push/<push_token>`; null for a read key.
    #[schema(required = true)]
    pub push_url: Option<String>,
    /// Ids of the channels this monitor alerts.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub channels: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required = true, format = DateTime)]
    pub last_heartbeat_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub last_status_change_at: Option<String>,
    #[schema(required = true)]
    pub last_msg: Option<String>,
    #[schema(required = true)]
    pub last_value: Option<f64>,
    /// The cron pattern; null without a schedule.
    #[schema(required = true)]
    pub schedule: Option<String>,
    /// The schedule's IANA zone; null without a schedule.
    #[schema(required = true)]
    pub timezone: Option<String>,
    /// Null without a schedule.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub grace_seconds: Option<u32>,
    /// Null: off.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub max_runtime_seconds: Option<u32>,
    /// Null: off.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub min_runtime_seconds: Option<u32>,
    #[schema(minimum = 1, maximum = 1000)]
    pub failure_threshold: u32,
    #[schema(minimum = 1, maximum = 1000)]
    pub recovery_threshold: u32,
    /// Null: no reminders.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub realert_every_seconds: Option<u32>,
    #[schema(max_items = 16)]
    pub maintenance: Vec<MaintenanceWindow>,
    /// When the job is next expected; null while `down` or `paused`.
    #[schema(required = true, format = DateTime)]
    pub next_due_at: Option<String>,
    /// When the monitor fails (or counts a failure) if nothing comes; null while
    /// `down` or `paused`.
    #[schema(required = true, format = DateTime)]
    pub next_deadline_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub last_success_at: Option<String>,
    /// The newest open run.
    #[schema(required = true)]
    pub current_run: Option<CurrentRun>,
    /// Runs started and not ended.
    #[schema(minimum = 0, maximum = 16)]
    pub open_runs: u32,
    /// The newest run that ended.
    #[schema(required = true)]
    pub last_run: Option<LastRun>,
    /// The count toward `failure_threshold`.
    pub consecutive_failures: u32,
    /// The count toward `recovery_threshold`.
    pub consecutive_successes: u32,
    /// While `down`: the rule that put it there.
    #[schema(required = true)]
    pub down_reason: Option<DownReason>,
    /// Whether a maintenance window is on now.
    pub in_maintenance: bool,
    /// When the current maintenance ends.
    #[schema(required = true, format = DateTime)]
    pub maintenance_until: Option<String>,
    /// The mute on, or null (`docs/states.md`, "Muting").
    #[schema(required = true)]
    pub muted: Option<MuteState>,
    /// Present only when the monitor has tags.
    #[serde(default)]
    #[schema(nullable = false)]
    pub tags: Option<Vec<String>>,
    /// Key/value labels (`{}` when none).
    pub labels: std::collections::BTreeMap<String, String>,
    pub severity: Severity,
    /// The addresses and CIDR ranges pushes are taken from; `[]`: any.
    pub allowed_sources: Vec<String>,
    /// Whether pushes must be signed (the secret is never shown).
    pub signed: bool,
    /// Present only for a monitor declared in a monitors file.
    #[serde(default)]
    #[schema(nullable = false)]
    pub key: Option<String>,
    /// Present only when the monitor has a slug.
    #[serde(default)]
    #[schema(nullable = false)]
    pub slug: Option<String>,
    /// A fleet: up while this many instances report; null: an ordinary monitor.
    #[schema(required = true, minimum = 1, maximum = 1000)]
    pub min_instances: Option<u32>,
    /// How long a fleet keeps a silent instance; null: the default (a day, and never
    /// less than the timeout).
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub instance_retention_seconds: Option<u32>,
    /// The ids of the monitors it depends on.
    #[schema(value_type = Vec<uuid::Uuid>, max_items = 32)]
    pub parents: Vec<String>,
    /// How long its parents must be up again before a held alert is sent; null: the
    /// default (60).
    #[schema(required = true, minimum = 0, maximum = 31_536_000)]
    pub dependency_grace_seconds: Option<u32>,
    /// A fleet's instances, by name (`[]` for other monitors).
    #[schema(max_items = 1000)]
    pub instances: Vec<InstanceState>,
    /// A fleet's instances that count now; null for other monitors.
    #[schema(required = true, minimum = 0, maximum = 1000)]
    pub instances_reporting: Option<u32>,
    /// The names of a fleet's instances that do not count now.
    #[schema(max_items = 1000)]
    pub missing_instances: Vec<String>,
    /// The alert held while a parent is down, or null.
    #[schema(required = true)]
    pub held_alert: Option<HeldAlertState>,
}

/// One instance of a fleet (`docs/states.md`, "Fleets").
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceState {
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]+$")]
    pub name: String,
    /// When it last reported.
    #[schema(format = DateTime)]
    pub last_seen: String,
    /// What it last reported.
    pub status: PushStatus,
    /// Whether it counts now: its last report was `up`, within `timeout_seconds`.
    pub reporting: bool,
}

/// An alert held for a parent (`docs/states.md`, "Dependencies").
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeldAlertState {
    /// The alert held.
    pub alert: super::events::AlertKind,
    /// The alert's reason (`heartbeat` for an `up`).
    pub reason: super::events::EventReason,
    /// The parent that was down.
    #[schema(value_type = uuid::Uuid)]
    pub parent: String,
    #[schema(format = DateTime)]
    pub since: String,
}

/// Why a monitor went down (`docs/states.md`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DownReason {
    Timeout,
    Schedule,
    Manual,
    ExitStatus,
    MaxRuntime,
    TooFast,
    Instances,
}

/// Why a run failed: a `fail`, a non-zero exit status, or an end sooner than
/// `min_runtime_seconds`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    Manual,
    ExitStatus,
    TooFast,
}

/// How a run ended.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Success,
    Failure,
}

/// A maintenance window as a monitor shows it: one-off, or recurring.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MaintenanceWindow {
    Once(OnceWindow),
    Recurring(RecurringWindow),
}

/// A one-off maintenance window.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnceWindow {
    #[schema(format = DateTime)]
    pub start: String,
    /// After `start`.
    #[schema(format = DateTime)]
    pub end: String,
}

/// A maintenance window starting at each time of a cron pattern.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecurringWindow {
    #[schema(min_length = 1, max_length = 200)]
    pub cron: String,
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub duration_seconds: u32,
    /// An IANA zone.
    pub timezone: String,
}

/// A maintenance window in a body: `{"start", "end"}` or `{"cron",
/// "duration_seconds", "timezone"?}`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MaintenanceWindowFields {
    Once(OnceWindow),
    Recurring(RecurringWindowFields),
}

/// A recurring maintenance window in a body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecurringWindowFields {
    /// A cron pattern as for `schedule`.
    #[schema(min_length = 1, max_length = 200)]
    pub cron: String,
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub duration_seconds: u32,
    /// An IANA zone; `UTC` when absent or null.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A monitor's newest open run.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrentRun {
    /// The run id its start gave, or null.
    #[schema(required = true, value_type = Option<uuid::Uuid>)]
    pub rid: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Whether it passed `max_runtime_seconds`.
    pub overran: bool,
}

/// A monitor's newest run that ended.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LastRun {
    /// Null for an end with no start.
    #[schema(required = true, format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub ended_at: String,
    /// Null without a start.
    #[schema(required = true, minimum = 0)]
    pub duration_ms: Option<u64>,
    #[schema(required = true, minimum = 0, maximum = 255)]
    pub exit_status: Option<u8>,
    pub outcome: RunOutcome,
    /// For a failure; null for a success.
    #[schema(required = true)]
    pub reason: Option<FailureReason>,
    /// The output's last 1,024 bytes, `…` first when cut.
    #[schema(required = true)]
    pub output_excerpt: Option<String>,
}

/// `GET /api/monitors`: one page, in id order (oldest first).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorList {
    pub monitors: Vec<Monitor>,
    /// How many monitors of each state the filters let through, over every page.
    pub counts: StatusCounts,
    /// The `cursor` of the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A count per state.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusCounts {
    pub pending: u64,
    pub up: u64,
    pub down: u64,
    pub paused: u64,
    pub unknown: u64,
}

/// How urgent a monitor's alerts are (Alertmanager's `severity` label).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

/// Labels as a body gives them: at most 32; keys an optional DNS-subdomain prefix
/// and `/`, then 1 to 63 of letters, digits, `-`, `_` and `.`, starting and ending
/// with a letter or digit; values empty or the same up to 63 characters.
fn label_map() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(63))
                .pattern(Some("^([A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?)?$"))
                .into(),
        ))))
        .max_properties(Some(32))
        .description(Some(
            "Label keys to values, checked as Kubernetes checks labels; replaces every \
             label; null: none",
        ))
        .build()
}

/// The body of `POST /api/monitors` (`docs/api.md`, "Monitor fields"). Integers are
/// JSON numbers without a fraction. A monitor is timed by `timeout_seconds` or by a
/// `schedule`, never both: `timeout_seconds` is required unless `schedule` is given,
/// `timeout_seconds` and `interval_seconds` are refused with one, `timezone` and
/// `grace_seconds` without one; `interval_seconds` must not be greater than
/// `timeout_seconds`, nor `min_runtime_seconds` at least `max_runtime_seconds`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorFields {
    /// 1 to 200 characters, no control characters, not only white space or invisible
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Required unless `schedule` is given (null counts as absent).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub timeout_seconds: Option<u32>,
    /// Defaults to `timeout_seconds` (also when null).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub interval_seconds: Option<u32>,
    /// Ids of existing channels; repeats are dropped.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 64)]
    pub channels: Option<Vec<String>>,
    /// Each 1 to 64 characters; repeats are dropped.
    #[serde(default)]
    #[schema(schema_with = nullable_tags)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = label_map)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// `critical` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub severity: Option<Severity>,
    /// At most 64 addresses or CIDR ranges pushes are taken from; null or `[]`: any.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub allowed_sources: Option<Vec<String>>,
    /// The secret pushes must be signed with (16 to 256 visible ASCII characters),
    /// write-only; null: none.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 256, pattern = "^[!-~]+$")]
    pub signing_secret: Option<String>,
    /// A cron pattern of 5 fields, or `@yearly`, `@monthly`, `@weekly`, `@daily`,
    /// `@hourly`, firing at least once a year; null: none.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub schedule: Option<String>,
    /// An IANA zone name (`Europe/Paris`), `UTC` by default; only with a schedule.
    #[serde(default)]
    pub timezone: Option<String>,
    /// 3600 by default; only with a schedule.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 31_536_000)]
    pub grace_seconds: Option<u32>,
    /// Null: off (the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub max_runtime_seconds: Option<u32>,
    /// Null: off (the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub min_runtime_seconds: Option<u32>,
    /// 1 by default.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub failure_threshold: Option<u32>,
    /// 1 by default.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub recovery_threshold: Option<u32>,
    /// Null: no reminders (the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub realert_every_seconds: Option<u32>,
    /// Null: none.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub maintenance: Option<Vec<MaintenanceWindowFields>>,
    /// 1 to 100 of `a-z`, `0-9` and `-`, unique among monitors; null: none.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = "^[a-z0-9-]+$")]
    pub slug: Option<String>,
    /// A fleet: up while at least this many distinct instances (`instance=`) reported
    /// within the timeout; null: an ordinary monitor (the default). Not with a
    /// schedule, run limits or thresholds above 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub min_instances: Option<u32>,
    /// How long a fleet keeps an instance that stopped reporting; at least
    /// `timeout_seconds`; null: a day.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub instance_retention_seconds: Option<u32>,
    /// Ids of existing monitors it depends on (not itself, none depending on it);
    /// repeats are dropped; null: none.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 32)]
    pub parents: Option<Vec<String>>,
    /// How long the parents must be up again before a held alert is sent; null: 60.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 31_536_000)]
    pub dependency_grace_seconds: Option<u32>,
    /// A token brought from another tool: 22 base64url characters, or 16 to 128 of
    /// `A–Z a–z 0–9 - _ . ~` with at least 64 bits of estimated randomness, unique;
    /// null: a random one.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 128, pattern = "^[A-Za-z0-9._~-]+$")]
    pub push_token: Option<String>,
}

/// The body of `PATCH /api/monitors/{id}`: only the fields given change (see
/// `MonitorFields` for how they go together, checked against the whole
/// configuration the change leaves).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorPatch {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$",
        nullable = false
    )]
    pub name: Option<String>,
    /// Null leaves it unchanged.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub timeout_seconds: Option<u32>,
    /// Null leaves it unchanged.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub interval_seconds: Option<u32>,
    /// Replaces the list; null leaves it unchanged.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 64)]
    pub channels: Option<Vec<String>>,
    /// Replaces the list; null leaves it unchanged.
    #[serde(default)]
    #[schema(schema_with = nullable_tags)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = label_map)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub severity: Option<Severity>,
    /// Replaces the list; null or `[]`: any source.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub allowed_sources: Option<Vec<String>>,
    /// Replaces the secret; null: pushes need no signature.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 256, pattern = "^[!-~]+$")]
    pub signing_secret: Option<String>,
    /// Null removes the schedule.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub schedule: Option<String>,
    /// Null leaves it unchanged.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 31_536_000)]
    pub grace_seconds: Option<u32>,
    /// Null turns it off.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub max_runtime_seconds: Option<u32>,
    /// Null turns it off.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub min_runtime_seconds: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub failure_threshold: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub recovery_threshold: Option<u32>,
    /// Null turns reminders off.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub realert_every_seconds: Option<u32>,
    /// Replaces the list; null empties it.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub maintenance: Option<Vec<MaintenanceWindowFields>>,
    /// Null takes the slug away.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = "^[a-z0-9-]+$")]
    pub slug: Option<String>,
    /// A fleet: up while at least this many distinct instances (`instance=`) reported
    /// within the timeout; null makes it an ordinary monitor. Not with a
    /// schedule, run limits or thresholds above 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub min_instances: Option<u32>,
    /// How long a fleet keeps an instance that stopped reporting; at least
    /// `timeout_seconds`; null: a day.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub instance_retention_seconds: Option<u32>,
    /// Ids of existing monitors it depends on (not itself, none depending on it);
    /// replaces the list; null: none.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 32)]
    pub parents: Option<Vec<String>>,
    /// How long the parents must be up again before a held alert is sent; null: 60.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 31_536_000)]
    pub dependency_grace_seconds: Option<u32>,
}

/// A mute that is on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteState {
    /// When it ends by itself, or null.
    #[schema(required = true, format = DateTime)]
    pub until: Option<String>,
    /// Whether it ends at the next recovery ("acknowledged").
    pub until_recovery: bool,
    /// When it was asked for.
    #[schema(format = DateTime)]
    pub since: String,
}

/// The body of a mute: `until` or `until_recovery: true`, exactly one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteFields {
    /// When the mute ends: in the future, at most a year ahead.
    #[serde(default)]
    #[schema(format = DateTime, nullable = false)]
    pub until: Option<String>,
    /// `true`: until the next recovery.
    #[serde(default)]
    #[schema(nullable = false)]
    pub until_recovery: Option<bool>,
}

/// What a mute or unmute by selector did: how many monitors, and which.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MutedMonitors {
    /// `mute`: the monitors muted.
    #[serde(default)]
    #[schema(nullable = false)]
    pub muted: Option<u32>,
    /// `unmute`: the monitors that were muted and are no longer.
    #[serde(default)]
    #[schema(nullable = false)]
    pub unmuted: Option<u32>,
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub monitors: Vec<String>,
}

/// What a bulk change does to each monitor it selects.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Pause,
    Resume,
    Mute,
    Unmute,
    SetChannels,
    AddChannels,
    RemoveChannels,
    Delete,
}

/// The body of a bulk change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkFields {
    pub action: BulkAction,
    /// `mute` only: when the mute ends (in the future, at most a year ahead).
    #[serde(default)]
    #[schema(format = DateTime, nullable = false)]
    pub until: Option<String>,
    /// `mute` only: `true` mutes until the next recovery.
    #[serde(default)]
    #[schema(nullable = false)]
    pub until_recovery: Option<bool>,
    /// `set_channels`, `add_channels`, `remove_channels` only (and required there):
    /// ids of channels; those set or added must exist.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 64, nullable = false)]
    pub channels: Option<Vec<String>>,
    /// `true`: decide and list what would change, and write nothing.
    #[serde(default)]
    #[schema(nullable = false)]
    pub dry_run: Option<bool>,
}

/// One selected monitor in a bulk change's answer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkMonitor {
    #[schema(value_type = uuid::Uuid)]
    pub id: String,
    pub name: String,
    /// The kinds of the events recorded (in a dry run: that would be); empty when the
    /// change changes nothing for this monitor.
    pub events: Vec<String>,
}

/// What a bulk change did (or, in a dry run, would do).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAnswer {
    pub dry_run: bool,
    /// The monitors the query selected.
    pub matched: u32,
    /// Those the change records events for.
    pub changed: u32,
    pub monitors: Vec<BulkMonitor>,
}

//! The job fields of a monitor in the management API (`docs/api.md`, "Monitor
//! fields"): a schedule, run limits, thresholds, reminders, maintenance windows and a
//! chosen push token, parsed field by field so each error names its field; and what
//! the Monitor and Event objects show of runs, schedules and maintenance.

use serde_json::{Map, Value, json};

use crate::domain::event::{Event, Notice, RunOutcome};
use crate::domain::ids::{MonitorId, PushToken, Timestamp};
use crate::domain::labels::{Labels, Severity};
use crate::domain::machine::{ConfigPatch, MAX_INSTANCES, MAX_PARENTS, MAX_THRESHOLD, Monitor};
use crate::domain::schedule::{
    self, CronError, DEFAULT_TIMEZONE, MAX_MAINTENANCE_WINDOWS, MaintenanceWindow,
};

use super::error::ApiError;

/// The longest any duration field may be: a year.
pub const MAX_SECONDS: u64 = 31_536_000;

/// The job fields a body may have (besides `name`, `timeout_seconds`,
/// `interval_seconds`, `channels` and `tags`), and `labels` and `severity`.
pub const JOB_FIELDS: &[&str] = &[
    "schedule",
    "timezone",
    "grace_seconds",
    "max_runtime_seconds",
    "min_runtime_seconds",
    "failure_threshold",
    "recovery_threshold",
    "realert_every_seconds",
    "maintenance",
    "labels",
    "severity",
    "allowed_sources",
    "signing_secret",
    "min_instances",
    "instance_retention_seconds",
    "parents",
    "dependency_grace_seconds",
];

fn invalid(message: String) -> ApiError {
    ApiError::Unprocessable(message)
}

/// A whole number in `min..=max`, or absent (`None`); `null` is an error unless
/// `nullable`, where it is `Some(None)`.
fn whole(
    field: &str,
    value: Option<&Value>,
    min: u64,
    max: u64,
    nullable: bool,
) -> Result<Option<Option<u32>>, ApiError> {
    let error = || {
        invalid(format!(
            "{field} must be a whole number from {min} to {max}{}",
            if nullable { ", or null" } else { "" }
        ))
    };
    match value {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(Some(None)),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(u32::try_from(n).ok())),
            _ => Err(error()),
        },
        Some(_) => Err(error()),
    }
}

fn string<'a>(field: &str, value: Option<&'a Value>) -> Result<Option<&'a str>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid(format!("{field} must be a string"))),
    }
}

/// Checks a pattern and zone as `pattern_field` and `zone_field`.
fn check_cron(
    pattern_field: &str,
    zone_field: &str,
    expression: &str,
    timezone: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    schedule::check_cron(expression, timezone, now).map_err(|error| match error {
        CronError::Expression(why) => invalid(format!("{pattern_field} {why}")),
        CronError::Timezone(why) => invalid(format!("{zone_field} {why}")),
    })
}

/// The job fields of `fields` as a patch; for a `POST`, the caller fills in the
/// defaults by applying it to a fresh configuration. Each field is checked on its
/// own; how they go together is `machine::check`'s.
pub fn parse_patch(
    fields: &Map<String, Value>,
    patch: &mut ConfigPatch,
    current_timezone: Option<&str>,
    now: Timestamp,
) -> Result<(), ApiError> {
    patch.schedule = match fields.get("schedule") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(expression)) => Some(Some(expression.clone())),
        Some(_) => {
            return Err(invalid(
                "schedule must be a cron pattern (a string), or null".to_owned(),
            ));
        }
    };
    patch.timezone = string("timezone", fields.get("timezone"))?.map(str::to_owned);
    if let Some(zone) = &patch.timezone {
        schedule::parse_timezone(zone).map_err(|why| invalid(format!("timezone {why}")))?;
    }
    if let Some(Some(expression)) = &patch.schedule {
        let zone = patch
            .timezone
            .as_deref()
            .or(current_timezone)
            .unwrap_or(DEFAULT_TIMEZONE);
        check_cron("schedule", "timezone", expression, zone, now)?;
    }
    patch.grace_seconds = whole(
        "grace_seconds",
        fields.get("grace_seconds"),
        1,
        MAX_SECONDS,
        false,
    )?
    .flatten();
    patch.max_runtime_seconds = whole(
        "max_runtime_seconds",
        fields.get("max_runtime_seconds"),
        1,
        MAX_SECONDS,
        true,
    )?;
    patch.min_runtime_seconds = whole(
        "min_runtime_seconds",
        fields.get("min_runtime_seconds"),
        1,
        MAX_SECONDS,
        true,
    )?;
    let threshold = u64::from(MAX_THRESHOLD);
    patch.failure_threshold = whole(
        "failure_threshold",
        fields.get("failure_threshold"),
        1,
        threshold,
        false,
    )?
    .flatten();
    patch.recovery_threshold = whole(
        "recovery_threshold",
        fields.get("recovery_threshold"),
        1,
        threshold,
        false,
    )?
    .flatten();
    patch.realert_every_seconds = whole(
        "realert_every_seconds",
        fields.get("realert_every_seconds"),
        1,
        MAX_SECONDS,
        true,
    )?;
    patch.maintenance = match fields.get("maintenance") {
        None => None,
        Some(Value::Null) => Some(Vec::new()),
        Some(value) => Some(parse_maintenance(value, now)?),
    };
    patch.labels = parse_labels(fields.get("labels"))?.map(Box::new);
    patch.severity = parse_severity(fields.get("severity"))?;
    patch.allowed_sources = parse_allowed_sources(fields.get("allowed_sources"))?;
    patch.signing_secret = parse_signing_secret(fields.get("signing_secret"))?;
    parse_fleet_and_parents(fields, patch)
}

/// A fleet's `min_instances` and `instance_retention_seconds`, and `parents` with
/// `dependency_grace_seconds` (`docs/api.md`, "Fleets" and "Dependencies").
fn parse_fleet_and_parents(
    fields: &Map<String, Value>,
    patch: &mut ConfigPatch,
) -> Result<(), ApiError> {
    patch.min_instances = whole(
        "min_instances",
        fields.get("min_instances"),
        1,
        MAX_INSTANCES as u64,
        true,
    )?;
    patch.instance_retention_seconds = whole(
        "instance_retention_seconds",
        fields.get("instance_retention_seconds"),
        1,
        MAX_SECONDS,
        true,
    )?;
    patch.dependency_grace_seconds = whole(
        "dependency_grace_seconds",
        fields.get("dependency_grace_seconds"),
        0,
        MAX_SECONDS,
        true,
    )?;
    patch.parents = parse_parents(fields.get("parents"))?;
    Ok(())
}

/// `parents`: an array of monitor ids (each once); `null` or `[]`: none. Whether
/// they exist and make no cycle is the registry's to check.
pub fn parse_parents(value: Option<&Value>) -> Result<Option<Vec<MonitorId>>, ApiError> {
    let items = match value {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(Value::Array(items)) if items.len() <= MAX_PARENTS => items,
        Some(_) => {
            return Err(invalid(format!(
                "parents must be an array of at most {MAX_PARENTS} monitor ids, or null"
            )));
        }
    };
    let mut parents = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let id = item
            .as_str()
            .and_then(MonitorId::parse)
            .ok_or_else(|| invalid(format!("parents[{index}] must be a monitor id")))?;
        if !parents.contains(&id) {
            parents.push(id);
        }
    }
    Ok(Some(parents))
}

/// The most ranges `allowed_sources` may list.
pub const MAX_ALLOWED_SOURCES: usize = 64;

/// The shortest and longest `signing_secret`.
pub const MIN_SECRET_CHARS: usize = 16;
pub const MAX_SECRET_CHARS: usize = 256;

/// `allowed_sources`: addresses (`203.0.113.7`, `2001:db8::1`) and CIDR ranges
/// (`10.0.0.0/8`); `null` or `[]`: any source.
pub fn parse_allowed_sources(value: Option<&Value>) -> Result<Option<Vec<ipnet::IpNet>>, ApiError> {
    let error = |detail: String| {
        invalid(format!(
            "allowed_sources must be an array of at most {MAX_ALLOWED_SOURCES} addresses or \
             CIDR ranges (10.0.0.0/8), or null{detail}"
        ))
    };
    let items = match value {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(Value::Array(items)) if items.len() <= MAX_ALLOWED_SOURCES => items,
        Some(_) => return Err(error(String::new())),
    };
    let mut ranges = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = item.as_str() else {
            return Err(error(String::new()));
        };
        let range = parse_source_range(text).ok_or_else(|| {
            error(format!(
                "; {:?} is neither",
                text.chars().take(64).collect::<String>()
            ))
        })?;
        if !ranges.contains(&range) {
            ranges.push(range);
        }
    }
    Ok(Some(ranges))
}

/// An address (a range of one) or a CIDR range, as `allowed_sources` lists them;
/// IPv4-mapped IPv6 is its IPv4 form (what the source check compares).
pub fn parse_source_range(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    let range = match text.parse::<ipnet::IpNet>() {
        Ok(range) => range.trunc(),
        Err(_) => ipnet::IpNet::from(text.parse::<std::net::IpAddr>().ok()?.to_canonical()),
    };
    Some(range)
}

/// `signing_secret`: 16 to 256 visible ASCII characters (`openssl rand -hex 32`);
/// `null` takes it away (pushes need no signature again).
pub fn parse_signing_secret(value: Option<&Value>) -> Result<Option<Option<String>>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(secret)) if is_signing_secret(secret) => Ok(Some(Some(secret.clone()))),
        Some(_) => Err(invalid(format!(
            "signing_secret must be {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} visible ASCII \
             characters (openssl rand -hex 32), or null"
        ))),
    }
}

/// Whether `secret` is a valid `signing_secret`.
pub fn is_signing_secret(secret: &str) -> bool {
    (MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&secret.len())
        && secret.bytes().all(|byte| byte.is_ascii_graphic())
}

/// `allowed_sources` as the API and the monitors file write them: a range of one
/// address as the address.
pub fn allowed_sources_text(ranges: &[ipnet::IpNet]) -> Vec<String> {
    ranges
        .iter()
        .map(|range| {
            if range.prefix_len() == range.max_prefix_len() {
                range.addr().to_string()
            } else {
                range.to_string()
            }
        })
        .collect()
}

/// `labels`: an object of label keys to string values (`domain::labels`); `null`
/// takes every label away. An error names the key at fault.
pub fn parse_labels(value: Option<&Value>) -> Result<Option<Labels>, ApiError> {
    let pairs = match value {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Labels::default())),
        Some(Value::Object(pairs)) => pairs,
        Some(_) => {
            return Err(invalid(
                "labels must be an object of label keys to string values".to_owned(),
            ));
        }
    };
    let mut labels = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        let Value::String(value) = value else {
            return Err(invalid(format!(
                "labels: the value of label {key:?} must be a string"
            )));
        };
        labels.push((key.clone(), value.clone()));
    }
    Labels::new(labels)
        .map(Some)
        .map_err(|error| invalid(format!("labels: {error}")))
}

/// `severity`: `critical`, `warning` or `info`.
pub fn parse_severity(value: Option<&Value>) -> Result<Option<Severity>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(text)) => Severity::parse(text)
            .map(Some)
            .ok_or_else(|| invalid("severity must be critical, warning or info".to_owned())),
        Some(_) => Err(invalid(
            "severity must be critical, warning or info".to_owned(),
        )),
    }
}

/// Labels as the API, the monitors file and alerts write them: a JSON object.
pub fn labels_json(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(key, value)| (key.to_owned(), Value::String(value.to_owned())))
            .collect(),
    )
}

/// `maintenance`: an array of `{"start", "end"}` and `{"cron", "duration_seconds",
/// "timezone"?}` objects.
pub fn parse_maintenance(
    value: &Value,
    now: Timestamp,
) -> Result<Vec<MaintenanceWindow>, ApiError> {
    let items = match value {
        Value::Array(items) if items.len() <= MAX_MAINTENANCE_WINDOWS => items,
        _ => {
            return Err(invalid(format!(
                "maintenance must be an array of at most {MAX_MAINTENANCE_WINDOWS} windows"
            )));
        }
    };
    let mut windows = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = |message: String| invalid(format!("maintenance[{index}]: {message}"));
        let Value::Object(window) = item else {
            return Err(at(
                "a window is {\"start\", \"end\"} or {\"cron\", \"duration_seconds\", \"timezone\"}"
                    .to_owned(),
            ));
        };
        let recurring = window.contains_key("cron");
        let allowed: &[&str] = if recurring {
            &["cron", "duration_seconds", "timezone"]
        } else {
            &["start", "end"]
        };
        if let Some(unknown) = window.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(at(format!(
                "unknown field {unknown:?}; the fields are {}",
                allowed.join(", ")
            )));
        }
        if recurring {
            let cron = string("cron", window.get("cron"))
                .map_err(|error| at(error.to_string()))?
                .ok_or_else(|| at("cron is required".to_owned()))?;
            let timezone = string("timezone", window.get("timezone"))
                .map_err(|error| at(error.to_string()))?
                .unwrap_or(DEFAULT_TIMEZONE);
            check_cron("cron", "timezone", cron, timezone, now)
                .map_err(|error| at(error.to_string()))?;
            let duration_seconds = whole(
                "duration_seconds",
                window.get("duration_seconds"),
                1,
                MAX_SECONDS,
                false,
            )
            .map_err(|error| at(error.to_string()))?
            .flatten()
            .ok_or_else(|| at("duration_seconds is required".to_owned()))?;
            windows.push(MaintenanceWindow::Recurring {
                cron: cron.to_owned(),
                timezone: timezone.to_owned(),
                duration_seconds,
            });
        } else {
            let moment = |field: &str| -> Result<Timestamp, ApiError> {
                window
                    .get(field)
                    .and_then(Value::as_str)
                    .and_then(Timestamp::parse_rfc3339)
                    .ok_or_else(|| at(format!("{field} must be an RFC 3339 timestamp")))
            };
            let (start, end) = (moment("start")?, moment("end")?);
            if end <= start {
                return Err(at("end must be after start".to_owned()));
            }
            windows.push(MaintenanceWindow::Once { start, end });
        }
    }
    Ok(windows)
}

/// `push_token` on a creation: a token brought from another tool.
pub fn parse_push_token(value: Option<&Value>) -> Result<Option<PushToken>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => PushToken::choose(text)
            .map(Some)
            .map_err(|why| invalid(format!("push_token {why}"))),
        Some(_) => Err(invalid("push_token must be a string".to_owned())),
    }
}

fn rfc3339(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_rfc3339()))
}

/// A maintenance window as the API and the monitors file write it.
pub fn window_json(window: &MaintenanceWindow) -> Value {
    match window {
        MaintenanceWindow::Once { start, end } => {
            json!({"start": start.to_rfc3339(), "end": end.to_rfc3339()})
        }
        MaintenanceWindow::Recurring {
            cron,
            timezone,
            duration_seconds,
        } => json!({"cron": cron, "timezone": timezone, "duration_seconds": duration_seconds}),
    }
}

/// The job configuration fields, as `created`/`updated` events and the Monitor show
/// them.
pub fn config_fields(
    fields: &mut Map<String, Value>,
    config: &crate::domain::event::MonitorConfig,
) {
    let schedule = config.schedule.as_ref();
    fields.insert(
        "schedule".to_owned(),
        json!(schedule.map(|schedule| &schedule.expression)),
    );
    fields.insert(
        "timezone".to_owned(),
        json!(schedule.map(|schedule| &schedule.timezone)),
    );
    fields.insert(
        "grace_seconds".to_owned(),
        json!(schedule.map(|schedule| schedule.grace_seconds)),
    );
    if schedule.is_some() {
        // A cron monitor is not timed by these (they are kept for a switch back).
        fields.insert("timeout_seconds".to_owned(), Value::Null);
        fields.insert("interval_seconds".to_owned(), Value::Null);
    }
    fields.insert(
        "max_runtime_seconds".to_owned(),
        json!(config.max_runtime_seconds),
    );
    fields.insert(
        "min_runtime_seconds".to_owned(),
        json!(config.min_runtime_seconds),
    );
    fields.insert(
        "failure_threshold".to_owned(),
        json!(config.failure_threshold),
    );
    fields.insert(
        "recovery_threshold".to_owned(),
        json!(config.recovery_threshold),
    );
    fields.insert(
        "realert_every_seconds".to_owned(),
        json!(config.realert_every_seconds),
    );
    fields.insert(
        "maintenance".to_owned(),
        Value::Array(config.maintenance.iter().map(window_json).collect()),
    );
    fields.insert("labels".to_owned(), labels_json(&config.labels));
    fields.insert("severity".to_owned(), json!(config.severity.as_str()));
    // The secret itself is never shown: only whether there is one.
    fields.insert(
        "allowed_sources".to_owned(),
        json!(allowed_sources_text(&config.allowed_sources)),
    );
    fields.insert("signed".to_owned(), json!(config.signing_secret.is_some()));
    fields.insert("min_instances".to_owned(), json!(config.min_instances));
    fields.insert(
        "instance_retention_seconds".to_owned(),
        json!(config.instance_retention_seconds),
    );
    fields.insert(
        "parents".to_owned(),
        json!(
            config
                .parents
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        ),
    );
    fields.insert(
        "dependency_grace_seconds".to_owned(),
        json!(config.dependency_grace_seconds),
    );
}

/// What the Monitor object shows of a fleet's instances (none for other monitors)
/// and of an alert held for a parent, seen at `now`.
fn fleet_and_hold_fields(fields: &mut Map<String, Value>, monitor: &Monitor, now: Timestamp) {
    let instances: Vec<Value> = monitor
        .instances
        .iter()
        .map(|instance| {
            json!({
                "name": instance.name.as_str(),
                "last_seen": instance.last_seen.to_rfc3339(),
                "status": instance.status.as_str(),
                "reporting": monitor.instance_reporting(instance, now),
            })
        })
        .collect();
    fields.insert("instances".to_owned(), Value::Array(instances));
    let reporting = monitor.is_fleet().then(|| monitor.instances_reporting(now));
    fields.insert("instances_reporting".to_owned(), json!(reporting));
    let missing: Vec<&str> = monitor
        .missing_instances(now)
        .into_iter()
        .map(|name| name.as_str())
        .collect();
    fields.insert("missing_instances".to_owned(), json!(missing));
    let held = monitor.held_alert.map(|held| {
        let mut hold = Map::new();
        notice_fields(&mut hold, held.notice);
        hold.insert("parent".to_owned(), json!(held.parent.to_string()));
        hold.insert("since".to_owned(), json!(held.since.to_rfc3339()));
        Value::Object(hold)
    });
    fields.insert("held_alert".to_owned(), json!(held));
}

/// What the Monitor object shows of a monitor's runs, schedule, counters and
/// maintenance, seen at `now` (`docs/api.md`, "The Monitor object").
pub fn state_fields(fields: &mut Map<String, Value>, monitor: &Monitor, now: Timestamp) {
    config_fields(fields, &monitor.config);
    fleet_and_hold_fields(fields, monitor, now);
    fields.insert("next_due_at".to_owned(), rfc3339(monitor.next_due_at()));
    fields.insert(
        "next_deadline_at".to_owned(),
        rfc3339(monitor.next_deadline()),
    );
    fields.insert(
        "last_success_at".to_owned(),
        rfc3339(monitor.last_success_at),
    );
    let current = monitor.runs.last().map(|run| {
        json!({
            "rid": run.rid.map(|rid| rid.to_string()),
            "started_at": run.started_at.to_rfc3339(),
            "overran": run.overran,
        })
    });
    fields.insert("current_run".to_owned(), json!(current));
    fields.insert("open_runs".to_owned(), json!(monitor.runs.len()));
    let last = monitor.last_run.as_deref().map(|run| {
        json!({
            "started_at": rfc3339(run.started_at),
            "ended_at": run.ended_at.to_rfc3339(),
            "duration_ms": run.duration_ms(),
            "exit_status": run.exit_status,
            "outcome": run.outcome.as_str(),
            "reason": failure_reason(run.outcome),
            "output_excerpt": run.output_excerpt,
        })
    });
    fields.insert("last_run".to_owned(), json!(last));
    fields.insert(
        "consecutive_failures".to_owned(),
        json!(monitor.consecutive_failures),
    );
    fields.insert(
        "consecutive_successes".to_owned(),
        json!(monitor.consecutive_successes),
    );
    let down_reason = (monitor.status == crate::domain::machine::Status::Down)
        .then_some(monitor.last_down_reason)
        .flatten()
        .map(|reason| reason.as_str());
    fields.insert("down_reason".to_owned(), json!(down_reason));
    let until = monitor.maintenance_until(now);
    fields.insert("in_maintenance".to_owned(), json!(until.is_some()));
    fields.insert("maintenance_until".to_owned(), rfc3339(until));
    let muted = monitor.mute.filter(|_| monitor.muted_at(now)).map(|mute| {
        json!({
            "until": rfc3339(mute.until),
            "until_recovery": mute.until_recovery,
            "since": mute.since.to_rfc3339(),
        })
    });
    fields.insert("muted".to_owned(), json!(muted));
}

fn failure_reason(outcome: RunOutcome) -> Option<&'static str> {
    match outcome {
        RunOutcome::Success => None,
        RunOutcome::Failure(reason) => Some(reason.as_str()),
    }
}

fn notice_fields(fields: &mut Map<String, Value>, notice: Notice) {
    let (alert, reason) = match notice {
        Notice::Down(reason) => ("down", reason.as_str()),
        Notice::Up => ("up", "heartbeat"),
    };
    fields.insert("alert".to_owned(), json!(alert));
    fields.insert("reason".to_owned(), json!(reason));
}

/// The fields of the job event kinds (`docs/api.md`, "The Event object"); `false`
/// for any other event.
pub fn event_fields(fields: &mut Map<String, Value>, event: &Event) -> bool {
    let rid = |rid: Option<crate::domain::event::RunId>| json!(rid.map(|rid| rid.to_string()));
    match event {
        Event::RunStarted(start) => {
            fields.insert("rid".to_owned(), rid(start.rid));
            fields.insert(
                "msg".to_owned(),
                json!(start.msg.as_ref().map(|msg| msg.as_str())),
            );
            fields.insert(
                "output".to_owned(),
                json!(start.output.as_ref().map(|output| output.as_str())),
            );
            let dropped = start
                .dropped
                .map(|run| json!({"rid": rid(run.rid), "started_at": run.started_at.to_rfc3339()}));
            fields.insert("dropped_run".to_owned(), json!(dropped));
        }
        Event::RunEnded(end) => {
            fields.insert("rid".to_owned(), rid(end.rid));
            fields.insert(
                "started_at".to_owned(),
                json!(end.run.map(|run| run.started_at.to_rfc3339())),
            );
            fields.insert("outcome".to_owned(), json!(end.outcome.as_str()));
            fields.insert("reason".to_owned(), json!(failure_reason(end.outcome)));
            fields.insert("exit_status".to_owned(), json!(end.exit_status));
            fields.insert(
                "output".to_owned(),
                json!(end.output.as_ref().map(|output| output.as_str())),
            );
        }
        Event::LogReceived(entry) => {
            fields.insert("rid".to_owned(), rid(entry.rid));
            fields.insert(
                "msg".to_owned(),
                json!(entry.msg.as_ref().map(|msg| msg.as_str())),
            );
            fields.insert(
                "output".to_owned(),
                json!(entry.output.as_ref().map(|output| output.as_str())),
            );
        }
        Event::RunOverran(run) => {
            fields.insert("rid".to_owned(), rid(run.rid));
            fields.insert("started_at".to_owned(), json!(run.started_at.to_rfc3339()));
        }
        Event::FailureCounted { reason, count } => {
            fields.insert("reason".to_owned(), json!(reason.as_str()));
            fields.insert("count".to_owned(), json!(count));
        }
        Event::SuccessCounted { count } => {
            fields.insert("count".to_owned(), json!(count));
        }
        Event::Reminder { reason } => {
            fields.insert("reason".to_owned(), json!(reason.as_str()));
        }
        Event::AlertSuppressed(notice) => {
            notice_fields(fields, *notice);
            fields.insert("held_by".to_owned(), json!("maintenance"));
        }
        Event::AlertMuted(notice) => {
            notice_fields(fields, *notice);
            fields.insert("held_by".to_owned(), json!("mute"));
        }
        Event::AlertReleased(notice) => notice_fields(fields, *notice),
        Event::AlertHeld { notice, parent } => {
            notice_fields(fields, *notice);
            fields.insert("held_by".to_owned(), json!("dependency"));
            fields.insert("parent".to_owned(), json!(parent.to_string()));
        }
        Event::InstanceForgotten { instance } => {
            fields.insert("instance".to_owned(), json!(instance.as_str()));
        }
        Event::Muted {
            until,
            until_recovery,
        } => {
            fields.insert("until".to_owned(), rfc3339(*until));
            fields.insert("until_recovery".to_owned(), json!(until_recovery));
        }
        Event::Unmuted { reason } => {
            fields.insert("reason".to_owned(), json!(reason.as_str()));
        }
        Event::VerdictHeld { reason, deadline } => {
            fields.insert("reason".to_owned(), json!(reason.as_str()));
            fields.insert("deadline".to_owned(), json!(deadline.to_rfc3339()));
            fields.insert("held_by".to_owned(), json!("guard"));
        }
        _ => return false,
    }
    true
}

//! The management API (`docs/api.md`): monitors and their history, behind the admin
//! bearer token or an API key (`auth`: read keys may only read). Bodies are validated
//! field by field, so errors name the field.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::domain::event::{Event, MonitorConfig};
use crate::domain::ids::{ChannelId, MonitorId, PushToken, Timestamp};
use crate::domain::machine::{Command, ConfigPatch, Monitor, Rejection};
use crate::domain::name::check_name;
use crate::domain::slug;
use crate::monitor::registry::new_push_token;
use crate::store::RecordedEvent;

use super::auth::{Principal, redact_credentials, require_access};
use super::error::ApiError;
use super::monitor_fields;
use super::monitor_query::MonitorQuery;
use super::{AppState, PathParam};

pub const MAX_TIMEOUT_SECONDS: u64 = 31_536_000;
pub const DEFAULT_EVENTS_LIMIT: usize = 100;
pub const MAX_EVENTS_LIMIT: usize = 1000;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/monitors", post(create_monitor).get(list_monitors))
        .route(
            "/api/monitors/{id}",
            get(get_monitor)
                .patch(update_monitor)
                .delete(delete_monitor),
        )
        .route("/api/monitors/{id}/rotate-token", post(rotate_token))
        .route("/api/monitors/{id}/pause", post(pause))
        .route("/api/monitors/{id}/resume", post(resume))
        .route("/api/monitors/{id}/events", get(events))
        .route_layer(middleware::from_fn_with_state(state, require_access))
}

async fn create_monitor(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fields = json_object(body)?;
    let (config, token) = config_from_fields(&fields, state.clock.now())?;
    let monitor = state.registry.create_with_token(config, token).await?;
    Ok((StatusCode::CREATED, Json(monitor_json(&state, &monitor))))
}

/// A new monitor's configuration, and the push token it was given if any, from the
/// fields of `POST /api/monitors` (the dashboard's form sends the same).
pub fn config_from_fields(
    fields: &Map<String, Value>,
    now: Timestamp,
) -> Result<(MonitorConfig, Option<PushToken>), ApiError> {
    refuse_unknown_fields(fields, CREATE_FIELDS)?;
    let name = parse_name(fields.get("name"))?.ok_or_else(|| missing("name"))?;
    let mut patch = ConfigPatch::default();
    monitor_fields::parse_patch(fields, &mut patch, None, now)?;
    let timeout_seconds = parse_seconds("timeout_seconds", fields.get("timeout_seconds"))?;
    let interval_seconds = parse_seconds("interval_seconds", fields.get("interval_seconds"))?;
    let rejected = |rejection: Rejection| ApiError::Unprocessable(rejection.to_string());
    let timeout_seconds = if matches!(patch.schedule, Some(Some(_))) {
        // Timed by its schedule: a timeout would be ignored, so it is refused.
        if timeout_seconds.is_some() {
            return Err(rejected(Rejection::TimingWithSchedule {
                field: "timeout_seconds",
            }));
        }
        if interval_seconds.is_some() {
            return Err(rejected(Rejection::TimingWithSchedule {
                field: "interval_seconds",
            }));
        }
        0
    } else {
        if patch.timezone.is_some() {
            return Err(rejected(Rejection::NeedsSchedule { field: "timezone" }));
        }
        if patch.grace_seconds.is_some() {
            return Err(rejected(Rejection::NeedsSchedule {
                field: "grace_seconds",
            }));
        }
        timeout_seconds.ok_or_else(|| missing("timeout_seconds"))?
    };
    let token = monitor_fields::parse_push_token(fields.get("push_token"))?;
    patch.interval_seconds = Some(interval_seconds.unwrap_or(timeout_seconds));
    patch.channels = Some(parse_channels(fields.get("channels"))?.unwrap_or_default());
    patch.tags = Some(parse_tags(fields.get("tags"))?.unwrap_or_default());
    patch.slug = parse_slug(fields.get("slug"))?;
    Ok((
        patch.applied_to(&MonitorConfig::new(name, timeout_seconds)),
        token,
    ))
}

/// `GET /api/monitors`, filtered and paged by `monitor_query` (with no parameters:
/// every monitor, as it always was).
async fn list_monitors(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = MonitorQuery::parse(query.as_deref())?;
    let page = query.page(state.store.monitors().await?);
    let listed: Vec<Value> = page
        .monitors
        .iter()
        .map(|monitor| {
            let mut body = monitor_json(&state, monitor);
            redact_credentials(principal, &mut body);
            body
        })
        .collect();
    let counts: Map<String, Value> = page
        .counts
        .iter()
        .map(|(status, count)| (status.as_str().to_owned(), json!(count)))
        .collect();
    Ok(Json(json!({
        "monitors": listed,
        "counts": counts,
        "next_cursor": page.next_cursor,
    })))
}

async fn get_monitor(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let monitor = state.registry.current_state(parse_id(&id)?).await?;
    let mut body = monitor_json(&state, &monitor);
    redact_credentials(principal, &mut body);
    Ok(Json(body))
}

async fn update_monitor(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let fields = json_object(body)?;
    let patch = patch_from_fields(&fields, state.clock.now())?;
    run(&state, id, Command::Update(patch)).await
}

/// A change of a monitor's configuration from the fields of `PATCH
/// /api/monitors/{id}` (the dashboard's form sends the same).
pub fn patch_from_fields(
    fields: &Map<String, Value>,
    now: Timestamp,
) -> Result<ConfigPatch, ApiError> {
    refuse_unknown_fields(fields, MONITOR_FIELDS)?;
    let mut patch = ConfigPatch {
        name: parse_name(fields.get("name"))?,
        timeout_seconds: parse_seconds("timeout_seconds", fields.get("timeout_seconds"))?,
        interval_seconds: parse_seconds("interval_seconds", fields.get("interval_seconds"))?,
        channels: parse_channels(fields.get("channels"))?,
        tags: parse_tags(fields.get("tags"))?,
        slug: parse_slug(fields.get("slug"))?,
        ..ConfigPatch::default()
    };
    monitor_fields::parse_patch(fields, &mut patch, None, now)?;
    Ok(patch)
}

async fn delete_monitor(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<StatusCode, ApiError> {
    state
        .registry
        .execute(parse_id(&id)?, Command::Delete)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_token(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    run(
        &state,
        parse_id(&id)?,
        Command::RotateToken(new_push_token()),
    )
    .await
}

async fn pause(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    run(&state, parse_id(&id)?, Command::Pause).await
}

async fn resume(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    run(&state, parse_id(&id)?, Command::Resume).await
}

async fn run(state: &AppState, id: MonitorId, command: Command) -> Result<Json<Value>, ApiError> {
    let monitor = state.registry.execute(id, command).await?;
    Ok(Json(monitor_json(state, &monitor)))
}

#[derive(Deserialize)]
struct EventsQuery {
    limit: Option<String>,
    before: Option<String>,
}

async fn events(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let Query(query) =
        query.map_err(|error| ApiError::BadRequest(format!("malformed query string: {error}")))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_EVENTS_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_EVENTS_LIMIT).contains(&limit) => limit,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be a whole number from 1 to {MAX_EVENTS_LIMIT}"
                )));
            }
        },
    };
    let before = match query.before.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ApiError::BadRequest("before must be an event seq (a whole number)".to_owned())
        })?),
    };
    if state.registry.directory().by_id(id).is_none() {
        return Err(ApiError::NotFound("monitor not found"));
    }
    let history = state.store.history(id, limit, before).await?;
    let listed: Vec<Value> = history.iter().map(event_json).collect();
    Ok(Json(json!({ "events": listed })))
}

pub(super) fn parse_id(text: &str) -> Result<MonitorId, ApiError> {
    MonitorId::parse(text).ok_or(ApiError::NotFound("monitor not found"))
}

pub(super) fn json_object(
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest(format!("cannot read the request body: {rejection}"))
        }
    })?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ApiError::BadRequest(
            "body must be a JSON object".to_owned(),
        )),
        Err(error) => Err(ApiError::BadRequest(format!(
            "body is not valid JSON: {error}"
        ))),
    }
}

/// The fields a monitor's body may have on `PATCH` (and `POST`, with `push_token`).
const MONITOR_FIELDS: &[&str] = &[
    "name",
    "timeout_seconds",
    "interval_seconds",
    "channels",
    "tags",
    "schedule",
    "timezone",
    "grace_seconds",
    "max_runtime_seconds",
    "min_runtime_seconds",
    "failure_threshold",
    "recovery_threshold",
    "realert_every_seconds",
    "maintenance",
    "slug",
    "labels",
    "severity",
    "allowed_sources",
    "signing_secret",
    "min_instances",
    "instance_retention_seconds",
    "parents",
    "dependency_grace_seconds",
];

/// The fields of a `POST`: a monitor's, and a push token brought from another tool.
const CREATE_FIELDS: &[&str] = &[
    "name",
    "timeout_seconds",
    "interval_seconds",
    "channels",
    "tags",
    "schedule",
    "timezone",
    "grace_seconds",
    "max_runtime_seconds",
    "min_runtime_seconds",
    "failure_threshold",
    "recovery_threshold",
    "realert_every_seconds",
    "maintenance",
    "slug",
    "labels",
    "severity",
    "allowed_sources",
    "signing_secret",
    "min_instances",
    "instance_retention_seconds",
    "parents",
    "dependency_grace_seconds",
    "push_token",
];

/// A `422` naming every field of `fields` that is not `known` (a mistyped field would
/// otherwise be ignored without a word, and the request do something else than meant).
pub(super) fn refuse_unknown_fields(
    fields: &Map<String, Value>,
    known: &[&str],
) -> Result<(), ApiError> {
    let unknown: Vec<String> = fields
        .keys()
        .filter(|field| !known.contains(&field.as_str()))
        .map(|field| format!("{field:?}"))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let (noun, names) = match unknown.as_slice() {
        [one] => ("field", one.clone()),
        many => ("fields", many.join(", ")),
    };
    Err(ApiError::Unprocessable(format!(
        "unknown {noun} {names}; the fields are {}",
        known.join(", ")
    )))
}

fn missing(field: &str) -> ApiError {
    ApiError::Unprocessable(format!("{field} is required"))
}

pub(super) fn parse_name(value: Option<&Value>) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(name)) => match check_name(name) {
            Ok(()) => Ok(Some(name.clone())),
            Err(error) => Err(ApiError::Unprocessable(format!("name {error}"))),
        },
        Some(_) => Err(ApiError::Unprocessable("name must be a string".to_owned())),
    }
}

/// `null` means absent (for `interval_seconds`, "use the timeout").
fn parse_seconds(field: &str, value: Option<&Value>) -> Result<Option<u32>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(seconds) if (1..=MAX_TIMEOUT_SECONDS).contains(&seconds) => {
                Ok(u32::try_from(seconds).ok())
            }
            _ => Err(seconds_error(field)),
        },
        Some(_) => Err(seconds_error(field)),
    }
}

fn seconds_error(field: &str) -> ApiError {
    ApiError::Unprocessable(format!(
        "{field} must be a whole number of seconds from 1 to {MAX_TIMEOUT_SECONDS}"
    ))
}

/// Channel ids as given; that they exist is checked by the registry, under the gate
/// that keeps a channel deletion from racing the change (`Registry::delete_channel`).
pub(super) fn parse_channels(value: Option<&Value>) -> Result<Option<Vec<ChannelId>>, ApiError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) if items.len() <= MAX_CHANNELS_PER_MONITOR => items,
        Some(Value::Array(_)) => {
            return Err(ApiError::Unprocessable(format!(
                "channels: at most {MAX_CHANNELS_PER_MONITOR} per monitor"
            )));
        }
        Some(_) => {
            return Err(ApiError::Unprocessable(
                "channels must be an array of channel ids".to_owned(),
            ));
        }
    };
    let mut channels = Vec::with_capacity(items.len());
    for item in items {
        let id = item.as_str().and_then(ChannelId::parse).ok_or_else(|| {
            ApiError::Unprocessable("channels must be an array of channel ids".to_owned())
        })?;
        if !channels.contains(&id) {
            channels.push(id);
        }
    }
    Ok(Some(channels))
}

/// Channels one monitor may alert.
pub use crate::domain::machine::MAX_CHANNELS_PER_MONITOR;

pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_CHARS: usize = 64;

fn parse_tags(value: Option<&Value>) -> Result<Option<Vec<String>>, ApiError> {
    let error = || {
        ApiError::Unprocessable(format!(
            "tags must be an array of at most {MAX_TAGS} strings of 1 to {MAX_TAG_CHARS} characters"
        ))
    };
    let items = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) if items.len() <= MAX_TAGS => items,
        Some(_) => return Err(error()),
    };
    let mut tags = Vec::with_capacity(items.len());
    for item in items {
        let tag = item.as_str().ok_or_else(error)?;
        let chars = tag.chars().count();
        if chars == 0 || chars > MAX_TAG_CHARS {
            return Err(error());
        }
        if !tags.iter().any(|known: &String| known == tag) {
            tags.push(tag.to_owned());
        }
    }
    Ok(Some(tags))
}

/// A slug (`domain::slug`); `null` takes it away (`Some(None)`).
fn parse_slug(value: Option<&Value>) -> Result<Option<Option<String>>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(slug)) if slug::is_slug(slug) => Ok(Some(Some(slug.clone()))),
        Some(_) => Err(ApiError::Unprocessable(format!(
            "slug must be {}, or null",
            slug::SLUG_RULE
        ))),
    }
}

fn rfc3339(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_rfc3339()))
}

/// The Monitor object (`docs/api.md`, "The Monitor object").
pub fn monitor_json(state: &AppState, monitor: &Monitor) -> Value {
    let token = monitor.token.reveal();
    let mut body = json!({
        "id": monitor.id.to_string(),
        "name": monitor.config.name,
        "status": monitor.status.as_str(),
        "timeout_seconds": monitor.config.timeout_seconds,
        "interval_seconds": monitor.config.interval_seconds,
        "push_url": format!("{}/api/push/{token}", state.public_url),
        "push_token": token,
        "channels": monitor.config.channels.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "created_at": monitor.created_at.to_rfc3339(),
        "last_heartbeat_at": rfc3339(monitor.last_heartbeat_at),
        "last_status_change_at": rfc3339(monitor.last_status_change_at),
        "last_msg": monitor.last_msg.as_ref().map(|msg| msg.as_str()),
        "last_value": monitor.last_value,
    });
    // `tags`, `key` and `slug` are shown only when set (`docs/api.md`).
    if let Value::Object(fields) = &mut body {
        monitor_fields::state_fields(fields, monitor, state.clock.now());
        if !monitor.config.tags.is_empty() {
            fields.insert("tags".to_owned(), json!(monitor.config.tags));
        }
        if let Some(key) = &monitor.config.key {
            fields.insert("key".to_owned(), json!(key));
        }
        if let Some(slug) = &monitor.config.slug {
            fields.insert("slug".to_owned(), json!(slug));
        }
    }
    body
}

/// The Event object (`docs/api.md`, "The Event object").
pub fn event_json(recorded: &RecordedEvent) -> Value {
    let mut fields = Map::new();
    fields.insert("seq".to_owned(), json!(recorded.seq));
    fields.insert("at".to_owned(), json!(recorded.at.to_rfc3339()));
    fields.insert("kind".to_owned(), json!(recorded.event.kind()));
    if monitor_fields::event_fields(&mut fields, &recorded.event) {
        return Value::Object(fields);
    }
    match &recorded.event {
        Event::HeartbeatReceived(heartbeat) => {
            fields.insert("status".to_owned(), json!(heartbeat.status.as_str()));
            fields.insert(
                "msg".to_owned(),
                json!(heartbeat.msg.as_ref().map(|msg| msg.as_str())),
            );
            fields.insert("value".to_owned(), json!(heartbeat.value));
            fields.insert(
                "instance".to_owned(),
                json!(heartbeat.instance.as_ref().map(|name| name.as_str())),
            );
        }
        Event::WentDown { reason } => {
            fields.insert("reason".to_owned(), json!(reason.as_str()));
        }
        // `heartbeat` (a recovery from `down`, alerted) is the reason alerts give too.
        Event::Recovered => {
            fields.insert("reason".to_owned(), json!("heartbeat"));
        }
        Event::WentUp => {
            fields.insert("reason".to_owned(), json!("first_heartbeat"));
        }
        // The whole configuration after the change, so every change shows in it.
        Event::Created { config, .. } | Event::Updated { config } => {
            fields.insert("name".to_owned(), json!(config.name));
            fields.insert("timeout_seconds".to_owned(), json!(config.timeout_seconds));
            fields.insert(
                "interval_seconds".to_owned(),
                json!(config.interval_seconds),
            );
            fields.insert(
                "channels".to_owned(),
                json!(
                    config
                        .channels
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                ),
            );
            fields.insert("tags".to_owned(), json!(config.tags));
            fields.insert("key".to_owned(), json!(config.key));
            fields.insert("slug".to_owned(), json!(config.slug));
            monitor_fields::config_fields(&mut fields, config);
        }
        Event::DeliveryRecorded(outcome) => {
            fields.insert("channel".to_owned(), json!(outcome.channel.to_string()));
            fields.insert("alert_seq".to_owned(), json!(outcome.alert_seq));
            fields.insert("attempts".to_owned(), json!(outcome.attempts));
            let result = if outcome.error.is_none() {
                "success"
            } else {
                "failure"
            };
            fields.insert("result".to_owned(), json!(result));
            fields.insert("error".to_owned(), json!(outcome.error));
        }
        // The job kinds are `monitor_fields::event_fields`'.
        _ => {}
    }
    Value::Object(fields)
}

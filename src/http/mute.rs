//! Muting (`docs/api.md`, "Muting"): one monitor, or every monitor a query of
//! `GET /api/monitors` selects. A mute is a command to each monitor's actor, like a
//! pause: a bulk mute is one event per monitor, not one atomic batch.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::routing::post;
use axum::{Json, middleware};
use serde_json::{Map, Value, json};

use crate::domain::ids::Timestamp;
use crate::domain::machine::{Command, Monitor};

use super::api::{json_object, monitor_json, parse_id, refuse_unknown_fields};
use super::auth::require_access;
use super::error::ApiError;
use super::monitor_query::MonitorQuery;
use super::{AppState, PathParam};

/// The furthest ahead a mute's `until` may be: a year.
pub const MAX_MUTE_SECONDS: u32 = 366 * 24 * 3600;

const MUTE_FIELDS: &[&str] = &["until", "until_recovery"];

/// The query parameters that select monitors; a bulk mute needs one at least, so
/// that no one mutes every monitor by leaving the query out.
const FILTER_PARAMETERS: &[&str] = &["selector", "status", "q", "tag"];

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/monitors/mute", post(mute_selected))
        .route("/api/monitors/unmute", post(unmute_selected))
        .route("/api/monitors/{id}/mute", post(mute))
        .route("/api/monitors/{id}/unmute", post(unmute))
        .route_layer(middleware::from_fn_with_state(state, require_access))
}

/// The mute a body asks for, seen at `now`: `{"until": <RFC 3339>}` or
/// `{"until_recovery": true}`, exactly one.
pub fn mute_command(fields: &Map<String, Value>, now: Timestamp) -> Result<Command, ApiError> {
    refuse_unknown_fields(fields, MUTE_FIELDS)?;
    let invalid = |message: &str| ApiError::Unprocessable(message.to_owned());
    let until_recovery = match fields.get("until_recovery") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(value)) => *value,
        Some(_) => return Err(invalid("until_recovery must be true or false")),
    };
    let until = match fields.get("until") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            let until = Timestamp::parse_rfc3339(text).ok_or_else(|| {
                invalid("until must be an RFC 3339 time, such as 2026-01-31T18:00:00Z")
            })?;
            if until <= now {
                return Err(invalid("until must be in the future"));
            }
            if until > now.plus_seconds(MAX_MUTE_SECONDS) {
                return Err(invalid("until must be at most a year ahead"));
            }
            Some(until)
        }
        Some(_) => return Err(invalid("until must be an RFC 3339 time (a string)")),
    };
    match (until, until_recovery) {
        (Some(_), true) => Err(invalid("give until or until_recovery, not both")),
        (None, false) => Err(invalid(
            "give until (an RFC 3339 time) or until_recovery: true",
        )),
        (until, until_recovery) => Ok(Command::Mute {
            until,
            until_recovery,
        }),
    }
}

async fn mute(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let command = mute_command(&json_object(body)?, state.clock.now())?;
    let monitor = state.registry.execute(id, command).await?;
    Ok(Json(monitor_json(&state, &monitor)))
}

async fn unmute(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let monitor = state
        .registry
        .execute(parse_id(&id)?, Command::Unmute)
        .await?;
    Ok(Json(monitor_json(&state, &monitor)))
}

async fn mute_selected(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let selected = selected(&state, query.as_deref()).await?;
    let command = mute_command(&json_object(body)?, state.clock.now())?;
    run_on_each(&state, selected, command, "muted").await
}

async fn unmute_selected(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let mut selected = selected(&state, query.as_deref()).await?;
    selected.retain(|monitor| monitor.mute.is_some());
    run_on_each(&state, selected, Command::Unmute, "unmuted").await
}

/// The monitors the query selects, as `GET /api/monitors` filters them (no page).
pub(super) async fn selected(
    state: &AppState,
    raw: Option<&str>,
) -> Result<Vec<Monitor>, ApiError> {
    let named = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .any(|(name, _)| FILTER_PARAMETERS.contains(&name.as_ref()));
    if !named {
        return Err(ApiError::BadRequest(
            "select the monitors with selector, status, q or tag (selector= selects all)"
                .to_owned(),
        ));
    }
    let query = MonitorQuery::parse(raw)?;
    let mut monitors = state.store.monitors().await?;
    monitors.retain(|monitor| query.filters.admits(monitor));
    Ok(monitors)
}

/// Sends `command` to each monitor in turn. A monitor deleted meanwhile is skipped;
/// any other failure stops the loop (the monitors before it stay muted: each is its
/// own event).
async fn run_on_each(
    state: &AppState,
    monitors: Vec<Monitor>,
    command: Command,
    counted: &str,
) -> Result<Json<Value>, ApiError> {
    let mut ids = Vec::with_capacity(monitors.len());
    for monitor in monitors {
        match state.registry.execute(monitor.id, command.clone()).await {
            Ok(_) => ids.push(monitor.id.to_string()),
            Err(error) => match ApiError::from(error) {
                ApiError::NotFound(_) => {}
                other => return Err(other),
            },
        }
    }
    Ok(Json(json!({ counted: ids.len(), "monitors": ids })))
}

//! What a monitor's history adds up to: its uptime over windows and its incidents
//! (`docs/api.md`, "Uptime and incidents"), computed by `domain::timeline` from the
//! events `store::timeline` reads. Behind the same authentication as monitors.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::middleware;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::domain::ids::{MonitorId, Timestamp};
use crate::domain::timeline::{self, Incident, Window};

use super::auth::require_access;
use super::error::ApiError;
use super::{AppState, PathParam};

/// The windows answered without `?window=`, by name and length in seconds.
pub const DEFAULT_WINDOWS: [(&str, u32); 3] = [
    ("24h", 24 * 3600),
    ("7d", 7 * 24 * 3600),
    ("30d", 30 * 24 * 3600),
];

/// The longest window asked for: a year and a day.
pub const MAX_WINDOW_SECONDS: u64 = 366 * 24 * 3600;

pub const DEFAULT_INCIDENTS_LIMIT: usize = 20;
pub const MAX_INCIDENTS_LIMIT: usize = 1000;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/monitors/{id}/uptime", get(uptime))
        .route("/api/monitors/{id}/incidents", get(incidents))
        .route_layer(middleware::from_fn_with_state(state, require_access))
}

#[derive(Deserialize)]
struct UptimeQuery {
    window: Option<String>,
}

fn existing(state: &AppState, id: &str) -> Result<MonitorId, ApiError> {
    MonitorId::parse(id)
        .filter(|id| state.registry.directory().by_id(*id).is_some())
        .ok_or(ApiError::NotFound("monitor not found"))
}

/// A window's length from `12h`, `7d`, `90m`, `1h 30m`, `3600s`.
pub fn parse_window(text: &str) -> Result<u32, ApiError> {
    let error = || {
        ApiError::BadRequest(format!(
            "window must be a duration from 1s to 366d, such as 12h or 7d; not {text:?}"
        ))
    };
    let seconds = humantime::parse_duration(text)
        .map_err(|_| error())?
        .as_secs();
    if (1..=MAX_WINDOW_SECONDS).contains(&seconds) {
        u32::try_from(seconds).map_err(|_| error())
    } else {
        Err(error())
    }
}

async fn uptime(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    query: Result<Query<UptimeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = existing(&state, &id)?;
    let Query(query) =
        query.map_err(|error| ApiError::BadRequest(format!("malformed query string: {error}")))?;
    let windows: Vec<(String, u32)> = match query.window {
        Some(text) => vec![(text.clone(), parse_window(&text)?)],
        None => DEFAULT_WINDOWS
            .iter()
            .map(|(name, seconds)| ((*name).to_owned(), *seconds))
            .collect(),
    };
    let now = state.clock.now();
    let longest = windows
        .iter()
        .map(|(_, seconds)| *seconds)
        .max()
        .unwrap_or(0);
    let read = state
        .store
        .timeline(id, Window::last(longest, now).from, 0)
        .await?;
    let mut answered = Map::new();
    for (name, seconds) in windows {
        let spent = timeline::uptime(&read.transitions, Window::last(seconds, now), None);
        answered.insert(name, uptime_json(seconds, &spent));
    }
    Ok(Json(json!({ "uptime": answered })))
}

/// One window of `GET /api/monitors/{id}/uptime`.
pub fn uptime_json(seconds: u32, spent: &timeline::Uptime) -> Value {
    json!({
        "seconds": seconds,
        "ratio": spent.ratio(),
        "up_seconds": spent.up_ms as f64 / 1000.0,
        "down_seconds": spent.down_ms as f64 / 1000.0,
        "pending_seconds": spent.pending_ms as f64 / 1000.0,
        "paused_seconds": spent.paused_ms as f64 / 1000.0,
    })
}

#[derive(Deserialize)]
struct IncidentsQuery {
    limit: Option<String>,
    before: Option<String>,
}

async fn incidents(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    query: Result<Query<IncidentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = existing(&state, &id)?;
    let Query(query) =
        query.map_err(|error| ApiError::BadRequest(format!("malformed query string: {error}")))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_INCIDENTS_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_INCIDENTS_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit must be a whole number from 1 to {MAX_INCIDENTS_LIMIT}"
                ))
            })?,
    };
    let before = match query.before.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ApiError::BadRequest("before must be an incident seq (a whole number)".to_owned())
        })?),
    };
    let found = incident_page(&state, id, before, limit).await?;
    let now = state.clock.now();
    let listed: Vec<Value> = found
        .iter()
        .map(|incident| incident_json(incident, now))
        .collect();
    Ok(Json(json!({ "incidents": listed })))
}

/// Up to `limit` of `id`'s incidents that started before the event `before`, newest
/// first.
pub async fn incident_page(
    state: &AppState,
    id: MonitorId,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<Incident>, ApiError> {
    let transitions = state.store.incident_transitions(id, before, limit).await?;
    Ok(timeline::incidents(&transitions)
        .into_iter()
        .filter(|incident| before.is_none_or(|before| incident.seq < before))
        .take(limit)
        .collect())
}

/// The Incident object.
pub fn incident_json(incident: &Incident, now: Timestamp) -> Value {
    json!({
        "seq": incident.seq,
        "started_at": incident.started_at.to_rfc3339(),
        "ended_at": incident.ended.map(|(at, _)| at.to_rfc3339()),
        "ended_by": incident.ended.map(|(_, status)| status.as_str()),
        "duration_seconds": incident.duration_ms(now) as f64 / 1000.0,
        "reason": incident.reason.map(|reason| reason.as_str()),
    })
}

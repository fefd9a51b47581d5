//! Bulk changes (`docs/api.md`, "Changing many monitors at once"): pause, resume,
//! mute, unmute, change the channels of, or delete every monitor a query of
//! `GET /api/monitors` selects, as one atomic write (`monitor/registry/bulk.rs`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::routing::post;
use axum::{Json, Router, middleware};
use serde_json::{Map, Value, json};

use crate::domain::machine::Command;
use crate::monitor::messages::BulkChange;
use crate::monitor::registry::MAX_BULK_MONITORS;

use super::AppState;
use super::api::{json_object, parse_channels, refuse_unknown_fields};
use super::auth::require_access;
use super::error::ApiError;
use super::mute::{mute_command, selected};

const BULK_FIELDS: &[&str] = &["action", "until", "until_recovery", "channels", "dry_run"];

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/monitors/bulk", post(bulk))
        .route_layer(middleware::from_fn_with_state(state, require_access))
}

async fn bulk(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let monitors = selected(&state, query.as_deref()).await?;
    let fields = json_object(body)?;
    let (change, dry_run) = parse_change(&fields, &state)?;
    if monitors.len() > MAX_BULK_MONITORS {
        return Err(ApiError::Unprocessable(format!(
            "the query selects {} monitors; a bulk change takes at most {MAX_BULK_MONITORS}: narrow it",
            monitors.len()
        )));
    }
    let matched = monitors.len();
    let ids = monitors.iter().map(|monitor| monitor.id).collect();
    let outcomes = state.registry.bulk(ids, change, dry_run).await?;
    let changed = outcomes.iter().filter(|o| !o.kinds.is_empty()).count();
    let listed: Vec<Value> = outcomes
        .iter()
        .map(|outcome| {
            json!({
                "id": outcome.id.to_string(),
                "name": outcome.name,
                "events": outcome.kinds,
            })
        })
        .collect();
    Ok(Json(json!({
        "dry_run": dry_run,
        "matched": matched,
        "changed": changed,
        "monitors": listed,
    })))
}

/// The change a body asks for, and whether it is a dry run.
fn parse_change(
    fields: &Map<String, Value>,
    state: &AppState,
) -> Result<(BulkChange, bool), ApiError> {
    refuse_unknown_fields(fields, BULK_FIELDS)?;
    let invalid = |message: &str| ApiError::Unprocessable(message.to_owned());
    let dry_run = match fields.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(value)) => *value,
        Some(_) => return Err(invalid("dry_run must be true or false")),
    };
    let action = match fields.get("action") {
        Some(Value::String(action)) => action.as_str(),
        None | Some(Value::Null) => return Err(invalid(ACTIONS)),
        Some(_) => return Err(invalid(ACTIONS)),
    };
    let mute_fields: Map<String, Value> = fields
        .iter()
        .filter(|(name, _)| matches!(name.as_str(), "until" | "until_recovery"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    if action != "mute" && !mute_fields.is_empty() {
        return Err(invalid("until and until_recovery go only with action mute"));
    }
    let channels = match action {
        "set_channels" | "add_channels" | "remove_channels" => {
            parse_channels(fields.get("channels"))?.ok_or_else(|| {
                invalid("channels (an array of channel ids) is required with this action")
            })?
        }
        _ if fields.get("channels").is_some_and(|value| !value.is_null()) => {
            return Err(invalid(
                "channels goes only with set_channels, add_channels or remove_channels",
            ));
        }
        _ => Vec::new(),
    };
    let change = match action {
        "pause" => BulkChange::Command(Box::new(Command::Pause)),
        "resume" => BulkChange::Command(Box::new(Command::Resume)),
        "mute" => BulkChange::Command(Box::new(mute_command(&mute_fields, state.clock.now())?)),
        "unmute" => BulkChange::Command(Box::new(Command::Unmute)),
        "delete" => BulkChange::Command(Box::new(Command::Delete)),
        "set_channels" => BulkChange::SetChannels(channels),
        "add_channels" => BulkChange::AddChannels(channels),
        "remove_channels" => BulkChange::RemoveChannels(channels),
        _ => return Err(invalid(ACTIONS)),
    };
    Ok((change, dry_run))
}

const ACTIONS: &str = "action must be one of pause, resume, mute, unmute, set_channels, add_channels, remove_channels, delete";

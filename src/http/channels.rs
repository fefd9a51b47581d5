//! The channel part of the management API: create, list, get, change, delete, and send
//! a test message. Behind the same bearer authentication as monitors (`auth`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde_json::{Map, Value, json};

use crate::alert::channels::{
    ALL_FIELDS, Shown, fields_of_kind, kind_fields, kind_from_fields, send_on_from_fields,
};
use crate::domain::channel::Channel;
use crate::domain::ids::ChannelId;

use super::api::{json_object, parse_name, refuse_unknown_fields};
use super::auth::{Principal, redact_credentials, require_access};
use super::error::ApiError;
use super::{AppState, PathParam};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/channels", post(create_channel).get(list_channels))
        .route(
            "/api/channels/{id}",
            get(get_channel)
                .patch(update_channel)
                .delete(delete_channel),
        )
        .route("/api/channels/{id}/test", post(test_channel))
        .route_layer(middleware::from_fn_with_state(state, require_access))
}

async fn create_channel(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fields = json_object(body)?;
    let channel = create(&state, &fields).await?;
    Ok((StatusCode::CREATED, Json(channel_json(&channel))))
}

/// Creates a channel from the fields of `POST /api/channels` (the dashboard's form
/// sends the same).
pub async fn create(state: &AppState, fields: &Map<String, Value>) -> Result<Channel, ApiError> {
    refuse_unknown_fields(fields, channel_fields(fields))?;
    let name = parse_name(fields.get("name"))?
        .ok_or_else(|| ApiError::Unprocessable("name is required".to_owned()))?;
    let kind = kind_from_fields(fields).map_err(ApiError::Unprocessable)?;
    let send_on = send_on_from_fields(fields).map_err(ApiError::Unprocessable)?;
    state
        .notifier
        .check_destination(&kind)
        .map_err(ApiError::Unprocessable)?;
    Ok(state.channels.create(name, kind, send_on, None).await?)
}

/// Changes a channel: the body's fields over the channel's own (a `kind` of another
/// kind starts from none of them), checked as a creation is. The secrets the API never
/// shows (a webhook's `secret`, an SMTP password) are kept unless given.
async fn update_channel(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let channel = find(&state, &id)?;
    let body = json_object(body)?;
    let channel = update(&state, &channel, body).await?;
    Ok(Json(channel_json(&channel)))
}

/// [`update_channel`], for the API and the dashboard.
pub async fn update(
    state: &AppState,
    channel: &Channel,
    body: Map<String, Value>,
) -> Result<Channel, ApiError> {
    let mut fields = match body.get("kind") {
        Some(kind) if kind.as_str() != Some(channel.kind.name()) => Map::new(),
        _ => settings_of(channel),
    };
    fields.insert("name".to_owned(), json!(channel.name));
    fields.insert("send_on".to_owned(), json!(channel.send_on.as_str()));
    refuse_unknown_fields(&body, channel_fields(&body_or(&body, &fields)))?;
    for (field, value) in body {
        fields.insert(field, value);
    }
    let name = parse_name(fields.get("name"))?
        .ok_or_else(|| ApiError::Unprocessable("name is required".to_owned()))?;
    let kind = kind_from_fields(&fields).map_err(ApiError::Unprocessable)?;
    let send_on = send_on_from_fields(&fields).map_err(ApiError::Unprocessable)?;
    state
        .notifier
        .check_destination(&kind)
        .map_err(ApiError::Unprocessable)?;
    state
        .channels
        .update(channel.id, name, kind, send_on)
        .await?
        .ok_or(ApiError::NotFound("channel not found"))
}

/// The fields whose `kind` decides which others are allowed: the body's if it has a
/// kind, else the channel's.
fn body_or(body: &Map<String, Value>, current: &Map<String, Value>) -> Map<String, Value> {
    let mut kind = Map::new();
    if let Some(value) = body.get("kind").or_else(|| current.get("kind")) {
        kind.insert("kind".to_owned(), value.clone());
    }
    kind
}

/// A channel's settings as the API's fields, secrets included (never answered: only
/// merged with a change), with its `send_on`.
fn settings_of(channel: &Channel) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("kind".to_owned(), json!(channel.kind.name()));
    fields.insert("send_on".to_owned(), json!(channel.send_on.as_str()));
    for (field, value, _) in kind_fields(&channel.kind) {
        if !value.is_null() {
            fields.insert(field.to_owned(), value);
        }
    }
    fields
}

async fn list_channels(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Json<Value> {
    let listed: Vec<Value> = state
        .channels
        .list()
        .iter()
        .map(|channel| {
            let mut body = channel_json(channel);
            redact_credentials(principal, &mut body);
            body
        })
        .collect();
    Json(json!({ "channels": listed }))
}

async fn get_channel(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let channel = find(&state, &id)?;
    let mut body = channel_json(&channel);
    redact_credentials(principal, &mut body);
    Ok(Json(body))
}

/// The fields a channel of the body's `kind` may have; for a missing or unknown kind,
/// those of every kind (the error about `kind` itself comes next).
pub fn channel_fields(fields: &Map<String, Value>) -> &'static [&'static str] {
    fields
        .get("kind")
        .and_then(Value::as_str)
        .and_then(fields_of_kind)
        .unwrap_or(ALL_FIELDS)
}

/// Deletes the channel and takes it off every monitor that listed it, including one
/// created or changed meanwhile (`Registry::delete_channel`).
async fn delete_channel(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<StatusCode, ApiError> {
    let channel = find(&state, &id)?;
    if !state.registry.delete_channel(channel.id).await? {
        return Err(ApiError::NotFound("channel not found"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Sends one test message, once, and says how it went: why it failed only while any
/// address may be alerted (`SECURITY.md`); the server's log always says why.
async fn test_channel(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let channel = find(&state, &id)?;
    send_test(&state, &channel).await?;
    Ok(Json(json!({ "ok": true })))
}

/// Sends one test message through `channel`; the error says why only while any
/// address may be alerted.
pub async fn send_test(state: &AppState, channel: &Channel) -> Result<(), ApiError> {
    match state.notifier.send_test(channel, state.clock.now()).await {
        Ok(()) => Ok(()),
        Err(error) => {
            tracing::warn!(
                channel = %channel.id,
                kind = channel.kind.name(),
                %error,
                "test message not delivered"
            );
            Err(ApiError::BadGateway(
                if state.notifier.tells_why_a_test_failed() {
                    format!("test message not delivered: {error}")
                } else {
                    "test message not delivered".to_owned()
                },
            ))
        }
    }
}

pub fn find(state: &AppState, id: &str) -> Result<Channel, ApiError> {
    ChannelId::parse(id)
        .and_then(|id| state.channels.get(id))
        .ok_or(ApiError::NotFound("channel not found"))
}

/// The Channel object. Secrets (a webhook secret, an SMTP password) are never shown.
pub fn channel_json(channel: &Channel) -> Value {
    let mut fields = Map::new();
    fields.insert("id".to_owned(), json!(channel.id.to_string()));
    fields.insert("kind".to_owned(), json!(channel.kind.name()));
    fields.insert("name".to_owned(), json!(channel.name));
    fields.insert(
        "created_at".to_owned(),
        json!(channel.created_at.to_rfc3339()),
    );
    if let Some(key) = &channel.key {
        fields.insert("key".to_owned(), json!(key));
    }
    fields.insert("send_on".to_owned(), json!(channel.send_on.as_str()));
    for (field, value, shown) in kind_fields(&channel.kind) {
        match shown {
            // A templated webhook's headers: their names, never their values.
            Shown::Secret if field == "headers" => {
                let names: Vec<&String> = value
                    .as_object()
                    .map(|headers| headers.keys().collect())
                    .unwrap_or_default();
                fields.insert("header_names".to_owned(), json!(names));
            }
            Shown::Secret => {
                fields.insert(format!("has_{field}"), json!(!value.is_null()));
            }
            Shown::Credential if field == "smtp_url" => {
                let url = value.as_str().unwrap_or_default();
                fields.insert(field.to_owned(), json!(redact_password(url)));
            }
            Shown::Plain | Shown::Credential => {
                if !value.is_null() {
                    fields.insert(field.to_owned(), value);
                }
            }
        }
    }
    Value::Object(fields)
}

fn redact_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

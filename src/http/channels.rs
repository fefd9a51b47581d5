//! The channel part of the management API: create, list, get, delete, and send a test
//! message. Behind the same admin bearer token as monitors.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::alert::email;
use crate::clock;
use crate::domain::channel::{Alert, AlertEvent, Channel, ChannelKind};
use crate::domain::ids::{ChannelId, MonitorId};
use crate::domain::machine::{Command, ConfigPatch};

use super::AppState;
use super::api::{json_object, parse_name, require_admin};
use super::error::ApiError;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/channels", post(create_channel).get(list_channels))
        .route(
            "/api/channels/{id}",
            get(get_channel).delete(delete_channel),
        )
        .route("/api/channels/{id}/test", post(test_channel))
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

async fn create_channel(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fields = json_object(body)?;
    let name = parse_name(fields.get("name"))?
        .ok_or_else(|| ApiError::Unprocessable("name is required".to_owned()))?;
    let kind = parse_kind(&fields)?;
    let channel = state.channels.create(name, kind).await?;
    Ok((StatusCode::CREATED, Json(channel_json(&channel))))
}

async fn list_channels(State(state): State<AppState>) -> Json<Value> {
    let listed: Vec<Value> = state.channels.list().iter().map(channel_json).collect();
    Json(json!({ "channels": listed }))
}

async fn get_channel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let channel = find(&state, &id)?;
    Ok(Json(channel_json(&channel)))
}

/// Deletes the channel and takes it off every monitor that listed it.
async fn delete_channel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let channel = find(&state, &id)?;
    if !state.channels.delete(channel.id).await? {
        return Err(ApiError::NotFound("channel not found"));
    }
    let users: Vec<(MonitorId, Vec<ChannelId>)> = state
        .store
        .monitors()
        .await?
        .into_iter()
        .filter(|monitor| monitor.config.channels.contains(&channel.id))
        .map(|monitor| {
            let kept = monitor
                .config
                .channels
                .iter()
                .copied()
                .filter(|listed| *listed != channel.id)
                .collect();
            (monitor.id, kept)
        })
        .collect();
    for (monitor, kept) in users {
        let patch = ConfigPatch {
            channels: Some(kept),
            ..ConfigPatch::default()
        };
        match state
            .registry
            .execute(monitor, Command::Update(patch))
            .await
        {
            Ok(_) | Err(crate::monitor::RegistryError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Sends one test message, once, and says how it went.
async fn test_channel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let channel = find(&state, &id)?;
    let alert = Alert {
        alert_seq: 0,
        event: AlertEvent::Test,
        reason: "test".to_owned(),
        at: clock::now(),
        monitor_id: MonitorId::from_bytes([0; 16]),
        monitor_name: format!("test of channel {}", channel.name),
        msg: None,
        value: None,
    };
    match state.notifier.send(&channel, &alert).await {
        Ok(()) => Ok(Json(json!({ "ok": true }))),
        Err(error) => Err(ApiError::BadGateway(format!(
            "test message not delivered: {error}"
        ))),
    }
}

fn find(state: &AppState, id: &str) -> Result<Channel, ApiError> {
    ChannelId::parse(id)
        .and_then(|id| state.channels.get(id))
        .ok_or(ApiError::NotFound("channel not found"))
}

fn parse_kind(fields: &Map<String, Value>) -> Result<ChannelKind, ApiError> {
    let kind = match fields.get("kind") {
        None => return Err(ApiError::Unprocessable("kind is required".to_owned())),
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(ApiError::Unprocessable(KIND_ERROR.to_owned())),
    };
    match kind {
        "webhook" => Ok(ChannelKind::Webhook {
            url: http_url(fields)?,
            secret: optional_string(fields, "secret")?,
        }),
        "slack" => Ok(ChannelKind::Slack {
            url: http_url(fields)?,
        }),
        "discord" => Ok(ChannelKind::Discord {
            url: http_url(fields)?,
        }),
        "alertmanager" => Ok(ChannelKind::Alertmanager {
            url: http_url(fields)?,
        }),
        "email" => {
            let smtp_url = required_string(fields, "smtp_url")?;
            email::check_smtp_url(&smtp_url)
                .map_err(|error| ApiError::Unprocessable(format!("smtp_url: {error}")))?;
            let from = required_string(fields, "from")?;
            email::parse_mailbox(&from)
                .map_err(|error| ApiError::Unprocessable(format!("from: {error}")))?;
            let to = match fields.get("to") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(many)) if !many.is_empty() => many
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| ApiError::Unprocessable(TO_ERROR.to_owned()))?,
                _ => return Err(ApiError::Unprocessable(TO_ERROR.to_owned())),
            };
            for address in &to {
                email::parse_mailbox(address)
                    .map_err(|error| ApiError::Unprocessable(format!("to: {error}")))?;
            }
            Ok(ChannelKind::Email { smtp_url, from, to })
        }
        _ => Err(ApiError::Unprocessable(KIND_ERROR.to_owned())),
    }
}

const KIND_ERROR: &str = "kind must be one of webhook, slack, discord, email, alertmanager";
const TO_ERROR: &str = "to must be an email address or a non-empty array of them";

fn http_url(fields: &Map<String, Value>) -> Result<String, ApiError> {
    let url = required_string(fields, "url")?;
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(url),
        _ => Err(ApiError::Unprocessable(
            "url must be an absolute http:// or https:// URL".to_owned(),
        )),
    }
}

fn required_string(fields: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    optional_string(fields, field)?
        .ok_or_else(|| ApiError::Unprocessable(format!("{field} is required")))
}

fn optional_string(fields: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Err(ApiError::Unprocessable(format!(
            "{field} must not be empty"
        ))),
        Some(Value::String(text)) if text.len() > 2048 => Err(ApiError::Unprocessable(format!(
            "{field} must be at most 2048 bytes"
        ))),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ApiError::Unprocessable(format!("{field} must be a string"))),
    }
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
    match &channel.kind {
        ChannelKind::Webhook { url, secret } => {
            fields.insert("url".to_owned(), json!(url));
            fields.insert("has_secret".to_owned(), json!(secret.is_some()));
        }
        ChannelKind::Slack { url }
        | ChannelKind::Discord { url }
        | ChannelKind::Alertmanager { url } => {
            fields.insert("url".to_owned(), json!(url));
        }
        ChannelKind::Email { smtp_url, from, to } => {
            fields.insert("smtp_url".to_owned(), json!(redact_password(smtp_url)));
            fields.insert("from".to_owned(), json!(from));
            fields.insert("to".to_owned(), json!(to));
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

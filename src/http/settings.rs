//! The installation's settings (`/api/settings`, `docs/api.md`, "Ping URLs"): what the
//! ping URLs go by, and the rotation of the ping key. Admin token only: the ping key
//! is a secret that reaches every monitor with a slug.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::domain::ping_key::PingKey;

use super::AppState;
use super::auth::require_admin;
use super::error::ApiError;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/settings", get(show))
        .route("/api/settings/ping-key/rotate", post(rotate_ping_key))
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

/// The Settings object, never to be cached: it holds the ping key.
fn settings(state: &AppState) -> Response {
    let key = state.ping_key().reveal();
    let body: Value = json!({
        "ping_key": key,
        "ping_url_prefix": format!("{}/ping/{key}", state.public_url),
        "ping_body_limit": state.ping_body_limit,
        "ping_auto_create": state.ping_auto_create,
    });
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn show(State(state): State<AppState>) -> Response {
    settings(&state)
}

/// A fresh key, durable before it replaces the old one in memory: from the answer
/// on, the old key's slug URLs answer 404.
async fn rotate_ping_key(State(state): State<AppState>) -> Result<Response, ApiError> {
    let key = PingKey::from_bytes(rand::random());
    state.store.rotate_ping_key(key).await?;
    *state
        .ping_key
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = key;
    Ok(settings(&state))
}

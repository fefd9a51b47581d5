//! API keys (`/api/keys`): create, list, revoke. Admin token only.
//!
//! A key's secret is `pmk_` and 32 bytes from the OS generator in base64url. It is in
//! the answer to its creation and nowhere else: not in the store (only its SHA-256),
//! not in listings, not in logs.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use base64::Engine as _;
use rand::TryRngCore as _;
use serde_json::{Value, json};

use crate::domain::api_key::{ApiKey, ApiKeyId, Scope};

use super::api::{json_object, parse_name, refuse_unknown_fields};
use super::auth::{require_admin, secret_digest};
use super::error::ApiError;
use super::{AppState, PathParam};

/// What every key's secret starts with, so a leaked one is recognisable (secret
/// scanners, log review).
pub const KEY_PREFIX: &str = "pmk_";

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/keys", post(create_key).get(list_keys))
        .route("/api/keys/{id}", delete(revoke_key))
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

/// A fresh secret: the prefix and 256 bits straight from the OS generator.
fn new_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|error| ApiError::Internal(format!("OS random generator failed: {error}")))?;
    Ok(format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

async fn create_key(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let fields = json_object(body)?;
    refuse_unknown_fields(&fields, &["name", "scope"])?;
    let name = parse_name(fields.get("name"))?
        .ok_or_else(|| ApiError::Unprocessable("name is required".to_owned()))?;
    let scope = match fields.get("scope") {
        // The least privilege unless asked for more.
        None | Some(Value::Null) => Scope::Read,
        Some(Value::String(text)) => Scope::parse(text).ok_or_else(scope_error)?,
        Some(_) => return Err(scope_error()),
    };
    let secret = new_secret()?;
    let now = state.clock.now();
    let key = ApiKey {
        id: ApiKeyId::generate(now),
        name,
        scope,
        created_at: now,
        digest: secret_digest(&secret),
    };
    state.api_keys.add(key.clone()).await?;
    tracing::info!(key_id = %key.id, scope = scope.as_str(), "API key created");
    let mut body = key_json(&key);
    if let Value::Object(fields) = &mut body {
        fields.insert("key".to_owned(), Value::String(secret));
    }
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    // The one answer that carries the secret must not be cached anywhere.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn scope_error() -> ApiError {
    ApiError::Unprocessable("scope must be \"read\" or \"write\"".to_owned())
}

async fn list_keys(State(state): State<AppState>) -> Json<Value> {
    let listed: Vec<Value> = state.api_keys.list().iter().map(key_json).collect();
    Json(json!({ "keys": listed }))
}

/// Revokes the key: gone from disk, then from memory, then 204. No request with it is
/// authorised after the answer.
async fn revoke_key(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::NotFound("API key not found");
    let id = ApiKeyId::parse(&id).ok_or_else(not_found)?;
    if !state.api_keys.revoke(id).await? {
        return Err(not_found());
    }
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// The ApiKey object, without its secret.
fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id.to_string(),
        "name": key.name,
        "scope": key.scope.as_str(),
        "created_at": key.created_at.to_rfc3339(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_url_safe_and_distinct() {
        let first = new_secret().expect("OS randomness");
        let second = new_secret().expect("OS randomness");
        assert_ne!(first, second);
        for secret in [&first, &second] {
            let random = secret.strip_prefix(KEY_PREFIX).expect("prefixed");
            assert_eq!(random.len(), 43, "{secret}");
            assert!(
                random
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{secret}"
            );
        }
    }
}

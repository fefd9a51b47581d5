//! `GET /api/guard` (`docs/api.md`, "The guard"): the guard against false alarm
//! storms as it stands: its state and since when, the arrival rates it compares, and
//! the verdicts it holds. Any key may read it.

use axum::extract::State;
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::auth::require_access;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/guard", get(show))
        .route_layer(middleware::from_fn_with_state(state, require_access))
}

async fn show(State(state): State<AppState>) -> Json<Value> {
    let view = state.registry.guard().view();
    Json(json!({
        "enabled": view.state.is_some(),
        "state": view.state.map_or("off", |state| state.as_str()),
        "since": view.since.to_rfc3339(),
        "observed_per_second": view.rates.observed_per_second,
        "expected_per_second": view.rates.expected_per_second,
        "held": view.held,
        "held_total": view.held_total,
        "window_seconds": view.window_seconds,
        "min_ratio": view.min_ratio,
        "min_expected": view.min_expected,
        "release_grace_seconds": view.release_grace_seconds,
    }))
}

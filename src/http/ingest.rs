//! Bulk ingestion (`POST /api/push`, `docs/push.md` "Bulk pushes"): many heartbeats in
//! one request, as a JSON array or NDJSON, for sidecars and agents that relay them.
//!
//! Each item is what a single push would be, checked alike and in the same order:
//! the source's budget of unknown tokens (a blocked source is refused whole), then per
//! item its fields (a bad item is a 400 whatever its token), its token (an unknown
//! one counted against the source), the monitor's source and signature rules
//! (`access.rs`), and the monitor's rate limit. The items accepted are written in one
//! batch (`Registry::ingest`: one commit, one `fdatasync`) and the answer, once they
//! are durable, says what became of each item by its index, never by its token.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use governor::clock::{Clock, DefaultClock};
use serde::Serialize;
use serde_json::Value;

use crate::domain::event::Heartbeat;
use crate::domain::ids::MonitorId;
use crate::monitor::{MonitorHandle, RegistryError};
use crate::prometheus;

use super::error::ApiError;
use super::ingress::{bulk_item, read_body_within, reject_reason};
use super::{AppState, access, source};

/// The most items one request may carry.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// The largest body a bulk push may have: room for [`MAX_BATCH_ITEMS`] items with
/// messages of a kilobyte.
pub const MAX_BATCH_BODY_BYTES: usize = 2 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/push", post(bulk_push))
}

/// The answer: what became of each item, in the request's order.
#[derive(Serialize)]
struct BatchAnswer {
    accepted: usize,
    refused: usize,
    results: Vec<ItemResult>,
}

#[derive(Serialize)]
struct ItemResult {
    index: usize,
    /// The HTTP status a single push of this item would have had.
    status: u16,
    /// The monitor's id, once its token is known (never the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    monitor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// How far an item got.
enum Item {
    Refused(Option<MonitorId>, ApiError),
    /// Accepted: delivered to its monitor with the others, answered once durable.
    Delivered(MonitorId, crate::domain::event::PushStatus),
}

async fn bulk_push(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(address))| address.ip());
    let (parts, body) = request.into_parts();
    match accept(&state, peer, &parts, body).await {
        Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
        Err(error) => {
            prometheus::hot()
                .rejected(reject_reason(&error))
                .increment(1);
            error.into_response()
        }
    }
}

async fn accept(
    state: &AppState,
    peer: Option<IpAddr>,
    parts: &axum::http::request::Parts,
    body: Body,
) -> Result<BatchAnswer, ApiError> {
    let source =
        peer.map(|peer| source::source_address(peer, &parts.headers, &state.trusted_proxies));
    let limited_source = state.source_budget(source)?;
    state.require_started()?;
    let format = Format::of(&parts.headers)?;
    let body = read_body_within(body, MAX_BATCH_BODY_BYTES, || {
        ApiError::PayloadTooLarge(format!(
            "request body is larger than {} MiB",
            MAX_BATCH_BODY_BYTES / (1024 * 1024)
        ))
    })
    .await?;
    let raw_items = format.items(&body)?;

    let mut items: Vec<Item> = Vec::with_capacity(raw_items.len());
    // Set once an unknown token used up the source's budget: the items after it are
    // refused without their tokens being looked at, as a blocked source's pushes are.
    let mut blocked: Option<std::time::Duration> = None;
    let mut parts_by_monitor: HashMap<MonitorId, (MonitorHandle, Vec<Heartbeat>)> = HashMap::new();
    let mut order: Vec<MonitorId> = Vec::new();
    let directory = state.registry.directory();
    // What signed and restricted monitors check (`access.rs`): the request as a whole
    // is signed, with the secret of each signed monitor it has items for.
    let request = access::PushRequest {
        source,
        method: &parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |target| target.as_str()),
        headers: &parts.headers,
        body: &body,
    };
    let mut access_checked: HashMap<MonitorId, Result<(), ApiError>> = HashMap::new();
    for raw in raw_items {
        // A blocked source's pushes are refused before anything else is looked at.
        if let Some(retry_after) = blocked {
            items.push(Item::Refused(
                None,
                ApiError::SourceRateLimited { retry_after },
            ));
            continue;
        }
        let (token, heartbeat) = match raw.and_then(bulk_item) {
            Ok(item) => item,
            Err(error) => {
                items.push(Item::Refused(None, error));
                continue;
            }
        };
        let Some(monitor) = directory.by_token_text(&token) else {
            let error = match limited_source {
                Some((limit, key)) => match limit.count_unknown(key) {
                    Ok(()) => ApiError::UnknownToken,
                    Err(retry_after) => {
                        blocked = Some(retry_after);
                        ApiError::SourceRateLimited { retry_after }
                    }
                },
                None => ApiError::UnknownToken,
            };
            items.push(Item::Refused(None, error));
            continue;
        };
        if let Some(rules) = directory.access_of(monitor.id) {
            // A monitor's rules are checked once per request: its second item must
            // not be refused as a replay of the signature its first one used.
            let checked = access_checked.entry(monitor.id).or_insert_with(|| {
                access::check(
                    &rules,
                    monitor.id,
                    &request,
                    &state.replay,
                    state.signature_window,
                    state.clock.now(),
                )
            });
            if let Err(error) = checked {
                items.push(Item::Refused(Some(monitor.id), error.clone()));
                continue;
            }
        }
        if let Err(not_until) = state.limiter.check_key(&monitor.id) {
            let retry_after = not_until.wait_time_from(DefaultClock::default().now());
            items.push(Item::Refused(
                Some(monitor.id),
                ApiError::RateLimited { retry_after },
            ));
            continue;
        }
        let id = monitor.id;
        let status = heartbeat.status;
        parts_by_monitor
            .entry(id)
            .or_insert_with(|| {
                order.push(id);
                (monitor, Vec::new())
            })
            .1
            .push(heartbeat);
        items.push(Item::Delivered(id, status));
    }

    let ingest: Vec<(MonitorHandle, Vec<Heartbeat>)> = order
        .iter()
        .filter_map(|id| parts_by_monitor.remove(id))
        .collect();
    let outcomes = if ingest.is_empty() {
        Vec::new()
    } else {
        state.registry.ingest(ingest).await
    };
    let outcomes: HashMap<MonitorId, Result<(), RegistryError>> =
        order.into_iter().zip(outcomes).collect();

    let hot = prometheus::hot();
    let mut answer = BatchAnswer {
        accepted: 0,
        refused: 0,
        results: Vec::with_capacity(items.len()),
    };
    for (index, item) in items.into_iter().enumerate() {
        let (monitor, refusal) = match item {
            Item::Refused(monitor, error) => (monitor, Some(error)),
            Item::Delivered(id, status) => match outcomes.get(&id) {
                Some(Ok(())) => {
                    hot.heartbeat(status).increment(1);
                    (Some(id), None)
                }
                // Deleted between the lookup and the delivery: the token is gone.
                Some(Err(RegistryError::NotFound)) => (Some(id), Some(ApiError::UnknownToken)),
                Some(Err(error)) => (Some(id), Some(registry_error(error))),
                None => (
                    Some(id),
                    Some(ApiError::Unavailable("monitor is restarting; retry")),
                ),
            },
        };
        let result = match refusal {
            None => {
                answer.accepted += 1;
                ItemResult {
                    index,
                    status: 200,
                    monitor: monitor.map(|id| id.to_string()),
                    error: None,
                }
            }
            Some(error) => {
                answer.refused += 1;
                hot.rejected(reject_reason(&error)).increment(1);
                ItemResult {
                    index,
                    status: error.status().as_u16(),
                    monitor: monitor.map(|id| id.to_string()),
                    error: Some(error.to_string()),
                }
            }
        };
        answer.results.push(result);
    }
    Ok(answer)
}

/// A registry error as the API says it, without taking it by value (the outcome map
/// answers several items of one monitor).
fn registry_error(error: &RegistryError) -> ApiError {
    match error {
        RegistryError::Store(store) => ApiError::from(store.clone()),
        RegistryError::NotFound => ApiError::UnknownToken,
        _ => ApiError::Unavailable("monitor is restarting; retry"),
    }
}

/// How the items are sent.
#[derive(Clone, Copy)]
enum Format {
    /// `application/json`: one array of items.
    Array,
    /// `application/x-ndjson`: one item a line; blank lines are skipped.
    Lines,
}

impl Format {
    fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let essence = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        match essence.as_deref() {
            Some("application/json") => Ok(Self::Array),
            Some("application/x-ndjson" | "application/jsonl" | "application/ndjson") => {
                Ok(Self::Lines)
            }
            _ => Err(ApiError::BadRequest(
                "a bulk push is application/json (an array of items) or \
                 application/x-ndjson (an item a line)"
                    .to_owned(),
            )),
        }
    }

    /// The items, each parsed as JSON or why not (an NDJSON line that is not JSON is
    /// that item's 400; an array that is not JSON is the request's).
    fn items(self, body: &Bytes) -> Result<Vec<Result<Value, ApiError>>, ApiError> {
        let too_many = || {
            ApiError::PayloadTooLarge(format!(
                "a bulk push carries at most {MAX_BATCH_ITEMS} items"
            ))
        };
        match self {
            Self::Array => {
                let values: Vec<Value> = match serde_json::from_slice::<Value>(body) {
                    Ok(Value::Array(values)) => values,
                    Ok(_) => {
                        return Err(ApiError::BadRequest(
                            "body must be a JSON array of items".to_owned(),
                        ));
                    }
                    Err(error) => {
                        return Err(ApiError::BadRequest(format!(
                            "body is not valid JSON: {error}"
                        )));
                    }
                };
                if values.len() > MAX_BATCH_ITEMS {
                    return Err(too_many());
                }
                Ok(values.into_iter().map(Ok).collect())
            }
            Self::Lines => {
                let mut items = Vec::new();
                for line in body.split(|byte| *byte == b'\n') {
                    let line = line.trim_ascii();
                    if line.is_empty() {
                        continue;
                    }
                    if items.len() == MAX_BATCH_ITEMS {
                        return Err(too_many());
                    }
                    items.push(serde_json::from_slice::<Value>(line).map_err(|error| {
                        ApiError::BadRequest(format!("line is not valid JSON: {error}"))
                    }));
                }
                Ok(items)
            }
        }
    }
}

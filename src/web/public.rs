//! What anyone may fetch, without signing in: badges (`/badge/<key>.svg`, `.json`) and
//! status pages (`/status/<slug>`). They show names, states, uptimes and incidents
//! only: no push token, id, tag, message or channel. Both are cache-friendly: an
//! `ETag` answered with 304 when it matches, and a few seconds of caching on the
//! server so that a popular badge or page costs one computation per
//! [`PUBLIC_FRESH_FOR`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use askama::Template;
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::domain::ids::{MonitorId, Timestamp};
use crate::domain::machine::{Monitor, Status};
use crate::domain::publication::Target;
use crate::domain::timeline::{self, Uptime, Window};
use crate::http::error::ApiError;
use crate::http::history::{DEFAULT_WINDOWS, parse_window};
use crate::http::{AppState, PathParam};
use crate::store::StoreError;

use super::badge::BadgeFace;
use super::publish::badge_label;
use super::view::{When, duration, percent, status_label, status_rank, uptime_class};
use super::{Web, security_headers};

/// How long one computed badge or status page serves later requests.
pub const PUBLIC_FRESH_FOR: Duration = Duration::from_secs(15);

/// What a public request answered lately, by what it asked.
#[derive(Default)]
pub struct PublicCache(Mutex<HashMap<String, (Instant, u64, Answer)>>);

/// A public answer: its body, type and ETag.
#[derive(Clone)]
pub struct Answer {
    status: StatusCode,
    body: Arc<String>,
    content_type: &'static str,
    etag: String,
}

/// The most answers kept; beyond it, the cache starts afresh.
const MAX_CACHED: usize = 4096;

impl PublicCache {
    /// The answer to `key`, if computed lately and no monitor changed since
    /// (`generation`: the board's).
    fn get(&self, key: &str, generation: u64) -> Option<Answer> {
        let cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cached
            .get(key)
            .filter(|(at, computed, _)| at.elapsed() < PUBLIC_FRESH_FOR && *computed == generation)
            .map(|(_, _, answer)| answer.clone())
    }

    fn put(&self, key: String, generation: u64, answer: Answer) {
        let mut cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.len() >= MAX_CACHED {
            cached.clear();
        }
        cached.insert(key, (Instant::now(), generation, answer));
    }
}

impl Answer {
    fn new(status: StatusCode, body: String, content_type: &'static str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in body.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Self {
            status,
            body: Arc::new(body),
            content_type,
            etag: format!("\"{hash:016x}\""),
        }
    }

    /// The answer, or 304 if the client has it already.
    fn respond(&self, request: &HeaderMap, cache_control: &'static str) -> Response {
        let fresh = self.status == StatusCode::OK
            && request
                .get(header::IF_NONE_MATCH)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.split(',').any(|tag| tag.trim() == self.etag));
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (self.status, self.body.as_str().to_owned()).into_response()
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        if let Ok(etag) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, etag);
        }
        security_headers(headers);
        response
    }
}

/// The monitors a target names, among `monitors`.
fn chosen<'a>(monitors: &'a [Monitor], targets: &[Target]) -> Vec<&'a Monitor> {
    let mut found: BTreeMap<MonitorId, &Monitor> = BTreeMap::new();
    for monitor in monitors {
        let wanted = targets.iter().any(|target| match target {
            Target::Monitor(id) => monitor.id == *id,
            Target::Tag(tag) => monitor.config.tags.contains(tag),
        });
        if wanted {
            found.insert(monitor.id, monitor);
        }
    }
    found.into_values().collect()
}

/// The worst state among `monitors` (down, pending, up, paused), `None` if none.
fn worst(monitors: &[&Monitor]) -> Option<Status> {
    monitors
        .iter()
        .map(|monitor| monitor.status)
        .min_by_key(|status| status_rank(*status))
}

/// The status page's headline and its colour: any down first, then any up.
fn overall(shown: &[&Monitor]) -> (String, &'static str) {
    let count = |status| {
        shown
            .iter()
            .filter(|monitor| monitor.status == status)
            .count()
    };
    let watched = shown.len() - count(Status::Paused);
    match (
        count(Status::Down),
        count(Status::Up),
        count(Status::Pending),
    ) {
        (0, 0, 0) if shown.is_empty() => ("Nothing to show yet".to_owned(), "paused"),
        (0, 0, 0) => ("Monitoring is paused".to_owned(), "paused"),
        (0, 0, _) => ("Waiting for the first reports".to_owned(), "pending"),
        (0, _, _) => ("All systems operational".to_owned(), "up"),
        (down, _, _) if down == watched => ("All systems are down".to_owned(), "down"),
        (down, _, _) => (format!("{down} of {watched} systems are down"), "down"),
    }
}

#[derive(Deserialize, Default)]
pub struct BadgeQuery {
    uptime: Option<String>,
}

fn not_found(what: &str) -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "error": format!("{what} not found") })),
    )
        .into_response();
    security_headers(response.headers_mut());
    response
}

/// A store that cannot be read: the JSON error every failure answers (`http::error`).
fn unavailable(error: StoreError) -> Response {
    let mut response = ApiError::from(error).into_response();
    security_headers(response.headers_mut());
    response
}

/// `GET /badge/{key}.svg` and `GET /badge/{key}.json`: a badge's state, or its uptime
/// with `?uptime=24h` (any window of the API's `window`).
pub async fn badge(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    PathParam(file): PathParam,
    query: Result<Query<BadgeQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let Some((key, svg)) = file
        .strip_suffix(".svg")
        .map(|key| (key, true))
        .or_else(|| file.strip_suffix(".json").map(|key| (key, false)))
    else {
        return not_found("badge");
    };
    let Some(found) = state.publications.badge_by_key(key) else {
        return not_found("badge");
    };
    let window = match query.uptime.as_deref() {
        None => None,
        Some(text) => match parse_window(text) {
            Ok(seconds) => Some((text.to_owned(), seconds)),
            Err(error) => return error.into_response(),
        },
    };
    let cache_key = format!(
        "badge {key} {svg} {}",
        window.as_ref().map_or("", |(text, _)| text.as_str())
    );
    let cache_control = "public, max-age=60, must-revalidate";
    let generation = web.board.generation();
    if let Some(answer) = web.public.get(&cache_key, generation) {
        return answer.respond(&headers, cache_control);
    }
    let monitors = match web.board.monitors().await {
        Ok(monitors) => monitors,
        Err(error) => return unavailable(error),
    };
    let shown = chosen(&monitors, std::slice::from_ref(&found.target));
    if shown.is_empty() && matches!(found.target, Target::Monitor(_)) {
        return not_found("badge");
    }
    let label = badge_label(&monitors, &found);
    let face = match window {
        None => BadgeFace::status(label, worst(&shown)),
        Some((text, seconds)) => {
            let now = state.clock.now();
            let spent = match uptime_of(&state, &shown, seconds, now).await {
                Ok(spent) => spent,
                Err(response) => return response,
            };
            BadgeFace::uptime(format!("{label} {text}"), spent.ratio(), percent(&spent))
        }
    };
    let answer = if svg {
        Answer::new(StatusCode::OK, face.svg(), "image/svg+xml")
    } else {
        Answer::new(StatusCode::OK, face.json().to_string(), "application/json")
    };
    web.public.put(cache_key, generation, answer.clone());
    answer.respond(&headers, cache_control)
}

/// The time `monitors` spent in each state over the `seconds` before `now`, summed.
async fn uptime_of(
    state: &AppState,
    monitors: &[&Monitor],
    seconds: u32,
    now: Timestamp,
) -> Result<Uptime, Response> {
    let window = Window::last(seconds, now);
    let timelines = state
        .store
        .timelines(
            monitors.iter().map(|monitor| monitor.id).collect(),
            window.from,
            0,
        )
        .await
        .map_err(unavailable)?;
    let mut total = Uptime::default();
    for read in &timelines {
        let spent = timeline::uptime(&read.transitions, window, None);
        total.up_ms += spent.up_ms;
        total.down_ms += spent.down_ms;
        total.pending_ms += spent.pending_ms;
        total.paused_ms += spent.paused_ms;
    }
    Ok(total)
}

pub struct Service {
    pub name: String,
    pub status: &'static str,
    pub status_label: &'static str,
    /// (percentage, class) for 24 h, 7 d, 30 d.
    pub uptimes: Vec<(String, &'static str)>,
}

pub struct PublicIncident {
    pub name: String,
    pub started: When,
    pub lasted: String,
    pub ongoing: bool,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPageView {
    title: String,
    version: String,
    overall: String,
    overall_class: &'static str,
    services: Vec<Service>,
    incidents: Vec<PublicIncident>,
    updated: String,
}

/// `GET /status/{slug}`: a status page, public and read-only.
pub async fn status_page(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    PathParam(slug): PathParam,
    headers: HeaderMap,
) -> Response {
    let cache_control = "public, max-age=30";
    let Some(page) = state.publications.page_by_slug(&slug) else {
        let mut response = super::message_page(
            StatusCode::NOT_FOUND,
            "No such status page",
            "There is no status page at this address.",
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return response;
    };
    let cache_key = format!("status {slug}");
    let generation = web.board.generation();
    if let Some(answer) = web.public.get(&cache_key, generation) {
        return answer.respond(&headers, cache_control);
    }
    let monitors = match web.board.monitors().await {
        Ok(monitors) => monitors,
        Err(error) => return unavailable(error),
    };
    let mut shown = chosen(&monitors, &page.targets);
    shown.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    let now = state.clock.now();
    let longest = DEFAULT_WINDOWS[2].1;
    let Ok(timelines) = state
        .store
        .timelines(
            shown.iter().map(|monitor| monitor.id).collect(),
            Window::last(longest, now).from,
            0,
        )
        .await
    else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut services = Vec::with_capacity(shown.len());
    let mut incidents = Vec::new();
    let month_ago = Window::last(longest, now).from;
    for (monitor, read) in shown.iter().zip(&timelines) {
        services.push(Service {
            name: monitor.config.name.clone(),
            status: monitor.status.as_str(),
            status_label: status_label(monitor.status),
            uptimes: DEFAULT_WINDOWS
                .iter()
                .map(|(_, seconds)| {
                    let spent =
                        timeline::uptime(&read.transitions, Window::last(*seconds, now), None);
                    (percent(&spent), uptime_class(&spent))
                })
                .collect(),
        });
        for incident in timeline::incidents(&read.transitions) {
            let ended = incident.ended.map(|(at, _)| at);
            if ended.is_some_and(|at| at < month_ago) {
                continue;
            }
            incidents.push((
                incident.started_at,
                PublicIncident {
                    name: monitor.config.name.clone(),
                    started: When::new(incident.started_at, now),
                    lasted: duration(incident.duration_ms(now)),
                    ongoing: ended.is_none(),
                },
            ));
        }
    }
    incidents.sort_by_key(|(started, _)| std::cmp::Reverse(*started));
    let (overall, overall_class) = overall(&shown);
    let minute = When::new(now, now).exact;
    let view = StatusPageView {
        title: page.title.clone(),
        version: super::assets::VERSION.clone(),
        overall,
        overall_class,
        services,
        incidents: incidents
            .into_iter()
            .map(|(_, incident)| incident)
            .collect(),
        updated: minute
            .get(..16)
            .map_or(minute.clone(), |text| format!("{text} UTC")),
    };
    let answer = match view.render() {
        Ok(body) => Answer::new(StatusCode::OK, body, "text/html; charset=utf-8"),
        Err(error) => {
            tracing::error!(%error, "cannot render a status page");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    web.public.put(cache_key, generation, answer.clone());
    answer.respond(&headers, cache_control)
}

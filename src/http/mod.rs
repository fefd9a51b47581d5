//! The HTTP side. `serve` accepts connections (with `tls`) and hands each request to
//! [`App`], which sends plain pushes straight to `ingress` (the hot path) and
//! everything else through [`router`]. The routes: `ingress` (push and ping, with
//! `ping`), `api` and `channels` (management), `history` (uptime, incidents),
//! `publications` (badges and status pages), `api_keys`, `settings`, `ops` (health,
//! readiness, metrics), `openapi` (the OpenAPI document of them all), each with its
//! `router()`, and the dashboard's pages (`web`), which `app` hands in; `auth` decides
//! who may call the management API, `source` where a
//! push comes from, and `error` turns every failure into its JSON answer.
//!
//! Handlers never append a monitor's events: they ask its actor, through the registry.
//! They write only channels (through `alert::Channels`), API keys (through
//! `auth::ApiKeyRing`) and the ping key (`settings`), each made durable before its
//! copy in memory changes, and read the store directly for listings, history and
//! `/metrics`.

pub mod access;
pub mod api;
pub mod api_keys;
pub mod auth;
pub mod bulk;
pub mod channels;
pub mod error;
pub mod guard;
pub mod history;
pub mod ingest;
pub mod ingress;
pub mod monitor_fields;
pub mod monitor_query;
pub mod mute;
pub mod openapi;
pub mod ops;
pub mod ping;
pub mod publications;
pub mod replicated;
pub mod serve;
pub mod settings;
pub mod signal_params;
pub mod source;
pub mod tls;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
use metrics::SharedString;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use crate::alert::{Channels, Notifier};
use crate::clock::Clock;
use crate::config::{RateLimit, TrustedProxies};
use crate::domain::api_key::ApiKey;
use crate::domain::ids::MonitorId;
use crate::domain::ping_key::PingKey;
use crate::domain::publication::Publication;
use crate::monitor::Registry;
use crate::prometheus;
use crate::store::EventStore;
use error::ApiError;

/// The largest request body accepted (`docs/push.md`, "Answers": 413 above it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Where the server is in its life, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Ready = 1,
    Draining = 2,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub registry: Registry,
    pub store: EventStore,
    pub channels: Channels,
    pub notifier: Notifier,
    /// SHA-256 of the admin token: the token itself is not kept, and comparing
    /// fixed-length digests in constant time leaks not even the token's length.
    pub admin_token_hash: [u8; 32],
    /// The API keys, by the digest of their secrets.
    pub api_keys: auth::ApiKeyRing,
    /// Badges and status pages.
    pub publications: publications::Publications,
    /// Prefix of every `push_url`, without a trailing slash.
    pub public_url: String,
    pub limiter: DefaultKeyedRateLimiter<MonitorId>,
    /// The per-source-address limit on pushes with an unknown token, if on.
    pub unknown_token_limit: Option<source::UnknownTokenLimit>,
    /// Peers whose `X-Forwarded-For` names the source address.
    pub trusted_proxies: TrustedProxies,
    pub metrics: PrometheusHandle,
    /// Whether `/metrics` includes the per-monitor families.
    pub monitor_metrics: bool,
    /// The monitor label keys the per-monitor families carry, each with its
    /// Prometheus label name (`label_<sanitized key>`).
    pub metrics_labels: Arc<[(String, String)]>,
    /// What stamps the handlers' own records (API keys, test alerts).
    pub clock: Clock,
    /// Bytes of a ping's body kept as a run's output (`--ping-body-limit`; the limit
    /// `domain::event::Output::from_body` cuts at).
    pub ping_body_limit: usize,
    /// The installation's ping key (`settings.rs`), changed only once a rotation is
    /// durable.
    pub ping_key: std::sync::RwLock<PingKey>,
    /// Whether `?create=1` creates a monitor for an unknown slug (`--ping-auto-create`).
    pub ping_auto_create: bool,
    /// How far a signed push's timestamp may be off (`--signature-window`).
    pub signature_window: std::time::Duration,
    /// The signatures taken within the window (`access.rs`).
    pub replay: access::ReplayGuard,
    latency: LatencyHistograms,
    phase: AtomicU8,
}

impl AppState {
    /// A push's `source` against its budget of unknown tokens, checked before any
    /// other work: `Err` (429) while the source is blocked (a token guesser);
    /// otherwise the limit and key to count an unknown token against, if limited.
    pub(crate) fn source_budget(
        &self,
        source: Option<std::net::IpAddr>,
    ) -> Result<Option<(&source::UnknownTokenLimit, std::net::IpAddr)>, ApiError> {
        let (Some(limit), Some(source)) = (&self.unknown_token_limit, source) else {
            return Ok(None);
        };
        let key = source::limit_key(source);
        limit
            .check(key)
            .map_err(|retry_after| ApiError::SourceRateLimited { retry_after })?;
        Ok(Some((limit, key)))
    }

    #[allow(clippy::too_many_arguments)] // One call site, in app.rs; each is distinct.
    pub fn new(
        registry: Registry,
        store: EventStore,
        channels: Channels,
        notifier: Notifier,
        admin_token: String,
        api_keys: Vec<ApiKey>,
        stored_publications: Vec<Publication>,
        public_url: String,
        rate_limit: RateLimit,
        ip_rate_limit: Option<RateLimit>,
        trusted_proxies: TrustedProxies,
        metrics: PrometheusHandle,
        monitor_metrics: bool,
        metrics_labels: &[String],
        clock: Clock,
        ping_body_limit: usize,
        ping_key: PingKey,
        ping_auto_create: bool,
        signature_window: std::time::Duration,
    ) -> Self {
        // The registry's event log: the channels', the keys' and the publications' too.
        let log = Arc::clone(registry.event_log());
        let api_keys = auth::ApiKeyRing::new(store.clone(), api_keys, Arc::clone(&log));
        let publications = publications::Publications::new(store.clone(), stored_publications, log);
        Self(Arc::new(Shared {
            registry,
            store,
            channels,
            notifier,
            admin_token_hash: auth::secret_digest(&admin_token),
            api_keys,
            publications,
            public_url,
            limiter: DefaultKeyedRateLimiter::keyed(quota(rate_limit)),
            unknown_token_limit: ip_rate_limit.map(|limit| {
                source::UnknownTokenLimit::new(DefaultKeyedRateLimiter::keyed(quota(limit)))
            }),
            trusted_proxies,
            metrics,
            monitor_metrics,
            metrics_labels: metrics_labels
                .iter()
                .map(|key| {
                    let name = format!("label_{}", crate::domain::labels::sanitized_name(key));
                    (key.clone(), name)
                })
                .collect(),
            clock,
            ping_body_limit,
            ping_key: std::sync::RwLock::new(ping_key),
            ping_auto_create,
            signature_window,
            replay: access::ReplayGuard::default(),
            latency: LatencyHistograms::default(),
            phase: AtomicU8::new(Phase::Starting as u8),
        }))
    }

    /// Records one request's latency by route, method and status.
    fn record_latency(
        &self,
        route: u8,
        method: &axum::http::Method,
        status: axum::http::StatusCode,
        elapsed: std::time::Duration,
    ) {
        self.latency
            .histogram(Route::Known(route), static_method(method), status)
            .record(elapsed.as_secs_f64());
    }

    pub fn phase(&self) -> Phase {
        match self.0.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Ready,
            _ => Phase::Draining,
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.0.phase.store(phase as u8, Ordering::Release);
    }

    /// The ping key now.
    pub fn ping_key(&self) -> PingKey {
        *self
            .ping_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses work until every monitor has been rebuilt (and while draining).
    pub fn require_started(&self) -> Result<(), ApiError> {
        match self.phase() {
            Phase::Starting => Err(ApiError::Unavailable(
                "server is starting; monitors are being rebuilt",
            )),
            Phase::Ready | Phase::Draining => Ok(()),
        }
    }
}

fn quota(limit: RateLimit) -> Quota {
    let per_second = NonZeroU32::new(limit.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A path parameter whose malformed encoding answers a JSON 404 instead of axum's
/// plain-text rejection (every error is JSON).
pub struct PathParam(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(_) => Err(ApiError::NotFound("no such resource")),
        }
    }
}

/// What `serve` answers requests with: pushes straight to
/// [`ingress::push_direct`], everything else through [`router`].
#[derive(Clone)]
pub struct App {
    router: Router,
    state: AppState,
}

impl App {
    pub fn new(state: AppState) -> Self {
        Self::with_routes(state, Router::new())
    }

    /// [`App::new`] with `pages` among the routes: the dashboard (`web`), which
    /// `http` does not import.
    pub fn with_routes(state: AppState, pages: Router<AppState>) -> Self {
        Self {
            router: router_with(state.clone(), pages),
            state,
        }
    }

    /// Answers one request from `peer`.
    pub async fn handle(self, mut request: Request, peer: SocketAddr) -> Response {
        // With debug logging on, pushes take the router too: its middleware logs each.
        if ingress::is_direct_push(request.method(), request.uri().path())
            && !tracing::enabled!(tracing::Level::DEBUG)
        {
            return ingress::push_direct(self.state, peer, request).await;
        }
        // Handlers see the peer as axum's `ConnectInfo` (the per-source push limit).
        request.extensions_mut().insert(ConnectInfo(peer));
        match self.router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Every route, with body limit, request metrics and JSON fallbacks. (The body's
/// deadline is `serve`'s, for every request: the router driven on its own, as tests
/// do, has none.)
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] with `pages` merged in.
pub fn router_with(state: AppState, pages: Router<AppState>) -> Router {
    Router::new()
        .merge(ingress::router())
        .merge(ingest::router())
        .merge(pages)
        .merge(history::router(state.clone()))
        .merge(publications::router(state.clone()))
        .merge(api::router(state.clone()))
        .merge(mute::router(state.clone()))
        .merge(bulk::router(state.clone()))
        .merge(channels::router(state.clone()))
        .merge(api_keys::router(state.clone()))
        .merge(settings::router(state.clone()))
        .merge(guard::router(state.clone()))
        .merge(ops::router())
        .merge(openapi::router())
        .fallback(|| async { ApiError::NotFound("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Records latency by route template (never the raw path: it holds push tokens) and
/// status, inside a request span, and logs each request at debug level. Plain pushes
/// do not come through here unless debug logging is on (`App::handle` sends them to
/// `ingress::push_direct`, which records the same histogram); the histogram handles
/// are cached for the requests that do.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(Route::Unmatched, |path| Route::of(path.as_str()));
    let method = static_method(request.method());
    let span = tracing::info_span!(
        "request",
        method,
        route = route.name(),
        status = tracing::field::Empty
    );
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("status", status.as_u16());
    let elapsed = started.elapsed();
    state
        .latency
        .histogram(route, method, status)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::debug!(elapsed_us = elapsed.as_micros() as u64, "request done");
    });
    response
}

/// A route's label: one of [`ROUTES`] (by index), or no route at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Route {
    Known(u8),
    Unmatched,
}

/// `ROUTES[PUSH_ROUTE]` is the push route.
const PUSH_ROUTE: u8 = 0;

impl Route {
    fn of(path: &str) -> Self {
        ROUTES
            .iter()
            .position(|route| *route == path)
            .map_or(Self::Unmatched, |index| Self::Known(index as u8))
    }

    fn name(self) -> &'static str {
        match self {
            Self::Known(index) => ROUTES[usize::from(index)],
            Self::Unmatched => "unmatched",
        }
    }
}

/// `pushmon_http_request_duration_seconds` handles by route, method and status,
/// registered on first use: the `histogram!` macro would build and look up its
/// three-label key on every request.
#[derive(Default)]
pub struct LatencyHistograms(dashmap::DashMap<(Route, &'static str, u16), metrics::Histogram>);

impl LatencyHistograms {
    fn histogram(
        &self,
        route: Route,
        method: &'static str,
        status: axum::http::StatusCode,
    ) -> metrics::Histogram {
        let key = (route, method, status.as_u16());
        if let Some(histogram) = self.0.get(&key) {
            return histogram.clone();
        }
        self.0
            .entry(key)
            .or_insert_with(|| {
                metrics::histogram!(
                    prometheus::HTTP_REQUEST_DURATION_SECONDS,
                    "route" => route.name(),
                    "method" => SharedString::const_str(method),
                    "status" => static_status(status)
                )
            })
            .clone()
    }
}

/// The route templates this server has, so labels need no allocation.
const ROUTES: &[&str] = &[
    "/api/push/{token}", // PUSH_ROUTE
    "/ping/{token}",
    "/ping/{token}/{action}",
    "/ping/{ping_key}/{slug}/{action}",
    "/api/push",
    "/api/monitors",
    "/api/monitors/{id}",
    "/api/monitors/{id}/rotate-token",
    "/api/monitors/{id}/pause",
    "/api/monitors/{id}/resume",
    "/api/monitors/{id}/mute",
    "/api/monitors/{id}/unmute",
    "/api/monitors/mute",
    "/api/monitors/unmute",
    "/api/monitors/bulk",
    "/api/monitors/{id}/events",
    "/api/monitors/{id}/uptime",
    "/api/monitors/{id}/incidents",
    "/api/badges",
    "/api/badges/{id}",
    "/api/status-pages",
    "/api/status-pages/{id}",
    "/api/channels",
    "/api/channels/{id}",
    "/api/channels/{id}/test",
    "/api/keys",
    "/api/keys/{id}",
    "/api/settings",
    "/api/settings/ping-key/rotate",
    "/api/guard",
    "/api/export", // `declare::export`, handed in by `app`
    "/api/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    // The dashboard (`web`), its public badges and status pages.
    "/",
    "/login",
    "/logout",
    "/live",
    "/assets/{file}",
    "/monitors/new",
    "/monitors/{id}",
    "/monitors/{id}/edit",
    "/monitors/{id}/pause",
    "/monitors/{id}/mute",
    "/monitors/{id}/unmute",
    "/monitors/{id}/resume",
    "/monitors/{id}/rotate-token",
    "/monitors/{id}/delete",
    "/monitors/{id}/badge",
    "/channels",
    "/channels/{id}/edit",
    "/channels/{id}/test",
    "/channels/{id}/delete",
    "/public",
    "/public/badges",
    "/public/badges/{id}/delete",
    "/public/status-pages",
    "/public/status-pages/{id}/edit",
    "/public/status-pages/{id}/delete",
    "/badge/{file}",
    "/status/{slug}",
];

fn static_method(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn static_status(status: axum::http::StatusCode) -> SharedString {
    let code = match status.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        413 => "413",
        422 => "422",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        other => return SharedString::from(other.to_string()),
    };
    SharedString::const_str(code)
}

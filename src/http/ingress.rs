//! The push ingress (`docs/push.md`): the hot path. Check that the source address has
//! not spent its budget of unknown tokens, parse and validate the parameters, find the
//! monitor (an unknown token is counted against the source), check its rate limit,
//! hand the heartbeat to its actor, answer once it is durable. The
//! Healthchecks-compatible ping URLs (`docs/api.md`, "Ping URLs") take the same path:
//! `ping.rs` reads what their path, query and body say, and names the monitor by token
//! or by ping key and slug.
//!
//! Parameters are validated BEFORE the token is looked up: a bad request is a 400
//! whatever its token, so neither the answer nor its timing says whether a token
//! exists; only a valid push reaches the lookup, a hash-map lookup whose cost does
//! not depend on whether the token is there. The source's check comes first and
//! does not look at the token either.

use std::future::Future as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::BytesMut;
use governor::clock::{Clock, DefaultClock};
use serde_json::Value;

use crate::domain::event::{
    Heartbeat, HeartbeatText, MAX_OUTPUT_LIMIT, MonitorConfig, Output, PushStatus,
};
use crate::domain::signal::{Signal, SignalKind};
use crate::monitor::RegistryError;
use crate::monitor::directory::MonitorHandle;
use crate::prometheus;

use super::error::ApiError;
use super::ping::{self, Target};
use super::{AppState, MAX_BODY_BYTES, PUSH_ROUTE};
use super::{access, signal_params, source};

mod parse;

pub(crate) use parse::{Push, bulk_item, parse_push};

/// The answer to an accepted push: a constant, so answering allocates nothing.
const OK_BODY: &str = r#"{"ok":true}"#;

pub fn router() -> Router<AppState> {
    // GET routes answer HEAD too.
    Router::new()
        .route("/api/push/{token}", get(push).post(push))
        .route("/ping/{token}", get(ping).post(ping))
        .route("/ping/{token}/{action}", get(ping).post(ping))
        .route("/ping/{ping_key}/{slug}/{action}", get(ping).post(ping))
}

/// The prefix of every push path; the token is the rest.
pub const PUSH_PREFIX: &str = "/api/push/";

/// Whether `serve` may hand a request straight to [`push_direct`]: a push method and
/// a path of the prefix and one plain segment, the token. Anything else (a
/// percent-encoded or empty token, a further segment, another method) takes the
/// router, which decodes, answers 404 or 405, and so on.
pub fn is_direct_push(method: &Method, path: &str) -> bool {
    matches!(*method, Method::GET | Method::POST | Method::HEAD)
        && path
            .strip_prefix(PUSH_PREFIX)
            .is_some_and(|token| !token.is_empty() && !token.contains(['/', '%']))
}

/// The push route without the router: `serve` calls this for every request
/// [`is_direct_push`] accepts, skipping the route matching, the middleware and the
/// layers around the handler (a tenth of a push's CPU in profiles). It does what they
/// do for a push: the latency histogram (the body's deadline is `serve`'s, as for
/// every request). The router's push route stays, for requests this does not take.
pub async fn push_direct(state: AppState, peer: SocketAddr, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let token = parts
        .uri
        .path()
        .strip_prefix(PUSH_PREFIX)
        .unwrap_or_default();
    let response = respond(
        &state,
        Some(peer.ip()),
        Target::Token(token),
        &parts,
        body,
        Asks::Push,
    )
    .await;
    state.record_latency(
        PUSH_ROUTE,
        &parts.method,
        response.status(),
        started.elapsed(),
    );
    response
}

/// The push route's handler, for requests `serve` does not take directly (and for
/// the router driven on its own, in tests). Takes the whole request and reads what it
/// needs by reference: the usual extractors would copy the header map and poll even
/// an empty body on every push.
async fn push(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    token: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    // A token that does not even decode is as unknown as any other.
    let token = token.map(|Path(token)| token).unwrap_or_default();
    // Absent only when the router is driven without `serve` (no socket, no limit).
    let peer = peer.map(|Extension(ConnectInfo(address))| address.ip());
    let (parts, body) = request.into_parts();
    respond(
        &state,
        peer,
        Target::Token(&token),
        &parts,
        body,
        Asks::Push,
    )
    .await
}

/// The ping routes' handler (`ping.rs`): the monitor (by token, or by ping key and
/// slug) and the action from the path, then the push's path. Every answer says how
/// much of a body is kept.
async fn ping(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    segments: Result<Path<Vec<String>>, PathRejection>,
    request: Request,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(address))| address.ip());
    let (parts, body) = request.into_parts();
    // A token that does not even decode is as unknown as any other.
    let segments = segments.map(|Path(segments)| segments).unwrap_or_default();
    let (target, action) = ping::parse_path(&segments, &state.ping_key());
    let mut response = respond(&state, peer, target, &parts, body, Asks::Ping(action)).await;
    response.headers_mut().insert(
        ping::BODY_LIMIT_HEADER,
        HeaderValue::from(state.ping_body_limit),
    );
    response
}

/// How a request says what it reports.
enum Asks {
    /// The native push URL: parameters in the query or the body.
    Push,
    /// A ping URL: the action its path names (or why it names none); its body is
    /// the run's output.
    Ping(Result<ping::Action, ApiError>),
}

async fn respond(
    state: &AppState,
    peer: Option<IpAddr>,
    target: Target<'_>,
    parts: &Parts,
    body: Body,
    asks: Asks,
) -> Response {
    let outcome = accept(state, peer, target, parts, body, asks).await;
    let hot = prometheus::hot();
    match outcome {
        Ok(status) => {
            // A run's start or a log is no heartbeat.
            if let Some(status) = status {
                hot.heartbeat(status).increment(1);
            }
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                OK_BODY,
            )
                .into_response()
        }
        Err(error) => {
            hot.rejected(reject_reason(&error)).increment(1);
            error.into_response()
        }
    }
}

/// The reason a refused push is counted under (`pushmon_heartbeats_rejected_total`).
pub(super) fn reject_reason(error: &ApiError) -> &'static str {
    match error {
        ApiError::UnknownToken => "unknown_token",
        ApiError::RateLimited { .. } => "rate_limited",
        ApiError::SourceRateLimited { .. } => "ip_rate_limited",
        ApiError::TooLarge | ApiError::PayloadTooLarge(_) => "too_large",
        ApiError::Forbidden(_) => "source_refused",
        ApiError::Unsigned(_) => "bad_signature",
        ApiError::Unavailable(_) | ApiError::Internal(_) => "unavailable",
        _ => "bad_request",
    }
}

async fn accept(
    state: &AppState,
    peer: Option<IpAddr>,
    target: Target<'_>,
    parts: &Parts,
    body: Body,
    asks: Asks,
) -> Result<Option<PushStatus>, ApiError> {
    // First, so a source that has spent its budget of unknown tokens (a token guesser)
    // is cut off before any work, and before its token is looked at.
    let source =
        peer.map(|peer| source::source_address(peer, &parts.headers, &state.trusted_proxies));
    let limited_source = state.source_budget(source)?;
    state.require_started()?;
    let body = read_body(body).await?;
    let push = match asks {
        Asks::Push => parse_push(parts.uri.query(), &parts.headers, body.clone())?,
        Asks::Ping(action) => Push::Signal(ping::signal(
            action?,
            parts.uri.query(),
            &body,
            state.ping_body_limit,
        )?),
    };
    let found = match target {
        Target::Token(token) => state
            .registry
            .directory()
            .by_token_text(token)
            .ok_or(ApiError::UnknownToken),
        Target::Slug { slug, key_matches } => {
            by_slug(state, slug, key_matches, parts.uri.query()).await
        }
    };
    let monitor = match found {
        Ok(monitor) => monitor,
        Err(error) => {
            // A wrong ping key or slug is as much a guess as a wrong token.
            if let (Some((limit, key)), ApiError::UnknownToken | ApiError::NotFound(_)) =
                (limited_source, &error)
            {
                limit
                    .count_unknown(key)
                    .map_err(|retry_after| ApiError::SourceRateLimited { retry_after })?;
            }
            return Err(error);
        }
    };
    if let Some(rules) = state.registry.directory().access_of(monitor.id) {
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
        access::check(
            &rules,
            monitor.id,
            &request,
            &state.replay,
            state.signature_window,
            state.clock.now(),
        )?;
    }
    if let Err(not_until) = state.limiter.check_key(&monitor.id) {
        return Err(ApiError::RateLimited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        });
    }
    let (status, delivered) = match push {
        Push::Heartbeat(heartbeat) => (
            Some(heartbeat.status),
            state.registry.heartbeat(&monitor, heartbeat).await,
        ),
        Push::Signal(mut signal) => {
            signal.output = signal
                .output
                .and_then(|output| output.cut(state.ping_body_limit));
            let status = match signal.kind {
                SignalKind::Start | SignalKind::Log => None,
                _ if signal.is_failure() => Some(PushStatus::Down),
                _ => Some(PushStatus::Up),
            };
            (status, state.registry.signal(&monitor, signal).await)
        }
    };
    match delivered {
        Ok(()) => Ok(status),
        // Deleted between the lookup and the delivery: the token no longer exists.
        Err(RegistryError::NotFound) => Err(ApiError::UnknownToken),
        Err(error) => Err(error.into()),
    }
}

/// The monitor a slug ping URL names; with `?create=1` and `--ping-auto-create`, a
/// new one (with the defaults) for a slug no monitor has.
async fn by_slug(
    state: &AppState,
    slug: &str,
    key_matches: bool,
    query: Option<&str>,
) -> Result<MonitorHandle, ApiError> {
    const NO_SUCH_SLUG: &str = "no monitor has this ping key and slug";
    if !key_matches {
        return Err(ApiError::NotFound(NO_SUCH_SLUG));
    }
    let directory = state.registry.directory();
    if let Some(monitor) = directory.by_slug(slug) {
        return Ok(monitor);
    }
    if !ping::wants_create(query) {
        return Err(ApiError::NotFound(NO_SUCH_SLUG));
    }
    if !state.ping_auto_create {
        return Err(ApiError::NotFound(
            "no monitor has this slug, and ?create=1 creates one only when the server runs \
             with --ping-auto-create",
        ));
    }
    let config = MonitorConfig {
        slug: Some(slug.to_owned()),
        interval_seconds: ping::AUTO_CREATED_INTERVAL_SECONDS,
        ..MonitorConfig::new(slug, ping::AUTO_CREATED_TIMEOUT_SECONDS)
    };
    match state.registry.create(config).await {
        Ok(created) => directory
            .by_token(&created.token)
            .ok_or(ApiError::Unavailable("monitor is restarting; retry")),
        // Created by a ping that came first, or on its way.
        Err(RegistryError::SlugTaken) => directory.by_slug(slug).ok_or(ApiError::Unavailable(
            "the monitor of this slug is being created; retry",
        )),
        Err(error) => Err(error.into()),
    }
}

/// How much of a body over [`MAX_BODY_BYTES`] is read and thrown away before the 413:
/// a client still sending its body when the server answers and closes gets a reset
/// connection instead of the answer.
const DRAIN_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a push body of at most [`MAX_BODY_BYTES`]; an empty one (the usual push) is
/// not polled at all.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    read_body_within(body, MAX_BODY_BYTES, || ApiError::TooLarge).await
}

/// Reads a body of at most `limit` bytes (at most [`DRAIN_BYTES`]); a longer one is
/// `too_large()`.
pub(super) async fn read_body_within(
    mut body: Body,
    limit: usize,
    too_large: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    let hint = body.size_hint();
    if hint.exact() == Some(0) {
        return Ok(Bytes::new());
    }
    if hint.lower() > DRAIN_BYTES {
        return Err(too_large());
    }
    let mut buffer = BytesMut::new();
    let mut seen = 0u64;
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|error| {
            ApiError::BadRequest(format!("cannot read the request body: {error}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if seen <= limit as u64 {
            buffer.extend_from_slice(&data);
        } else if seen > DRAIN_BYTES {
            return Err(too_large());
        }
    }
    if seen > limit as u64 {
        return Err(too_large());
    }
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::RunId;
    use axum::http::StatusCode;

    fn parse_heartbeat(
        query: Option<&str>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Heartbeat, ApiError> {
        match parse_push(query, headers, body)? {
            Push::Heartbeat(heartbeat) => Ok(heartbeat),
            Push::Signal(_) => panic!("a signal, not a heartbeat"),
        }
    }

    fn signal(query: &str) -> Result<Signal, ApiError> {
        match parse_push(Some(query), &HeaderMap::new(), Bytes::new())? {
            Push::Signal(signal) => Ok(signal),
            Push::Heartbeat(_) => panic!("a heartbeat, not a signal"),
        }
    }

    #[test]
    fn rid_kind_and_exit_make_a_signal() {
        let rid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        let start = signal(&format!("kind=start&rid={rid}")).expect("valid");
        assert_eq!(start.kind, SignalKind::Start);
        assert_eq!(start.rid, RunId::parse(rid));
        let failed = signal(&format!("exit=3&rid={rid}&msg=oops")).expect("valid");
        assert_eq!(
            (failed.kind, failed.exit_status),
            (SignalKind::Fail, Some(3))
        );
        assert_eq!(failed.msg.as_ref().map(HeartbeatText::as_str), Some("oops"));
        let success = signal("exit=0").expect("valid");
        assert_eq!(
            (success.kind, success.exit_status),
            (SignalKind::Success, Some(0))
        );
        assert_eq!(
            signal("status=down&kind=fail").expect("valid").kind,
            SignalKind::Fail
        );
        assert_eq!(
            signal("kind=log&msg=x").expect("valid").kind,
            SignalKind::Log
        );
        for bad in [
            "kind=stop",
            "exit=256",
            "exit=-1",
            "exit=one",
            "rid=not-a-uuid",
            "kind=start&exit=0",
            "kind=log&exit=1",
            "status=down&kind=success",
            "status=up&kind=fail",
            "status=down&kind=start",
            "status=down&exit=0",
            "status=up&exit=2",
            "kind=fail&exit=0",
        ] {
            let error = parse_push(Some(bad), &HeaderMap::new(), Bytes::new())
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn a_text_body_is_a_signals_output_and_a_parameter_body_is_not() {
        let text = |content_type: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers
        };
        let body = || Bytes::from_static(b"line 1\nline 2\n");
        let Ok(Push::Signal(ended)) = parse_push(Some("exit=0"), &text("text/plain"), body())
        else {
            panic!("a signal")
        };
        assert_eq!(
            ended.output.as_ref().map(Output::as_str),
            Some("line 1\nline 2\n")
        );
        let Ok(Push::Signal(form)) = parse_push(
            Some("kind=log"),
            &text("application/x-www-form-urlencoded"),
            Bytes::from_static(b"msg=hi"),
        ) else {
            panic!("a signal")
        };
        assert_eq!(
            (form.output, form.msg.map(|msg| msg.as_str().to_owned())),
            (None, Some("hi".to_owned()))
        );
        let Ok(Push::Heartbeat(_)) = parse_push(None, &text("text/plain"), body()) else {
            panic!("a heartbeat ignores a text body")
        };
    }

    fn parse(query: &str, json_body: Option<&str>) -> Result<Heartbeat, ApiError> {
        let mut headers = HeaderMap::new();
        if json_body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
        }
        let body = Bytes::from(json_body.unwrap_or("").to_owned());
        parse_heartbeat(Some(query), &headers, body)
    }

    #[test]
    fn only_plain_push_paths_take_the_direct_path() {
        for method in [Method::GET, Method::POST, Method::HEAD] {
            assert!(is_direct_push(&method, "/api/push/abc-_9"), "{method}");
        }
        assert!(!is_direct_push(&Method::PUT, "/api/push/abc"));
        assert!(!is_direct_push(&Method::DELETE, "/api/push/abc"));
        for path in [
            "/api/push/",
            "/api/push",
            "/api/push/abc/",
            "/api/push/a/b",
            "/api/push/%41bc",
            "/api/pushabc",
            "/api/monitors",
        ] {
            assert!(!is_direct_push(&Method::POST, path), "{path}");
        }
    }

    #[test]
    fn defaults_to_up_with_nothing_given() {
        let heartbeat = parse("", None).expect("valid");
        assert_eq!(heartbeat.status, PushStatus::Up);
        assert_eq!(heartbeat.msg, None);
        assert_eq!(heartbeat.value, None);
    }

    #[test]
    fn kumas_ping_is_the_value_unless_a_value_is_given() {
        assert_eq!(
            parse("status=up&msg=OK&ping=12.3", None)
                .expect("valid")
                .value,
            Some(12.3)
        );
        assert_eq!(
            parse("status=up&msg=OK&ping=", None).expect("valid").value,
            None
        );
        assert_eq!(
            parse("ping=12.3&value=4", None).expect("valid").value,
            Some(4.0)
        );
        assert_eq!(
            parse("value=4&ping=nonsense", None).expect("valid").value,
            Some(4.0)
        );
        assert_eq!(
            parse("ping=1", Some(r#"{"value":2}"#))
                .expect("valid")
                .value,
            Some(2.0)
        );
        for bad in ["ping=abc", "ping=inf", "ping=NaN"] {
            let error = parse(bad, None).expect_err(bad);
            assert!(
                error.to_string().starts_with("ping must be"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn reads_query_and_lets_the_json_body_win() {
        let heartbeat = parse(
            "status=up&msg=from%20query&value=1.5",
            Some(r#"{"status":"down","value":7}"#),
        )
        .expect("valid");
        assert_eq!(heartbeat.status, PushStatus::Down);
        assert_eq!(
            heartbeat.msg.as_ref().map(HeartbeatText::as_str),
            Some("from query")
        );
        assert_eq!(heartbeat.value, Some(7.0));
    }

    #[test]
    fn reads_json_sent_as_a_form_and_form_fields() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let json = Bytes::from_static(br#" {"status":"down","msg":"curl -d"}"#);
        let heartbeat = parse_heartbeat(None, &headers, json).expect("valid");
        assert_eq!(heartbeat.status, PushStatus::Down);
        let form = Bytes::from_static(b"status=down&msg=disk%20full&value=3");
        let heartbeat = parse_heartbeat(None, &headers, form).expect("valid");
        assert_eq!(heartbeat.status, PushStatus::Down);
        assert_eq!(
            heartbeat.msg.as_ref().map(HeartbeatText::as_str),
            Some("disk full")
        );
        assert_eq!(heartbeat.value, Some(3.0));
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain"),
        );
        // Plain text is not read for parameters; text that is nothing but parameters
        // is refused rather than recorded as `up`.
        for refused in [
            "status=down",
            " msg=a%20b&value=1\n",
            "status=&msg=",
            "status=down&exit=1",
        ] {
            let error = parse_heartbeat(None, &headers, Bytes::from(refused))
                .expect_err("parameters in a text/plain body");
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{refused:?}");
        }
        for ignored in [
            "backup done",
            "status: down",
            "status=down&code=1",
            "a=b",
            "status",
        ] {
            let heartbeat = parse_heartbeat(Some("msg=q"), &headers, Bytes::from(ignored))
                .expect("plain text that is not parameters is ignored");
            assert_eq!(heartbeat.status, PushStatus::Up, "{ignored:?}");
            assert_eq!(heartbeat.msg.as_ref().map(HeartbeatText::as_str), Some("q"));
        }
    }

    #[test]
    fn reads_multipart_form_fields_and_refuses_a_broken_multipart_body() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("multipart/form-data; boundary=XyZ"),
        );
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"status\"\r\n\r\ndown\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"msg\"; filename=\"log.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nline 1\nline 2\r\n--XyZ--\r\n";
        let heartbeat =
            parse_heartbeat(Some("value=7&msg=q"), &headers, Bytes::from(body)).expect("valid");
        assert_eq!(heartbeat.status, PushStatus::Down);
        assert_eq!(
            heartbeat.msg.as_ref().map(HeartbeatText::as_str),
            Some("line 1\nline 2")
        );
        assert_eq!(
            heartbeat.value,
            Some(7.0),
            "fields the body lacks keep the query's"
        );
        for broken in [
            "no parts at all",
            "--XyZ\r\nContent-Disposition: form-data; name=\"status\"\r\n\r\ndown",
        ] {
            let error = parse_heartbeat(None, &headers, Bytes::from(broken)).expect_err(broken);
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{broken:?}");
        }
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("multipart/form-data"),
        );
        let error = parse_heartbeat(None, &headers, Bytes::from(body)).expect_err("no boundary");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn rejects_bad_status_value_and_body() {
        for (query, body) in [
            ("status=sideways", None),
            ("status=", None),
            ("value=abc", None),
            ("value=NaN", None),
            ("value=inf", None),
            ("", Some("{not json")),
            ("", Some("[1,2]")),
            ("", Some(r#"{"value":"x"}"#)),
            ("", Some(r#"{"msg":5}"#)),
            ("", Some(r#"{"status":true}"#)),
        ] {
            let error = parse(query, body).expect_err(query);
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{query} {body:?}");
        }
    }

    #[test]
    fn a_bulk_item_is_a_heartbeat_with_its_token_and_instance() {
        let (token, heartbeat) = bulk_item(serde_json::json!({
            "token": "Xb3kq9T0vYh2LwQm7RzA1g", "status": "down", "msg": "m",
            "value": "2.5", "instance": "node-3.eu:a_b", "unknown": 1,
        }))
        .expect("valid");
        assert_eq!(token, "Xb3kq9T0vYh2LwQm7RzA1g");
        assert_eq!(heartbeat.status, PushStatus::Down);
        assert_eq!(heartbeat.value, Some(2.5));
        assert_eq!(
            heartbeat.instance.as_ref().map(|name| name.as_str()),
            Some("node-3.eu:a_b")
        );
        let plain = bulk_item(serde_json::json!({"token": "t"})).expect("valid");
        assert_eq!(plain.1.instance, None);
        for bad in [
            serde_json::json!({"token": "t", "instance": ""}),
            serde_json::json!({"token": "t", "instance": "a/b"}),
            serde_json::json!({"token": "t", "instance": 7}),
            serde_json::json!({"token": "t", "exit": 0}),
            serde_json::json!({"token": 5}),
            serde_json::json!([]),
        ] {
            let error = bulk_item(bad.clone()).expect_err("refused");
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Query strings built from the characters that matter to the parser.
        fn query() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[a-z=&%0-9A-F+.;-]{0,200}",
                (
                    "(status|msg|value|x|rid|kind|exit)",
                    "[a-zA-Z0-9%.+eE-]{0,40}"
                )
                    .prop_map(|(key, value)| format!("{key}={value}")),
            ]
        }

        /// Bodies: random bytes, and JSON objects with fields of any JSON type.
        fn body() -> impl Strategy<Value = Vec<u8>> {
            let leaf = prop_oneof![
                Just("null".to_owned()),
                any::<bool>().prop_map(|b| b.to_string()),
                any::<f64>().prop_map(|f| f.to_string()),
                any::<i64>().prop_map(|i| i.to_string()),
                any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
                Just("1e999".to_owned()),
                Just("[]".to_owned()),
                Just("{}".to_owned()),
            ];
            let part = ("(status|msg|value|other)", "[a-zA-Z0-9 =&%\r\n-]{0,20}").prop_map(
                |(name, value)| {
                    format!(
                        "--B\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                    )
                },
            );
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..300),
                (prop::collection::vec(part, 0..4), any::<bool>()).prop_map(|(parts, closed)| {
                    let mut body = parts.concat();
                    if closed {
                        body.push_str("--B--\r\n");
                    }
                    body.into_bytes()
                }),
                ("(status|msg|value|x)", "[a-z0-9=&%]{0,20}")
                    .prop_map(|(key, value)| format!("{key}={value}").into_bytes()),
                prop::collection::vec(("(status|msg|value|other)", leaf), 0..4).prop_map(
                    |fields| {
                        let inner: Vec<String> = fields
                            .into_iter()
                            .map(|(key, value)| format!("{key:?}:{value}"))
                            .collect();
                        format!("{{{}}}", inner.join(",")).into_bytes()
                    }
                ),
            ]
        }

        fn content_type() -> impl Strategy<Value = Option<&'static str>> {
            prop_oneof![
                Just(None),
                Just(Some("application/json")),
                Just(Some("application/x-www-form-urlencoded")),
                Just(Some("text/plain")),
                Just(Some("multipart/form-data; boundary=B")),
                Just(Some("multipart/form-data")),
                Just(Some("application/json; charset=utf-8")),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever arrives, parsing answers: a valid heartbeat (a message of at
            /// most 1024 bytes, a finite value) or a 400, never a panic.
            #[test]
            fn push_parameters_never_panic(
                query in prop::option::of(query()),
                body in body(),
                content_type in content_type(),
            ) {
                let mut headers = HeaderMap::new();
                if let Some(content_type) = content_type {
                    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
                }
                match parse_push(query.as_deref(), &headers, Bytes::from(body)) {
                    Ok(Push::Heartbeat(heartbeat)) => {
                        prop_assert!(heartbeat.msg.as_ref().is_none_or(|msg| msg.as_str().len() <= crate::domain::event::MAX_MSG_BYTES));
                        prop_assert!(heartbeat.value.is_none_or(f64::is_finite));
                    }
                    Ok(Push::Signal(signal)) => {
                        prop_assert!(signal.msg.as_ref().is_none_or(|msg| msg.as_str().len() <= crate::domain::event::MAX_MSG_BYTES));
                        prop_assert!(signal.value.is_none_or(f64::is_finite));
                    }
                    Err(error) => prop_assert_eq!(error.status(), StatusCode::BAD_REQUEST),
                }
            }
        }
    }
}

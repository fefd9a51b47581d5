//! The dashboard: server-rendered pages for people (`docs/dashboard.md`), in the same
//! binary and on the same port as the API.
//!
//! Pages are askama templates (`templates/`, checked when compiled), with a little
//! script of our own and the styles embedded in the binary (`assets.rs`); nothing is
//! fetched from anywhere at build or run time. A page changes things only through a
//! `POST` of a form, which the [`require_session`] layer checks: a live session (see
//! `session.rs`), a viewer who may write, this server's origin, the session's CSRF
//! token. The changes themselves go through what the API uses (`http::api`,
//! `http::channels`, `http::publications`, the registry), so the same rules hold.
//!
//! - `monitors.rs`: the list (filtered, sorted problems first, paged on the server);
//!   `monitors/page.rs` a monitor's page, `monitors/form.rs` its forms and actions;
//! - `channels.rs`: channels; `publish.rs`: badges and status pages to manage;
//! - `public.rs`: what anyone may fetch: badge images and status pages;
//! - `live.rs`: server-sent events of changes, from `monitor::changes`;
//! - `sign_in.rs`: signing in and out; `session.rs`: sessions, CSRF, origins;
//! - `board.rs` (every monitor's state, shared by requests), `view.rs` (how values
//!   read), `chart.rs` and `badge.rs` (SVG), `assets.rs`.

pub mod assets;
pub mod badge;
pub mod board;
pub mod channels;
pub mod chart;
pub mod live;
pub mod monitors;
pub mod public;
pub mod publish;
pub mod session;
pub mod sign_in;
pub mod view;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::http::{AppState, MAX_BODY_BYTES, Phase};

use board::Board;
use session::{Sessions, Viewer};
use view::{Counts, Page};

/// What the dashboard keeps beside the server's state.
pub struct Web {
    pub sessions: Sessions,
    pub board: Board,
    /// Badges and status pages computed lately.
    pub public: public::PublicCache,
    /// Sign-in attempts per source address.
    pub sign_ins: DefaultKeyedRateLimiter<IpAddr>,
    /// Whether cookies get `Secure` (the public URL is `https://`).
    pub secure_cookies: bool,
}

/// Sign-in attempts per source address: 10 a minute, in bursts of 10.
const SIGN_INS_PER_MINUTE: u32 = 10;

impl Web {
    fn new(state: &AppState) -> Self {
        let per_minute = NonZeroU32::new(SIGN_INS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Self {
            sessions: Sessions::default(),
            board: Board::new(state.store.clone(), state.registry.changes()),
            public: public::PublicCache::default(),
            sign_ins: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            secure_cookies: state.public_url.starts_with("https://"),
        }
    }

    /// The counts by state for the header.
    pub async fn counts(&self) -> Counts {
        match self.board.monitors().await {
            Ok(monitors) => Counts::of(monitors.iter()),
            Err(_) => Counts::default(),
        }
    }
}

/// Every route of the dashboard, the public ones (sign-in, assets, badges, status
/// pages) and those behind a session.
pub fn router(state: AppState) -> Router<AppState> {
    let web = Arc::new(Web::new(&state));
    let signed_in = Router::new()
        .route("/", get(monitors::list))
        .route("/live", get(live::events))
        .route("/logout", post(sign_in::sign_out))
        .route(
            "/monitors/new",
            get(monitors::new_form).post(monitors::create),
        )
        .route("/monitors/{id}", get(monitors::page))
        .route(
            "/monitors/{id}/edit",
            get(monitors::edit_form).post(monitors::edit),
        )
        .route("/monitors/{id}/pause", post(monitors::pause))
        .route("/monitors/{id}/resume", post(monitors::resume))
        .route("/monitors/{id}/mute", post(monitors::mute))
        .route("/monitors/{id}/unmute", post(monitors::unmute))
        .route(
            "/monitors/{id}/rotate-token",
            get(monitors::rotate_confirm).post(monitors::rotate),
        )
        .route(
            "/monitors/{id}/delete",
            get(monitors::delete_confirm).post(monitors::delete),
        )
        .route("/monitors/{id}/badge", post(publish::monitor_badge))
        .route("/channels", get(channels::list).post(channels::create))
        .route(
            "/channels/{id}/edit",
            get(channels::edit_form).post(channels::edit),
        )
        .route("/channels/{id}/test", post(channels::test))
        .route(
            "/channels/{id}/delete",
            get(channels::delete_confirm).post(channels::delete),
        )
        .route("/public", get(publish::page))
        .route("/public/badges", post(publish::tag_badge))
        .route("/public/badges/{id}/delete", post(publish::delete_badge))
        .route("/public/status-pages", post(publish::create_page))
        .route(
            "/public/status-pages/{id}/edit",
            get(publish::edit_page_form).post(publish::edit_page),
        )
        .route(
            "/public/status-pages/{id}/delete",
            post(publish::delete_page),
        )
        .route_layer(middleware::from_fn_with_state(state, require_session));
    Router::new()
        .route("/login", get(sign_in::form).post(sign_in::sign_in))
        .route("/assets/{file}", get(assets::serve))
        .route("/badge/{file}", get(public::badge))
        .route("/status/{slug}", get(public::status_page))
        .merge(signed_in)
        .layer(Extension(web))
}

/// The dashboard's pages need a session: without one, a page sends the browser to
/// sign in, anything else answers 401. A `POST` also needs a viewer who may write
/// (signing out excepted), this server's origin, and the session's CSRF token, in the
/// form's `csrf` field or an `X-CSRF-Token` header.
async fn require_session(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    request: Request,
    next: Next,
) -> Response {
    if state.phase() == Phase::Starting {
        return message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Starting",
            "The server is starting: monitors are being rebuilt. Reload in a moment.",
        );
    }
    let now = state.clock.now();
    let viewer =
        session::cookie_id(request.headers()).and_then(|id| web.sessions.find(&state, &id, now));
    let Some(viewer) = viewer else {
        return if request.method() == Method::GET && request.uri().path() != "/live" {
            let wanted = request
                .uri()
                .path_and_query()
                .map_or("/", |path| path.as_str());
            let next = form_urlencoded::byte_serialize(wanted.as_bytes()).collect::<String>();
            Redirect::to(&format!("/login?next={next}")).into_response()
        } else {
            message_page(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your session has ended. Sign in again.",
            )
        };
    };
    let mut request = request;
    if request.method() == Method::POST {
        if request.uri().path() != "/logout" && !viewer.can_write() {
            return message_page(
                StatusCode::FORBIDDEN,
                "Read-only",
                "You signed in with a read-only key: it cannot change anything.",
            );
        }
        if !session::same_origin(request.headers(), &state.public_url) {
            return message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This request came from another site, so it was refused.",
            );
        }
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            return message_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form was larger than 64 KiB.",
            );
        };
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| field(&form(&bytes), "csrf"));
        if !presented.is_some_and(|token| session::csrf_matches(&viewer, &token)) {
            return message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "The form's security token was missing or out of date: reload the page and \
                 try again.",
            );
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(viewer);
    next.run(request).await
}

/// A form body's fields, in order (a field may repeat: checkboxes).
pub fn form(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// The first value of `name` in a form.
pub fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.clone())
}

/// A page's HTML with the headers every page has: no caching (pages show push URLs),
/// no framing, no script or style but our own.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    security_headers(headers);
    response
}

/// Content-Security-Policy and its friends.
pub fn security_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Renders `template` as a page, or a plain error if it cannot be rendered.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => html(status, body),
        Err(error) => {
            tracing::error!(%error, "cannot render a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct MessagePage {
    page: Page,
    heading: String,
    message: String,
}

/// A page that only says something (an error, a refusal).
pub fn message_page(status: StatusCode, heading: &str, message: &str) -> Response {
    render(
        status,
        &MessagePage {
            page: Page::public(heading),
            heading: heading.to_owned(),
            message: message.to_owned(),
        },
    )
}

/// The same, for a signed-in viewer (with the header).
pub async fn viewer_message(
    web: &Web,
    viewer: &Viewer,
    status: StatusCode,
    heading: &str,
    message: &str,
) -> Response {
    render(
        status,
        &MessagePage {
            page: Page::new(heading, "", viewer, web.counts().await),
            heading: heading.to_owned(),
            message: message.to_owned(),
        },
    )
}

/// After a change: back to a page (303, so a reload does not resend the form).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

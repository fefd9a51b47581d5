//! Signing in (with the admin token or an API key) and out.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::http::AppState;
use crate::http::auth::secret_digest;
use crate::http::source::{limit_key, source_address};

use super::session::{self, Holder, Viewer};
use super::view::Page;
use super::{Web, field, message_page, render, see_other};

#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    page: Page,
    error: Option<String>,
    next: String,
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a path of this site only (never `//host` or a URL).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// `GET /login`.
pub async fn form_page(next: Option<&str>, error: Option<String>, status: StatusCode) -> Response {
    render(
        status,
        &Login {
            page: Page::public("Sign in"),
            error,
            next: safe_next(next),
        },
    )
}

/// `GET /login`.
pub async fn form(query: Result<Query<Next>, QueryRejection>) -> Response {
    let next = query.ok().and_then(|Query(next)| next.next);
    form_page(next.as_deref(), None, StatusCode::OK).await
}

/// `POST /login`: a valid secret opens a session and sets its cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = super::form(&body);
    let next = field(&fields, "next");
    if !session::same_origin(&headers, &state.public_url) {
        return message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This sign-in came from another site, so it was refused.",
        );
    }
    if let Some(Extension(ConnectInfo(peer))) = connection {
        let source = limit_key(source_address(peer.ip(), &headers, &state.trusted_proxies));
        if web.sign_ins.check_key(&source).is_err() {
            return form_page(
                next.as_deref(),
                Some("Too many attempts from this address: wait a minute.".to_owned()),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
        }
    }
    let secret = field(&fields, "token").unwrap_or_default();
    let secret = secret.trim();
    let digest = secret_digest(secret);
    let holder = if bool::from(digest.ct_eq(&state.admin_token_hash)) {
        Some(Holder::Admin)
    } else if state.api_keys.find(&digest).is_some() {
        Some(Holder::Key { digest })
    } else {
        None
    };
    let Some(holder) = holder.filter(|_| !secret.is_empty()) else {
        return form_page(
            next.as_deref(),
            Some("That is neither the admin token nor an API key.".to_owned()),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    };
    let Some(id) = web.sessions.open(holder, state.clock.now()) else {
        return message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cannot sign in",
            "The server's random generator failed; see its log.",
        );
    };
    tracing::info!(
        holder = match holder {
            Holder::Admin => "admin token",
            Holder::Key { .. } => "API key",
        },
        "dashboard sign-in"
    );
    let mut response = see_other(&safe_next(next.as_deref()));
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(Some(&id), web.secure_cookies),
    );
    response
}

/// `POST /logout`: the session ends on the server at once, and its cookie goes.
pub async fn sign_out(
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    web.sessions.close(&viewer);
    let mut response = see_other("/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(None, web.secure_cookies),
    );
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_goes_back_only_to_a_path_of_this_site() {
        assert_eq!(safe_next(Some("/monitors/x?a=1")), "/monitors/x?a=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "evil",
            "/\\evil",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}

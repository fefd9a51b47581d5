//! Dashboard sessions: who signed in, kept in memory only (a restart signs everyone
//! out), behind a cookie that holds a random 256-bit session id.
//!
//! - The server keeps only the SHA-256 of the id, as it does for API keys, so a dump
//!   of its memory cannot be replayed as a cookie.
//! - A session ends when signed out (removed at once, server-side), after
//!   [`IDLE_TIMEOUT`] without a request, after [`MAX_AGE`] in any case, and when the
//!   API key it was opened with is revoked (checked on every request).
//! - Each session has its own CSRF token (a synchronizer token): every `POST` must
//!   carry it (a form's `csrf` field or an `X-CSRF-Token` header), and must not come
//!   from another origin (`Origin`, `Sec-Fetch-Site`).
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Lax` and `Secure` when
//! the public URL is `https://`. Lax rather than Strict so that a link to the
//! dashboard in an alert, a chat or a mail opens it signed in; Lax still keeps the
//! cookie from every cross-site `POST`, subresource and frame, and no `GET` here
//! changes anything.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use rand::TryRngCore as _;
use subtle::ConstantTimeEq;

use crate::domain::api_key::Scope;
use crate::domain::ids::Timestamp;
use crate::http::AppState;
use crate::http::auth::{Principal, secret_digest};

/// The session cookie's name.
pub const COOKIE: &str = "pushmon_session";

/// A session unused this long ends (milliseconds): 12 hours.
pub const IDLE_TIMEOUT: i64 = 12 * 3600 * 1000;

/// A session ends this long after sign-in, used or not (milliseconds): 7 days.
pub const MAX_AGE: i64 = 7 * 24 * 3600 * 1000;

/// The most sessions kept; signing in beyond it ends the least recently used.
pub const MAX_SESSIONS: usize = 10_000;

/// Who a session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    Admin,
    /// An API key, by the digest of its secret: looked up again on every request, so
    /// a revoked key's sessions end with it.
    Key {
        digest: [u8; 32],
    },
}

/// One signed-in browser.
#[derive(Clone, Debug)]
struct Session {
    holder: Holder,
    csrf: String,
    signed_in_at: Timestamp,
    last_seen: Timestamp,
    /// A message for the next page shown (after a change redirects).
    flash: Option<Flash>,
}

/// A one-time message on the next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
    /// A value to show in a copyable box (a new push URL).
    pub copy: Option<String>,
}

/// What a page knows of its viewer.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub principal: Principal,
    pub csrf: String,
    /// The session's id digest: how handlers leave a flash.
    pub(super) digest: [u8; 32],
    pub flash: Option<Flash>,
}

impl Viewer {
    /// Whether the viewer may change things (not a read key).
    pub fn can_write(&self) -> bool {
        self.principal.sees_credentials()
    }

    /// "admin", or the key's scope.
    pub fn label(&self) -> &'static str {
        match self.principal {
            Principal::Admin => "admin token",
            Principal::Key {
                scope: Scope::Write,
                ..
            } => "write key",
            Principal::Key {
                scope: Scope::Read, ..
            } => "read-only key",
        }
    }
}

/// Every session, by the digest of its id.
#[derive(Default)]
pub struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Opens a session for `holder` at `now`; returns the cookie's value (the id).
    pub fn open(&self, holder: Holder, now: Timestamp) -> Option<String> {
        let id = random_token()?;
        let session = Session {
            holder,
            csrf: random_token()?,
            signed_in_at: now,
            last_seen: now,
            flash: None,
        };
        let mut sessions = self.lock();
        sessions.retain(|_, session| alive(session, now));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.last_seen)
                .map(|(digest, _)| *digest)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(secret_digest(&id), session);
        Some(id)
    }

    /// The viewer behind a cookie's id at `now`, if its session is alive and its
    /// holder still valid; it counts as the session's use. Takes the flash.
    pub fn find(&self, state: &AppState, id: &str, now: Timestamp) -> Option<Viewer> {
        let digest = secret_digest(id);
        let mut sessions = self.lock();
        let session = sessions.get_mut(&digest)?;
        let principal = match session.holder {
            Holder::Admin => Some(Principal::Admin),
            Holder::Key { digest } => state
                .api_keys
                .find(&digest)
                .map(|(id, scope)| Principal::Key { id, scope }),
        };
        let Some(principal) = principal.filter(|_| alive(session, now)) else {
            sessions.remove(&digest);
            return None;
        };
        session.last_seen = now;
        Some(Viewer {
            principal,
            csrf: session.csrf.clone(),
            digest,
            flash: session.flash.take(),
        })
    }

    /// Whether `viewer`'s session is still open at `now`, without counting as a use (a
    /// page left open does not keep its session alive by listening).
    pub fn is_open(&self, state: &AppState, viewer: &Viewer, now: Timestamp) -> bool {
        let sessions = self.lock();
        sessions.get(&viewer.digest).is_some_and(|session| {
            alive(session, now)
                && match session.holder {
                    Holder::Admin => true,
                    Holder::Key { digest } => state.api_keys.find(&digest).is_some(),
                }
        })
    }

    /// Ends the session of `viewer` at once.
    pub fn close(&self, viewer: &Viewer) {
        self.lock().remove(&viewer.digest);
    }

    /// Leaves a message for `viewer`'s next page.
    pub fn flash(&self, viewer: &Viewer, flash: Flash) {
        if let Some(session) = self.lock().get_mut(&viewer.digest) {
            session.flash = Some(flash);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // Each change is one insert, remove or field write: a poisoned map is whole.
        self.by_digest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn alive(session: &Session, now: Timestamp) -> bool {
    let idle = now.as_millis() - session.last_seen.as_millis();
    let age = now.as_millis() - session.signed_in_at.as_millis();
    idle < IDLE_TIMEOUT && age < MAX_AGE
}

/// 256 bits from the OS generator, URL-safe base64.
fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `presented` is the session's CSRF token (in constant time).
pub fn csrf_matches(viewer: &Viewer, presented: &str) -> bool {
    bool::from(viewer.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

/// The session id in a request's cookies.
pub fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` that hands out session `id` (or, with `None`, removes it).
pub fn set_cookie(id: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = match id {
        Some(id) => format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{secure}"),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether a request may change things as far as where it comes from goes: no
/// `Sec-Fetch-Site` other than same-origin (or none, a user typing or bookmarking),
/// and an `Origin`, if any, that is this server's: the public URL's origin or the
/// `Host` it was asked for.
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == origin_of(public_url) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    !host.is_empty()
        && origin
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host)
}

/// `scheme://host[:port]` of a URL (everything before its path).
fn origin_of(url: &str) -> &str {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').map_or(url.len(), |at| scheme.len() + 3 + at);
            &url[..end]
        }
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let found = cookie_id(&headers(&[("cookie", "a=1; pushmon_session=abc; b=2")]));
        assert_eq!(found.as_deref(), Some("abc"));
        assert_eq!(
            cookie_id(&headers(&[("cookie", "pushmon_sessionx=1")])),
            None
        );
        assert_eq!(cookie_id(&HeaderMap::new()), None);
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_over_tls() {
        let plain = set_cookie(Some("id"), false);
        assert_eq!(plain, "pushmon_session=id; Path=/; HttpOnly; SameSite=Lax");
        let tls = set_cookie(Some("id"), true);
        assert!(tls.to_str().expect("ascii").ends_with("; Secure"));
        let gone = set_cookie(None, false);
        assert!(gone.to_str().expect("ascii").contains("Max-Age=0"));
    }

    #[test]
    fn only_this_servers_origin_may_post() {
        let public = "https://mon.example.com";
        let cases: &[(&[(&'static str, &str)], bool)] = &[
            (&[], true),
            (&[("origin", "https://mon.example.com")], true),
            (&[("origin", "https://evil.example")], false),
            (&[("origin", "null")], false),
            (
                &[
                    ("origin", "http://127.0.0.1:8080"),
                    ("host", "127.0.0.1:8080"),
                ],
                true,
            ),
            (
                &[("origin", "http://127.0.0.1:9"), ("host", "127.0.0.1:8080")],
                false,
            ),
            (&[("sec-fetch-site", "cross-site")], false),
            (&[("sec-fetch-site", "same-site")], false),
            (
                &[
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "https://mon.example.com"),
                ],
                true,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(same_origin(&headers(pairs), public), *expected, "{pairs:?}");
        }
        assert_eq!(origin_of("https://a.b:8/x/y"), "https://a.b:8");
        assert_eq!(origin_of("http://a"), "http://a");
    }

    #[test]
    fn sessions_end_when_idle_too_long_or_too_old() {
        let start = Timestamp::from_millis(1_800_000_000_000);
        let later = |ms: i64| Timestamp::from_millis(start.as_millis() + ms);
        let session = Session {
            holder: Holder::Admin,
            csrf: String::new(),
            signed_in_at: start,
            last_seen: start,
            flash: None,
        };
        assert!(alive(&session, later(IDLE_TIMEOUT - 1)));
        assert!(!alive(&session, later(IDLE_TIMEOUT)));
        let busy = Session {
            last_seen: later(MAX_AGE - 1000),
            ..session
        };
        assert!(alive(&busy, later(MAX_AGE - 1)));
        assert!(!alive(&busy, later(MAX_AGE)));
    }
}

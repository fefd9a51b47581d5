//! Restricted and signed pushes (`docs/push.md`, "Restricted and signed pushes"): a
//! monitor may take pushes only from some source addresses (`allowed_sources`, the
//! address as `source.rs` resolves it behind `--trusted-proxies`), and only when
//! signed with its secret (`signing_secret`). Checked after the token is found, for
//! its push URL, its ping URLs and its items in a bulk push; a refusal records
//! nothing.
//!
//! A signed push carries `X-Pushmon-Timestamp` (Unix seconds) and
//! `X-Pushmon-Signature: sha256=<hex>`, the HMAC-SHA256 under the secret of
//!
//! ```text
//! <timestamp> "\n" <METHOD> "\n" <path and query, as sent> "\n" <body>
//! ```
//!
//! The timestamp must be within `--signature-window` of the server's time, and a
//! signature is taken once: [`ReplayGuard`] remembers each accepted one, per monitor,
//! until its timestamp leaves the window. It is memory only, so a restart forgets it:
//! a signature captured before a restart could be replayed once after it, within the
//! rest of its window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::ids::{MonitorId, Timestamp};
use crate::monitor::directory::PushAccess;

use super::error::ApiError;

pub const TIMESTAMP_HEADER: &str = "x-pushmon-timestamp";
pub const SIGNATURE_HEADER: &str = "x-pushmon-signature";

/// The most signatures remembered per monitor within the window; beyond it, signed
/// pushes to that monitor are refused (429) until older ones leave the window. At
/// the default five minutes, that is over 30 signed pushes a second, kept apart.
pub const MAX_REMEMBERED_PER_MONITOR: usize = 10_000;

/// What of a request the rules look at.
pub struct PushRequest<'a> {
    /// The source address (`source::source_address`); `None` when the router is
    /// driven without a socket (tests), which no source list admits.
    pub source: Option<IpAddr>,
    pub method: &'a Method,
    /// The path and query exactly as sent (what was signed).
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Why a source is refused: 403, the same text whatever the address.
const SOURCE_REFUSED: &str = "pushes to this monitor are not accepted from this address";

/// Checks `request` against `access`, monitor `monitor`'s rules; a signature that
/// passes is remembered, so the same one is refused next time.
pub fn check(
    access: &PushAccess,
    monitor: MonitorId,
    request: &PushRequest<'_>,
    replay: &ReplayGuard,
    window: Duration,
    now: Timestamp,
) -> Result<(), ApiError> {
    check_source(access, request.source)?;
    let Some(secret) = &access.signing_secret else {
        return Ok(());
    };
    let signature = verify(secret, request, window, now)?;
    replay.remember(monitor, signature.digest, signature.timestamp, window, now)
}

/// The source check alone.
pub fn check_source(access: &PushAccess, source: Option<IpAddr>) -> Result<(), ApiError> {
    if access.allowed_sources.is_empty() {
        return Ok(());
    }
    let admitted = source.is_some_and(|source| {
        let source = source.to_canonical();
        access
            .allowed_sources
            .iter()
            .any(|range| range.contains(&source))
    });
    if admitted {
        Ok(())
    } else {
        Err(ApiError::Forbidden(SOURCE_REFUSED))
    }
}

/// A signature that verified.
pub struct Verified {
    pub digest: [u8; 32],
    pub timestamp: i64,
}

/// Checks the signature headers of `request` against `secret`.
pub fn verify(
    secret: &[u8],
    request: &PushRequest<'_>,
    window: Duration,
    now: Timestamp,
) -> Result<Verified, ApiError> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .map(|value| value.to_str().map(str::trim))
    };
    let (Some(timestamp), Some(signature)) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER))
    else {
        return Err(ApiError::Unsigned(
            "this monitor takes signed pushes only: send X-Pushmon-Timestamp and \
             X-Pushmon-Signature (docs/push.md)",
        ));
    };
    let timestamp_text =
        timestamp.map_err(|_| ApiError::Unsigned("X-Pushmon-Timestamp must be Unix seconds"))?;
    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| ApiError::Unsigned("X-Pushmon-Timestamp must be Unix seconds"))?;
    let digest = signature
        .ok()
        .and_then(|signature| signature.strip_prefix("sha256="))
        .and_then(|hex_digits| {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hex_digits, &mut digest).ok()?;
            Some(digest)
        })
        .ok_or(ApiError::Unsigned(
            "X-Pushmon-Signature must be sha256= and 64 hex digits",
        ))?;
    let now_seconds = now.as_millis().div_euclid(1000);
    let window_seconds = window.as_secs() as i64;
    if timestamp.abs_diff(now_seconds) > window_seconds.unsigned_abs() {
        return Err(ApiError::Unsigned(
            "X-Pushmon-Timestamp is outside the signature window of the server's time \
             (a stale or replayed push, or a clock that is off)",
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| ApiError::Internal("an HMAC key of any length is valid".to_owned()))?;
    mac.update(timestamp_text.as_bytes());
    mac.update(b"\n");
    mac.update(request.method.as_str().as_bytes());
    mac.update(b"\n");
    mac.update(request.path_and_query.as_bytes());
    mac.update(b"\n");
    mac.update(request.body);
    // Compared in constant time.
    mac.verify_slice(&digest)
        .map_err(|_| ApiError::Unsigned("X-Pushmon-Signature does not match"))?;
    Ok(Verified { digest, timestamp })
}

/// The signatures accepted within the window, per monitor (see the module
/// documentation), each until its timestamp leaves the window.
#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<MonitorId, HashMap<[u8; 32], i64>>>,
}

impl ReplayGuard {
    /// Remembers `digest` (a signature of `timestamp`) for `monitor`; refuses one
    /// already remembered.
    pub fn remember(
        &self,
        monitor: MonitorId,
        digest: [u8; 32],
        timestamp: i64,
        window: Duration,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let now_seconds = now.as_millis().div_euclid(1000);
        let expires = timestamp.saturating_add(window.as_secs() as i64);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let remembered = seen.entry(monitor).or_default();
        if remembered
            .get(&digest)
            .is_some_and(|until| *until >= now_seconds)
        {
            return Err(ApiError::Unsigned(
                "this signature was already used: each signed push is taken once",
            ));
        }
        if remembered.len() >= MAX_REMEMBERED_PER_MONITOR {
            remembered.retain(|_, until| *until >= now_seconds);
            if remembered.len() >= MAX_REMEMBERED_PER_MONITOR {
                return Err(ApiError::RateLimited {
                    retry_after: Duration::from_secs(1),
                });
            }
        }
        remembered.insert(digest, expires);
        Ok(())
    }

    /// Forgets signatures whose window is over, and monitors left with none.
    pub fn forget_expired(&self, now: Timestamp) {
        let now_seconds = now.as_millis().div_euclid(1000);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, remembered| {
            remembered.retain(|_, until| *until >= now_seconds);
            !remembered.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &[u8] = b"a secret of some length";

    fn signed(timestamp: &str, method: &Method, target: &str, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key");
        mac.update(format!("{timestamp}\n{method}\n{target}\n").as_bytes());
        mac.update(body);
        let digest = hex::encode(mac.finalize().into_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(
            TIMESTAMP_HEADER,
            HeaderValue::from_str(timestamp).expect("ascii"),
        );
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&format!("sha256={digest}")).expect("ascii"),
        );
        headers
    }

    fn request<'a>(headers: &'a HeaderMap, target: &'a str, body: &'a [u8]) -> PushRequest<'a> {
        PushRequest {
            source: None,
            method: &Method::POST,
            path_and_query: target,
            headers,
            body,
        }
    }

    const NOW: i64 = 1_800_000_000;
    const WINDOW: Duration = Duration::from_secs(300);

    fn now() -> Timestamp {
        Timestamp::from_millis(NOW * 1000 + 400)
    }

    #[test]
    fn the_signature_covers_timestamp_method_target_and_body() {
        let target = "/api/push/t?status=down";
        let headers = signed(&NOW.to_string(), &Method::POST, target, b"{}");
        assert!(verify(SECRET, &request(&headers, target, b"{}"), WINDOW, now()).is_ok());
        for (target_sent, body) in [
            ("/api/push/t?status=up", &b"{}"[..]),
            ("/api/push/u?status=down", b"{}"),
            (target, b"{ }"),
        ] {
            let error = verify(SECRET, &request(&headers, target_sent, body), WINDOW, now())
                .err()
                .expect("refused");
            assert_eq!(error.to_string(), "X-Pushmon-Signature does not match");
        }
        let get = PushRequest {
            method: &Method::GET,
            ..request(&headers, target, b"{}")
        };
        assert!(verify(SECRET, &get, WINDOW, now()).is_err());
        assert!(verify(b"another", &request(&headers, target, b"{}"), WINDOW, now()).is_err());
    }

    #[test]
    fn timestamps_outside_the_window_and_malformed_headers_are_refused() {
        let target = "/api/push/t";
        for (timestamp, ok) in [
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
        ] {
            let headers = signed(&timestamp.to_string(), &Method::POST, target, b"");
            let outcome = verify(SECRET, &request(&headers, target, b""), WINDOW, now());
            assert_eq!(outcome.is_ok(), ok, "{timestamp}");
        }
        let mut headers = signed(&NOW.to_string(), &Method::POST, target, b"");
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_static("sha256=abc"));
        assert!(verify(SECRET, &request(&headers, target, b""), WINDOW, now()).is_err());
        headers.remove(SIGNATURE_HEADER);
        let error = verify(SECRET, &request(&headers, target, b""), WINDOW, now())
            .err()
            .expect("unsigned");
        assert!(error.to_string().contains("signed pushes only"));
        let headers = signed("soon", &Method::POST, target, b"");
        assert!(verify(SECRET, &request(&headers, target, b""), WINDOW, now()).is_err());
    }

    #[test]
    fn a_signature_is_taken_once_per_monitor_until_it_leaves_the_window() {
        let guard = ReplayGuard::default();
        let (first, second) = (
            MonitorId::generate(now()),
            MonitorId::generate(Timestamp::from_millis(1)),
        );
        let digest = [7u8; 32];
        assert!(guard.remember(first, digest, NOW, WINDOW, now()).is_ok());
        assert!(guard.remember(first, digest, NOW, WINDOW, now()).is_err());
        assert!(guard.remember(second, digest, NOW, WINDOW, now()).is_ok());
        let later = Timestamp::from_millis((NOW + 301) * 1000);
        guard.forget_expired(later);
        assert!(guard.seen.lock().expect("not poisoned").is_empty());
    }
}

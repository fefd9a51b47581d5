//! Sending one push or ping until the server takes it, for at most a given time:
//! retried with exponential backoff (±20% jitter, 0.5 s doubling up to 10 s, longer if
//! the server's `Retry-After` says so) while the server cannot be reached, answers
//! 5xx or 429; given up at once on any other 4xx, which no retry would change. The
//! URL holds a push token, so no message here prints it: only its host.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng as _;
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::watch;
use tokio::time::Instant;

use super::FailureKind;
use super::api::{describe_error, server_error};

/// The header in which a ping answer says how many bytes of a body the server keeps.
pub const PING_BODY_LIMIT: &str = "Ping-Body-Limit";

const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(10);
/// How long one attempt may take, answer included (less when less time is left).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time an attempt gets, even when the retry time is (nearly) over.
const SHORTEST_ATTEMPT: Duration = Duration::from_secs(1);

/// One request to send: a POST of `body` to `url`.
pub struct Request<'a> {
    pub http: &'a reqwest::Client,
    pub url: Url,
    pub body: Bytes,
    /// The body's type, if it has one.
    pub content_type: Option<&'static str>,
}

/// The server took it.
#[derive(Clone, Copy, Debug)]
pub struct Accepted {
    pub status: u16,
    /// The answer's `Ping-Body-Limit`, if it had one.
    pub ping_body_limit: Option<usize>,
}

/// Why it was not delivered.
#[derive(Clone, Debug)]
pub struct GaveUp {
    pub kind: FailureKind,
    pub reason: String,
    pub attempts: u32,
}

/// `host[:port]` of `url`, for messages that must not show its token.
pub fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => "the server".to_owned(),
    }
}

/// One attempt's outcome.
enum Attempt {
    Accepted(Accepted),
    /// Worth another try, after at least `not_before`.
    Retry {
        kind: FailureKind,
        reason: String,
        not_before: Duration,
    },
    Refused {
        kind: FailureKind,
        reason: String,
    },
}

async fn attempt(request: &Request<'_>, timeout: Duration) -> Attempt {
    let mut builder = request
        .http
        .post(request.url.clone())
        .timeout(timeout)
        .body(request.body.clone());
    if let Some(content_type) = request.content_type {
        builder = builder.header(CONTENT_TYPE, content_type);
    }
    let response = match builder.send().await {
        Ok(response) => response,
        Err(error) => {
            return Attempt::Retry {
                kind: FailureKind::Unreachable,
                reason: describe_error(&error),
                not_before: Duration::ZERO,
            };
        }
    };
    let status = response.status().as_u16();
    let header_number = |name| -> Option<u64> {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
    };
    let ping_body_limit =
        header_number(PING_BODY_LIMIT).and_then(|limit| usize::try_from(limit).ok());
    let retry_after =
        header_number(RETRY_AFTER.as_str()).map_or(Duration::ZERO, Duration::from_secs);
    if response.status().is_success() {
        return Attempt::Accepted(Accepted {
            status,
            ping_body_limit,
        });
    }
    let said = match response.bytes().await {
        Ok(body) => server_error(&body),
        Err(error) => describe_error(&error),
    };
    let reason = format!("the server answered {status}: {said}");
    let kind = FailureKind::of_status(status);
    if status == 429 || status >= 500 {
        Attempt::Retry {
            kind,
            reason,
            not_before: retry_after,
        }
    } else {
        Attempt::Refused { kind, reason }
    }
}

/// Sends `request` until it is accepted, refused, `retry_for` has passed, or `stop`
/// turns true (checked between attempts; an attempt under way is finished, so a later
/// request never overtakes it). `on_retry` hears the reason of the first failed
/// attempt, once, when a retry will follow.
pub async fn send(
    request: Request<'_>,
    retry_for: Duration,
    mut stop: Option<watch::Receiver<bool>>,
    mut on_retry: impl FnMut(&str),
) -> Result<Accepted, GaveUp> {
    let deadline = Instant::now() + retry_for;
    let mut wait = FIRST_WAIT;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = ATTEMPT_TIMEOUT.min(left).max(SHORTEST_ATTEMPT);
        let (kind, reason, not_before) = match attempt(&request, timeout).await {
            Attempt::Accepted(accepted) => return Ok(accepted),
            Attempt::Refused { kind, reason } => {
                return Err(GaveUp {
                    kind,
                    reason,
                    attempts,
                });
            }
            Attempt::Retry {
                kind,
                reason,
                not_before,
            } => (kind, reason, not_before),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let stopped = stop.as_ref().is_some_and(|stop| *stop.borrow());
        if left.is_zero() || stopped {
            return Err(GaveUp {
                kind,
                reason,
                attempts,
            });
        }
        if attempts == 1 {
            on_retry(&reason);
        }
        // The last attempt comes when the time is up, however long the wait would be.
        let jitter = rand::rng().random_range(0.8..1.2);
        let pause = wait.mul_f64(jitter).max(not_before).min(left);
        let sleep = tokio::time::sleep(pause);
        match stop.as_mut() {
            Some(stop) => {
                tokio::select! {
                    () = sleep => {}
                    _ = stop.wait_for(|stopped| *stopped) => {
                        return Err(GaveUp { kind, reason, attempts });
                    }
                }
            }
            None => sleep.await,
        }
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}

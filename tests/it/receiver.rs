//! A real HTTP receiver for alert tests: an axum server on `127.0.0.1:0` that records
//! every request (any method) and answers as told: succeed, fail the first N, fail
//! always, answer a given status, hang, or redirect.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::Value;
use tokio::time::{Instant, sleep};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the receiver answered (0 if it hung up without answering).
    pub answered: u16,
    /// When the request arrived, in Unix milliseconds (wall clock, as a pod stamps
    /// its records: the fault suite orders deliveries and outcome records by it).
    pub at_millis: i64,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("receiver got JSON")
    }
}

const SUCCEED: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;
const REDIRECT: u8 = 3;
const STATUS: u8 = 4;

#[derive(Default)]
struct Inner {
    mode: AtomicU8,
    /// Requests to fail with 500 before the mode applies.
    fail_first: AtomicU32,
    /// Where `REDIRECT` sends every request.
    location: Mutex<String>,
    /// What `STATUS` answers.
    status: std::sync::atomic::AtomicU16,
    received: Mutex<Vec<Received>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub address: SocketAddr,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let address = listener.local_addr().expect("receiver address");
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/{*path}", any(receive))
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { address, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Answers 500 to the next `count` requests, then follows the mode.
    pub fn fail_first(&self, count: u32) {
        self.inner.fail_first.store(count, Ordering::SeqCst);
    }

    pub fn fail_always(&self) {
        self.inner.mode.store(FAIL, Ordering::SeqCst);
    }

    pub fn succeed(&self) {
        self.inner.mode.store(SUCCEED, Ordering::SeqCst);
    }

    /// Answers every request with `status`.
    pub fn answer_with(&self, status: u16) {
        self.inner.status.store(status, Ordering::SeqCst);
        self.inner.mode.store(STATUS, Ordering::SeqCst);
    }

    /// Never answers (until the client gives up).
    pub fn hang(&self) {
        self.inner.mode.store(HANG, Ordering::SeqCst);
    }

    /// Answers every request `307 Temporary Redirect` to `location`.
    pub fn redirect_to(&self, location: &str) {
        *self.inner.location.lock().unwrap() = location.to_owned();
        self.inner.mode.store(REDIRECT, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Requests that were answered with a 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|request| (200..300).contains(&request.answered))
            .collect()
    }

    /// Waits until at least `count` requests were answered with a 2xx.
    pub async fn wait_for_delivered(&self, count: usize, max_wait: Duration) -> Vec<Received> {
        let deadline = Instant::now() + max_wait;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= count {
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} of {count} deliveries within {max_wait:?}; all requests: {:?}",
                delivered.len(),
                self.received()
                    .iter()
                    .map(|request| (
                        request.answered,
                        String::from_utf8_lossy(&request.body).into_owned()
                    ))
                    .collect::<Vec<_>>()
            );
            sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let failing_first = inner
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    let mode = inner.mode.load(Ordering::SeqCst);
    let answer = if failing_first || mode == FAIL {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if mode == REDIRECT {
        StatusCode::TEMPORARY_REDIRECT
    } else if mode == STATUS {
        StatusCode::from_u16(inner.status.load(Ordering::SeqCst))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    } else {
        StatusCode::OK
    };
    let answered = if mode == HANG && !failing_first {
        0
    } else {
        answer.as_u16()
    };
    let at_millis = pushmon::clock::Clock::system().now().as_millis();
    inner.received.lock().unwrap().push(Received {
        at_millis,
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body,
        answered,
    });
    if answered == 0 {
        sleep(Duration::from_secs(3600)).await;
    }
    if answer == StatusCode::TEMPORARY_REDIRECT {
        let location = inner.location.lock().unwrap().clone();
        return (answer, [(header::LOCATION, location)]).into_response();
    }
    answer.into_response()
}

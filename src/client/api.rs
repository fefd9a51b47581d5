//! An HTTP client of the management API (`docs/api.md`): one request, one answer. A
//! 2xx answer comes back with its body as the server sent it; anything else is a
//! [`Failure`] carrying the server's `{"error": …}` text and the exit code its status
//! means.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, Url};
use serde_json::Value;

use super::{Failure, FailureKind};

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client every command uses: rustls, a bounded connect, pushmon's version as
/// its `User-Agent`.
pub fn http_client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("pushmon/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| Failure::other(format!("cannot set up HTTP: {error}")))
}

/// Why a request got no answer, in a few words ("connection refused", "timed out").
pub fn describe_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    // The innermost cause says it best ("Connection refused (os error 111)"); reqwest's
    // own text repeats the URL, which may hold a push token.
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    if error.is_connect() {
        format!("cannot connect: {text}")
    } else {
        text
    }
}

/// The management API of one server, with the secret it authenticates with.
pub struct Api {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Result<Value, Failure> {
        serde_json::from_slice(&self.body).map_err(|error| {
            Failure::other(format!(
                "the server's answer is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            ))
        })
    }
}

impl Api {
    pub fn new(base: Url, token: Option<String>) -> Result<Self, Failure> {
        Ok(Self {
            base,
            token,
            http: http_client()?,
        })
    }

    /// `method` on `path` (starting with `/api/`), with `query` and a JSON `body`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Failure> {
        let url = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        let mut request = self
            .http
            .request(method, &url)
            .timeout(REQUEST_TIMEOUT)
            .query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|error| {
            Failure::new(
                FailureKind::Unreachable,
                format!(
                    "cannot reach the server at {}: {}",
                    self.base,
                    describe_error(&error)
                ),
            )
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|error| {
            Failure::new(
                FailureKind::Unreachable,
                format!(
                    "the server at {} broke off its answer: {}",
                    self.base,
                    describe_error(&error)
                ),
            )
        })?;
        if status.is_success() {
            return Ok(Answer {
                status: status.as_u16(),
                body,
            });
        }
        Err(self.refusal(status.as_u16(), &body))
    }

    /// The failure a non-2xx answer means, in the server's own words.
    fn refusal(&self, status: u16, body: &[u8]) -> Failure {
        let kind = FailureKind::of_status(status);
        let said = server_error(body);
        let mut message = format!("the server answered {status}: {said}");
        if status == 401 && self.token.is_none() {
            message.push_str(
                " (no token was given: use --token-file, PUSHMON_TOKEN or `token_file` in \
                 the config file)",
            );
        }
        Failure::new(kind, message)
    }
}

/// The `error` text of an error body, else the body itself (cut short), else a word.
pub fn server_error(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body)
        && let Some(error) = value.get("error").and_then(Value::as_str)
    {
        return error.to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no explanation".to_owned()
    } else {
        text.chars().take(200).collect()
    }
}

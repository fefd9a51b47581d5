//! The one mapping from failures to HTTP answers. Every error is JSON
//! `{"error": "..."}`; internal details are logged, never sent.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::monitor::RegistryError;
use crate::store::StoreError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unknown push token")]
    UnknownToken,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// A push to a monitor that takes signed pushes only, unsigned or badly signed.
    #[error("{0}")]
    Unsigned(&'static str),
    /// A known caller asking for more than its scope allows.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("request body is larger than 64 KiB")]
    TooLarge,
    /// A request over another bound than the body's 64 KiB (a bulk push's).
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("rate limit exceeded; retry later")]
    RateLimited { retry_after: Duration },
    /// Over the per-source-address limit on pushes with an unknown token.
    #[error("too many unknown push tokens from this address; retry later")]
    SourceRateLimited { retry_after: Duration },
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("{0}")]
    BadGateway(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownToken | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized | Self::Unsigned(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooLarge | Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } | Self::SourceRateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Corrupt(detail) => Self::Internal(detail),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable; answering 503");
                Self::Unavailable("storage unavailable; nothing was recorded")
            }
            StoreError::Closed => Self::Unavailable("server is shutting down"),
            StoreError::Deleted => Self::NotFound("monitor not found"),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Store(error) => error.into(),
            RegistryError::NotFound => Self::NotFound("monitor not found"),
            RegistryError::Unavailable => Self::Unavailable("monitor is restarting; retry"),
            RegistryError::Rejected(rejection) => Self::Unprocessable(rejection.to_string()),
            RegistryError::UnknownChannel(_)
            | RegistryError::TokenTaken
            | RegistryError::SlugTaken
            | RegistryError::BadParents(_) => Self::Unprocessable(error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if let Self::RateLimited { retry_after } | Self::SourceRateLimited { retry_after } = self {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

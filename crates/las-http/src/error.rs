//! The HTTP edge's errors, for both servers (the LAS daemon and the verification service):
//! one type, whose kind ([`ErrorKind`], in `las_core::api`) fixes the status, answered as
//! `{"error": "<kind>", "message": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use las_core::api::ErrorKind;

/// An error answered to a client as `{"error": "<kind>", "message": "..."}` with the
/// kind's status. Internal details are logged, not sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
    /// Logged when answered, never sent (`internal`).
    detail: Option<String>,
}

impl ApiError {
    /// An error of `kind` with `message` for the client.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            detail: None,
        }
    }

    /// 500 `internal`: `detail` is logged, the client reads "internal error".
    pub fn internal(detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Internal,
            message: "internal error".into(),
            detail: Some(detail.into()),
        }
    }

    /// 413 `body-too-large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            ErrorKind::BodyTooLarge,
            format!("request body is larger than the {limit} bytes allowed"),
        )
    }

    /// 408 `body-timeout`: the request was not read in full within `limit`.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            ErrorKind::BodyTimeout,
            format!(
                "the request (headers and body) did not arrive within {}",
                crate::duration::format(limit)
            ),
        )
    }

    /// 404 `not-found` for `what` (`METHOD /path`).
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, format!("no route {what}"))
    }

    /// 405 `method-not-allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(ErrorKind::MethodNotAllowed, "method not allowed")
    }

    /// 503 `unavailable`: shutting down.
    pub fn unavailable() -> Self {
        Self::new(ErrorKind::Unavailable, "shutting down")
    }

    /// 503 `identity-timeout` (with `Retry-After`): evidence not ready within `secs`.
    pub fn identity_timeout(secs: f64) -> Self {
        Self::new(
            ErrorKind::IdentityTimeout,
            format!(
                "identity evidence was not ready within {secs} s (the platform's quoting is busy or slow); retry later"
            ),
        )
    }

    /// The stable, machine-readable kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(detail) = &self.detail {
            tracing::error!(target: "las", "internal error: {detail}");
        }
        let body = las_core::api::ErrorAnswer {
            error: self.kind.as_str().into(),
            message: self.message.clone(),
        };
        let mut resp = (self.status(), Json(body)).into_response();
        if matches!(self.kind, ErrorKind::IdentityTimeout | ErrorKind::Busy) {
            // Busy, not broken: tell clients when to come back instead of hammering.
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        // For the metrics layer: refusals counted by kind.
        resp.extensions_mut().insert(self.kind);
        resp
    }
}

/// The answer to a request no route matched, for every router: 404 `not-found`.
pub async fn not_found(req: axum::extract::Request) -> ApiError {
    ApiError::not_found(format_args!("{} {}", req.method(), req.uri().path()))
}

/// The answer to a method a route does not take, for every router: 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

//! The HTTP edge's errors: one enum, one status and one stable kind per variant.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use las_platform::ReportError;

/// An error answered to a client as `{"error": "<kind>", "message": "..."}`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The REPORT is not 432 bytes.
    #[error("{0}")]
    ReportLength(String),
    /// The REPORT has non-zero reserved fields.
    #[error("{0}")]
    ReportMalformed(String),
    /// The REPORT's MAC does not verify.
    #[error("{0}")]
    ReportMac(String),
    /// The REPORT's CPUSVN is not the platform's current CPUSVN.
    #[error("{0}")]
    ReportCpusvn(String),
    /// The body is not what the content type says (bad JSON, bad base64).
    #[error("{0}")]
    BadRequest(String),
    /// A query parameter is missing or malformed.
    #[error("{0}")]
    BadParameter(String),
    /// Content type not accepted by this route.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is over the configured cap.
    #[error("request body is larger than the {0} bytes allowed")]
    BodyTooLarge(usize),
    /// The client did not send its whole request, headers and body, in time (the time
    /// allowed).
    #[error(
        "the request (headers and body) did not arrive within {}",
        crate::duration::format(*.0)
    )]
    BodyTimeout(std::time::Duration),
    /// No such route.
    #[error("no route {0}")]
    NotFound(String),
    /// Route exists, method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The daemon is shutting down.
    #[error("shutting down")]
    Unavailable,
    /// Identity evidence was not ready in time (seconds allowed): every slot is busy or
    /// the platform (in hardware mode the host's AESM) is slow. Retry later.
    #[error(
        "identity evidence was not ready within {0} s (the platform's quoting is busy or slow); retry later"
    )]
    IdentityTimeout(f64),
    /// Anything else; details are logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The stable, machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::ReportLength(_) => "invalid-report-length",
            ApiError::ReportMalformed(_) => "invalid-report",
            ApiError::ReportMac(_) => "invalid-report-mac",
            ApiError::ReportCpusvn(_) => "invalid-report-cpusvn",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::BadParameter(_) => "invalid-parameter",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::BodyTooLarge(_) => "body-too-large",
            ApiError::BodyTimeout(_) => "body-timeout",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::Unavailable => "unavailable",
            ApiError::IdentityTimeout(_) => "identity-timeout",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::ReportLength(_)
            | ApiError::ReportMalformed(_)
            | ApiError::BadRequest(_)
            | ApiError::BadParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::ReportMac(_) | ApiError::ReportCpusvn(_) => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable | ApiError::IdentityTimeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Length { .. } => ApiError::ReportLength(e.to_string()),
            ReportError::Malformed(_) => ApiError::ReportMalformed(e.to_string()),
            ReportError::Mac => ApiError::ReportMac(e.to_string()),
            ReportError::Cpusvn { .. } => ApiError::ReportCpusvn(e.to_string()),
            // A refusal the platform adds later is still a refusal of the REPORT.
            _ => ApiError::ReportMalformed(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(target: "las", "internal error: {detail}");
        }
        let body = las_core::api::ErrorAnswer {
            error: self.kind().into(),
            message: self.to_string(),
        };
        let mut resp = (self.status(), Json(body)).into_response();
        if let ApiError::IdentityTimeout(_) = &self {
            // Busy, not broken: tell clients when to come back instead of hammering.
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp.extensions_mut().insert(ErrorKind(self.kind()));
        resp
    }
}

/// Attached to error responses so the metrics layer can count refusals by kind.
#[derive(Debug, Clone, Copy)]
pub struct ErrorKind(pub &'static str);

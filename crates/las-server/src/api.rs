//! The HTTP API (docs/api.md): routes, content negotiation, the metrics middleware.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use las_core::api;
use las_core::quote::{QuoteClaims, encode_quote};

use crate::AppState;
use crate::metrics::{Metrics, ReasonLabels, RequestLabels, RouteLabels};
use las_http::{ApiError, ErrorKind};

/// Media type of quotes and identity evidence (COSE_Sign1).
pub use las_core::api::COSE_MEDIA_TYPE;

/// The router with every route, the body cap and the metrics layer.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(api::PLATFORM, get(platform))
        .route(api::TARGET_INFO, get(target_info))
        .route(api::QUOTE, post(quote))
        .route(api::IDENTITY, get(identity))
        .fallback(las_http::not_found)
        .method_not_allowed_fallback(las_http::method_not_allowed)
        // The serve loop reads every body within the configured cap and deadline
        // (`las_server::serve_router`); axum's own 2 MB default would answer in text.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// The routes of [`app`], as the `route` label names them.
const ROUTES: [&str; 7] = [
    "/healthz",
    "/readyz",
    "/metrics",
    api::PLATFORM,
    api::TARGET_INFO,
    api::QUOTE,
    api::IDENTITY,
];

async fn track(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| ROUTES.iter().find(|r| **r == m.as_str()).copied())
        .unwrap_or("unmatched");
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    record(
        &s.metrics,
        route,
        method,
        &resp,
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// Counts one answered request (what [`track`] does for the router's routes, and the fast
/// `POST /v1/quote` does itself).
fn record(m: &Metrics, route: &'static str, method: &'static str, resp: &Response, elapsed: f64) {
    let status = resp.status().as_u16();
    if route == api::QUOTE && method == "POST" && status == 200 {
        m.quote_ok.inc();
        m.quote_route_latency.observe(elapsed);
    } else {
        m.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        m.latency
            .get_or_create(&RouteLabels { route })
            .observe(elapsed);
    }
    if route == api::QUOTE {
        match resp.extensions().get::<ErrorKind>() {
            Some(kind) => {
                m.quotes_refused
                    .get_or_create(&ReasonLabels {
                        reason: kind.as_str(),
                    })
                    .inc();
            }
            None if resp.status().is_success() => {
                m.quotes_issued.inc();
                m.quote_latency.observe(elapsed);
            }
            None => {}
        }
    }
}

/// `POST /v1/quote` without the router (las_http::FastRoute): the same answer as the
/// routed [`quote`], counted as [`track`] counts it.
pub(crate) fn quote_route(state: Arc<AppState>) -> las_http::FastRoute {
    las_http::FastRoute {
        method: axum::http::Method::POST,
        path: api::QUOTE,
        answer: Arc::new(move |parts, body| {
            let start = Instant::now();
            let resp = match quote_answer(&state, &parts.headers, &body) {
                Ok(r) => r,
                Err(e) => e.into_response(),
            };
            record(
                &state.metrics,
                api::QUOTE,
                "POST",
                &resp,
                start.elapsed().as_secs_f64(),
            );
            resp
        }),
    }
}

/// The `method` label: the standard methods by name, anything else as `other`. HTTP allows
/// any token as a method, and a label per client-chosen method would let any client grow
/// the metrics (memory and every scrape) without bound.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

async fn healthz() -> Json<api::Status> {
    Json(api::Status {
        status: "ok".into(),
    })
}

async fn readyz(State(s): State<Arc<AppState>>) -> Result<Json<api::Status>, ApiError> {
    if s.shutting_down.load(Ordering::Relaxed) {
        return Err(ApiError::unavailable());
    }
    Ok(Json(api::Status {
        status: "ready".into(),
    }))
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn platform(State(s): State<Arc<AppState>>) -> Json<api::PlatformInfo> {
    let p = &s.platform;
    let las = p.las_enclave();
    Json(api::PlatformInfo {
        platform_id: p.platform_id(),
        mode: p.mode(),
        secure: p.mode() == las_core::Mode::Hw,
        las_version: crate::VERSION.into(),
        las_mrenclave: hex::encode(las.mrenclave),
        las_mrsigner: hex::encode(las.mrsigner),
        las_isvprodid: las.isvprodid,
        las_isvsvn: las.isvsvn,
        cpusvn: hex::encode(p.cpusvn()),
        tcb_state: p.tcb_state(),
    })
}

/// Whether the client asked for JSON (`Accept: application/json`).
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}

fn binary(media_type: &'static str, body: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
        body,
    )
        .into_response()
}

async fn target_info(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let ti = s.platform.target_info();
    if wants_json(&headers) {
        Json(api::TargetInfoAnswer {
            target_info: B64.encode(ti.to_bytes()),
            mrenclave: hex::encode(ti.mrenclave),
        })
        .into_response()
    } else {
        binary("application/octet-stream", ti.to_bytes().to_vec())
    }
}

/// How the body of a request is encoded.
enum BodyForm {
    Binary,
    Json,
}

fn body_form(headers: &HeaderMap) -> Result<BodyForm, ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyForm::Binary);
    };
    // Valid HTTP allows obs-text bytes in a header value; no media type has them: the
    // documented 415, not an empty essence.
    let Ok(ct) = ct.to_str() else {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "content type is not ASCII: send the 432-byte REPORT as application/octet-stream, or {\"report\": \"<base64>\"} as application/json",
        ));
    };
    let ct = ct.to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    match essence {
        "application/octet-stream" => Ok(BodyForm::Binary),
        "application/json" => Ok(BodyForm::Json),
        other => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "content type `{other}` not accepted: send the 432-byte REPORT as application/octet-stream, or {{\"report\": \"<base64>\"}} as application/json"
            ),
        )),
    }
}

async fn quote(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    quote_answer(&s, &headers, &body)
}

fn quote_answer(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let form = body_form(headers)?;
    let decoded;
    let report_bytes: &[u8] = match form {
        BodyForm::Binary => body,
        BodyForm::Json => {
            let j: api::QuoteRequest = serde_json::from_slice(body).map_err(|e| {
                ApiError::new(ErrorKind::BadRequest, format!("malformed JSON body: {e}"))
            })?;
            decoded = B64.decode(j.report.trim()).map_err(|e| {
                ApiError::new(
                    ErrorKind::BadRequest,
                    format!("`report` is not base64: {e}"),
                )
            })?;
            &decoded
        }
    };
    let report = s
        .platform
        .check_report(report_bytes)
        .map_err(report_refused)?;
    let claims = QuoteClaims {
        mode: s.platform.mode(),
        platform_id: s.platform.platform_id(),
        las_version: crate::VERSION.to_owned(),
        las_mrenclave: s.platform.las_enclave().mrenclave,
        issued_at: las_platform::unix_now(),
        report_body: report.body,
    };
    let q = encode_quote(s.platform.identity(), &claims)
        .map_err(|e| ApiError::internal(format!("cannot encode the quote: {e}")))?;
    if matches!(form, BodyForm::Json) || wants_json(headers) {
        Ok(Json(api::QuoteAnswer {
            quote: B64.encode(&q),
            platform_id: claims.platform_id,
            mode: claims.mode,
        })
        .into_response())
    } else {
        Ok(binary(COSE_MEDIA_TYPE, q))
    }
}

/// The `nonce` of `?nonce=HEX`. Parsed here rather than with axum's `Query` (serde_urlencoded
/// and form_urlencoded, two crates in lasd's measured tree) for one hex parameter: other
/// parameters are ignored as before, a repeated `nonce` is refused, and a percent- or
/// plus-encoded value is not hex (hex needs no encoding).
fn nonce_param(query: Option<&str>) -> Result<&str, ApiError> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "nonce" {
            if found.is_some() {
                return Err(ApiError::new(
                    ErrorKind::InvalidParameter,
                    "query parameter `nonce` given more than once",
                ));
            }
            found = Some(value);
        }
    }
    found.ok_or_else(|| {
        ApiError::new(
            ErrorKind::InvalidParameter,
            "missing query parameter `nonce` (16 to 64 bytes, hex)",
        )
    })
}

async fn identity(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let hexnonce = nonce_param(uri.query())?;
    let nonce = hex::decode(hexnonce.trim())
        .map_err(|_| ApiError::new(ErrorKind::InvalidParameter, "`nonce` is not hex"))?;
    let evidence = identity_evidence(&s, nonce).await?.map_err(|e| match e {
        las_platform::PlatformError::Nonce { .. } => {
            ApiError::new(ErrorKind::InvalidParameter, e.to_string())
        }
        other => ApiError::internal(other.to_string()),
    })?;
    if wants_json(&headers) {
        Ok(Json(api::IdentityAnswer {
            evidence: B64.encode(&evidence),
            platform_id: s.platform.platform_id(),
            mode: s.platform.mode(),
        })
        .into_response())
    } else {
        Ok(binary(COSE_MEDIA_TYPE, evidence))
    }
}

/// Makes identity evidence on the blocking pool, in one of `identity_concurrency` slots,
/// within `identity_timeout` (waiting for the slot included).
///
/// In hardware mode the platform writes and reads `/dev/attestation` under a process-wide
/// lock, which can take as long as the host's AESM takes. Done inline, a few such requests
/// would hold every async worker, and with them `/v1/quote`, the probes and accept. The
/// slot moves into the blocking task, so a request that timed out still counts against the
/// limit until the platform returns: the blocking pool cannot grow past the limit.
async fn identity_evidence(
    s: &Arc<AppState>,
    nonce: Vec<u8>,
) -> Result<Result<Vec<u8>, las_platform::PlatformError>, ApiError> {
    let timeout = s.config.identity_timeout;
    let work = async {
        let slot = s
            .identity_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::unavailable())?;
        let state = s.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            state
                .platform
                .identity_evidence(&nonce, las_platform::unix_now())
        })
        .await
        .map_err(|e| ApiError::internal(format!("identity evidence task failed: {e}")))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::identity_timeout(timeout.as_secs_f64())),
    }
}

/// A REPORT the platform refused, as the API error of its kind.
fn report_refused(e: las_platform::ReportError) -> ApiError {
    use las_platform::ReportError;
    let kind = match e {
        ReportError::Length { .. } => ErrorKind::InvalidReportLength,
        ReportError::Malformed(_) => ErrorKind::InvalidReport,
        ReportError::Mac => ErrorKind::InvalidReportMac,
        ReportError::Cpusvn { .. } => ErrorKind::InvalidReportCpusvn,
        // A refusal the platform adds later is still a refusal of the REPORT.
        _ => ErrorKind::InvalidReport,
    };
    ApiError::new(kind, e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_parameter() {
        assert_eq!(nonce_param(Some("nonce=00ff")).unwrap(), "00ff");
        assert_eq!(nonce_param(Some("x=1&nonce=ab&y")).unwrap(), "ab");
        assert_eq!(nonce_param(Some("nonce=")).unwrap(), "");
        for bad in [None, Some(""), Some("nonces=ab"), Some("nonce=a&nonce=b")] {
            let e = nonce_param(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{bad:?}");
        }
    }
}

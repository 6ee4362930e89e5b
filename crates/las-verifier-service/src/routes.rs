//! The HTTP routes: health, readiness, metrics, JWKS, nonces and attestation.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use las_client::{LasAddr, LasClient};
use las_core::PlatformId;
use las_verifier::{
    LasEvidence, Policy, VerifyOptions, VerifyRequest, verify_las_evidence_with, verify_quote_with,
    verify_verified_quote_with,
};
use serde_json::json;

use crate::state::{AppState, CachedEvidence, MAX_CACHED_PLATFORMS, label, unix_now};
use crate::verdict::{ear_claims, status_of};

/// The router over `state`.
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.config.body_limit;
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/nonce", post(nonce).get(nonce))
        .route("/v1/attest", post(attest))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// An API error: status and a stable kind.
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }
    fn bad(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"error": self.kind, "message": self.message})),
        )
            .into_response()
    }
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let p = s.current_policy();
    let err = s
        .policy_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let ready = !s.shutting_down.load(Ordering::Relaxed);
    let body = json!({
        "status": if ready { "ready" } else { "shutting-down" },
        "policy": {
            "file": s.config.policy.display().to_string(),
            "id": p.id,
            "loaded_at": p.loaded_at,
            "reload_error": err,
        },
        "kid": s.signer.kid(),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &s.metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn jwks(State(s): State<Arc<AppState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        s.signer.jwks().to_string(),
    )
        .into_response()
}

async fn nonce(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let n = s.nonces.issue(unix_now()).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no-randomness",
            e.to_string(),
        )
    })?;
    s.metrics.nonces_issued.inc();
    Ok(axum::Json(json!({"nonce": n.encoded(), "expires": n.expires})).into_response())
}

/// The body of `POST /v1/attest`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestRequest {
    service: String,
    nonce: String,
    quote: String,
    #[serde(default)]
    report_data: String,
    #[serde(default)]
    las: Option<String>,
}

async fn attest(State(s): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let req: AttestRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad("malformed-request", format!("request body: {e}")))?;
    let now = unix_now();
    let app_data = hex::decode(req.report_data.trim())
        .map_err(|_| ApiError::bad("malformed-request", "report_data is not hex"))?;
    if app_data.len() > 64 {
        return Err(ApiError::bad(
            "malformed-request",
            format!("report_data is {} bytes; at most 64", app_data.len()),
        ));
    }
    let quote = base64::engine::general_purpose::STANDARD
        .decode(req.quote.trim())
        .map_err(|_| ApiError::bad("malformed-request", "quote is not base64"))?;
    let lp = s.current_policy();
    if let Err(e) = lp.policy.service(Some(&req.service)) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown-service", e));
    }
    let nonce = s.nonces.consume(&req.nonce, now).map_err(|e| {
        s.metrics
            .nonces_refused
            .get_or_create(&label(e.kind()))
            .inc();
        let status = match e {
            crate::nonce::NonceError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.kind(), e.to_string())
    })?;
    let expected = crate::bound_report_data(&nonce.bytes, &app_data);

    // The service's platforms (checked again by the verifier): a platform outside them is
    // rejected anyway, so its LAS is not contacted (the address comes from the client).
    // A QE-ID entry can only be matched through the LAS's evidence, so with one listed
    // the LAS is asked, also when its key is pinned.
    let platforms = lp
        .policy
        .service(Some(&req.service))
        .ok()
        .and_then(|svc| svc.platforms.as_ref());
    let qe_listed = platforms.is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p, las_verifier::PlatformEntry::QeId(_)))
    });
    let listed = |pid: &PlatformId| {
        qe_listed || platforms.is_none_or(|ps| ps.iter().any(|p| p.matches(pid, None)))
    };
    // The signature is checked with those of the other waiting requests (batch.rs); a
    // quote that does not decode, or whose signature does not verify, takes the
    // one-at-a-time path below, which names the reason.
    let mut verified = None;
    if let Ok(u) = las_core::quote::decode_quote(&quote)
        && let Ok(d) = u.signed_data()
        && s.batcher.verify(d).await
    {
        verified = Some(u.signature_verified_elsewhere());
    }
    let evidence = match &verified {
        Some(q)
            if listed(&q.claims.platform_id)
                && (qe_listed
                    || !lp
                        .policy
                        .pinned_las_keys()
                        .any(|k| k == q.claims.platform_id)) =>
        {
            evidence_for(
                &s,
                &lp.policy,
                &q.claims.platform_id,
                req.las.as_deref(),
                now,
            )
            .await?
        }
        // Pinned key, or a quote that does not verify (rejected below without a LAS).
        _ => None,
    };
    let vreq = VerifyRequest {
        quote: &quote,
        service: Some(&req.service),
        expected_report_data: Some(&expected),
        las_evidence: evidence.as_ref().map(|e| LasEvidence {
            token: e.token.as_slice(),
            expected_nonce: Some(&e.nonce),
        }),
        now,
    };
    // Freshness comes from the verifier's own nonce bound into the report data.
    let opts = VerifyOptions {
        dcap_collateral: Some(&s.config.collateral),
        ..VerifyOptions::default()
    };
    let verdict = match verified {
        Some(q) => verify_verified_quote_with(&lp.policy, q, &vreq, &opts),
        None => verify_quote_with(&lp.policy, &vreq, &opts),
    }
    .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "unknown-service", e.to_string()))?;
    let claims = ear_claims(
        &verdict,
        &lp.id,
        &nonce.encoded(),
        &app_data,
        now,
        s.config.ear_lifetime,
    );
    let status = status_of(&verdict);
    s.metrics.attestations.get_or_create(&label(status)).inc();
    tracing::info!(
        target: "las",
        service = %req.service,
        status,
        platform_id = %verdict.claims.as_ref().map(|c| c.platform_id.to_string()).unwrap_or_default(),
        "attestation"
    );
    let token = s.signer.sign(&claims);
    Ok(axum::Json(json!({"ear": token, "status": status})).into_response())
}

/// Evidence for `pid`: from the cache, or fetched from `las` with a fresh nonce, verified
/// against the policy and cached under the platform ID it proves.
async fn evidence_for(
    s: &AppState,
    policy: &Policy,
    pid: &PlatformId,
    las: Option<&str>,
    now: u64,
) -> Result<Option<CachedEvidence>, ApiError> {
    let ttl = s
        .config
        .evidence_cache
        .min(las_verifier::verify::MAX_EVIDENCE_AGE.saturating_sub(30));
    {
        let mut cache = s.evidence.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(&pid.0) {
            Some(c) if c.fetched_at.saturating_add(ttl) > now && c.fetched_at <= now => {
                return Ok(Some(c.clone()));
            }
            Some(_) => {
                cache.remove(&pid.0);
            }
            None => {}
        }
    }
    let Some(las) = las else {
        // No LAS to ask: the verifier rejects with untrusted-las, naming the gap.
        return Ok(None);
    };
    let addr =
        LasAddr::parse(las).map_err(|e| ApiError::bad("malformed-request", format!("las: {e}")))?;
    let mut nonce = [0u8; 32];
    getrandom::getrandom(&mut nonce).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no-randomness",
            e.to_string(),
        )
    })?;
    let client = LasClient::new(addr, s.config.las_timeout);
    let token = match client.identity(&nonce).await {
        Ok(t) => t,
        Err(e) => {
            s.metrics
                .evidence_fetches
                .get_or_create(&label("unreachable"))
                .inc();
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "las-unreachable",
                format!("cannot get identity evidence from the LAS: {e}"),
            ));
        }
    };
    let fetched = CachedEvidence {
        token: Arc::new(token),
        nonce,
        fetched_at: now,
    };
    // Freshness comes from the verifier's own nonce bound into the report data.
    let opts = VerifyOptions {
        dcap_collateral: Some(&s.config.collateral),
        ..VerifyOptions::default()
    };
    let ev = LasEvidence {
        token: &fetched.token,
        expected_nonce: Some(&nonce),
    };
    match verify_las_evidence_with(policy, &ev, &opts, now, &mut Vec::new()) {
        Ok(claims) => {
            s.metrics.evidence_fetches.get_or_create(&label("ok")).inc();
            let mut cache = s.evidence.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CACHED_PLATFORMS {
                cache.retain(|_, c| c.fetched_at.saturating_add(ttl) > now);
            }
            // Cached under the key the evidence proves, never the one the request named.
            if cache.len() < MAX_CACHED_PLATFORMS {
                cache.insert(claims.platform_id.0, fetched.clone());
            }
        }
        Err(_) => {
            // Not cached; the verdict below carries the reasons.
            s.metrics
                .evidence_fetches
                .get_or_create(&label("rejected"))
                .inc();
        }
    }
    Ok(Some(fetched))
}

//! The HTTP routes: health, readiness, metrics, JWKS, nonces and attestation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use las_client::{LasAddr, LasClient};
use las_core::PlatformId;
use las_core::api::verifier::{AttestAnswer, AttestRequest, EarStatus, NonceAnswer};
use las_http::{ApiError, ErrorKind};
use las_verifier::{
    LasEvidence, LasTrust, VerifyOptions, VerifyRequest, verify_batch_verified_with,
    verify_quote_with,
};
use serde_json::json;

use crate::state::{AppState, CachedEvidence, label};
use crate::verdict::{ear_claims, status_of};
use las_core::unix_now;

/// The router over `state`.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/ca", get(ca_bundle))
        .route("/v1/nonce", post(nonce).get(nonce))
        .route("/v1/attest", post(attest))
        .fallback(las_http::not_found)
        .method_not_allowed_fallback(las_http::method_not_allowed)
        // The serve loop reads every body within the configured cap and deadline
        // (`las_http::serve_router`); axum's own 2 MB default would answer in text.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// The kind of a refused nonce.
fn nonce_kind(e: crate::nonce::NonceError) -> ErrorKind {
    use crate::nonce::NonceError as N;
    match e {
        N::Malformed => ErrorKind::MalformedNonce,
        N::BadMac => ErrorKind::BadNonce,
        N::Expired => ErrorKind::ExpiredNonce,
        N::Replayed => ErrorKind::ReplayedNonce,
        N::Busy => ErrorKind::Busy,
    }
}

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::MalformedRequest, message)
}

/// `POST /v1/attest` takes JSON only: anything else is 415, before the body is parsed.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "content type `{}` not accepted: send the attest request as application/json",
                if ct.is_empty() { "(none)" } else { ct }
            ),
        ))
    }
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let p = s.current_policy();
    let err = s
        .policy_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let stopping = s.shutting_down.load(Ordering::Relaxed);
    let usable = s.policy_usable();
    let status = if stopping {
        "shutting-down"
    } else if !usable {
        "no-usable-policy"
    } else {
        "ready"
    };
    let body = json!({
        "status": status,
        "policy": {
            "file": s.config.policy.display().to_string(),
            "id": p.id,
            "loaded_at": p.loaded_at,
            "reload_error": err,
        },
        "kid": s.signer.kid(),
    });
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &s.metrics.registry).is_err() {
        return ApiError::internal("cannot encode the metrics").into_response();
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
        serde_json::to_string(&s.signer.jwks()).unwrap_or_default(),
    )
        .into_response()
}

/// The CA bundle of workload certificates: the issuing CA first, then older ones.
async fn ca_bundle(State(s): State<Arc<AppState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pem-certificate-chain"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        s.ca.bundle_pem().to_owned(),
    )
        .into_response()
}

async fn nonce(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let n = s
        .nonces
        .issue(unix_now())
        .map_err(|e| ApiError::new(ErrorKind::NoRandomness, e.to_string()))?;
    s.metrics.nonces_issued.inc();
    Ok(axum::Json(NonceAnswer {
        nonce: n.encoded(),
        expires: n.expires,
    })
    .into_response())
}

/// The CSR of a request, checked before the nonce is spent: parsed, signature and key
/// type, bound by the application's report data, the service name a SPIFFE path segment.
fn csr_of(
    s: &AppState,
    req: &AttestRequest,
    app_data: &[u8],
) -> Result<Option<crate::ca::CsrKey>, ApiError> {
    let Some(text) = req.csr.as_deref() else {
        return Ok(None);
    };
    let refuse = |e: crate::ca::CsrError| ApiError::new(e.kind(), e.to_string());
    let text = text.trim();
    let bytes = if text.starts_with("-----BEGIN") {
        text.as_bytes().to_vec()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| {
                refuse(crate::ca::CsrError::Malformed(
                    "neither PEM nor base64 DER".into(),
                ))
            })?
    };
    let key = crate::ca::parse_csr(&bytes).map_err(refuse)?;
    key.check_binding(app_data).map_err(refuse)?;
    crate::ca::spiffe_id(s.ca.trust_domain(), &req.service).map_err(refuse)?;
    Ok(Some(key))
}

async fn attest(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let req: AttestRequest =
        serde_json::from_slice(&body).map_err(|e| malformed(format!("request body: {e}")))?;
    let now = unix_now();
    let app_data =
        hex::decode(req.report_data.trim()).map_err(|_| malformed("report_data is not hex"))?;
    if app_data.len() > 64 {
        return Err(malformed(format!(
            "report_data is {} bytes; at most 64",
            app_data.len()
        )));
    }
    let quote = base64::engine::general_purpose::STANDARD
        .decode(req.quote.trim())
        .map_err(|_| malformed("quote is not base64"))?;
    let posted = req
        .evidence
        .as_deref()
        .map(|e| base64::engine::general_purpose::STANDARD.decode(e.trim()))
        .transpose()
        .map_err(|_| malformed("evidence is not base64"))?;
    if let Some(t) = &posted
        && t.len() > las_core::MAX_TOKEN_SIZE
    {
        return Err(malformed(format!(
            "evidence is {} bytes; at most {}",
            t.len(),
            las_core::MAX_TOKEN_SIZE
        )));
    }
    // The service connects nowhere on a client's word unless the operator allowed it.
    if req.las.is_some() && s.config.fetch_evidence_from.is_empty() {
        return Err(ApiError::new(
            ErrorKind::EvidenceFetchDisabled,
            "this service fetches no evidence from a LAS a request names: send the LAS's identity evidence for the nonce in `evidence` (las attest does), or start the service with --fetch-evidence-from NETWORKS",
        ));
    }
    let lp = s.current_policy();
    if let Err(e) = lp.policy.service(Some(&req.service)) {
        return Err(ApiError::new(ErrorKind::UnknownService, e.to_string()));
    }
    let csr = csr_of(&s, &req, &app_data)?;
    let nonce = s.nonces.consume(&req.nonce, now).map_err(|e| {
        s.metrics
            .nonces_refused
            .get_or_create(&label(e.kind()))
            .inc();
        ApiError::new(nonce_kind(e), e.to_string())
    })?;
    let expected = crate::bound_report_data(&nonce.bytes, &app_data);

    // The service's platforms (checked again by the verifier): a platform outside them is
    // rejected anyway, so its evidence is neither checked nor fetched. A QE-ID entry can
    // only be matched through the LAS's identity evidence, so with one listed the evidence
    // is looked at (cached, posted, or fetched where --fetch-evidence-from allows), also
    // when the key is pinned.
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
    let verified = match las_core::quote::decode_quote(&quote) {
        Ok(u) => s.batcher.verify(u).await,
        Err(_) => None,
    };
    let ttl = cache_ttl(&s);
    // Evidence for the quote's key: cached (it matched that key before), posted by the
    // client, or fetched from an allowed LAS; the evidence nonce is this request's nonce.
    let mut from_cache = false;
    let evidence: Option<Given> = match &verified {
        Some(q)
            if listed(&q.claims().platform_id)
                && (qe_listed
                    || !lp
                        .policy
                        .pinned_las_keys()
                        .any(|k| k == q.claims().platform_id)) =>
        {
            let hit = s.evidence.lock().unwrap_or_else(|p| p.into_inner()).get(
                &q.claims().platform_id.0,
                now,
                ttl,
            );
            if let Some(c) = hit {
                from_cache = true;
                s.metrics.evidence.get_or_create(&label("cache-hit")).inc();
                Some(Given {
                    kept: Ok(c.evidence),
                    nonce: c.nonce,
                })
            } else {
                let token = match (posted, &req.las) {
                    (Some(t), _) => Some(t),
                    (None, Some(las)) => Some(fetch_evidence(&s, las, &nonce.bytes).await?),
                    (None, None) => None,
                };
                token.map(|t| {
                    // Decoded and signature-checked once, here; the verifier takes these
                    // claims for exactly these bytes. Bytes that do not verify go to the
                    // verifier as they are, which names the reason.
                    s.metrics.evidence_verified.inc();
                    let kept = las_core::evidence::VerifiedEvidence::verify(t.clone())
                        .map(Arc::new)
                        .map_err(|_| t);
                    Given {
                        kept,
                        nonce: Arc::new(nonce.bytes.to_vec()),
                    }
                })
            }
        }
        // Pinned key (and no QE-ID entry), unlisted platform, or a quote that does not
        // verify: no evidence is looked at (the verifier names the reason).
        _ => None,
    };
    let vreq = VerifyRequest {
        service: Some(&req.service),
        expected_report_data: Some(&expected),
        las_evidence: evidence.as_ref().map(|e| LasEvidence {
            token: e.token(),
            expected_nonce: Some(e.nonce.as_slice()),
        }),
        now,
    };
    // Freshness comes from the verifier's own nonce bound into the report data.
    let opts = VerifyOptions {
        dcap_collateral: Some(&s.config.collateral),
        verified_evidence: evidence.as_ref().and_then(|e| e.kept.as_deref().ok()),
        ..VerifyOptions::default()
    };
    let verdict = match verified {
        Some(q) => verify_batch_verified_with(&lp.policy, q, &vreq, &opts),
        None => verify_quote_with(&lp.policy, &quote, &vreq, &opts),
    }
    .map_err(|e| ApiError::new(ErrorKind::UnknownService, e.to_string()))?;
    if let Some(e) = evidence
        && !from_cache
    {
        // Cached only once the verifier found it to be the quote's own key's evidence
        // (LasTrust::Evidence; for a pinned key: evidence that verified for that key and
        // gave its QE ID), under that key.
        let matched = match &verdict.las_trust {
            Some(LasTrust::Evidence { .. }) => true,
            Some(LasTrust::Pinned) => verdict.las_platform.is_some(),
            _ => false,
        };
        let outcome = match (matched, &verdict.claims, e.kept) {
            (true, Some(c), Ok(kept)) => {
                let entry = CachedEvidence {
                    evidence: kept,
                    nonce: e.nonce,
                    fetched_at: now,
                };
                let mut cache = s.evidence.lock().unwrap_or_else(|p| p.into_inner());
                let stored = cache.insert(c.platform_id.0, entry, now, ttl);
                s.metrics
                    .evidence_cache_entries
                    .set(i64::try_from(cache.len()).unwrap_or(i64::MAX));
                s.metrics
                    .evidence_cache_bytes
                    .set(i64::try_from(cache.bytes()).unwrap_or(i64::MAX));
                if stored { "cached" } else { "not-cached" }
            }
            _ => "rejected",
        };
        s.metrics.evidence.get_or_create(&label(outcome)).inc();
    }
    let claims = ear_claims(
        &verdict,
        &lp.id,
        &nonce.encoded(),
        &app_data,
        now,
        s.config.ear_lifetime.as_secs(),
        s.config.ear_profile,
    );
    let status = status_of(&verdict);
    s.metrics
        .attestations
        .get_or_create(&label(status.as_str()))
        .inc();
    tracing::info!(
        target: "las",
        service = %req.service,
        status = status.as_str(),
        platform_id = %verdict.claims.as_ref().map(|c| c.platform_id.to_string()).unwrap_or_default(),
        "attestation"
    );
    let token = s.signer.sign(&claims);
    let mut answer = AttestAnswer {
        ear: token,
        status,
        certificate_chain: None,
    };
    // A certificate only for an accepted enclave; never for a contraindicated one.
    if let (Some(key), Some(c), EarStatus::Affirming | EarStatus::Warning) =
        (&csr, &verdict.claims, status)
    {
        let dns = lp
            .policy
            .service(Some(&req.service))
            .map(|svc| svc.las_dns_names.clone())
            .unwrap_or_default();
        let subject = crate::ca::Subject {
            service: &req.service,
            dns_names: &dns,
            ear: &answer.ear,
            ear_profile: s.config.ear_profile.tag(),
            // Valid from the quote's time (never before it), for the configured lifetime.
            not_before: c.issued_at,
            not_after: now.saturating_add(s.config.cert_lifetime.as_secs()),
        };
        let chain = s.ca.issue(key, &subject).map_err(|e| {
            tracing::error!(target: "las", "cannot issue a workload certificate: {e}");
            ApiError::new(
                ErrorKind::IssueFailed,
                "the workload certificate could not be issued",
            )
        })?;
        s.metrics.certificates_issued.inc();
        answer.certificate_chain = Some(chain);
    }
    Ok(axum::Json(answer).into_response())
}

/// The identity evidence of one attestation: its claims if its bytes verified (from the
/// cache, or checked just now), else the bytes themselves; and the nonce it must answer.
struct Given {
    kept: Result<Arc<las_core::evidence::VerifiedEvidence>, Vec<u8>>,
    nonce: Arc<Vec<u8>>,
}

impl Given {
    fn token(&self) -> &[u8] {
        match &self.kept {
            Ok(v) => v.token(),
            Err(raw) => raw,
        }
    }
}

/// How long verified evidence is reused: the configured time, but never so long that the
/// verifier would refuse it as stale.
fn cache_ttl(s: &AppState) -> u64 {
    s.config
        .evidence_cache
        .min(crate::config::MAX_EVIDENCE_CACHE)
        .as_secs()
}

/// Fetches identity evidence for `nonce` from the LAS a request named, only when it
/// resolves into the networks of `--fetch-evidence-from` (the resolved address is checked
/// and connected to, so a name cannot point elsewhere afterwards). The LAS's answer is
/// never passed back to the client: errors name the address and the HTTP status only.
async fn fetch_evidence(s: &AppState, las: &str, nonce: &[u8]) -> Result<Vec<u8>, ApiError> {
    let fetches = |kind: &str| s.metrics.evidence_fetches.get_or_create(&label(kind)).inc();
    let addr = LasAddr::parse(las).map_err(|e| malformed(format!("las: {e}")))?;
    let timeout = s.config.las_timeout;
    let resolved: Vec<SocketAddr> = match tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((addr.host.as_str(), addr.port)),
    )
    .await
    {
        Ok(Ok(it)) => it.collect(),
        _ => Vec::new(),
    };
    let allowed = |a: &SocketAddr| {
        let ip = a.ip().to_canonical();
        s.config.fetch_evidence_from.iter().any(|n| n.contains(&ip))
    };
    let Some(target) = resolved.iter().copied().find(allowed) else {
        fetches("not-allowed");
        return Err(ApiError::new(
            ErrorKind::LasNotAllowed,
            format!(
                "las `{las}` resolves to no address inside the networks of --fetch-evidence-from"
            ),
        ));
    };
    let target_addr = LasAddr {
        host: target.ip().to_canonical().to_string(),
        port: target.port(),
    };
    let client = LasClient::new(target_addr, timeout);
    match client.identity(nonce).await {
        Ok(t) => {
            fetches("ok");
            Ok(t)
        }
        Err(e) => {
            fetches("unreachable");
            // The LAS's body stays here: a client must not read what an address answers.
            let what = match e {
                las_client::ClientError::Refused { status, .. } => {
                    format!("answered HTTP {status}")
                }
                las_client::ClientError::Timeout(..) => {
                    format!("did not answer within {timeout:?}")
                }
                las_client::ClientError::Protocol { .. } => "answered something unexpected".into(),
                _ => "could not be reached".into(),
            };
            tracing::warn!(target: "las", las = %target, "identity evidence fetch failed: {what}");
            Err(ApiError::new(
                ErrorKind::LasUnreachable,
                format!("the LAS at {target} {what}"),
            ))
        }
    }
}

//! The service: state, routes, appraisal, policy reload, serve loop.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use las_client::{LasAddr, LasClient};
use las_core::PlatformId;
use las_verifier::dcap::CollateralSet;
use las_verifier::{
    LasEvidence, LasTrust, Policy, Reason, Verdict, VerifyOptions, VerifyRequest,
    verify_las_evidence_with, verify_quote_with,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::ear::{EAR_PROFILE, EarSigner};
use crate::keys::{KeyError, StateKeys};
use crate::nonce::NonceBook;

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The policy file (watched; a new version that parses replaces the old one).
    pub policy: PathBuf,
    /// State folder: EAR signing key and nonce key.
    pub state_dir: PathBuf,
    /// Largest request body (bytes).
    pub body_limit: usize,
    /// Time a client has to send its request headers.
    pub header_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Time in-flight requests may take after SIGTERM.
    pub drain_timeout: Duration,
    /// Lifetime of a nonce (seconds).
    pub nonce_lifetime: u64,
    /// How long verified LAS identity evidence is reused per platform ID (seconds; at
    /// most `las_verifier::verify::MAX_EVIDENCE_AGE` minus the LAS round trip).
    pub evidence_cache: u64,
    /// Lifetime of an EAR (`exp - iat`, seconds).
    pub ear_lifetime: u64,
    /// Time to wait for a LAS.
    pub las_timeout: Duration,
    /// How often the policy file is checked for changes.
    pub policy_poll: Duration,
    /// DCAP collateral for `sgx-dcap` LAS evidence.
    pub collateral: CollateralSet,
    /// Copy the key files from this folder (e.g. a mounted Secret) into `state_dir` first.
    pub import_keys_from: Option<PathBuf>,
}

impl ServiceConfig {
    /// Defaults for `policy` and `state_dir`.
    pub fn new(policy: PathBuf, state_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            policy,
            state_dir,
            body_limit: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            max_connections: 4096,
            drain_timeout: Duration::from_secs(10),
            nonce_lifetime: 120,
            evidence_cache: 300,
            ear_lifetime: 300,
            las_timeout: Duration::from_secs(5),
            policy_poll: Duration::from_secs(1),
            collateral: CollateralSet::new(),
            import_keys_from: None,
        }
    }
}

/// Default port of the verification service.
pub const DEFAULT_PORT: u16 = 18767;
/// Consumed nonces remembered per replica at most.
const MAX_USED_NONCES: usize = 1 << 20;
/// Platforms whose evidence is cached at most.
const MAX_CACHED_PLATFORMS: usize = 100_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Label {
    kind: String,
}

#[derive(Debug)]
struct Metrics {
    registry: Registry,
    attestations: Family<Label, Counter>,
    nonces_issued: Counter,
    nonces_refused: Family<Label, Counter>,
    evidence_fetches: Family<Label, Counter>,
    policy_reloads: Family<Label, Counter>,
    policy_reload_failing: Gauge,
    connections_open: Gauge,
    connections_refused: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut r = Registry::with_prefix("las_verifier");
        let attestations = Family::<Label, Counter>::default();
        r.register(
            "attestations",
            "Attestation results by ear.status (kind)",
            attestations.clone(),
        );
        let nonces_issued = Counter::default();
        r.register("nonces_issued", "Nonces handed out", nonces_issued.clone());
        let nonces_refused = Family::<Label, Counter>::default();
        r.register(
            "nonces_refused",
            "Attestation requests refused for their nonce, by reason",
            nonces_refused.clone(),
        );
        let evidence_fetches = Family::<Label, Counter>::default();
        r.register(
            "evidence_fetches",
            "LAS identity evidence fetches (ok, unreachable, rejected)",
            evidence_fetches.clone(),
        );
        let policy_reloads = Family::<Label, Counter>::default();
        r.register(
            "policy_reloads",
            "Policy file changes seen (ok: swapped in; error: did not parse, old policy kept)",
            policy_reloads.clone(),
        );
        let policy_reload_failing = Gauge::default();
        r.register(
            "policy_reload_failing",
            "1 while the policy file on disk does not parse (the previous policy is in force)",
            policy_reload_failing.clone(),
        );
        let connections_open = Gauge::default();
        r.register(
            "connections_open",
            "Open connections",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        r.register(
            "connections_refused",
            "Connections closed at once because the connection cap was reached",
            connections_refused.clone(),
        );
        Self {
            registry: r,
            attestations,
            nonces_issued,
            nonces_refused,
            evidence_fetches,
            policy_reloads,
            policy_reload_failing,
            connections_open,
            connections_refused,
        }
    }
}

fn label(kind: &str) -> Label {
    Label { kind: kind.into() }
}

/// The policy in force.
#[derive(Debug)]
struct LoadedPolicy {
    policy: Policy,
    /// `policy:sha256:<hex of the file>`.
    id: String,
    digest: [u8; 32],
    loaded_at: u64,
}

#[derive(Debug, Clone)]
struct CachedEvidence {
    token: Arc<Vec<u8>>,
    nonce: [u8; 32],
    fetched_at: u64,
}

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    config: ServiceConfig,
    policy: RwLock<Arc<LoadedPolicy>>,
    /// Last policy reload error (file does not parse), for /readyz.
    policy_error: Mutex<Option<String>>,
    signer: EarSigner,
    nonces: NonceBook,
    evidence: Mutex<HashMap<[u8; 32], CachedEvidence>>,
    metrics: Metrics,
    shutting_down: AtomicBool,
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The policy file cannot be read or does not parse.
    #[error("policy {path}: {detail}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A key file of the state folder is unusable.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server loop failed.
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn load_policy(path: &std::path::Path, now: u64) -> Result<LoadedPolicy, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let policy = Policy::from_yaml(&bytes).map_err(|e| format!("malformed: {e}"))?;
    if policy.attestation.mode == las_verifier::policy::AttestationMode::None {
        return Err(
            "security.attestation.mode is `none`: there is nothing to verify quotes against".into(),
        );
    }
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    Ok(LoadedPolicy {
        policy,
        id: format!("policy:sha256:{}", hex::encode(digest)),
        digest,
        loaded_at: now,
    })
}

impl AppState {
    /// Loads the policy and the keys (creating the keys on first start).
    pub fn new(config: ServiceConfig) -> Result<Arc<Self>, StartError> {
        let now = unix_now();
        let policy = load_policy(&config.policy, now).map_err(|detail| StartError::Policy {
            path: config.policy.clone(),
            detail,
        })?;
        if let Some(from) = &config.import_keys_from {
            crate::keys::import(from, &config.state_dir)?;
        }
        let keys = StateKeys::load_or_create(&config.state_dir)?;
        let signer = EarSigner::new(keys.signing.clone());
        let nonces = NonceBook::new(&keys.nonce_key, config.nonce_lifetime, MAX_USED_NONCES);
        Ok(Arc::new(Self {
            config,
            policy: RwLock::new(Arc::new(policy)),
            policy_error: Mutex::new(None),
            signer,
            nonces,
            evidence: Mutex::new(HashMap::new()),
            metrics: Metrics::new(),
            shutting_down: AtomicBool::new(false),
        }))
    }

    /// The EAR signer (its JWKS).
    pub fn signer(&self) -> &EarSigner {
        &self.signer
    }

    /// The id of the policy in force (`policy:sha256:<hex>`).
    pub fn policy_id(&self) -> String {
        self.current_policy().id.clone()
    }

    fn current_policy(&self) -> Arc<LoadedPolicy> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Checks the policy file once: swaps in a changed file that parses; keeps the old
    /// policy (and records the error) when it does not. Returns whether it swapped.
    pub fn reload_policy(&self) -> bool {
        let bytes = match std::fs::read(&self.config.policy) {
            Ok(b) => b,
            Err(e) => {
                self.reload_failed(format!("cannot read: {e}"));
                return false;
            }
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if digest == self.current_policy().digest {
            return false;
        }
        let mut err = self.policy_error.lock().unwrap_or_else(|p| p.into_inner());
        match load_policy(&self.config.policy, unix_now()) {
            Ok(p) if p.digest == digest => {
                tracing::info!(target: "las", "policy {} reloaded: {}", self.config.policy.display(), p.id);
                *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(p);
                *err = None;
                self.metrics
                    .policy_reloads
                    .get_or_create(&label("ok"))
                    .inc();
                self.metrics.policy_reload_failing.set(0);
                true
            }
            // Changed again between the two reads: the next poll takes it.
            Ok(_) => false,
            Err(detail) => {
                drop(err);
                self.reload_failed(detail);
                false
            }
        }
    }

    fn reload_failed(&self, detail: String) {
        let mut err = self.policy_error.lock().unwrap_or_else(|p| p.into_inner());
        if err.as_deref() != Some(detail.as_str()) {
            tracing::error!(
                target: "las",
                "policy {}: {detail}; keeping the policy in force ({})",
                self.config.policy.display(),
                self.current_policy().id
            );
            self.metrics
                .policy_reloads
                .get_or_create(&label("error"))
                .inc();
        }
        self.metrics.policy_reload_failing.set(1);
        *err = Some(detail);
    }
}

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
    let listed = |pid: &PlatformId| {
        lp.policy
            .service(Some(&req.service))
            .ok()
            .and_then(|svc| svc.platforms.as_ref())
            .is_none_or(|ps| ps.iter().any(|p| p.0 == pid.0))
    };
    let evidence = match las_core::quote::decode_and_verify_quote(&quote) {
        Ok(q)
            if listed(&q.claims.platform_id)
                && !lp
                    .policy
                    .pinned_las_keys()
                    .any(|k| k == q.claims.platform_id) =>
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
    let verdict = verify_quote_with(&lp.policy, &vreq, &opts)
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

/// `affirming`: accepted, nothing tolerated; `warning`: accepted through a tolerance
/// (every note is one; simulation always adds one); `contraindicated`: rejected.
fn status_of(v: &Verdict) -> &'static str {
    let sim = v
        .claims
        .as_ref()
        .is_some_and(|c| c.mode == las_core::Mode::Sim);
    if !v.accepted() {
        "contraindicated"
    } else if sim || !v.notes.is_empty() {
        "warning"
    } else {
        "affirming"
    }
}

/// AR4SI tier and value for a rejection reason.
fn tier_of(r: Reason) -> (&'static str, u8) {
    match r {
        // 99: cryptographic validation of the evidence failed.
        Reason::MalformedQuote | Reason::BadSignature | Reason::DcapQuoteInvalid => {
            ("instance-identity", 99)
        }
        // 97: the attesting instance is not recognized.
        Reason::UntrustedLas | Reason::PlatformNotAllowed | Reason::EvidenceInconsistent => {
            ("instance-identity", 97)
        }
        // 96: freshness/binding broken: the evidence is not for this exchange.
        Reason::ReportDataMismatch | Reason::QuoteFromTheFuture => ("instance-identity", 96),
        // 97: unrecognized hardware (simulation is no hardware at all).
        Reason::SimulationNotTolerated => ("hardware", 97),
        // 96: hardware with vulnerabilities the policy does not accept.
        Reason::TcbOutOfDate
        | Reason::TcbSoftwareHardeningNeeded
        | Reason::AdvisoryNotIgnored
        | Reason::DcapCollateralMissing
        | Reason::DcapCollateralExpired => ("hardware", 96),
        Reason::TcbConfigurationNeeded | Reason::HyperthreadingEnabled => ("configuration", 96),
        Reason::DebugEnclave | Reason::DebugLas => ("executables", 96),
        // 33: unrecognized executables.
        Reason::MrenclaveMismatch
        | Reason::SignerMismatch
        | Reason::IsvsvnTooLow
        | Reason::IsvsvnTooHigh
        | Reason::NoAttestationPolicy => ("executables", 33),
        // Reasons added later: contraindicated until classified.
        #[allow(unreachable_patterns)]
        _ => ("configuration", 96),
    }
}

fn trust_vector(v: &Verdict) -> Value {
    let mut tv: Vec<(&'static str, u8)> = vec![
        ("instance-identity", 2),
        ("configuration", 2),
        ("executables", 2),
        ("hardware", 2),
    ];
    // The worst value of a tier wins (higher is worse: 2 < 32 < 96).
    fn set(tv: &mut [(&'static str, u8)], tier: &'static str, value: u8) {
        for e in tv.iter_mut() {
            if e.0 == tier && value > e.1 {
                e.1 = value;
            }
        }
    }
    if let Some(c) = &v.claims {
        if c.mode == las_core::Mode::Sim {
            // 32: hardware with known weaknesses (a simulated platform protects nothing).
            set(&mut tv, "hardware", 32);
        }
        if c.report_body.attributes.debug() {
            // 32: recognized executables, but loaded in a weaker (debug) mode.
            set(&mut tv, "executables", 32);
        }
    }
    if v.accepted() && !v.notes.is_empty() && tv.iter().all(|e| e.1 == 2) {
        // Some other tolerance (advisories, TCB) was needed.
        set(&mut tv, "configuration", 32);
    }
    for r in &v.rejections {
        let (tier, value) = tier_of(r.reason);
        set(&mut tv, tier, value);
    }
    if v.claims.is_none() {
        // Nothing decoded: no claim about the other tiers.
        tv.retain(|e| e.0 == "instance-identity");
    }
    Value::Object(
        tv.into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect(),
    )
}

fn ear_claims(
    v: &Verdict,
    policy_id: &str,
    nonce: &str,
    app_data: &[u8],
    now: u64,
    lifetime: u64,
) -> Value {
    let facts = v.claims.as_ref().map(|c| {
        let b = &c.report_body;
        let tcb = if c.mode == las_core::Mode::Sim {
            Some("simulation".to_owned())
        } else {
            v.notes.iter().find_map(|n| {
                n.split_once("TCB status ")
                    .map(|(_, t)| t.trim_end_matches(')').to_owned())
            })
        };
        json!({
            "platform_id": c.platform_id.to_string(),
            "mode": c.mode.as_str(),
            "mrenclave": hex::encode(b.mrenclave),
            "mrsigner": hex::encode(b.mrsigner),
            "isvprodid": b.isvprodid,
            "isvsvn": b.isvsvn,
            "debug": b.attributes.debug(),
            "report_data": hex::encode(b.report_data),
            "app_report_data": hex::encode(app_data),
            "tcb_status": tcb,
            "las_version": c.las_version,
            "las_trust": match &v.las_trust {
                Some(LasTrust::Pinned) => json!("pinned"),
                Some(LasTrust::Evidence { kind, las_mrenclave }) => json!({
                    "evidence": kind, "las_mrenclave": hex::encode(las_mrenclave)
                }),
                None => Value::Null,
            },
            "quote_issued_at": c.issued_at,
        })
    });
    let reasons: Vec<Value> = v
        .rejections
        .iter()
        .map(|r| json!({"reason": r.reason.as_str(), "detail": r.detail}))
        .collect();
    let mut submod = serde_json::Map::new();
    submod.insert("ear.status".into(), json!(status_of(v)));
    submod.insert("ear.trustworthiness-vector".into(), trust_vector(v));
    submod.insert("ear.appraisal-policy-id".into(), json!(policy_id));
    submod.insert("las.facts".into(), facts.unwrap_or(Value::Null));
    submod.insert("las.reasons".into(), Value::Array(reasons));
    submod.insert("las.notes".into(), json!(v.notes));
    let mut submods = serde_json::Map::new();
    submods.insert(v.service.clone(), Value::Object(submod));
    json!({
        "eat_profile": EAR_PROFILE,
        "iat": now,
        "exp": now.saturating_add(lifetime),
        "ear.verifier-id": {
            "build": concat!("las-verifier-service ", env!("CARGO_PKG_VERSION")),
            "developer": "las",
        },
        "eat_nonce": nonce,
        "submods": submods,
    })
}

/// Binds the listen address with a clear error.
async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Serves `state` on `listener` until `shutdown`; then drains (up to `drain_timeout`).
/// The same loop as the LAS daemon's (`las_server::serve`, which is tied to its own
/// state): connection cap, header read timeout, graceful drain.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = app(state.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(state.config.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(target: "las", "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    state.metrics.connections_refused.inc();
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    router.clone().oneshot(req)
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(state.config.header_timeout)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                let open = state.metrics.connections_open.clone();
                open.inc();
                tokio::spawn(async move {
                    let _ = conn.await;
                    open.dec();
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    state.shutting_down.store(true, Ordering::Relaxed);
    tracing::info!(target: "las", "shutting down: draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(state.config.drain_timeout) => {
            tracing::warn!(target: "las", "drain timeout reached; closing remaining connections");
        }
    }
    Ok(())
}

/// The whole service: load policy and keys, bind, watch the policy, serve until
/// `shutdown`.
pub async fn run(
    config: ServiceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let state = AppState::new(config)?;
    let listener = bind(state.config.listen).await?;
    let local = listener.local_addr()?;
    tracing::info!(
        target: "las",
        "verification service: policy {} ({}), EAR signing key kid {}",
        state.config.policy.display(),
        state.policy_id(),
        state.signer.kid()
    );
    tracing::info!(target: "las", "listening on http://{local}");
    let watcher = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.config.policy_poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // File reads and YAML parsing off the async workers.
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || s.reload_policy()).await;
            }
        })
    };
    let r = serve(listener, state, shutdown).await;
    watcher.abort();
    r?;
    tracing::info!(target: "las", "stopped");
    Ok(())
}

//! What every request shares: the policy in force, the keys, the nonce book, the
//! evidence cache, the metrics and the signature batcher.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use las_server::ConnectionMetrics;
use las_verifier::Policy;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::batch::{BatchMetrics, Batcher};
use crate::config::{ServiceConfig, StartError};
use crate::ear::EarSigner;
use crate::keys::StateKeys;
use crate::nonce::NonceBook;

/// Consumed nonces remembered per replica at most.
const MAX_USED_NONCES: usize = 1 << 20;
/// Platforms whose evidence is cached at most.
pub(crate) const MAX_CACHED_PLATFORMS: usize = 100_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Label {
    kind: String,
}

#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) attestations: Family<Label, Counter>,
    pub(crate) nonces_issued: Counter,
    pub(crate) nonces_refused: Family<Label, Counter>,
    pub(crate) evidence_fetches: Family<Label, Counter>,
    pub(crate) policy_reloads: Family<Label, Counter>,
    pub(crate) policy_reload_failing: Gauge,
    /// The serve loop's counters (las_server::serve_router).
    pub(crate) connections: ConnectionMetrics,
    /// The signature batches (batch.rs).
    pub(crate) batch: BatchMetrics,
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
        let connections = ConnectionMetrics::default();
        r.register(
            "connections_open",
            "Open connections",
            connections.open.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed at once because the connection cap was reached",
            connections.refused.clone(),
        );
        r.register(
            "connections_write_timeout",
            "Connections closed because the client did not read its answers within the write timeout",
            connections.write_timeouts.clone(),
        );
        let batch = BatchMetrics::register(&mut r);
        Self {
            registry: r,
            attestations,
            nonces_issued,
            nonces_refused,
            evidence_fetches,
            policy_reloads,
            policy_reload_failing,
            connections,
            batch,
        }
    }
}

pub(crate) fn label(kind: &str) -> Label {
    Label { kind: kind.into() }
}

/// The policy in force.
#[derive(Debug)]
pub(crate) struct LoadedPolicy {
    pub(crate) policy: Policy,
    /// `policy:sha256:<hex of the file>` (and of the sessions it imports, when it does).
    pub(crate) id: String,
    pub(crate) digest: [u8; 32],
    pub(crate) loaded_at: u64,
    /// The imported session files read with it (`$$SCONE::NAME$$` platform entries): the
    /// reload watches them too.
    pub(crate) imports: Vec<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub(crate) struct CachedEvidence {
    pub(crate) token: Arc<Vec<u8>>,
    pub(crate) nonce: [u8; 32],
    pub(crate) fetched_at: u64,
}

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    pub(crate) config: ServiceConfig,
    pub(crate) policy: RwLock<Arc<LoadedPolicy>>,
    /// Last policy reload error (file does not parse), for /readyz.
    pub(crate) policy_error: Mutex<Option<String>>,
    pub(crate) signer: EarSigner,
    pub(crate) nonces: NonceBook,
    pub(crate) evidence: Mutex<HashMap<[u8; 32], CachedEvidence>>,
    pub(crate) metrics: Metrics,
    pub(crate) shutting_down: AtomicBool,
    /// Checks quote signatures, several at a time when several wait.
    pub(crate) batcher: Batcher,
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl AppState {
    /// Loads the policy and the keys (creating the keys on first start).
    pub fn new(config: ServiceConfig) -> Result<Arc<Self>, StartError> {
        let now = unix_now();
        let policy = crate::policy::load_policy(&config.policy, now).map_err(|detail| {
            StartError::Policy {
                path: config.policy.clone(),
                detail,
            }
        })?;
        if let Some(from) = &config.import_keys_from {
            crate::keys::import(from, &config.state_dir)?;
        }
        let keys = StateKeys::load_or_create(&config.state_dir)?;
        let signer = EarSigner::new(keys.signing.clone());
        let nonces = NonceBook::new(&keys.nonce_key, config.nonce_lifetime, MAX_USED_NONCES);
        let metrics = Metrics::new();
        let batcher = Batcher::new(config.verify_batch_max, metrics.batch.clone());
        Ok(Arc::new(Self {
            config,
            policy: RwLock::new(Arc::new(policy)),
            policy_error: Mutex::new(None),
            signer,
            nonces,
            evidence: Mutex::new(HashMap::new()),
            metrics,
            shutting_down: AtomicBool::new(false),
            batcher,
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

    pub(crate) fn current_policy(&self) -> Arc<LoadedPolicy> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

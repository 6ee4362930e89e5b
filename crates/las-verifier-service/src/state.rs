//! What every request shares: the policy in force, the keys, the nonce book, the
//! evidence cache, the metrics and the signature batcher.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use las_http::ConnectionMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use las_core::evidence::VerifiedEvidence;

use crate::batch::{BatchMetrics, Batcher};
use crate::config::{ServiceConfig, StartError};
use crate::ear::EarSigner;
use crate::keys::StateKeys;
use crate::nonce::NonceBook;
use crate::policy::{Decision, LoadedPolicy, Settle};

/// Consumed nonces remembered per replica at most.
const MAX_USED_NONCES: usize = 1 << 20;
/// Bytes an evidence cache entry costs besides its token and claims (key, fixed-size
/// claims, map overhead).
const CACHE_ENTRY_OVERHEAD: usize = 400;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Label {
    kind: String,
}

#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) attestations: Family<Label, Counter>,
    pub(crate) nonces_issued: Counter,
    pub(crate) certificates_issued: Counter,
    pub(crate) nonces_refused: Family<Label, Counter>,
    pub(crate) evidence_fetches: Family<Label, Counter>,
    pub(crate) evidence: Family<Label, Counter>,
    pub(crate) evidence_verified: Counter,
    pub(crate) evidence_cache_entries: Gauge,
    pub(crate) evidence_cache_bytes: Gauge,
    pub(crate) policy_reloads: Family<Label, Counter>,
    pub(crate) policy_reload_failing: Gauge,
    /// The serve loop's counters (las_http::serve_router).
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
        let certificates_issued = Counter::default();
        r.register(
            "certificates_issued",
            "Workload certificates issued (POST /v1/attest with a CSR, accepted)",
            certificates_issued.clone(),
        );
        let nonces_refused = Family::<Label, Counter>::default();
        r.register(
            "nonces_refused",
            "Attestation requests refused for their nonce, by reason",
            nonces_refused.clone(),
        );
        let evidence_fetches = Family::<Label, Counter>::default();
        r.register(
            "evidence_fetches",
            "Identity evidence fetched by the service itself (only with --fetch-evidence-from): ok, not-allowed, unreachable",
            evidence_fetches.clone(),
        );
        let evidence = Family::<Label, Counter>::default();
        r.register(
            "evidence",
            "LAS identity evidence by outcome: cache-hit, cached (matched the quote's key), not-cached (cache full), rejected, absent",
            evidence.clone(),
        );
        let evidence_verified = Counter::default();
        r.register(
            "evidence_signatures_checked",
            "Identity evidence tokens decoded and signature-checked (evidence reused from the cache is not checked again)",
            evidence_verified.clone(),
        );
        let evidence_cache_entries = Gauge::default();
        r.register(
            "evidence_cache_entries",
            "Platforms whose verified identity evidence is cached",
            evidence_cache_entries.clone(),
        );
        let evidence_cache_bytes = Gauge::default();
        r.register(
            "evidence_cache_bytes",
            "Memory the evidence cache accounts for (bounded by --evidence-cache-bytes)",
            evidence_cache_bytes.clone(),
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
        let connections = ConnectionMetrics::register(&mut r);
        let batch = BatchMetrics::register(&mut r);
        Self {
            registry: r,
            attestations,
            nonces_issued,
            certificates_issued,
            nonces_refused,
            evidence_fetches,
            evidence,
            evidence_verified,
            evidence_cache_entries,
            evidence_cache_bytes,
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

/// Identity evidence that verified and matched the key of a quote it came with: its
/// exact bytes with their decoded, signature-checked claims (so a reuse neither decodes
/// nor checks the signature again), and the nonce it answers. Its age, nonce and the
/// policy in force are checked again by the verifier on every use.
#[derive(Debug, Clone)]
pub(crate) struct CachedEvidence {
    pub(crate) evidence: Arc<VerifiedEvidence>,
    pub(crate) nonce: Arc<Vec<u8>>,
    pub(crate) fetched_at: u64,
}

impl CachedEvidence {
    fn cost(&self) -> usize {
        let c = self.evidence.claims();
        let dcap = match &c.kind {
            las_core::evidence::EvidenceKind::SgxDcap { quote } => quote.len(),
            _ => 0,
        };
        // The token, and its claims beside it (a DCAP quote is held twice).
        self.evidence
            .token()
            .len()
            .saturating_add(dcap)
            .saturating_add(c.nonce.len())
            .saturating_add(c.las_version.len())
            .saturating_add(self.nonce.len())
            .saturating_add(CACHE_ENTRY_OVERHEAD)
    }
}

/// Verified evidence per platform ID, bounded by the bytes it holds (not by a count: a
/// DCAP evidence token is 50 times a simulated one). Only evidence that matched the key of
/// a quote is inserted (routes.rs), and a full cache refuses new entries rather than
/// evicting live ones, so no client can push genuine platforms out.
#[derive(Debug)]
pub(crate) struct EvidenceCache {
    map: HashMap<[u8; 32], CachedEvidence>,
    bytes: usize,
    max_bytes: usize,
}

impl EvidenceCache {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            map: HashMap::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// The live entry for `pid` (an expired one is dropped).
    pub(crate) fn get(&mut self, pid: &[u8; 32], now: u64, ttl: u64) -> Option<CachedEvidence> {
        let c = self.map.get(pid)?;
        if c.fetched_at.saturating_add(ttl) > now && c.fetched_at <= now {
            return Some(c.clone());
        }
        if let Some(old) = self.map.remove(pid) {
            self.bytes = self.bytes.saturating_sub(old.cost());
        }
        None
    }

    /// Inserts (or replaces) `pid`'s entry if it fits after expired entries are dropped;
    /// false when it does not fit.
    pub(crate) fn insert(&mut self, pid: [u8; 32], e: CachedEvidence, now: u64, ttl: u64) -> bool {
        if ttl == 0 {
            return false;
        }
        if let Some(old) = self.map.remove(&pid) {
            self.bytes = self.bytes.saturating_sub(old.cost());
        }
        let cost = e.cost();
        if self.bytes.saturating_add(cost) > self.max_bytes {
            let mut freed = 0usize;
            self.map.retain(|_, c| {
                let live = c.fetched_at.saturating_add(ttl) > now && c.fetched_at <= now;
                if !live {
                    freed = freed.saturating_add(c.cost());
                }
                live
            });
            self.bytes = self.bytes.saturating_sub(freed);
        }
        if self.bytes.saturating_add(cost) > self.max_bytes {
            return false;
        }
        self.bytes = self.bytes.saturating_add(cost);
        self.map.insert(pid, e);
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    pub(crate) config: ServiceConfig,
    pub(crate) policy: RwLock<Arc<LoadedPolicy>>,
    /// Last policy reload error (file does not parse), for /readyz.
    pub(crate) policy_error: Mutex<Option<String>>,
    /// When a policy file rewritten in place may be taken (see `policy`).
    pub(crate) settle: Mutex<Settle>,
    pub(crate) signer: EarSigner,
    pub(crate) nonces: NonceBook,
    pub(crate) evidence: Mutex<EvidenceCache>,
    pub(crate) metrics: Metrics,
    pub(crate) shutting_down: AtomicBool,
    /// Checks quote signatures, several at a time when several wait.
    pub(crate) batcher: Batcher,
    /// Issues workload certificates.
    pub(crate) ca: crate::ca::Ca,
}

impl AppState {
    /// Loads the policy and the keys (creating the keys on first start).
    pub fn new(config: ServiceConfig) -> Result<Arc<Self>, StartError> {
        let now = las_core::unix_now();
        let policy = crate::policy::load_policy(&config.policy, now).map_err(|source| {
            StartError::Policy {
                path: config.policy.clone(),
                source,
            }
        })?;
        if let Some(from) = &config.import_keys_from {
            crate::keys::import(from, &config.state_dir)?;
        }
        let keys = StateKeys::load_or_create(&config.state_dir)?;
        let signer = EarSigner::new(keys.signing.clone());
        let ca = crate::ca::Ca::load_or_create(
            &config.state_dir,
            &config.ca,
            &config.trust_domain,
            now,
        )?;
        let nonces = NonceBook::new(&keys.nonce_key, config.nonce_lifetime, MAX_USED_NONCES);
        let metrics = Metrics::new();
        let batcher = Batcher::new(config.verify_batch_max, metrics.batch.clone());
        let evidence = Mutex::new(EvidenceCache::new(config.evidence_cache_bytes));
        Ok(Arc::new(Self {
            settle: Mutex::new(Settle::new(config.policy_settle)),
            config,
            policy: RwLock::new(Arc::new(policy)),
            policy_error: Mutex::new(None),
            signer,
            nonces,
            evidence,
            metrics,
            shutting_down: AtomicBool::new(false),
            batcher,
            ca,
        }))
    }

    /// The EAR signer (its JWKS).
    pub fn signer(&self) -> &EarSigner {
        &self.signer
    }

    /// The CA of workload certificates.
    pub fn ca(&self) -> &crate::ca::Ca {
        &self.ca
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

impl AppState {
    /// Checks the policy file once and swaps in a changed one when `policy::Settle` says
    /// it is complete and it loads (parses, has services); keeps the old policy (and
    /// records the error) when it does not load. Returns whether it swapped.
    pub fn reload_policy(&self) -> bool {
        // The policy file and every session it imported last time: a change of either is
        // a change of the policy.
        let current = self.current_policy();
        let file = match crate::policy::read_policy_file(&self.config.policy, &current.imports) {
            Ok(f) => f,
            Err(e) => {
                self.reload_failed(e.to_string());
                return false;
            }
        };
        let decision = self
            .settle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .decide(&current, &file, std::time::Instant::now());
        match decision {
            Decision::Same => false,
            Decision::Wait(left) => {
                tracing::debug!(
                    target: "las",
                    "policy {} changed in place; taken once unchanged for {}",
                    self.config.policy.display(),
                    las_http::duration::format(left)
                );
                false
            }
            Decision::Take => match crate::policy::load(file, las_core::unix_now()) {
                Ok(p) => {
                    tracing::info!(target: "las", "policy {} reloaded: {}", self.config.policy.display(), p.id);
                    *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(p);
                    *self.policy_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    self.metrics
                        .policy_reloads
                        .get_or_create(&label("ok"))
                        .inc();
                    self.metrics.policy_reload_failing.set(0);
                    true
                }
                Err(e) => {
                    self.reload_failed(e.to_string());
                    false
                }
            },
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

    /// Whether the policy in force can attest anything (a service to attest to). Loading
    /// refuses a policy without one, so this holds unless that rule is broken.
    pub(crate) fn policy_usable(&self) -> bool {
        !self.current_policy().policy.services().is_empty()
    }
}

/// Polls the policy file every `policy_poll` until aborted.
pub(crate) fn watch(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ev(len: usize, at: u64) -> CachedEvidence {
        use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
        let id = las_core::PlatformIdentity::from_seal_key(&las_core::crypto::Key128::from_bytes(
            [3; 16],
        ));
        let nonce = vec![7; 32];
        let token = encode_evidence(
            &id,
            &EvidenceClaims {
                kind: EvidenceKind::Sim,
                mode: las_core::Mode::Sim,
                platform_id: id.platform_id(),
                nonce: nonce.clone(),
                // The token's size grows with this field (at most 64 bytes).
                las_version: "v".repeat(len % 64),
                las_mrenclave: [5; 32],
                las_mrsigner: [6; 32],
                las_isvprodid: 1,
                las_isvsvn: 1,
                cpusvn: [1; 16],
                // Fixed: the entry's size must not depend on `at` (the cache's clock).
                issued_at: 1_000,
                binding: binding(&id.platform_id(), &nonce),
                qe_id: None,
            },
        )
        .unwrap();
        CachedEvidence {
            evidence: Arc::new(VerifiedEvidence::verify(token).unwrap()),
            nonce: Arc::new(nonce),
            fetched_at: at,
        }
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_and_never_evicts_live_entries() {
        let one = ev(1000, 10).cost();
        let mut c = EvidenceCache::new(2 * one);
        assert!(c.insert([1; 32], ev(1000, 10), 10, 100));
        assert!(c.insert([2; 32], ev(1000, 10), 10, 100));
        // Full: a third is refused, the two live ones stay.
        assert!(!c.insert([3; 32], ev(1000, 11), 11, 100));
        assert_eq!((c.len(), c.bytes()), (2, 2 * one));
        assert!(c.get(&[1; 32], 12, 100).is_some());
        // Replacing an entry does not count it twice.
        assert!(c.insert([1; 32], ev(1000, 12), 12, 100));
        assert_eq!(c.bytes(), 2 * one);
        // Once [2] expired, a new one fits in its place.
        assert!(c.insert([3; 32], ev(1000, 111), 111, 100));
        assert!(c.get(&[2; 32], 111, 100).is_none());
        assert_eq!((c.len(), c.bytes()), (2, 2 * one));
        // A cache lifetime of 0 caches nothing.
        assert!(!EvidenceCache::new(10 * one).insert([4; 32], ev(1, 1), 1, 0));
    }
}

//! The policy file: loaded at start, polled for changes; a new version that parses
//! replaces the one in force, one that does not is refused (the old one stays, /readyz and
//! a metric say so).

use std::sync::Arc;

use las_verifier::Policy;
use sha2::{Digest, Sha256};

use crate::state::{AppState, LoadedPolicy, label, unix_now};

/// The digest of a policy and the sessions it imports: SHA-256 of the policy file alone
/// when it imports nothing, else also of each imported file (path and bytes), so that a
/// change of an imported session is a change of the policy.
fn digest_of(policy: &[u8], imports: &[(std::path::PathBuf, Vec<u8>)]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(policy);
    for (p, b) in imports {
        h.update(b"\0las-import\0");
        h.update(p.as_os_str().as_encoded_bytes());
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    }
    h.finalize().into()
}

/// The current digest of the files a loaded policy was read from (`None`: one is gone).
fn current_digest(
    path: &std::path::Path,
    imports: &[std::path::PathBuf],
) -> Result<[u8; 32], String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut files = Vec::new();
    for p in imports {
        let b = std::fs::read(p)
            .map_err(|e| format!("cannot read imported session {}: {e}", p.display()))?;
        files.push((p.clone(), b));
    }
    Ok(digest_of(&bytes, &files))
}

pub(crate) fn load_policy(path: &std::path::Path, now: u64) -> Result<LoadedPolicy, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let (policy, imports) = Policy::from_file(path).map_err(|e| format!("malformed: {e}"))?;
    if policy.attestation.mode == las_verifier::policy::AttestationMode::None {
        return Err(
            "security.attestation.mode is `none`: there is nothing to verify quotes against".into(),
        );
    }
    let digest = digest_of(&bytes, &imports);
    Ok(LoadedPolicy {
        policy,
        id: format!("policy:sha256:{}", hex::encode(digest)),
        digest,
        loaded_at: now,
        imports: imports.into_iter().map(|(p, _)| p).collect(),
    })
}

impl AppState {
    /// Checks the policy file once: swaps in a changed file that parses; keeps the old
    /// policy (and records the error) when it does not. Returns whether it swapped.
    pub fn reload_policy(&self) -> bool {
        // The policy file and every session it imported last time: a change of either is
        // a change of the policy.
        let digest = match current_digest(&self.config.policy, &self.current_policy().imports) {
            Ok(d) => d,
            Err(e) => {
                self.reload_failed(e);
                return false;
            }
        };
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

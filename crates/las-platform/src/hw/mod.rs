//! The hardware platform: the LAS as an ordinary Linux binary inside a Gramine-SGX enclave
//! (feature `sgx`; docs/hardware.md).
//!
//! ```text
//!  /dev/attestation/attestation_type == "dcap"  ─► this backend (--mode hw, or auto)
//!  /dev/attestation/keys/_sgx_mrenclave ─► seal key ─► PlatformIdentity (same HKDF label as sim)
//!  /dev/attestation/my_target_info ─► GET /v1/target-info
//!  application REPORT ─► KEYREQUEST(REPORT, KEYID) ─► ENCLU[EGETKEY] ─► AES-CMAC check
//!  binding(key, nonce) ─► user_report_data ─► quote ─► sgx-dcap identity evidence
//! ```
//!
//! No secret is stored on disk in this mode: the CPU re-derives the seal key at every
//! start, so the platform ID stays the same across restarts and changes with a microcode
//! (CPUSVN) update or a new LAS build (MRENCLAVE), as documented.
//!
//! The REPORT key comes from a [`ReportKeys`] source: EGETKEY on x86_64 (module `enclu`,
//! the only `unsafe` code), or in tests the software model of `las_core::egetkey`, so that
//! everything but the instruction itself is tested on machines without SGX.

#[cfg(target_arch = "x86_64")]
mod enclu;
// Test-only ENCLU emulator (a SIGILL handler); never in a shipped build.
#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
mod emulator;
pub mod gramine;

use std::sync::Arc;

use las_core::api::TcbState;
use las_core::crypto::Key128;
use las_core::egetkey::EnclaveIdentity;
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_core::sgx::{KeyName, KeyRequest, Report, TargetInfo};
use las_core::{Mode, PlatformIdentity};

pub use gramine::{AttestationFs, GramineError};

use crate::{Platform, PlatformError, ReportError};

/// The `attestation_type` Gramine reports for `sgx.remote_attestation = "dcap"`.
pub const DCAP: &str = "dcap";

/// Why a [`ReportKeys`] source gave no REPORT key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportKeyError {
    /// ENCLU\[EGETKEY\] answered an SGX error code (RAX).
    #[error("EGETKEY(REPORT) failed with SGX error code {0}")]
    Sgx(u32),
    /// This build has no EGETKEY (it exists on x86_64 only).
    #[error("EGETKEY exists on x86_64 only")]
    Unsupported,
    /// The software model of EGETKEY (`las_core::egetkey`) refused the request.
    #[error(transparent)]
    Model(#[from] las_core::KeyError),
}

/// Where REPORT keys come from.
pub trait ReportKeys: Send + Sync + std::fmt::Debug {
    /// The REPORT key of this enclave for `key_id` (the KEYID of a REPORT targeted at it),
    /// or why EGETKEY failed.
    fn report_key(&self, key_id: &[u8; 32]) -> Result<Key128, ReportKeyError>;
}

/// The KEYREQUEST for this enclave's REPORT key with `key_id`: KEYNAME = REPORT, KEYID from
/// the REPORT, every other field zero (EGETKEY takes the REPORT key's inputs from the
/// enclave itself; KEYPOLICY, SVNs and masks apply to seal keys only).
pub fn report_key_request(key_id: &[u8; 32]) -> KeyRequest {
    KeyRequest {
        keyname: KeyName::Report as u16,
        keypolicy: 0,
        isvsvn: 0,
        cpusvn: [0; 16],
        attribute_mask: las_core::sgx::Attributes::default(),
        key_id: *key_id,
        misc_mask: 0,
        config_svn: 0,
    }
}

/// EGETKEY inside the enclave (x86_64 only).
#[derive(Debug, Clone, Copy, Default)]
pub struct Egetkey;

impl ReportKeys for Egetkey {
    #[cfg(target_arch = "x86_64")]
    fn report_key(&self, key_id: &[u8; 32]) -> Result<Key128, ReportKeyError> {
        enclu::egetkey(&report_key_request(key_id).to_bytes()).map_err(ReportKeyError::Sgx)
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn report_key(&self, _key_id: &[u8; 32]) -> Result<Key128, ReportKeyError> {
        Err(ReportKeyError::Unsupported)
    }
}

/// Whether this process runs under Gramine-SGX with DCAP remote attestation.
pub fn under_gramine_dcap() -> bool {
    AttestationFs::default().attestation_type().as_deref() == Some(DCAP)
}

/// The LAS on hardware SGX under Gramine.
#[derive(Debug)]
pub struct GraminePlatform {
    fs: AttestationFs,
    keys: Arc<dyn ReportKeys>,
    las: EnclaveIdentity,
    target_info: TargetInfo,
    cpusvn: [u8; 16],
    identity: PlatformIdentity,
    /// Set by [`GraminePlatform::read_tcb_state`] (from a thread that may outlive a slow
    /// AESM); `None` until then.
    tcb_state: Arc<std::sync::Mutex<Option<TcbState>>>,
}

fn hw(msg: impl std::fmt::Display) -> PlatformError {
    PlatformError::HwUnavailable(msg.to_string())
}

impl GraminePlatform {
    /// Opens the platform through `/dev/attestation` with EGETKEY. Fails unless this
    /// process runs inside a Gramine-SGX enclave with `sgx.remote_attestation = "dcap"`.
    pub fn open() -> Result<Self, PlatformError> {
        if cfg!(not(target_arch = "x86_64")) {
            return Err(hw("SGX needs an x86_64 build"));
        }
        let p = Self::open_with(AttestationFs::default(), Arc::new(Egetkey))?;
        p.read_tcb_state(STARTUP_QUOTE_DEADLINE);
        Ok(p)
    }

    /// Makes the start-up DCAP quote of the LAS (in a thread) and waits for it at most
    /// `deadline`: the TCB state is then its facts, or `unknown` with the reason. A quote
    /// that comes later still sets the state; a hung AESM never stops the LAS from starting
    /// or serving quotes.
    pub fn read_tcb_state(&self, deadline: std::time::Duration) {
        let (tx, rx) = std::sync::mpsc::channel();
        let fs = self.fs.clone();
        let slot = self.tcb_state.clone();
        let spawned = std::thread::Builder::new()
            .name("las-tcb-state".into())
            .spawn(move || {
                let t = startup_tcb_state(&fs);
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
                let _ = tx.send(());
            });
        let waited = match spawned {
            Ok(_) => rx.recv_timeout(deadline).is_ok(),
            Err(e) => {
                self.set_tcb_state(TcbState::unknown(format!(
                    "cannot start the start-up quote: {e}"
                )));
                return;
            }
        };
        if !waited {
            let mut g = self.tcb_state.lock().unwrap_or_else(|p| p.into_inner());
            if g.is_none() {
                *g = Some(TcbState::unknown(format!(
                    "no start-up DCAP quote within {deadline:?} (the host's AESM does not answer)"
                )));
            }
        }
    }

    fn set_tcb_state(&self, t: TcbState) {
        *self.tcb_state.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    /// Opens the platform on the attestation files under `fs` with REPORT keys from `keys`.
    ///
    /// Checks `attestation_type`, reads this enclave's TARGETINFO and its own REPORT, and
    /// checks that REPORT's MAC with a key from `keys` (a self-test of EGETKEY and of the
    /// KEYREQUEST layout) before deriving the platform identity from the seal key.
    pub fn open_with(fs: AttestationFs, keys: Arc<dyn ReportKeys>) -> Result<Self, PlatformError> {
        match fs.attestation_type() {
            Some(t) if t == DCAP => {}
            Some(t) => {
                return Err(hw(format!(
                    "running under Gramine-SGX with remote attestation `{t}`; the LAS needs `sgx.remote_attestation = \"dcap\"` in its manifest"
                )));
            }
            None => {
                return Err(hw(format!(
                    "{}/attestation_type does not exist: not running inside a Gramine-SGX enclave (see docs/hardware.md)",
                    fs.root().display()
                )));
            }
        }
        let target_info = fs.my_target_info().map_err(PlatformError::HwAttestation)?;
        let own = fs
            .report(&target_info, &[0; 64])
            .map_err(PlatformError::HwAttestation)?;
        let key = keys
            .report_key(&own.key_id)
            .map_err(PlatformError::HwReportKey)?;
        if !key.verify_cmac(&own.body.to_bytes(), &own.mac) {
            return Err(hw(
                "EGETKEY self-test failed: the REPORT key does not verify this enclave's own REPORT",
            ));
        }
        let b = &own.body;
        if b.mrenclave != target_info.mrenclave {
            return Err(hw(
                "my_target_info and the enclave's own REPORT name different MRENCLAVEs",
            ));
        }
        let las = EnclaveIdentity {
            mrenclave: b.mrenclave,
            mrsigner: b.mrsigner,
            attributes: b.attributes,
            miscselect: b.miscselect,
            isvprodid: b.isvprodid,
            isvsvn: b.isvsvn,
            config_id: b.config_id,
            config_svn: b.config_svn,
            isv_family_id: b.isv_family_id,
            isv_ext_prod_id: b.isv_ext_prod_id,
        };
        let seal = fs.mrenclave_seal_key().map_err(hw)?;
        let identity = PlatformIdentity::from_seal_key(&seal);
        Ok(Self {
            fs,
            keys,
            cpusvn: b.cpusvn,
            las,
            target_info,
            identity,
            tcb_state: Arc::new(std::sync::Mutex::new(None)),
        })
    }
}

/// REPORTDATA of the start-up quote: a label, so that this quote can never pass for
/// identity evidence (whose REPORTDATA is a SHA-512 binding).
pub fn tcb_state_report_data() -> [u8; 64] {
    let mut d = [0u8; 64];
    for (o, i) in d.iter_mut().zip(b"las tcb-state start-up quote v1") {
        *o = *i;
    }
    d
}

/// One DCAP quote of the LAS at start, read for its QE ID and PCK facts. A failure makes
/// the state `unknown` (with the reason); the LAS serves quotes all the same.
fn startup_tcb_state(fs: &AttestationFs) -> TcbState {
    match fs.quote(&tcb_state_report_data()) {
        Ok(q) => match las_core::tcb::dcap_facts(&q) {
            Ok(f) => TcbState::from_dcap(&f),
            Err(e) => TcbState::unknown(format!("the start-up DCAP quote does not read: {e}")),
        },
        Err(e) => TcbState::unknown(format!("no start-up DCAP quote: {e}")),
    }
}

/// How long the LAS waits at start for its start-up quote.
pub const STARTUP_QUOTE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

impl Platform for GraminePlatform {
    fn tcb_state(&self) -> TcbState {
        self.tcb_state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| TcbState::unknown("the start-up DCAP quote has not been made"))
    }

    fn mode(&self) -> Mode {
        Mode::Hw
    }

    fn identity(&self) -> &PlatformIdentity {
        &self.identity
    }

    fn las_enclave(&self) -> &EnclaveIdentity {
        &self.las
    }

    fn cpusvn(&self) -> [u8; 16] {
        self.cpusvn
    }

    /// Exactly what Gramine's `my_target_info` says.
    fn target_info(&self) -> TargetInfo {
        self.target_info.clone()
    }

    fn startup_notes(&self) -> Vec<String> {
        let mut notes = vec![
            "hardware SGX under Gramine: platform key derived from the MRENCLAVE seal key (nothing stored on disk)".into(),
        ];
        if self.las.attributes.debug() {
            notes.push(
                "this LAS is a DEBUG enclave: the host can read its platform key; verifiers reject it unless they tolerate debug-mode".into(),
            );
        }
        notes
    }

    fn check_report(&self, bytes: &[u8]) -> Result<Report, ReportError> {
        // EGETKEY(REPORT) takes no input but the KEYID, which cannot make it fail once the
        // start-up self-test passed; should it fail anyway, no MAC can be checked.
        crate::check_report_mac(bytes, |key_id| self.keys.report_key(key_id).ok())
    }

    fn identity_evidence(&self, nonce: &[u8], now: u64) -> Result<Vec<u8>, PlatformError> {
        crate::check_nonce(nonce)?;
        let id = self.identity.platform_id();
        let bound = binding(&id, nonce);
        let quote = self.fs.quote(&bound).map_err(PlatformError::Quote)?;
        let claims = EvidenceClaims {
            kind: EvidenceKind::SgxDcap { quote },
            mode: Mode::Hw,
            platform_id: id,
            nonce: nonce.to_vec(),
            las_version: env!("CARGO_PKG_VERSION").to_owned(),
            las_mrenclave: self.las.mrenclave,
            las_mrsigner: self.las.mrsigner,
            las_isvprodid: self.las.isvprodid,
            las_isvsvn: self.las.isvsvn,
            cpusvn: self.cpusvn,
            issued_at: now,
            binding: bound,
            qe_id: None,
        };
        Ok(encode_evidence(&self.identity, &claims)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
mod tests;

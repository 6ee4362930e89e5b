//! DCAP verification of `sgx-dcap` identity evidence: is this platform key held by a
//! genuine LAS enclave on an SGX platform Intel vouches for?
//!
//! ```text
//!  evidence.dcap_quote ─► collateral_key ─► CollateralSet (file, or PCCS via `pccs`)
//!                              │
//!                              ▼
//!  appraise(policy, quote, binding, collateral, now)
//!    ├─ collateral for the quote's FMSPC, valid at `now`     dcap-collateral-missing / -expired
//!    ├─ dcap-qvl: PCK chain to Intel's root, CRLs, QE        dcap-quote-invalid
//!    │  identity, quote signature, TCB level
//!    ├─ TCB status  ─► tolerate names                        tcb-out-of-date, tcb-configuration-needed,
//!    │                                                       tcb-software-hardening-needed
//!    ├─ advisories  ─► ignore_advisories / tolerate names    advisory-not-ignored
//!    ├─ PCK SMT flag ─► tolerate hyperthreading               hyperthreading-enabled
//!    ├─ TCB evaluation data number ≥ min_tcb_eval_data_number tcb-eval-data-number-too-low
//!    ├─ PCK dynamic-platform / cached-keys flags ─► tolerate  dynamic-platform, cached-keys
//!    ├─ PCK SGX type Scalable ─► tolerate
//!    │  scalable-sgx-without-integrity                        sgx-without-integrity
//!    ├─ DEBUG attribute ─► tolerate debug-mode               debug-las
//!    └─ REPORTDATA == binding(platform key, nonce)           report-data-mismatch
//! ```
//!
//! The LAS's measurement (MRENCLAVE, MRSIGNER) from the verified quote is then checked
//! against `trusted_las` by the caller (`verify::verify_las_evidence_with`).
//!
//! Everything here is a function of its inputs (quote, collateral, policy, `now`); fetching
//! collateral from a PCCS is the job of [`pccs`] (feature `pccs`, on by default).

mod appraise;
mod collateral;
#[cfg(feature = "pccs")]
pub mod pccs;

pub use appraise::{ADVISORY_TOLERANCES, DcapAppraisal, DcapReport, appraise};
pub use collateral::{
    Collateral, CollateralError, CollateralKey, CollateralSet, MAX_COLLATERAL_SIZE, QuoteError,
    collateral_key, evidence_dcap_quote,
};
#[cfg(feature = "pccs")]
use dcap_qvl::QuoteCollateralV3;

/// The real DCAP sample quote and collateral that ship with dcap-qvl, for tests here and
/// in `pccs`.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
pub(crate) mod tests {
    use std::path::PathBuf;

    /// The dcap-qvl crate package's folder, found through `cargo metadata` (the sample
    /// quote and collateral ship in it; they are read in place, not copied).
    pub(crate) fn dcap_qvl_dir() -> PathBuf {
        static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(find_dcap_qvl_dir).clone()
    }

    fn find_dcap_qvl_dir() -> PathBuf {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                &host_triple(),
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let manifest = v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "dcap-qvl")
            .expect("dcap-qvl in cargo metadata")["manifest_path"]
            .as_str()
            .unwrap()
            .to_owned();
        PathBuf::from(manifest).parent().unwrap().to_path_buf()
    }

    /// The host's target triple (`rustc -vV`): `cargo metadata` then needs only this platform's
    /// packages, which the build has already fetched.
    fn host_triple() -> String {
        let out =
            std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
                .arg("-vV")
                .output()
                .expect("rustc -vV");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .expect("host line of rustc -vV")
            .to_owned()
    }

    pub(crate) fn sample() -> (Vec<u8>, Vec<u8>) {
        let d = dcap_qvl_dir().join("sample");
        (
            std::fs::read(d.join("sgx_quote")).unwrap(),
            std::fs::read(d.join("sgx_quote_collateral.json")).unwrap(),
        )
    }

    /// 2025-07-01T00:00:00Z: inside the sample collateral's validity (TCB info and QE
    /// identity from 2025-06-19 to 2025-07-19, CRLs likewise; asserted below).
    pub(crate) const SAMPLE_NOW: u64 = 1_751_328_000;
}

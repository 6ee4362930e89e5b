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
//! collateral from a PCCS is the job of `pccs` (feature `pccs`, opt-in: the default build
//! does no network or file I/O; `las` enables it).

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
    /// The real DCAP sample of dcap-qvl 0.7.1, committed under tests/vectors/dcap.
    pub(crate) fn sample() -> (Vec<u8>, Vec<u8>) {
        (
            las_testkit::vectors::DCAP_QUOTE.to_vec(),
            las_testkit::vectors::DCAP_COLLATERAL_JSON.to_vec(),
        )
    }

    /// 2025-07-01T00:00:00Z: inside the sample collateral's validity (TCB info and QE
    /// identity from 2025-06-19 to 2025-07-19, CRLs likewise; asserted below).
    pub(crate) const SAMPLE_NOW: u64 = las_testkit::vectors::DCAP_SAMPLE_NOW;
}

//! Appraising a DCAP quote of a LAS: dcap-qvl verifies the chain and finds the TCB level
//! (claims only); the policy checks here decide (see the parent module's diagram).

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::{PckCertFlag, QuotePolicy, TcbStatus};
use las_core::sgx::Attributes;

use super::collateral::{Collateral, CollateralSet, collateral_key};
use crate::policy::{Policy, Tolerance};
use crate::verify::{Reason, Rejection};

/// Advisories that a named tolerance covers: a platform that needs them tolerates them
/// only through that name (or by listing the advisory in `ignore_advisories`).
pub const ADVISORY_TOLERANCES: [(&str, Tolerance); 4] = [
    // L1 Terminal Fault: SGX secrets are safe only with hyper-threading off.
    ("INTEL-SA-00161", Tolerance::Hyperthreading),
    // Microarchitectural Data Sampling: likewise needs hyper-threading off.
    ("INTEL-SA-00233", Tolerance::Hyperthreading),
    // SGX with Intel Processor Graphics: needs the integrated GPU off.
    ("INTEL-SA-00219", Tolerance::InsecureIgpu),
    // ÆPIC Leak.
    ("INTEL-SA-00657", Tolerance::AepicLeak),
];

/// What a verified DCAP quote says about the enclave and its platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcapReport {
    /// MRENCLAVE of the quoted enclave.
    pub mrenclave: [u8; 32],
    /// MRSIGNER of the quoted enclave.
    pub mrsigner: [u8; 32],
    /// ISVPRODID.
    pub isvprodid: u16,
    /// ISVSVN.
    pub isvsvn: u16,
    /// The platform's CPUSVN.
    pub cpusvn: [u8; 16],
    /// ATTRIBUTES (DEBUG bit).
    pub attributes: Attributes,
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// Intel's TCB status of the platform and QE (e.g. `UpToDate`, `SWHardeningNeeded`).
    pub tcb_status: String,
    /// Intel security advisories that apply to this platform.
    pub advisory_ids: Vec<String>,
    /// The platform's FMSPC.
    pub fmspc: String,
    /// TCB evaluation data number of the collateral used (the lower of TCB info's and QE
    /// identity's).
    pub tcb_eval_data_number: u32,
    /// SGX type from the PCK certificate: 0 Standard, 1 Scalable, 2 Scalable with
    /// integrity.
    pub sgx_type: u8,
    /// QE ID and PCK facts of the verified quote (`None` if they do not read, e.g. a
    /// certification data type other than a PEM chain: then no QE ID matches).
    pub facts: Option<las_core::tcb::DcapFacts>,
}

/// The platform facts the policy judges, from dcap-qvl's claims (see [`judge`]).
#[derive(Debug, Clone)]
struct Facts<'a> {
    status: TcbStatus,
    advisories: &'a [String],
    smt: PckCertFlag,
    dynamic_platform: PckCertFlag,
    cached_keys: PckCertFlag,
}

/// PCK SGX type values (Intel PCK certificate extension `SGX Type`).
const SGX_TYPE_STANDARD: u8 = 0;
const SGX_TYPE_SCALABLE: u8 = 1;
const SGX_TYPE_SCALABLE_WITH_INTEGRITY: u8 = 2;

/// The outcome of [`appraise`]: the verified report (when the quote verified) and every
/// policy check that failed.
#[derive(Debug, Clone, Default)]
pub struct DcapAppraisal {
    /// Present when the quote's signature chain verified.
    pub report: Option<DcapReport>,
    /// Failed checks; empty means accepted.
    pub rejections: Vec<Rejection>,
    /// What was tolerated or ignored.
    pub notes: Vec<String>,
}

impl DcapAppraisal {
    fn reject(&mut self, reason: Reason, detail: String) {
        self.rejections.push(Rejection { reason, detail });
    }
}

/// Which tolerances a TCB status needs, each with the reason used when it is missing.
/// `None`: a status that no tolerance accepts (revoked, or TDX-only).
fn tolerances_for(status: TcbStatus) -> Option<&'static [(Tolerance, Reason)]> {
    const OUT: (Tolerance, Reason) = (Tolerance::OutdatedTcb, Reason::TcbOutOfDate);
    const CONF: (Tolerance, Reason) = (
        Tolerance::InsecureConfiguration,
        Reason::TcbConfigurationNeeded,
    );
    const SW: (Tolerance, Reason) = (
        Tolerance::SoftwareHardeningNeeded,
        Reason::TcbSoftwareHardeningNeeded,
    );
    match status {
        TcbStatus::UpToDate => Some(&[]),
        TcbStatus::SWHardeningNeeded => Some(&[SW]),
        TcbStatus::ConfigurationNeeded => Some(&[CONF]),
        TcbStatus::ConfigurationAndSWHardeningNeeded => Some(&[CONF, SW]),
        TcbStatus::OutOfDate => Some(&[OUT]),
        TcbStatus::OutOfDateConfigurationNeeded => Some(&[OUT, CONF]),
        TcbStatus::Revoked
        | TcbStatus::TDRelaunchAdvised
        | TcbStatus::TDRelaunchAdvisedConfigurationNeeded => None,
    }
}

fn advisory_ignored(policy: &Policy, id: &str) -> bool {
    // `"*"` (only accepted with `debug-mode` tolerated, see policy validation).
    policy.attestation().ignore_all_advisories
        || policy
            .attestation()
            .ignore_advisories
            .iter()
            .any(|a| a.eq_ignore_ascii_case(id))
}

fn advisory_tolerance(id: &str) -> Option<Tolerance> {
    ADVISORY_TOLERANCES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(id))
        .map(|(_, t)| *t)
}

/// Verifies a DCAP quote of a LAS and appraises it against `policy`: see the module docs
/// for the order of checks. `expected_report_data` is the evidence binding
/// (`las_core::evidence::binding`). Checks after the signature chain all run, so that
/// every failure is reported at once.
pub fn appraise(
    policy: &Policy,
    quote: &[u8],
    expected_report_data: &[u8; 64],
    collateral: &CollateralSet,
    now: u64,
) -> DcapAppraisal {
    let mut a = DcapAppraisal::default();
    let key = match collateral_key(quote) {
        Ok(k) => k,
        Err(e) => {
            a.reject(Reason::DcapQuoteInvalid, e.to_string());
            return a;
        }
    };
    let candidates: Vec<&Collateral> = collateral
        .iter()
        .filter(|c| c.fmspc().eq_ignore_ascii_case(&key.fmspc))
        .collect();
    if candidates.is_empty() {
        a.reject(
            Reason::DcapCollateralMissing,
            format!(
                "no DCAP collateral for FMSPC {} ({} CA); fetch it from a PCCS (--pccs-url) or pass it as a file (--collateral)",
                key.fmspc, key.ca
            ),
        );
        return a;
    }
    let current: Vec<&Collateral> = candidates
        .iter()
        .copied()
        .filter(|c| c.valid_at(now))
        .collect();
    if current.is_empty() {
        let windows: Vec<String> = candidates
            .iter()
            .map(|c| format!("{}..{}", c.not_before(), c.not_after()))
            .collect();
        a.reject(
            Reason::DcapCollateralExpired,
            format!(
                "the DCAP collateral for FMSPC {} is valid in {} (seconds since the epoch), not now ({now}); fetch fresh collateral",
                key.fmspc,
                windows.join(", ")
            ),
        );
        return a;
    }

    // Debug enclaves are judged below with their own reason, so dcap-qvl lets them through.
    let verifier = QuoteVerifier::new_prod().allow_debug(true);
    let mut failure = String::new();
    let mut claims = None;
    for c in current {
        match verifier.verify_with_policy(
            quote,
            c.raw().clone(),
            now,
            &QuotePolicy::claims_only(now),
        ) {
            Ok(cl) => {
                claims = Some(cl);
                break;
            }
            Err(e) => failure = format!("{e:#}"),
        }
    }
    let Some(claims) = claims else {
        a.reject(
            Reason::DcapQuoteInvalid,
            format!("the DCAP quote does not verify: {failure}"),
        );
        return a;
    };
    let Some(r) = claims.report.as_sgx() else {
        a.reject(
            Reason::DcapQuoteInvalid,
            "the DCAP quote is not an SGX enclave quote".into(),
        );
        return a;
    };
    let (flags, xfrm) = r.attributes.split_at(8);
    let attributes = Attributes {
        flags: u64::from_le_bytes(flags.try_into().unwrap_or([0; 8])),
        xfrm: u64::from_le_bytes(xfrm.try_into().unwrap_or([0; 8])),
    };
    let report = DcapReport {
        mrenclave: r.mr_enclave,
        mrsigner: r.mr_signer,
        isvprodid: r.isv_prod_id,
        isvsvn: r.isv_svn,
        cpusvn: r.cpu_svn,
        attributes,
        report_data: r.report_data,
        tcb_status: claims.tcb.status.to_string(),
        advisory_ids: claims.tcb.advisory_ids.clone(),
        fmspc: key.fmspc.clone(),
        tcb_eval_data_number: claims.tcb.eval_data_number,
        sgx_type: claims.platform.pck.sgx_type,
        // Read only now that dcap-qvl verified the quote: header and PCK certificate are
        // covered by the signatures it checked.
        facts: las_core::tcb::dcap_facts(quote).ok(),
    };
    let pck = &claims.platform.pck;
    let facts = Facts {
        status: claims.tcb.status,
        advisories: &claims.tcb.advisory_ids,
        smt: pck.smt_enabled,
        dynamic_platform: pck.dynamic_platform,
        cached_keys: pck.cached_keys,
    };

    judge(policy, &facts, &report, expected_report_data, &mut a);
    a.report = Some(report);
    a
}

/// A PCK certificate flag that is a weakness when set: rejected with `reason` unless
/// `tolerance` is tolerated.
fn flag_check(
    policy: &Policy,
    flag: PckCertFlag,
    tolerance: Tolerance,
    reason: Reason,
    what: &str,
    a: &mut DcapAppraisal,
) {
    if flag != PckCertFlag::True {
        return;
    }
    if policy.tolerates(tolerance) {
        a.notes.push(format!("{what} (tolerated)"));
    } else {
        a.reject(
            reason,
            format!("{what}; tolerate `{}` to accept it", tolerance.as_str()),
        );
    }
}

/// The policy checks on a verified quote's facts (everything after the signature chain).
fn judge(
    policy: &Policy,
    facts: &Facts<'_>,
    report: &DcapReport,
    expected_report_data: &[u8; 64],
    a: &mut DcapAppraisal,
) {
    let status = facts.status;
    // TCB status.
    match tolerances_for(status) {
        None => a.reject(
            Reason::DcapQuoteInvalid,
            format!("TCB status {} is not acceptable for an SGX LAS", status),
        ),
        Some(needed) => {
            let mut tolerated = Vec::new();
            for (t, reason) in needed {
                if policy.tolerates(*t) {
                    tolerated.push(t.as_str());
                } else {
                    a.reject(
                        *reason,
                        format!(
                            "the platform's TCB status is {}; tolerate `{}` to accept it",
                            status,
                            t.as_str()
                        ),
                    );
                }
            }
            if !tolerated.is_empty() {
                a.notes.push(format!(
                    "TCB status {} of platform FMSPC {} tolerated ({})",
                    status,
                    report.fmspc,
                    tolerated.join(", ")
                ));
            }
        }
    }

    // Advisories.
    let mut open = Vec::new();
    for id in facts.advisories {
        if advisory_ignored(policy, id) {
            a.notes.push(format!("advisory {id} ignored by the policy"));
            continue;
        }
        match advisory_tolerance(id) {
            Some(t) if policy.tolerates(t) => a
                .notes
                .push(format!("advisory {id} tolerated (`{}`)", t.as_str())),
            Some(t) => open.push(format!("{id} (or tolerate `{}`)", t.as_str())),
            None => open.push(id.clone()),
        }
    }
    if !open.is_empty() {
        a.reject(
            Reason::AdvisoryNotIgnored,
            format!(
                "the platform is affected by Intel security advisories that the policy does not ignore: {}; list them in ignore_advisories only after assessing them",
                open.join(", ")
            ),
        );
    }

    // Hyper-threading, where the PCK certificate says (Platform CA certificates only).
    if facts.smt == PckCertFlag::True {
        if policy.tolerates(Tolerance::Hyperthreading) {
            a.notes
                .push("hyper-threading enabled on the LAS's platform, tolerated".into());
        } else {
            a.reject(
                Reason::HyperthreadingEnabled,
                "the platform's PCK certificate says hyper-threading (SMT) is enabled; tolerate `hyperthreading` to accept it".into(),
            );
        }
    }

    // TCB evaluation data number: how recent Intel's judgement of this platform is.
    if let Some(min) = policy.attestation().min_tcb_eval_data_number
        && report.tcb_eval_data_number < min
    {
        a.reject(
            Reason::TcbEvalDataNumberTooLow,
            format!(
                "the DCAP collateral's TCB evaluation data number is {}, below the policy's min_tcb_eval_data_number {min}: the platform was judged against out-of-date TCB data; fetch current collateral",
                report.tcb_eval_data_number
            ),
        );
    }

    // PCK flags (Platform CA certificates; `Undefined` in Processor CA ones, which make
    // no such statement: nothing to judge).
    flag_check(
        policy,
        facts.dynamic_platform,
        Tolerance::DynamicPlatform,
        Reason::DynamicPlatform,
        "the platform's PCK certificate says it is a dynamic platform (CPU packages can be added after provisioning)",
        a,
    );
    flag_check(
        policy,
        facts.cached_keys,
        Tolerance::CachedKeys,
        Reason::CachedKeys,
        "the platform's PCK certificate says its platform keys are cached (kept across reboots, not re-derived)",
        a,
    );

    // SGX type.
    match report.sgx_type {
        SGX_TYPE_STANDARD | SGX_TYPE_SCALABLE_WITH_INTEGRITY => {}
        SGX_TYPE_SCALABLE => {
            if policy.tolerates(Tolerance::ScalableSgxWithoutIntegrity) {
                a.notes.push(
                    "the platform runs Scalable SGX without memory integrity protection (tolerated)"
                        .into(),
                );
            } else {
                a.reject(
                    Reason::SgxWithoutIntegrity,
                    "the platform's PCK certificate says SGX type Scalable: enclave memory has no integrity protection against physical attacks; tolerate `scalable-sgx-without-integrity` to accept it".into(),
                );
            }
        }
        other => a.reject(
            Reason::DcapQuoteInvalid,
            format!(
                "the PCK certificate names SGX type {other}, which this verifier does not know"
            ),
        ),
    }

    // DEBUG LAS.
    if report.attributes.debug() {
        if policy.tolerates(Tolerance::DebugMode) {
            a.notes.push(
                "the LAS is a DEBUG enclave (tolerated): its memory and platform key are readable by the host".into(),
            );
        } else {
            a.reject(
                Reason::DebugLas,
                "the LAS enclave has the DEBUG attribute: the host can read its platform key; tolerate `debug-mode` to accept it".into(),
            );
        }
    }

    // The binding of platform key and nonce.
    if &report.report_data != expected_report_data {
        a.reject(
            Reason::ReportDataMismatch,
            format!(
                "the DCAP quote's report data is {}, not the binding of this platform key and nonce ({}): the quote does not vouch for this key",
                hex::encode(report.report_data),
                hex::encode(expected_report_data)
            ),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
mod tests;

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
    policy.attestation.ignore_all_advisories
        || policy
            .attestation
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
    if let Some(min) = policy.attestation.min_tcb_eval_data_number
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
mod tests {
    use super::*;
    use crate::dcap::tests::{SAMPLE_NOW, sample};

    fn policy(att: &str) -> Policy {
        let y = format!("security:\n  attestation:\n{att}services:\n  - name: app\n");
        Policy::from_yaml(y.as_bytes()).unwrap()
    }

    fn reasons(a: &DcapAppraisal) -> Vec<&'static str> {
        a.rejections.iter().map(|r| r.reason.as_str()).collect()
    }

    #[test]
    fn real_quote_verifies_and_reports_intels_tcb_status() {
        let (quote, coll) = sample();
        let set = CollateralSet::from_json(&coll).unwrap();
        // Everything tolerated: the chain verifies, the status and advisories are Intel's,
        // and only the binding fails (this quote binds no LAS key).
        let p = policy(
            "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode, hyperthreading]\n    ignore_advisories: [INTEL-SA-00289, intel-sa-00615]\n",
        );
        let a = appraise(&p, &quote, &[0; 64], &set, SAMPLE_NOW);
        let r = a.report.as_ref().expect("the chain verifies");
        assert_eq!(r.tcb_status, "ConfigurationAndSWHardeningNeeded");
        assert_eq!(r.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
        assert_eq!(r.fmspc, "00A067110000");
        assert_eq!(reasons(&a), ["report-data-mismatch"], "{:?}", a.rejections);
        // The quote's own report data passes the binding check.
        let own = r.report_data;
        let ok = appraise(&p, &quote, &own, &set, SAMPLE_NOW);
        assert!(ok.rejections.is_empty(), "{:?}", ok.rejections);
        assert!(ok.notes.iter().any(|n| n.contains("INTEL-SA-00289")));
    }

    #[test]
    fn ignore_advisories_star_ignores_every_advisory_of_the_real_quote() {
        let (quote, coll) = sample();
        let set = CollateralSet::from_json(&coll).unwrap();
        let tol = "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode, hyperthreading]\n";
        let without = appraise(&policy(tol), &quote, &[0; 64], &set, SAMPLE_NOW);
        assert!(reasons(&without).contains(&"advisory-not-ignored"));
        let star = policy(&format!("{tol}    ignore_advisories: \"*\"\n"));
        let a = appraise(&star, &quote, &[0; 64], &set, SAMPLE_NOW);
        assert_eq!(reasons(&a), ["report-data-mismatch"], "{:?}", a.rejections);
        assert!(
            a.notes
                .iter()
                .any(|n| n.contains("INTEL-SA-00615") && n.contains("ignored"))
        );
    }

    #[test]
    fn real_quote_without_tolerations_names_each_reason() {
        let (quote, coll) = sample();
        let set = CollateralSet::from_json(&coll).unwrap();
        let a = appraise(
            &policy("    tolerate: []\n"),
            &quote,
            &[0; 64],
            &set,
            SAMPLE_NOW,
        );
        let got = reasons(&a);
        for want in [
            "tcb-configuration-needed",
            "tcb-software-hardening-needed",
            "advisory-not-ignored",
            "report-data-mismatch",
        ] {
            assert!(got.contains(&want), "{want} missing from {got:?}");
        }
        let adv = a
            .rejections
            .iter()
            .find(|r| r.reason == Reason::AdvisoryNotIgnored)
            .unwrap();
        assert!(adv.detail.contains("INTEL-SA-00289") && adv.detail.contains("INTEL-SA-00615"));
        // One advisory ignored: the other is still named.
        let a = appraise(
            &policy(
                "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode]\n    ignore_advisories: [INTEL-SA-00289]\n",
            ),
            &quote,
            &[0; 64],
            &set,
            SAMPLE_NOW,
        );
        let adv = a
            .rejections
            .iter()
            .find(|r| r.reason == Reason::AdvisoryNotIgnored)
            .unwrap();
        assert!(adv.detail.contains("INTEL-SA-00615") && !adv.detail.contains("00289"));
    }

    #[test]
    fn collateral_missing_expired_or_for_another_platform() {
        let (quote, coll) = sample();
        let p = policy("    tolerate: []\n");
        let empty = CollateralSet::new();
        assert_eq!(
            reasons(&appraise(&p, &quote, &[0; 64], &empty, SAMPLE_NOW)),
            ["dcap-collateral-missing"]
        );
        let set = CollateralSet::from_json(&coll).unwrap();
        let c = set.iter().next().unwrap().clone();
        for now in [c.not_after() + 1, c.not_before() - 1] {
            assert_eq!(
                reasons(&appraise(&p, &quote, &[0; 64], &set, now)),
                ["dcap-collateral-expired"]
            );
        }
        // Collateral of another FMSPC does not count.
        let mut v: serde_json::Value = serde_json::from_slice(&coll).unwrap();
        let tcb = v["tcb_info"]
            .as_str()
            .unwrap()
            .replace("00A067110000", "00906ED50000");
        v["tcb_info"] = serde_json::Value::String(tcb);
        let other = CollateralSet::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(
            reasons(&appraise(&p, &quote, &[0; 64], &other, SAMPLE_NOW)),
            ["dcap-collateral-missing"]
        );
    }

    #[test]
    fn tampered_collateral_is_rejected() {
        let (quote, coll) = sample();
        let p = policy(
            "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode]\n    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n",
        );
        // Intel's TCB info signed the status: claiming UpToDate breaks the signature.
        let mut v: serde_json::Value = serde_json::from_slice(&coll).unwrap();
        let tcb = v["tcb_info"]
            .as_str()
            .unwrap()
            .replace("ConfigurationAndSWHardeningNeeded", "UpToDate");
        v["tcb_info"] = serde_json::Value::String(tcb);
        let set = CollateralSet::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(
            reasons(&appraise(&p, &quote, &[0; 64], &set, SAMPLE_NOW)),
            ["dcap-quote-invalid"]
        );
    }

    #[test]
    fn truncated_and_flipped_quotes_are_rejected() {
        let (quote, coll) = sample();
        let set = CollateralSet::from_json(&coll).unwrap();
        let p = policy(
            "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode]\n    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n",
        );
        let own = appraise(&p, &quote, &[0; 64], &set, SAMPLE_NOW)
            .report
            .unwrap()
            .report_data;
        for len in [0, 47, 48, 432, 436, quote.len() / 2, quote.len() - 1] {
            let a = appraise(&p, &quote[..len], &own, &set, SAMPLE_NOW);
            assert!(!a.rejections.is_empty(), "truncated to {len} accepted");
            assert!(a.report.is_none(), "truncated to {len}");
        }
        // Flip one bit at a spread of positions: header, report body (MRENCLAVE, report
        // data, attributes), signature, QE report, certification data.
        // Not content: PEM line breaks (whitespace to the PEM reader; a flipped `\n` is a
        // vertical tab) and the quote's own copy of Intel's root certificate, the last in
        // its chain (the chain is anchored at the verifier's built-in root, not at it).
        let root_copy = quote
            .windows(27)
            .rposition(|w| w == b"-----BEGIN CERTIFICATE-----")
            .unwrap();
        assert!(root_copy > 3000);
        let step = (quote.len() / 97).max(1);
        let mut checked = 0;
        for i in (0..root_copy)
            .step_by(step)
            .chain([48, 64, 96, 112, 144, 304, 368, 380, 440])
            .filter(|&i| quote[i] != b'\n')
        {
            let mut bad = quote.clone();
            bad[i] ^= 0x01;
            let a = appraise(&p, &bad, &own, &set, SAMPLE_NOW);
            assert!(!a.rejections.is_empty(), "flip at {i} accepted");
            checked += 1;
        }
        assert!(checked > 80);
    }

    /// The checks after the chain, on facts no genuine sample quote has (a DEBUG LAS,
    /// SMT on, an out-of-date TCB, advisories a tolerance covers).
    #[test]
    fn judge_names_each_weakness() {
        let report = DcapReport {
            mrenclave: [1; 32],
            mrsigner: [2; 32],
            isvprodid: 1,
            isvsvn: 1,
            cpusvn: [3; 16],
            attributes: Attributes {
                flags: las_core::sgx::flags::INIT | las_core::sgx::flags::DEBUG,
                xfrm: 3,
            },
            report_data: [9; 64],
            tcb_status: "OutOfDate".into(),
            advisory_ids: vec![],
            fmspc: "00906ED50000".into(),
            tcb_eval_data_number: 17,
            sgx_type: SGX_TYPE_STANDARD,
        };
        let adv = vec!["INTEL-SA-00161".to_string(), "INTEL-SA-00657".to_string()];
        let facts = Facts {
            status: TcbStatus::OutOfDate,
            advisories: &adv,
            smt: PckCertFlag::True,
            dynamic_platform: PckCertFlag::Undefined,
            cached_keys: PckCertFlag::False,
        };
        let run = |att: &str| {
            let mut a = DcapAppraisal::default();
            judge(&policy(att), &facts, &report, &[9; 64], &mut a);
            a
        };
        let strict = run("    tolerate: []\n");
        assert_eq!(
            reasons(&strict),
            [
                "tcb-out-of-date",
                "advisory-not-ignored",
                "hyperthreading-enabled",
                "debug-las"
            ]
        );
        assert!(
            strict.rejections[1]
                .detail
                .contains("tolerate `hyperthreading`")
        );
        let all = run("    tolerate: [outdated-tcb, hyperthreading, aepic-leak, debug-mode]\n");
        assert!(all.rejections.is_empty(), "{:?}", all.rejections);
        assert!(all.notes.iter().any(|n| n.contains("DEBUG")));
        // Ignoring an advisory by ID works too; the other still needs its tolerance.
        let by_id = run(
            "    tolerate: [outdated-tcb, hyperthreading, debug-mode]\n    ignore_advisories: [INTEL-SA-00657]\n",
        );
        assert!(by_id.rejections.is_empty(), "{:?}", by_id.rejections);
        let missing = run("    tolerate: [outdated-tcb, hyperthreading, debug-mode]\n");
        assert_eq!(reasons(&missing), ["advisory-not-ignored"]);
        assert!(
            missing.rejections[0]
                .detail
                .contains("INTEL-SA-00657 (or tolerate `aepic-leak`)")
        );
    }

    /// The additions at parity with dcap-qvl's own policy, on facts the sample quote does
    /// not carry (its PCK is a Processor CA certificate: no platform flags; SGX type
    /// Standard): PCK dynamic-platform and cached-keys flags, Scalable SGX without
    /// integrity, an unknown SGX type, and the TCB evaluation data number threshold.
    #[test]
    fn judge_names_pck_flags_sgx_type_and_eval_number() {
        let report = |sgx_type: u8| DcapReport {
            mrenclave: [1; 32],
            mrsigner: [2; 32],
            isvprodid: 1,
            isvsvn: 1,
            cpusvn: [3; 16],
            attributes: Attributes {
                flags: las_core::sgx::flags::INIT,
                xfrm: 3,
            },
            report_data: [9; 64],
            tcb_status: "UpToDate".into(),
            advisory_ids: vec![],
            fmspc: "00906ED50000".into(),
            tcb_eval_data_number: 17,
            sgx_type,
        };
        let run = |att: &str, dynamic: PckCertFlag, cached: PckCertFlag, sgx_type: u8| {
            let facts = Facts {
                status: TcbStatus::UpToDate,
                advisories: &[],
                smt: PckCertFlag::False,
                dynamic_platform: dynamic,
                cached_keys: cached,
            };
            let mut a = DcapAppraisal::default();
            judge(&policy(att), &facts, &report(sgx_type), &[9; 64], &mut a);
            a
        };
        use PckCertFlag::{False, True, Undefined};
        // Nothing set: accepted, whatever the flags' absence.
        for f in [False, Undefined] {
            for t in [SGX_TYPE_STANDARD, SGX_TYPE_SCALABLE_WITH_INTEGRITY] {
                let a = run(
                    "    tolerate: []
",
                    f,
                    f,
                    t,
                );
                assert!(a.rejections.is_empty(), "{:?}", a.rejections);
            }
        }
        let strict = run(
            "    tolerate: []
",
            True,
            True,
            SGX_TYPE_SCALABLE,
        );
        assert_eq!(
            reasons(&strict),
            ["dynamic-platform", "cached-keys", "sgx-without-integrity"]
        );
        assert!(
            strict.rejections[0]
                .detail
                .contains("tolerate `dynamic-platform`")
        );
        assert!(
            strict.rejections[1]
                .detail
                .contains("tolerate `cached-keys`")
        );
        assert!(
            strict.rejections[2]
                .detail
                .contains("tolerate `scalable-sgx-without-integrity`")
        );
        // Each tolerance covers its own fact only.
        assert_eq!(
            reasons(&run(
                "    tolerate: [dynamic-platform]
",
                True,
                True,
                SGX_TYPE_SCALABLE
            )),
            ["cached-keys", "sgx-without-integrity"]
        );
        let all = run(
            "    tolerate: [dynamic-platform, cached-keys, scalable-sgx-without-integrity]
",
            True,
            True,
            SGX_TYPE_SCALABLE,
        );
        assert!(all.rejections.is_empty(), "{:?}", all.rejections);
        assert_eq!(all.notes.len(), 3, "{:?}", all.notes);
        // An SGX type this verifier does not know is no tolerable weakness.
        assert_eq!(
            reasons(&run(
                "    tolerate: [scalable-sgx-without-integrity]
",
                False,
                False,
                3
            )),
            ["dcap-quote-invalid"]
        );
        // The evaluation data number threshold: equal passes, above fails.
        assert!(
            run(
                "    min_tcb_eval_data_number: 17
",
                False,
                False,
                SGX_TYPE_STANDARD
            )
            .rejections
            .is_empty()
        );
        let low = run(
            "    min_tcb_eval_data_number: 18
",
            False,
            False,
            SGX_TYPE_STANDARD,
        );
        assert_eq!(reasons(&low), ["tcb-eval-data-number-too-low"]);
        assert!(low.rejections[0].detail.contains("is 17, below"));
    }

    /// The policy field fails closed: a value that is no unsigned 32-bit number, and an
    /// explicit null (which would read as "no minimum"), are errors naming the field.
    #[test]
    fn min_tcb_eval_data_number_parses_strictly() {
        let parse = |v: &str| {
            let y = format!(
                "security:\n  attestation:\n    min_tcb_eval_data_number: {v}\nservices:\n  - name: app\n"
            );
            Policy::from_yaml(y.as_bytes())
        };
        assert_eq!(
            parse("17").unwrap().attestation.min_tcb_eval_data_number,
            Some(17)
        );
        for bad in ["null", "~", "", "-1", "\"17\"", "4294967296", "1.5", "[17]"] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(e.contains("min_tcb_eval_data_number"), "{bad}: {e}");
        }
        assert_eq!(
            policy("    tolerate: []\n")
                .attestation
                .min_tcb_eval_data_number,
            None
        );
    }

    /// On the real sample quote and collateral: TCB evaluation data number 17 (TCB info and
    /// QE identity both say 17), SGX type Standard, Processor CA (no platform flags).
    #[test]
    fn real_quote_eval_data_number_and_sgx_type() {
        let (quote, coll) = sample();
        let set = CollateralSet::from_json(&coll).unwrap();
        let tolerant = "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode, hyperthreading]
    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]
";
        let base = appraise(&policy(tolerant), &quote, &[0; 64], &set, SAMPLE_NOW);
        let r = base.report.clone().expect("the chain verifies");
        assert_eq!(r.tcb_eval_data_number, 17);
        assert_eq!(r.sgx_type, SGX_TYPE_STANDARD);
        let own = r.report_data;
        for (min, ok) in [(1, true), (17, true), (18, false), (u32::MAX, false)] {
            let p = policy(&format!(
                "{tolerant}    min_tcb_eval_data_number: {min}
"
            ));
            let a = appraise(&p, &quote, &own, &set, SAMPLE_NOW);
            if ok {
                assert!(a.rejections.is_empty(), "min {min}: {:?}", a.rejections);
            } else {
                assert_eq!(reasons(&a), ["tcb-eval-data-number-too-low"], "min {min}");
            }
        }
    }

    #[test]
    fn tcb_status_mapping_is_total() {
        use TcbStatus::*;
        for s in [
            UpToDate,
            SWHardeningNeeded,
            ConfigurationNeeded,
            ConfigurationAndSWHardeningNeeded,
            OutOfDate,
            OutOfDateConfigurationNeeded,
        ] {
            assert!(tolerances_for(s).is_some(), "{s}");
        }
        assert_eq!(
            tolerances_for(OutOfDate).unwrap(),
            &[(Tolerance::OutdatedTcb, Reason::TcbOutOfDate)]
        );
        for s in [
            Revoked,
            TDRelaunchAdvised,
            TDRelaunchAdvisedConfigurationNeeded,
        ] {
            assert!(tolerances_for(s).is_none(), "{s}");
        }
        assert_eq!(
            advisory_tolerance("intel-sa-00657"),
            Some(Tolerance::AepicLeak)
        );
        assert_eq!(advisory_tolerance("INTEL-SA-00289"), None);
    }
}

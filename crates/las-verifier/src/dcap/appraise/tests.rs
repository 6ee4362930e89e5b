use super::*;
use crate::dcap::tests::{SAMPLE_NOW, sample};

fn policy(att: &str) -> Policy {
    let y = format!("security:\n  attestation:\n{att}services:\n  - name: app\n");
    Policy::from_yaml(y.as_bytes()).unwrap()
}

/// The sample's weaknesses tolerated (but not hyperthreading) and its advisories ignored.
const TOLERATES_THE_SAMPLE: &str = "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode]\n    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n";

/// The collateral `coll` (JSON) with `from` replaced by `to` in its TCB info.
fn tcb_info_edited(coll: &[u8], from: &str, to: &str) -> CollateralSet {
    let mut v: serde_json::Value = serde_json::from_slice(coll).unwrap();
    let tcb = v["tcb_info"].as_str().unwrap().replace(from, to);
    v["tcb_info"] = serde_json::Value::String(tcb);
    CollateralSet::from_json(v.to_string().as_bytes()).unwrap()
}

/// The reasons `quote` is rejected for under `p` with collateral `set` at [`SAMPLE_NOW`],
/// binding nothing (zero report data).
fn rejected_for(p: &Policy, quote: &[u8], set: &CollateralSet) -> Vec<&'static str> {
    reasons(&appraise(p, quote, &[0; 64], set, SAMPLE_NOW))
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
        rejected_for(&p, &quote, &empty),
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
    let other = tcb_info_edited(&coll, "00A067110000", "00906ED50000");
    assert_eq!(
        rejected_for(&p, &quote, &other),
        ["dcap-collateral-missing"]
    );
}

#[test]
fn tampered_collateral_is_rejected() {
    let (quote, coll) = sample();
    let p = policy(TOLERATES_THE_SAMPLE);
    // Intel's TCB info signed the status: claiming UpToDate breaks the signature.
    let set = tcb_info_edited(&coll, "ConfigurationAndSWHardeningNeeded", "UpToDate");
    assert_eq!(rejected_for(&p, &quote, &set), ["dcap-quote-invalid"]);
}

#[test]
fn truncated_and_flipped_quotes_are_rejected() {
    let (quote, coll) = sample();
    let set = CollateralSet::from_json(&coll).unwrap();
    let p = policy(TOLERATES_THE_SAMPLE);
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

/// A verified report as `judge` sees it: a release LAS, TCB up to date, no advisories,
/// report data `09..`, SGX type `sgx_type`.
fn judged_report(sgx_type: u8) -> DcapReport {
    DcapReport {
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
        facts: None,
    }
}

/// The checks after the chain, on facts no genuine sample quote has (a DEBUG LAS,
/// SMT on, an out-of-date TCB, advisories a tolerance covers).
#[test]
fn judge_names_each_weakness() {
    let report = DcapReport {
        attributes: Attributes {
            flags: las_core::sgx::flags::INIT | las_core::sgx::flags::DEBUG,
            xfrm: 3,
        },
        tcb_status: "OutOfDate".into(),
        ..judged_report(SGX_TYPE_STANDARD)
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
    let report = judged_report;
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
        parse("17").unwrap().attestation().min_tcb_eval_data_number,
        Some(17)
    );
    for bad in ["null", "~", "", "-1", "\"17\"", "4294967296", "1.5", "[17]"] {
        let e = parse(bad).expect_err(bad).to_string();
        assert!(e.contains("min_tcb_eval_data_number"), "{bad}: {e}");
    }
    assert_eq!(
        policy("    tolerate: []\n")
            .attestation()
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

/// The QE ID and PCK facts our reader (`las_core::tcb`, the one lasd runs) takes from the
/// verified sample quote are what dcap-qvl's own parsers read: header user data and
/// `parse_pck_extension` of the leaf of `extract_cert_chain`. (The independent Python
/// check is tests/python/test_dcap_facts.py.)
#[test]
fn the_verified_quotes_facts_agree_with_dcap_qvl() {
    let (quote, coll) = sample();
    let set = CollateralSet::from_json(&coll).unwrap();
    let p = policy(TOLERATES_THE_SAMPLE);
    let a = appraise(&p, &quote, &[0; 64], &set, SAMPLE_NOW);
    let facts = a
        .report
        .unwrap()
        .facts
        .expect("facts of the verified quote");
    let q = dcap_qvl::quote::Quote::parse(&quote).unwrap();
    assert_eq!(&facts.qe_id.0[..], &q.header.user_data[..16]);
    let chain = dcap_qvl::intel::extract_cert_chain(&q).unwrap();
    let pck = dcap_qvl::intel::parse_pck_extension(&chain[0]).unwrap();
    assert_eq!(facts.ppid, pck.ppid);
    assert_eq!(facts.fmspc, pck.fmspc);
    assert_eq!(facts.pce_id, pck.pce_id);
    assert_eq!(facts.cpusvn, pck.cpu_svn);
    assert_eq!(facts.pcesvn, pck.pce_svn);
    assert_eq!(facts.platform_instance_id, pck.platform_instance_id);
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic
//! Quote formats through the whole policy verification: the committed format-2 quote (what
//! a LAS issues) and format-1 quote (what a LAS not yet upgraded issues during a rolling
//! upgrade) are judged alike; any other format is refused with its own reason, never read
//! as another one.

use las_core::PlatformIdentity;
use las_core::crypto::Key128;
use las_testkit::vectors::{
    QUOTE_IAT, QUOTE_SEAL_KEY, QUOTE_V1, QUOTE_V2, quote_with_version as with_version,
};
use las_verifier::{Policy, Reason, Verdict, VerifyOptions, VerifyRequest, verify_quote_with};

/// Pins the vectors' platform key, tolerates simulation (the vectors are `sim`), and
/// accepts their enclave (MRENCLAVE 02.., MRSIGNER 03.., ISVPRODID 1, ISVSVN 2) or, with
/// `mrenclave`, another one.
fn policy(mrenclave: &str) -> Policy {
    let id = PlatformIdentity::from_seal_key(&Key128::from_bytes(QUOTE_SEAL_KEY));
    let y = format!(
        "security:\n  attestation:\n    tolerate: [simulation]\n    trusted_scone_qe_pubkeys: [\"{}\"]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{mrenclave}\"]\n      signer: {{mrsigner: \"{}\", isvprodid: 1, isvsvn_min: 2}}\n",
        id.platform_id(),
        "03".repeat(32)
    );
    Policy::from_yaml(y.as_bytes()).unwrap()
}

fn verify(p: &Policy, quote: &[u8]) -> Verdict {
    verify_quote_with(
        p,
        quote,
        &VerifyRequest {
            service: None,
            expected_report_data: Some(&[9; 64]),
            las_evidence: None,
            now: QUOTE_IAT + 1,
        },
        &VerifyOptions::default(),
    )
    .unwrap()
}

#[test]
fn format_1_and_format_2_are_judged_alike() {
    let good = policy(&"02".repeat(32));
    let v2 = verify(&good, QUOTE_V2);
    let v1 = verify(&good, QUOTE_V1);
    assert!(v2.accepted(), "{:?}", v2.rejections);
    assert!(v1.accepted(), "{:?}", v1.rejections);
    assert_eq!(v1.claims, v2.claims);
    assert_eq!(v1.notes, v2.notes);
    // A policy violation is found in either format, with the same reason and detail.
    let other = policy(&"0c".repeat(32));
    let (r1, r2) = (verify(&other, QUOTE_V1), verify(&other, QUOTE_V2));
    assert!(r2.has(Reason::MrenclaveMismatch), "{:?}", r2.rejections);
    assert_eq!(r1.rejections, r2.rejections);
}

#[test]
fn other_formats_are_refused_with_their_own_reason() {
    let p = policy(&"02".repeat(32));
    for (quote, from) in [(QUOTE_V2, 2), (QUOTE_V1, 1)] {
        for to in [0u8, 3, 23] {
            let v = verify(&p, &with_version(quote, from, to));
            assert!(!v.accepted());
            assert_eq!(v.rejections.len(), 1, "{:?}", v.rejections);
            let r = &v.rejections[0];
            assert_eq!(r.reason, Reason::UnsupportedQuoteFormat);
            assert_eq!(r.reason.as_str(), "unsupported-quote-format");
            assert!(
                r.detail.contains(&format!("unsupported quote format {to}")),
                "{}",
                r.detail
            );
            assert!(v.claims.is_none());
        }
    }
    // Format 1's payload (with `enclave`) labelled 2: an unknown field in format 2. Format
    // 2's payload labelled 1: format 1's `enclave` is missing.
    for (quote, from, to, why) in [
        (QUOTE_V1, 1, 2, "unknown field"),
        (QUOTE_V2, 2, 1, "`enclave`"),
    ] {
        let v = verify(&p, &with_version(quote, from, to));
        assert!(v.has(Reason::MalformedQuote), "{:?}", v.rejections);
        assert!(v.rejections[0].detail.contains(why), "{:?}", v.rejections);
    }
}

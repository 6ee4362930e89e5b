//! Identity evidence decoding, signature and binding checks, and the verifier's evidence
//! path. Properties: no panic; evidence that verifies carries exactly the claims of a seed;
//! evidence is never taken for a quote; the verifier trusts only the simulated seed.
#![no_main]

use las_verifier::{LasEvidence, Policy, VerifyOptions, verify_las_evidence_with};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        Policy::from_yaml(b"security:\n  attestation:\n    tolerate: [simulation]\n")
            .expect("policy")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = las_core::evidence::decode_and_verify_evidence(data) {
        assert!(
            las_fuzz::all_evidence_claims().contains(&c),
            "evidence that verifies with claims no seed has: {c:?}"
        );
    }
    assert!(
        las_core::quote::decode_and_verify_quote(data).is_err(),
        "evidence (or anything) accepted as a quote"
    );
    let r = verify_las_evidence_with(
        policy(),
        &LasEvidence {
            token: data,
            expected_nonce: Some(&las_fuzz::NONCE),
        },
        &VerifyOptions::default(),
        las_fuzz::NOW,
        &mut Vec::new(),
    );
    if let Ok((c, _platform)) = r {
        assert_eq!(
            c,
            las_fuzz::evidence_claims(las_core::evidence::EvidenceKind::Sim),
            "trusted evidence that is not the simulated seed"
        );
    }
});

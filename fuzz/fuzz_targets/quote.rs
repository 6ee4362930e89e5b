//! Quote decoding, signature verification and policy evaluation.
//! Properties: no panic; a quote that verifies carries exactly the claims of one of the
//! seeds (nothing else is signed with the seed key, so anything else would be a forgery or
//! a decoding that changed the signed content); a quote is never taken for evidence.
#![no_main]

use las_verifier::{Policy, VerifyOptions, VerifyRequest, verify_quote_with};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::from_yaml(las_fuzz::policy_text().as_bytes()).expect("policy"))
}

fuzz_target!(|data: &[u8]| {
    let decoded = las_core::quote::decode_and_verify_quote(data);
    if let Ok(q) = &decoded {
        assert!(
            las_fuzz::all_quote_claims().contains(&q.claims),
            "a quote that verifies with claims no seed has: {:?}",
            q.claims
        );
    }
    assert!(
        las_core::evidence::decode_and_verify_evidence(data).is_err(),
        "a quote (or anything) accepted as identity evidence"
    );
    let v = verify_quote_with(
        policy(),
        data,
        &VerifyRequest {
            service: None,
            expected_report_data: Some(&[0x11; 64]),
            las_evidence: None,
            now: las_fuzz::NOW,
        },
        &VerifyOptions::default(),
    )
    .expect("the policy has one service");
    if v.accepted() {
        // The policy pins the seed key and tolerates simulation, not debug enclaves.
        let claims = v.claims.expect("accepted with claims");
        assert!(
            [
                las_fuzz::quote_claims(las_core::quote::Mode::Sim, false),
                las_fuzz::quote_claims(las_core::quote::Mode::Hw, false),
            ]
            .contains(&claims),
            "accepted a quote that is not an acceptable seed: {claims:?}"
        );
    }
});

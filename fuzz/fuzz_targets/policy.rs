//! Policy parsing and evaluation. Properties: no panic; a policy that parses holds the
//! validated invariants; evaluating it against the seed quote and evidence never panics,
//! and a simulated quote is accepted only by a policy that tolerates simulation.
#![no_main]

use las_core::quote::Mode;
use las_verifier::{
    LasEvidence, Policy, Tolerance, VerifyOptions, VerifyRequest, verify_quote_with,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn tokens() -> &'static (Vec<u8>, Vec<u8>, Vec<u8>) {
    static T: OnceLock<(Vec<u8>, Vec<u8>, Vec<u8>)> = OnceLock::new();
    T.get_or_init(|| {
        (
            las_fuzz::quote(Mode::Sim, false),
            las_fuzz::quote(Mode::Sim, true),
            las_fuzz::evidence(las_core::evidence::EvidenceKind::Sim),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Policy::from_yaml(data) else {
        return;
    };
    for s in p.services() {
        assert!(!s.name.trim().is_empty());
        if let Some(alts) = &s.attestation {
            assert!(!alts.0.is_empty());
            for a in &alts.0 {
                assert!(!a.mrenclave.is_empty() || a.signer.is_some());
            }
        }
    }
    let (q, dq, ev) = tokens();
    for name in p
        .services()
        .iter()
        .map(|s| Some(s.name.as_str()))
        .chain([None])
    {
        for quote in [q, dq] {
            for evidence in [None, Some(ev)] {
                let Ok(v) = verify_quote_with(
                    &p,
                    quote,
                    &VerifyRequest {
                        service: name,
                        expected_report_data: Some(&[0x11; 64]),
                        las_evidence: evidence.map(|e| LasEvidence {
                            token: e,
                            expected_nonce: Some(&las_fuzz::NONCE),
                        }),
                        now: las_fuzz::NOW,
                    },
                    &VerifyOptions::default(),
                ) else {
                    continue;
                };
                if v.accepted() {
                    assert!(
                        p.tolerates(Tolerance::Simulation),
                        "simulation accepted untolerated"
                    );
                    if quote == dq {
                        assert!(
                            p.tolerates(Tolerance::DebugMode),
                            "debug accepted untolerated"
                        );
                    }
                }
            }
        }
    }
});

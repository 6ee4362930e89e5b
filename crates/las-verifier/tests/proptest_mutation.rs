//! Property: any single-byte change, deletion or insertion in a valid quote, identity
//! evidence or their signatures makes the verifier reject it. Quotes and evidence are
//! random (any enclave, mode, platform key), each signed by the platform key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use las_core::PlatformIdentity;
use las_core::crypto::Key128;
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_core::quote::{Mode, QuoteClaims, encode_quote};
use las_core::sgx::{Attributes, ReportBody};
use las_verifier::{
    LasEvidence, Policy, VerifyOptions, VerifyRequest, verify_las_evidence_with, verify_quote_with,
};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;

fn body() -> impl Strategy<Value = ReportBody> {
    (
        any::<[u8; 16]>(),
        any::<u32>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<(u16, u16, u16)>(),
        prop::collection::vec(any::<u8>(), 64),
    )
        .prop_map(
            |(cpusvn, miscselect, flags, mrenclave, mrsigner, (prod, svn, csvn), rd)| ReportBody {
                cpusvn,
                miscselect,
                cet_attributes: 0,
                isv_ext_prod_id: cpusvn,
                attributes: Attributes { flags, xfrm: 3 },
                mrenclave,
                mrsigner,
                config_id: [mrenclave, mrsigner].concat().try_into().unwrap(),
                isvprodid: prod,
                isvsvn: svn,
                config_svn: csvn,
                isv_family_id: cpusvn,
                report_data: rd.try_into().unwrap(),
            },
        )
}

fn identity(seed: [u8; 16]) -> PlatformIdentity {
    PlatformIdentity::from_seal_key(&Key128::from_bytes(seed))
}

/// A random valid quote and a policy that pins its key and accepts it.
fn quote_and_policy() -> impl Strategy<Value = (Vec<u8>, Policy)> {
    (any::<[u8; 16]>(), body(), any::<bool>(), 0..NOW).prop_map(|(seed, body, sim, iat)| {
        let id = identity(seed);
        let claims = QuoteClaims {
            mode: if sim { Mode::Sim } else { Mode::Hw },
            platform_id: id.platform_id(),
            las_version: "0.1.0".into(),
            las_mrenclave: body.mrsigner,
            issued_at: iat,
            report_body: body.clone(),
        };
        let q = encode_quote(&id, &claims).unwrap();
        let yaml = format!(
            "security:\n  attestation:\n    tolerate: [simulation, debug-mode]\n    trusted_scone_qe_pubkeys: [\"{}\"]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{}\"]\n",
            id.platform_id(),
            hex::encode(body.mrenclave)
        );
        (q, Policy::from_yaml(yaml.as_bytes()).unwrap())
    })
}

fn accepted(policy: &Policy, quote: &[u8]) -> bool {
    verify_quote_with(
        policy,
        quote,
        &VerifyRequest {
            service: None,
            expected_report_data: None,
            las_evidence: None,
            now: NOW,
        },
        &VerifyOptions::default(),
    )
    .unwrap()
    .accepted()
}

/// A random valid simulation evidence, its nonce and a policy that trusts it.
fn evidence() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (
        any::<[u8; 16]>(),
        prop::collection::vec(any::<u8>(), 16..=64),
        any::<[u8; 32]>(),
        any::<(u16, u16)>(),
        0..600u64,
    )
        .prop_map(|(seed, nonce, m, (prod, svn), age)| {
            let id = identity(seed);
            let c = EvidenceClaims {
                kind: EvidenceKind::Sim,
                mode: Mode::Sim,
                platform_id: id.platform_id(),
                binding: binding(&id.platform_id(), &nonce),
                qe_id: None,
                nonce: nonce.clone(),
                las_version: "0.1.0".into(),
                las_mrenclave: m,
                las_mrsigner: m,
                las_isvprodid: prod,
                las_isvsvn: svn,
                cpusvn: [1; 16],
                issued_at: NOW - age,
            };
            (encode_evidence(&id, &c).unwrap(), nonce)
        })
}

fn evidence_ok(token: &[u8], nonce: &[u8]) -> bool {
    let p = Policy::from_yaml(b"security:\n  attestation:\n    tolerate: [simulation]\n").unwrap();
    verify_las_evidence_with(
        &p,
        &LasEvidence {
            token,
            expected_nonce: Some(nonce),
        },
        &VerifyOptions::default(),
        NOW,
        &mut Vec::new(),
    )
    .is_ok()
}

/// One edit: replace byte `i` by another value, delete it, or insert a byte before it.
#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Insert(prop::sample::Index, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (any::<prop::sample::Index>(), 1..=255u8).prop_map(|(i, x)| Edit::Replace(i, x)),
        1 => any::<prop::sample::Index>().prop_map(Edit::Delete),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, x)| Edit::Insert(i, x)),
    ]
}

/// Applies `e` to `b`; `region` limits where (e.g. the signature's last 64 bytes).
fn apply(b: &[u8], e: &Edit, region: std::ops::Range<usize>) -> Vec<u8> {
    let mut v = b.to_vec();
    let at = |i: &prop::sample::Index| region.start + i.index(region.len());
    match e {
        // XOR with a non-zero value: always a different byte.
        Edit::Replace(i, x) => v[at(i)] ^= x,
        Edit::Delete(i) => {
            v.remove(at(i));
        }
        Edit::Insert(i, x) => v.insert(at(i), *x),
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_edit_of_a_quote_is_rejected((q, policy) in quote_and_policy(), e in edit()) {
        prop_assert!(accepted(&policy, &q), "the unmodified quote is accepted");
        let bad = apply(&q, &e, 0..q.len());
        prop_assert!(!accepted(&policy, &bad), "accepted after {:?}", e);
    }

    #[test]
    fn any_edit_of_a_quote_signature_is_rejected((q, policy) in quote_and_policy(), e in edit()) {
        let n = q.len();
        let bad = apply(&q, &e, n - 64..n);
        prop_assert!(!accepted(&policy, &bad), "accepted after {:?} in the signature", e);
    }

    #[test]
    fn any_edit_of_evidence_is_rejected((ev, nonce) in evidence(), e in edit()) {
        prop_assert!(evidence_ok(&ev, &nonce), "the unmodified evidence verifies");
        let bad = apply(&ev, &e, 0..ev.len());
        prop_assert!(!evidence_ok(&bad, &nonce), "accepted after {:?}", e);
    }

    #[test]
    fn any_edit_of_an_evidence_signature_is_rejected((ev, nonce) in evidence(), e in edit()) {
        let n = ev.len();
        let bad = apply(&ev, &e, n - 64..n);
        prop_assert!(!evidence_ok(&bad, &nonce), "accepted after {:?} in the signature", e);
    }

    /// Random bytes are never a quote or evidence.
    #[test]
    fn random_bytes_are_rejected(b in prop::collection::vec(any::<u8>(), 0..2048)) {
        let p = Policy::from_yaml(b"security:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: a\n    attestation: {mrenclave: [\"0000000000000000000000000000000000000000000000000000000000000000\"]}\n").unwrap();
        prop_assert!(!accepted(&p, &b));
        prop_assert!(!evidence_ok(&b, &[0u8; 16]));
    }
}

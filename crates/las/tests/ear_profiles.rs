//! The two EAR forms of `las verifier serve --ear-profile`, from a live service (real LAS,
//! real verification service, `las attest` on loopback), checked by Veraison's own EAR
//! library with nothing but the published JWK, each form by the generation that reads it:
//! `ear` 0.6 the draft-ietf-rats-ear-04 form, `ear` 0.5.0 (the last release with dotted
//! names) the legacy Veraison form; and by `las verify --ear`. Each generation refuses the
//! other's form: what the issue saw (0.6 refusing the legacy token), kept as a test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::path::Path;

use las_testkit::verifier::{las_attest, verifier_command};
use las_testkit::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MRSIGNER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const APP_DATA: &str = "0123456789abcdef";

fn policy(platform: &str) -> String {
    format!(
        "version: \"0.3\"\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{MRENCLAVE}\"]\n      signer: {{mrsigner: \"{MRSIGNER}\", isvprodid: 3, isvsvn_min: 5}}\n    platforms: [\"{platform}\"]\n"
    )
}

/// A live `las verifier serve --ear-profile PROFILE` (None: the default).
fn verifier(policy: &Path, state: &Path, profile: Option<&str>) -> Daemon {
    let extra = match profile {
        Some(p) => vec!["--ear-profile", p],
        None => vec![],
    };
    let cmd = verifier_command(policy, state, &extra);
    Daemon::start_command(cmd)
}

/// `las attest` against `v` for the enclave on `p`: the token and the exit code.
fn attest(v: &Daemon, p: &SimPlatform) -> (String, Option<i32>) {
    let o = las_attest(&format!("http://{}", v.addr), p, APP_DATA, &[]);
    (stdout(&o).trim().to_string(), o.status.code())
}

/// The service's one JWK, as JSON bytes (what `Ear::from_jwt_jwk` takes).
fn jwk(v: &Daemon) -> Vec<u8> {
    let jwks = http::get(v.addr, "/.well-known/jwks.json").json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    serde_json::to_vec(&keys[0]).unwrap()
}

fn las_verify(v: &Daemon, token: &str) -> serde_json::Value {
    let url = format!("http://{}", v.addr);
    let o = las(&["verify", "--ear", token, "--jwks", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn ietf_tokens_pass_veraisons_ear_0_6_and_legacy_tokens_are_its_older_form() {
    let p = SimPlatform::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let policy_file = cfg.path().join("policy.yaml");
    std::fs::write(&policy_file, policy(&p.id)).unwrap();

    // The default profile: draft-ietf-rats-ear-04.
    let state = tempfile::tempdir().unwrap();
    let v = verifier(&policy_file, state.path(), None);
    let (token, code) = attest(&v, &p);
    assert_eq!(code, Some(0), "{}", v.log());
    let ear = ear::Ear::from_jwt_jwk(&token, ear::Algorithm::ES256, &jwk(&v))
        .unwrap_or_else(|e| panic!("ear 0.6 refuses the IETF token: {e}"));
    ear.validate().unwrap();
    assert_eq!(ear.profile, ear::EAR_PROFILE);
    assert_eq!(ear.profile, las_verifier_service::EAR_PROFILE);
    assert_eq!(ear.vid.developer, "las");
    let a = &ear.submods["app"];
    // Simulation is never affirming; the simulated hardware is tier 32.
    assert_eq!(a.status, ear::TrustTier::Warning);
    assert_eq!(ear.status, Some(ear::TrustTier::Warning));
    assert_eq!(a.trust_vector.hardware.value(), 32);
    assert_eq!(a.trust_vector.instance_identity.value(), 2);
    assert_eq!(a.policy_ids.len(), 1);
    assert!(
        a.policy_ids[0].starts_with("policy:sha256:"),
        "{:?}",
        a.policy_ids
    );
    assert!(ear.nonce.is_some());
    // Our own claims: under `las.` in the appraisal, what `las verify --ear` shows too.
    let claims = las_verify(&v, &token);
    let s = &claims["submods"]["app"];
    assert_eq!(s["ear_status"], "warning");
    assert_eq!(s["las.facts"]["mrenclave"], MRENCLAVE);
    assert_eq!(s["las.facts"]["app_report_data"], APP_DATA);
    // Another key: ear 0.6 refuses the signature.
    let other = tempfile::tempdir().unwrap();
    let v2 = verifier(&policy_file, other.path(), Some("ietf"));
    assert!(ear::Ear::from_jwt_jwk(&token, ear::Algorithm::ES256, &jwk(&v2)).is_err());
    drop(v2);

    // The legacy Veraison form (what the service emitted before): `las verify` accepts
    // it; ear 0.6 refuses it (it reads only the draft's names), as the issue reported.
    let state = tempfile::tempdir().unwrap();
    let v = verifier(&policy_file, state.path(), Some("veraison"));
    let (token, code) = attest(&v, &p);
    assert_eq!(code, Some(0), "{}", v.log());
    let claims = las_verify(&v, &token);
    assert_eq!(claims["eat_profile"], "tag:github.com,2023:veraison/ear");
    assert_eq!(claims["submods"]["app"]["ear.status"], "warning");
    assert!(claims.get("ear_status").is_none());
    let e = ear::Ear::from_jwt_jwk(&token, ear::Algorithm::ES256, &jwk(&v)).unwrap_err();
    assert!(e.to_string().contains("verifier-id: empty build"), "{e}");
    // ear 0.5.0, which reads the dotted names, accepts it.
    let legacy = ear_legacy::Ear::from_jwt_jwk(&token, ear_legacy::Algorithm::ES256, &jwk(&v))
        .unwrap_or_else(|e| panic!("ear 0.5.0 refuses the legacy token: {e}"));
    legacy.validate().unwrap();
    assert_eq!(legacy.profile, "tag:github.com,2023:veraison/ear");
    assert_eq!(legacy.vid.developer, "las");
    let a = &legacy.submods["app"];
    assert_eq!(a.status, ear_legacy::TrustTier::Warning);
    assert_eq!(a.trust_vector.hardware.value(), 32);
    assert!(
        a.policy_id
            .as_deref()
            .is_some_and(|p| p.starts_with("policy:sha256:")),
        "{:?}",
        a.policy_id
    );
    // Another key: refused by 0.5.0 too.
    let other = tempfile::tempdir().unwrap();
    let v2 = verifier(&policy_file, other.path(), Some("veraison"));
    assert!(
        ear_legacy::Ear::from_jwt_jwk(&token, ear_legacy::Algorithm::ES256, &jwk(&v2)).is_err()
    );
    drop(v2);
    // And 0.5.0 refuses the IETF form (it finds no `ear.verifier-id`).
    let state = tempfile::tempdir().unwrap();
    let vi = verifier(&policy_file, state.path(), Some("ietf"));
    let (ietf_token, _) = attest(&vi, &p);
    assert!(
        ear_legacy::Ear::from_jwt_jwk(&ietf_token, ear_legacy::Algorithm::ES256, &jwk(&vi))
            .is_err()
    );
    drop(vi);

    // A rejected platform is contraindicated in the IETF form too (exit 1), and ear 0.6
    // reads that verdict.
    let q = SimPlatform::start(&[]);
    let state = tempfile::tempdir().unwrap();
    let v = verifier(&policy_file, state.path(), Some("ietf"));
    let (token, code) = attest(&v, &q);
    assert_eq!(code, Some(1), "{}", v.log());
    let ear = ear::Ear::from_jwt_jwk(&token, ear::Algorithm::ES256, &jwk(&v)).unwrap();
    let a = &ear.submods["app"];
    assert_eq!(a.status, ear::TrustTier::Contraindicated);
    assert_eq!(a.trust_vector.instance_identity.value(), 97);
}

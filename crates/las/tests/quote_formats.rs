#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic
//! `las verify` (the real binary) during a rolling upgrade: a quote in format 1 (from a LAS
//! not yet upgraded) gives the same verdict and the same `--json` as the same claims in
//! format 2; a quote in a format it does not read is rejected with
//! `unsupported-quote-format` (exit 1), never read as another format.

use las_core::PlatformIdentity;
use las_core::crypto::Key128;
use las_testkit::vectors::{QUOTE_IAT, QUOTE_SEAL_KEY, QUOTE_V1, QUOTE_V2, quote_with_version};
use las_testkit::{las, stderr, stdout};

#[test]
fn las_verify_reads_format_1_and_2_alike_and_refuses_others() {
    let work = tempfile::tempdir().unwrap();
    let id = PlatformIdentity::from_seal_key(&Key128::from_bytes(QUOTE_SEAL_KEY));
    let pol = work.path().join("policy.yaml");
    std::fs::write(
        &pol,
        format!(
            "security:\n  attestation:\n    tolerate: [simulation]\n    trusted_scone_qe_pubkeys: [\"{}\"]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{}\"]\n",
            id.platform_id(),
            "02".repeat(32)
        ),
    )
    .unwrap();
    let now = (QUOTE_IAT + 1).to_string();
    let rd = "09".repeat(64);
    let verify = |name: &str, quote: &[u8]| {
        let f = work.path().join(name);
        std::fs::write(&f, quote).unwrap();
        las(&[
            "verify",
            "--policy",
            pol.to_str().unwrap(),
            "--quote",
            f.to_str().unwrap(),
            "--now",
            &now,
            "--expect-report-data",
            &rd,
            "--json",
        ])
    };
    let json = |o: &std::process::Output| -> serde_json::Value {
        serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
    };

    let (o2, o1) = (verify("v2.cose", QUOTE_V2), verify("v1.cose", QUOTE_V1));
    assert_eq!(o2.status.code(), Some(0), "{}", stderr(&o2));
    assert_eq!(o1.status.code(), Some(0), "{}", stderr(&o1));
    let (j2, j1) = (json(&o2), json(&o1));
    assert_eq!(j2["accepted"], true);
    assert_eq!(j2["quote"]["mrenclave"], "02".repeat(32));
    assert_eq!(j2["quote"]["mrsigner"], "03".repeat(32));
    assert_eq!(j2["quote"]["isvsvn"], 2);
    assert_eq!(j2["quote"]["report_data"], rd);
    assert_eq!(
        j1, j2,
        "format 1 and format 2 of the same claims, the same verdict"
    );

    for v in [0u8, 3] {
        let o = verify("vx.cose", &quote_with_version(QUOTE_V2, 2, v));
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let j = json(&o);
        assert_eq!(j["accepted"], false);
        assert_eq!(j["rejections"][0]["reason"], "unsupported-quote-format");
        let detail = j["rejections"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("unsupported quote format {v}")),
            "{detail}"
        );
        assert!(j["quote"].is_null());
    }
}

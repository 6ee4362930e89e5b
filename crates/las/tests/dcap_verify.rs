//! `las verify` with `sgx-dcap` LAS evidence around the REAL DCAP quote of dcap-qvl 0.7.1
//! (committed under tests/vectors/dcap, see its README), verified with its real collateral
//! at a time inside the collateral's validity. The quote is genuine but binds no LAS key:
//! `las verify` must reach the binding check and reject it there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::{Command, Output};

use las_core::crypto::Key128;
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_core::quote::encode_quote;
use las_core::{Mode, PlatformIdentity};
use las_testkit::fixtures::{quote_claims, report_body};
use las_testkit::vectors;

/// 2025-07-01T00:00:00Z, inside the sample collateral's validity.
const NOW: u64 = vectors::DCAP_SAMPLE_NOW;

fn las(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_las"))
        .args(args)
        .env_remove("LAS_PCCS_URL")
        .env_remove("LAS_DCAP_COLLATERAL")
        .output()
        .unwrap()
}

struct Case {
    dir: tempfile::TempDir,
    nonce: String,
    /// The committed sample collateral.
    collateral: String,
}

impl Case {
    fn path(&self, n: &str) -> String {
        self.dir.path().join(n).to_str().unwrap().to_owned()
    }
}

fn setup() -> Case {
    let dcap = vectors::DCAP_QUOTE.to_vec();
    let body = vectors::dcap_report_body();
    let id = PlatformIdentity::from_seal_key(&Key128::from_bytes([3; 16]));
    let nonce = [0x5a_u8; 32];
    let ev = encode_evidence(
        &id,
        &EvidenceClaims {
            kind: EvidenceKind::SgxDcap {
                quote: dcap.clone(),
            },
            mode: Mode::Hw,
            platform_id: id.platform_id(),
            nonce: nonce.to_vec(),
            las_version: "t".into(),
            las_mrenclave: body[64..96].try_into().unwrap(),
            las_mrsigner: body[128..160].try_into().unwrap(),
            las_isvprodid: u16::from_le_bytes(body[256..258].try_into().unwrap()),
            las_isvsvn: u16::from_le_bytes(body[258..260].try_into().unwrap()),
            cpusvn: body[0..16].try_into().unwrap(),
            issued_at: NOW,
            binding: binding(&id.platform_id(), &nonce),
            qe_id: None,
        },
    )
    .unwrap();
    let quote = encode_quote(
        &id,
        &quote_claims(
            &id,
            Mode::Hw,
            body[64..96].try_into().unwrap(),
            NOW,
            report_body(),
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evidence.cose"), ev).unwrap();
    std::fs::write(dir.path().join("quote.cose"), quote).unwrap();
    let policy = format!(
        "security:\n  attestation:\n    tolerate: [insecure-configuration, software-hardening-needed]\n    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n    trusted_las:\n      - mrenclave: [\"{}\"]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{}\"]\n",
        hex::encode(&body[64..96]),
        "aa".repeat(32)
    );
    std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
    Case {
        dir,
        nonce: hex::encode(nonce),
        collateral: vectors::dcap_dir()
            .join("sgx_quote_collateral.json")
            .to_str()
            .unwrap()
            .to_owned(),
    }
}

fn reasons(out: &Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect()
}

fn verify(c: &Case, extra: &[&str]) -> Output {
    let (p, q, e) = (
        c.path("policy.yaml"),
        c.path("quote.cose"),
        c.path("evidence.cose"),
    );
    let now = NOW.to_string();
    let mut args = vec![
        "verify",
        "--json",
        "--policy",
        &p,
        "--quote",
        &q,
        "--identity",
        &e,
        "--identity-nonce",
        &c.nonce,
        "--now",
        &now,
    ];
    args.extend_from_slice(extra);
    las(&args)
}

#[test]
fn collateral_file_takes_the_real_quote_to_the_binding_check() {
    let c = setup();
    let coll = c.collateral.clone();
    let out = verify(&c, &["--collateral", &coll]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(reasons(&out), ["report-data-mismatch"]);

    // Without collateral the evidence cannot be checked: its own reason.
    let out = verify(&c, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(reasons(&out), ["dcap-collateral-missing"]);

    // A collateral file that covers the platform: the PCCS is not asked (it is down).
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = verify(&c, &["--collateral", &coll, "--pccs-url", &dead]);
    assert_eq!(reasons(&out), ["report-data-mismatch"]);
}

#[test]
fn an_unreachable_pccs_is_an_error_naming_it() {
    let c = setup();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let cache = c.path("cache");
    let out = verify(&c, &["--pccs-url", &dead, "--collateral-cache", &cache]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&dead) && err.contains("00A067110000"), "{err}");

    let bad = c.path("policy.yaml"); // not collateral JSON
    let out = verify(&c, &["--collateral", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed collateral file"));
}

/// `min_tcb_eval_data_number` through `las verify` on the real quote: its collateral's TCB
/// evaluation data number is 17; a policy asking for 18 names the new reason beside the
/// binding's, one asking for 17 does not.
#[test]
fn min_tcb_eval_data_number_on_the_real_quote() {
    let c = setup();
    let coll = c.collateral.clone();
    let p = c.path("policy.yaml");
    let base = std::fs::read_to_string(&p).unwrap();
    for (min, want) in [
        (17, &["report-data-mismatch"][..]),
        (
            18,
            &["tcb-eval-data-number-too-low", "report-data-mismatch"][..],
        ),
    ] {
        let with = base.replace(
            "    trusted_las:",
            &format!("    min_tcb_eval_data_number: {min}\n    trusted_las:"),
        );
        assert_ne!(with, base);
        std::fs::write(&p, with).unwrap();
        let out = verify(&c, &["--collateral", &coll]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(reasons(&out), want, "min {min}");
    }
}

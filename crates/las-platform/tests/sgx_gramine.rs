//! Gated hardware test: a real LAS under Gramine-SGX attests a real application enclave and
//! a verifier accepts the quote. It runs INSIDE an application enclave built from
//! gramine/app-test.manifest.template; `gramine/hw-test.sh` builds both enclaves, starts the
//! LAS, writes the policy and runs this (see docs/hardware.md). Not runnable elsewhere.
#![cfg(feature = "sgx")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use las_core::sgx::TargetInfo;
use las_platform::hw::AttestationFs;
use las_verifier::dcap::pccs::PccsClient;
use las_verifier::dcap::{CollateralSet, collateral_key};
use las_verifier::{LasEvidence, Policy, VerifyOptions, VerifyRequest, verify_quote_with};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run gramine/hw-test.sh"))
}

/// One HTTP/1.1 exchange with the LAS (Connection: close, Content-Length bodies).
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/octet-stream\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

#[test]
#[ignore = "needs SGX and Gramine"]
fn real_las_attests_a_real_application_enclave() {
    let addr = env("LAS_TEST_ADDR");
    let policy = Policy::from_yaml(&std::fs::read(env("LAS_TEST_POLICY")).unwrap()).unwrap();
    let out = std::path::PathBuf::from(env("LAS_TEST_OUT"));
    let fs = AttestationFs::default();
    assert_eq!(
        fs.attestation_type().as_deref(),
        Some("dcap"),
        "not inside Gramine-SGX"
    );

    // The application enclave's REPORT for the LAS, made by the CPU (EREPORT via Gramine).
    let (status, ti) = http(&addr, "GET", "/v1/target-info", b"");
    assert_eq!(status, 200);
    let target = TargetInfo::try_from_slice(&ti).unwrap();
    let mut report_data = [0u8; 64];
    getrandom_fill(&mut report_data);
    let report = fs.report(&target, &report_data).unwrap();

    // The LAS checks its MAC with the REPORT key from EGETKEY and signs a quote.
    let (status, quote) = http(&addr, "POST", "/v1/quote", &report.to_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&quote));

    // A forged REPORT (one bit of the MAC flipped) is refused.
    let mut forged = report.to_bytes();
    forged[431] ^= 1;
    assert_eq!(http(&addr, "POST", "/v1/quote", &forged).0, 403);

    // The LAS's identity evidence with a fresh nonce: a DCAP quote of the LAS enclave.
    let mut nonce = [0u8; 32];
    getrandom_fill(&mut nonce);
    let (status, evidence) = http(
        &addr,
        "GET",
        &format!("/v1/identity?nonce={}", hex::encode(nonce)),
        b"",
    );
    assert_eq!(status, 200);
    let claims = las_core::evidence::decode_and_verify_evidence(&evidence).unwrap();
    let las_core::evidence::EvidenceKind::SgxDcap { quote: dcap } = &claims.kind else {
        panic!("the LAS answered {} evidence", claims.kind.as_str());
    };

    // Collateral from the PCCS, then the verifier.
    let now = las_platform::unix_now();
    let mut set = CollateralSet::new();
    set.push(
        PccsClient::new(&env("LAS_TEST_PCCS_URL"))
            .unwrap()
            .collateral_blocking(&collateral_key(dcap).unwrap(), now)
            .unwrap(),
    );
    let verdict = verify_quote_with(
        &policy,
        &quote,
        &VerifyRequest {
            service: None,
            expected_report_data: Some(&report_data),
            las_evidence: Some(LasEvidence {
                token: &evidence,
                expected_nonce: Some(&nonce),
            }),
            now,
        },
        &VerifyOptions {
            dcap_collateral: Some(&set),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    for n in &verdict.notes {
        println!("note: {n}");
    }
    assert!(verdict.accepted(), "rejected: {:?}", verdict.rejections);

    // For `las verify` from outside the enclave (hw-test.sh).
    std::fs::write(out.join("quote.cose"), &quote).unwrap();
    std::fs::write(out.join("report_data.hex"), hex::encode(report_data)).unwrap();
}

fn getrandom_fill(b: &mut [u8]) {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(b))
        .unwrap();
}

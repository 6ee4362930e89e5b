//! Writes the seed corpus: `cargo run --example gen-corpus` (from fuzz/). Every seed is made
//! with the fixed platform and identity of `las_fuzz`, so the targets see valid REPORTs,
//! quotes and evidence to mutate, next to policies and HTTP requests of every route.
//!
//! Quotes are written in the format a LAS issues (2). `corpus/quote/seed-v1-*` are format-1
//! quotes of the same claims, written by this program before format 2 (commit 55cb7d5)
//! and kept as they are so that the fuzzer also reaches the format-1 reader; nothing
//! writes format 1 any more.

use std::path::Path;

use las_core::evidence::EvidenceKind;
use las_core::quote::Mode;
use las_fuzz::HttpInput;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
}

fn main() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;

    let report = las_fuzz::valid_report(false, las_fuzz::report_data(1)).to_bytes();
    let debug_report = las_fuzz::valid_report(true, las_fuzz::report_data(2)).to_bytes();
    write("report", "report", &report);
    write("report", "report-debug", &debug_report);
    write(
        "report",
        "target-info",
        &las_fuzz::las_target_info().to_bytes(),
    );
    let kr = las_core::sgx::KeyRequest {
        keyname: las_core::sgx::KeyName::Seal as u16,
        keypolicy: las_core::sgx::key_policy::MRENCLAVE,
        isvsvn: 1,
        cpusvn: las_fuzz::CPUSVN,
        attribute_mask: las_core::sgx::Attributes { flags: 3, xfrm: 0 },
        key_id: [9; 32],
        misc_mask: 0,
        config_svn: 0,
    };
    write("report", "key-request", &kr.to_bytes());

    write("quote", "sim", &las_fuzz::quote(Mode::Sim, false));
    write("quote", "sim-debug", &las_fuzz::quote(Mode::Sim, true));
    write("quote", "hw", &las_fuzz::quote(Mode::Hw, false));

    write("evidence", "sim", &las_fuzz::evidence(EvidenceKind::Sim));
    write(
        "evidence",
        "dcap-shaped",
        &las_fuzz::evidence(EvidenceKind::SgxDcap {
            quote: vec![3; 600],
        }),
    );

    write("policy", "accepting", las_fuzz::policy_text().as_bytes());
    write(
        "policy",
        "docs-example",
        include_bytes!("../seeds/policy-docs-example.yaml"),
    );
    write(
        "policy",
        "alternatives-flow",
        b"security: {attestation: {tolerate: [simulation, debug-mode], trusted_las: [{mrsigner: \"36966a6b631b302d651cefd2d333947bd056bd5f307a1a8864a6e485e709ea22\", isvprodid: 1, isvsvn_min: 1}]}}\nservices: [{name: app, attestation: [{mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}, {signer: {mrsigner: \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\", isvsvn_min: 1, isvsvn_max: 9}}]}]\n",
    );

    // HTTP: route, method, content type, accept indices as in las_fuzz::{ROUTES, ...}.
    let h = HttpInput::encode;
    write("http", "quote-binary", &h(5, 1, 1, 0, b"", &report));
    write("http", "quote-no-type", &h(5, 1, 0, 0, b"", &debug_report));
    write("http", "quote-accept-json", &h(5, 1, 1, 1, b"", &report));
    let json = format!("{{\"report\": \"{}\"}}", b64.encode(report));
    write("http", "quote-json", &h(5, 1, 2, 0, b"", json.as_bytes()));
    let nonce = format!("nonce={}", hex::encode([0x4e; 32]));
    write("http", "identity", &h(6, 0, 0, 0, nonce.as_bytes(), b""));
    write(
        "http",
        "identity-json",
        &h(6, 0, 0, 1, nonce.as_bytes(), b""),
    );
    write("http", "target-info", &h(4, 0, 0, 0, b"", b""));
    write("http", "target-info-json", &h(4, 0, 0, 1, b"", b""));
    write("http", "platform", &h(3, 0, 0, 0, b"", b""));
    write("http", "metrics", &h(2, 0, 0, 0, b"", b""));
    write("http", "healthz", &h(0, 0, 0, 0, b"", b""));
    write("http", "not-found", &h(7, 0, 0, 0, b"/v1/nothing?x=1", b""));
    write("http", "wrong-method", &h(5, 3, 0, 0, b"", b""));
    write("http", "bad-json", &h(5, 1, 2, 0, b"", b"{\"report\": 5}"));
    println!(
        "seed corpus written under {}/corpus",
        env!("CARGO_MANIFEST_DIR")
    );
}

//! Local attestation end to end on two simulated platforms (two state folders, two LAS
//! processes on loopback = two servers): `las quote` on platform A, `las verify` against
//! policies, forged and tampered inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::path::Path;

use las_testkit::daemon::*;
use las_testkit::fixtures::app_quote_args;
use las_testkit::http::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MRSIGNER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const REPORT_DATA: &str = "0123456789abcdef";

fn quote(d: &Daemon, state_dir: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let addr = d.addr.to_string();
    let state = state_dir.to_str().unwrap();
    let mut args = vec!["quote"];
    args.extend(app_quote_args(&addr, state, REPORT_DATA, MRENCLAVE));
    args.extend_from_slice(&["-o", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    las(&args)
}

fn policy(dir: &Path, name: &str, tolerate: &str, platforms: &[&str]) -> std::path::PathBuf {
    let p = dir.join(name);
    let plats = platforms
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &p,
        format!(
            "version: \"0.3\"\nname: demo\nsecurity:\n  attestation:\n    tolerate: [{tolerate}]\nservices:\n  - name: app\n    image_name: example/app\n    command: ./app\n    attestation:\n      mrenclave: [\"{MRENCLAVE}\"]\n      signer: {{mrsigner: \"{MRSIGNER}\", isvprodid: 3, isvsvn_min: 5}}\n    platforms: [{plats}]\n"
        ),
    )
    .unwrap();
    p
}

fn verify(policy: &Path, quote: &Path, las_addr: &str, extra: &[&str]) -> std::process::Output {
    let mut args = extra.to_vec();
    if !extra.contains(&"--expect-report-data") {
        args.extend_from_slice(&["--expect-report-data", REPORT_DATA]);
    }
    las_verify(policy, quote, las_addr, &args)
}

#[test]
fn two_platforms_policies_forgery_debug_and_tampering() {
    let a = SimPlatform::start(&[]);
    let b = SimPlatform::start(&[]);
    assert_ne!(a.id, b.id);
    let work = tempfile::tempdir().unwrap();
    let q = work.path().join("quote.cose");
    let out = quote(&a.las, a.dir.path(), &q, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let a_addr = a.las.addr.to_string();

    // A policy listing only A's ID accepts; the lower-case spelling works too.
    let only_a = policy(work.path(), "a.yaml", "simulation", &[&a.id.to_lowercase()]);
    let v = verify(&only_a, &q, &a_addr, &[]);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    assert!(stdout(&v).starts_with("ACCEPTED"), "{}", stdout(&v));
    assert!(
        stdout(&v).contains("simulation tolerated"),
        "{}",
        stdout(&v)
    );

    // Only B's ID: rejected with platform-not-allowed.
    let only_b = policy(work.path(), "b.yaml", "simulation", &[&b.id]);
    let v = verify(&only_b, &q, &a_addr, &["--json"]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    let j: serde_json::Value = serde_json::from_str(&stdout(&v)).unwrap();
    assert_eq!(j["accepted"], false);
    assert_eq!(j["rejections"][0]["reason"], "platform-not-allowed");

    // Simulation not tolerated: rejected.
    let strict = policy(work.path(), "strict.yaml", "", &[&a.id]);
    let v = verify(&strict, &q, &a_addr, &[]);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        stdout(&v).contains("simulation-not-tolerated"),
        "{}",
        stdout(&v)
    );

    // Wrong expected report data.
    let v = verify(&only_a, &q, &a_addr, &["--expect-report-data", "ff"]);
    assert_eq!(v.status.code(), Some(1));
    assert!(stdout(&v).contains("report-data-mismatch"));

    // Identity evidence from LAS B does not vouch for A's key.
    let v = verify(&only_a, &q, &b.las.addr.to_string(), &[]);
    assert_eq!(v.status.code(), Some(1));
    assert!(stdout(&v).contains("untrusted-las"), "{}", stdout(&v));

    // A report forged with platform B's secret, sent to LAS A: invalid-report-mac.
    let forged = work.path().join("forged.cose");
    let out = quote(&a.las, b.dir.path(), &forged, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid-report-mac"),
        "{}",
        stderr(&out)
    );
    assert!(!forged.exists());

    // A debug enclave: rejected unless debug-mode is tolerated.
    let dq = work.path().join("debug.cose");
    assert!(
        quote(&a.las, a.dir.path(), &dq, &["--debug"])
            .status
            .success()
    );
    let v = verify(&only_a, &dq, &a_addr, &[]);
    assert_eq!(v.status.code(), Some(1));
    assert!(stdout(&v).contains("debug-enclave"), "{}", stdout(&v));
    let tol = policy(work.path(), "dbg.yaml", "simulation, debug-mode", &[&a.id]);
    assert_eq!(verify(&tol, &dq, &a_addr, &[]).status.code(), Some(0));

    // Any flipped byte is rejected: every byte through the library, a sample via the CLI.
    let good = std::fs::read(&q).unwrap();
    let pol = las_verifier::Policy::from_yaml(&std::fs::read(&only_a).unwrap()).unwrap();
    let pinned = format!(
        "security:\n  attestation:\n    tolerate: [simulation]\n    trusted_scone_qe_pubkeys: [\"{}\"]\n{}",
        a.id,
        std::fs::read_to_string(&only_a)
            .unwrap()
            .split_once("services:")
            .map(|(_, s)| format!("services:{s}"))
            .unwrap()
    );
    let pinned = las_verifier::Policy::from_yaml(pinned.as_bytes()).unwrap();
    fn req() -> las_verifier::VerifyRequest<'static> {
        las_verifier::VerifyRequest {
            service: Some("app"),
            expected_report_data: None,
            las_evidence: None,
            now: las_platform::unix_now(),
        }
    }
    assert!(
        las_verifier::verify_quote_with(&pinned, &good, &req(), &Default::default())
            .unwrap()
            .accepted()
    );
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let v =
            las_verifier::verify_quote_with(&pinned, &bad, &req(), &Default::default()).unwrap();
        assert!(!v.accepted(), "flip at byte {i} accepted");
    }
    for i in (0..good.len()).step_by(97) {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        let f = work.path().join("flipped.cose");
        std::fs::write(&f, &bad).unwrap();
        let v = verify(&only_a, &f, &a_addr, &[]);
        assert_eq!(v.status.code(), Some(1), "flip at byte {i}: {}", stdout(&v));
    }
    let _ = pol;
}

#[test]
fn quote_endpoint_rejects_bad_reports_with_stable_kinds() {
    let a = SimPlatform::start(&[]);
    let addr = a.las.addr;
    let r = http(
        addr,
        "POST",
        "/v1/quote",
        &[("Content-Type", "application/octet-stream")],
        &[0u8; 431],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid-report-length");

    let r = http(
        addr,
        "POST",
        "/v1/quote",
        &[("Content-Type", "application/octet-stream")],
        &[0u8; 432],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "invalid-report-mac");

    let r = http(
        addr,
        "POST",
        "/v1/quote",
        &[("Content-Type", "text/plain")],
        &[0u8; 432],
    );
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["error"], "unsupported-media-type");

    let r = http(
        addr,
        "POST",
        "/v1/quote",
        &[("Content-Type", "application/json")],
        b"{\"report\": 5}",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad-request");

    let r = http(addr, "POST", "/v1/quote", &[], &vec![0u8; 20_000]);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "body-too-large");

    let t = get(addr, "/v1/target-info");
    assert_eq!(t.status, 200);
    assert_eq!(t.body.len(), 512);
    let tj = http(
        addr,
        "GET",
        "/v1/target-info",
        &[("Accept", "application/json")],
        b"",
    )
    .json();
    assert_eq!(
        tj["mrenclave"],
        get(addr, "/v1/platform").json()["las_mrenclave"]
    );

    for bad in [
        "/v1/identity",
        "/v1/identity?nonce=zz",
        "/v1/identity?nonce=00",
    ] {
        let r = get(addr, bad);
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["error"], "invalid-parameter");
    }
    let ev = http(
        addr,
        "GET",
        "/v1/identity?nonce=00112233445566778899aabbccddeeff",
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(ev.status, 200);
    assert_eq!(ev.json()["mode"], "sim");

    // A valid report in the JSON form gets a JSON answer.
    let work = tempfile::tempdir().unwrap();
    let q = work.path().join("q");
    assert!(quote(&a.las, a.dir.path(), &q, &[]).status.success());
    let m = String::from_utf8(get(addr, "/metrics").body).unwrap();
    assert!(m.contains("las_quotes_issued_total 1"), "{m}");
    assert!(
        m.contains("las_quotes_refused_total{reason=\"invalid-report-mac\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("las_quotes_refused_total{reason=\"invalid-report-length\"} 1"),
        "{m}"
    );
}

#[test]
fn quote_without_a_platform_secret_says_what_to_do() {
    let a = SimPlatform::start(&[]);
    let empty = tempfile::tempdir().unwrap();
    let out = quote(&a.las, empty.path(), &empty.path().join("q"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no platform secret"),
        "{}",
        stderr(&out)
    );
    let out = las(&["quote", "--las", "host:notaport", "--report-data", "00"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid LAS address"),
        "{}",
        stderr(&out)
    );
}

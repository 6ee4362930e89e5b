//! Issue 23, "the service connects wherever a client says": the verification service's
//! identity evidence comes from the client (posted with the quote), the service connects
//! to no LAS unless `--fetch-evidence-from` allows the resolved address, a fetched answer
//! is never echoed, and only evidence that matched the quote's key is cached, in a cache
//! bounded by bytes. Real `las verifier serve` and `las serve` processes on loopback; the
//! "fake LAS" is a loopback server minting a new platform key for every request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use base64::Engine;
use las_core::crypto::Key128;
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_core::{Mode, PlatformIdentity};
use las_testkit::fakes::{Answer, Server};
use las_testkit::verifier::{
    app_quote, attest_body, identity_evidence, las_attest, nonce, post_json, verifier_command,
};
use las_testkit::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const APP_DATA: &str = "0123456789abcdef";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Policy: service `app`, simulation tolerated, the enclave of `app_quote_args`, the
/// given platforms.
fn policy(dir: &Path, platforms: &[&str]) -> std::path::PathBuf {
    let plats = platforms
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "version: \"0.3\"\nname: demo\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{MRENCLAVE}\"]\n    platforms: [{plats}]\n"
    );
    let p = dir.join("policy.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn verifier(policy: &Path, state: &Path, extra: &[&str]) -> Daemon {
    Daemon::start_command(verifier_command(policy, state, extra))
}

/// A quote (base64) from platform `p` binding SHA-512(nonce ‖ APP_DATA).
fn bound_quote(p: &SimPlatform, nonce: &[u8]) -> String {
    app_quote(
        p,
        &las_verifier_service::bound_report_data(nonce, &hex::decode(APP_DATA).unwrap()),
    )
}

/// Valid simulated identity evidence for `nonce`, signed by a platform key never seen
/// before (what a fake LAS minting a key per request answers).
fn fresh_key_evidence(nonce: &[u8]) -> Vec<u8> {
    static SEED: AtomicU8 = AtomicU8::new(1);
    let mut seed = [0x5a; 16];
    seed[0] = SEED.fetch_add(1, Ordering::SeqCst);
    seed[1] = std::process::id() as u8;
    let id = PlatformIdentity::from_seal_key(&Key128::from_bytes(seed));
    encode_evidence(
        &id,
        &EvidenceClaims {
            kind: EvidenceKind::Sim,
            mode: Mode::Sim,
            platform_id: id.platform_id(),
            nonce: nonce.to_vec(),
            las_version: "fake".into(),
            las_mrenclave: [5; 32],
            las_mrsigner: [6; 32],
            las_isvprodid: 1,
            las_isvsvn: 1,
            cpusvn: [1; 16],
            issued_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            binding: binding(&id.platform_id(), nonce),
            qe_id: None,
        },
    )
    .unwrap()
}

/// The identity evidence a request carries, made for the request's nonce.
#[derive(Clone, Copy, Debug)]
enum Evidence {
    /// None: the service must know the LAS from its cache, or fetch it.
    Absent,
    /// The platform's own LAS's (what `las attest` posts).
    Genuine,
    /// Valid evidence signed by a key never seen before ([`fresh_key_evidence`]).
    FreshKey,
}

/// `POST /v1/attest` to the service at `v`: a fresh nonce, a quote of `p` bound to it,
/// `evidence` for that nonce, and `las` named when given.
fn attest_raw(v: SocketAddr, p: &SimPlatform, evidence: Evidence, las: Option<&str>) -> Resp {
    let (n, nb) = nonce(v);
    let q = bound_quote(p, &nb);
    let ev = match evidence {
        Evidence::Absent => None,
        Evidence::Genuine => Some(identity_evidence(p.las.addr, &nb)),
        Evidence::FreshKey => Some(fresh_key_evidence(&nb)),
    };
    let mut body = attest_body(&n, &q, APP_DATA, ev.as_deref());
    if let Some(l) = las {
        body["las"] = l.into();
    }
    post_json(v, "/v1/attest", &body)
}

/// The answer's text, for assertion messages.
fn text(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn metrics(v: SocketAddr) -> String {
    String::from_utf8(get(v, "/metrics").body).unwrap()
}

/// The value of a metric line `name value`; a metric that is not exported fails the test.
fn metric(v: SocketAddr, name: &str) -> u64 {
    let text = metrics(v);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// The claims of the EAR in an attestation answer (its signature is checked elsewhere).
fn ear_claims(r: &Resp) -> serde_json::Value {
    let ear = r.json()["ear"].as_str().unwrap().to_string();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(ear.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn reasons(r: &Resp) -> Vec<String> {
    ear_claims(r)["submods"]["app"]["las.reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect()
}

/// A loopback listener that records every request and answers 500.
fn trap() -> Server {
    Server::start(|_| Answer::json(500, serde_json::json!({"error": "trap"})))
}

#[test]
fn by_default_the_service_connects_nowhere_and_caches_only_evidence_of_the_quotes_key() {
    let a = SimPlatform::start(&[]);
    let b = SimPlatform::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let pol = policy(cfg.path(), &[&a.id, &b.id]);
    let state = tempfile::tempdir().unwrap();
    let v = verifier(&pol, state.path(), &[]);
    let t = trap();
    let port = t.addr.port();

    // A LAS named in the request, in any spelling: refused with a named error, and the
    // listener there sees no connection.
    for las_addr in [
        t.addr.to_string(),
        format!("127.1:{port}"),
        format!("2130706433:{port}"),
        format!("localhost:{port}"),
    ] {
        let r = attest_raw(v.addr, &a, Evidence::Genuine, Some(&las_addr));
        assert_eq!(r.status, 400, "{las_addr}: {}", text(&r));
        assert_eq!(r.json()["error"], "evidence-fetch-disabled", "{las_addr}");
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .contains("--fetch-evidence-from"),
            "{las_addr}: {}",
            text(&r)
        );
    }

    // A client posting evidence minted by a new key for every request, with A's genuine
    // quote: each is refused (the evidence is not for the quote's key) and none is cached.
    const N: u64 = 12;
    for i in 0..N {
        let r = attest_raw(v.addr, &a, Evidence::FreshKey, None);
        assert_eq!(r.status, 200, "request {i}: {}", text(&r));
        assert_eq!(r.json()["status"], "contraindicated", "request {i}");
        assert_eq!(reasons(&r), ["untrusted-las"], "request {i}");
    }
    assert_eq!(
        metric(v.addr, "las_verifier_evidence_total{kind=\"rejected\"}"),
        N
    );
    assert_eq!(metric(v.addr, "las_verifier_evidence_cache_entries"), 0);
    assert_eq!(metric(v.addr, "las_verifier_evidence_cache_bytes"), 0);

    // `las attest` fetches its LAS's evidence itself and posts it: accepted, cached.
    let o = las_attest(&format!("http://{}", v.addr), &a, APP_DATA, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(metric(v.addr, "las_verifier_evidence_cache_entries"), 1);
    let one_entry = metric(v.addr, "las_verifier_evidence_cache_bytes");
    assert!(one_entry > 0);
    // No evidence posted: the cache answers for A; B, not cached, is untrusted-las.
    for (name, p, status, why) in [
        ("A, cached", &a, "warning", &[][..]),
        (
            "B, not cached",
            &b,
            "contraindicated",
            &["untrusted-las"][..],
        ),
    ] {
        let r = attest_raw(v.addr, p, Evidence::Absent, None);
        assert_eq!(r.json()["status"], status, "{name}: {}", text(&r));
        assert_eq!(reasons(&r), why, "{name}");
    }
    assert_eq!(
        metric(v.addr, "las_verifier_evidence_total{kind=\"cache-hit\"}"),
        1
    );

    // The cache is bounded by bytes: room for one entry. A is cached; B's genuine
    // evidence verifies but does not fit, and does not push A out.
    let state2 = tempfile::tempdir().unwrap();
    let small = one_entry.to_string();
    let v2 = verifier(&pol, state2.path(), &["--evidence-cache-bytes", &small]);
    for (name, p) in [("A", &a), ("B", &b), ("A again", &a)] {
        let r = attest_raw(v2.addr, p, Evidence::Genuine, None);
        assert_eq!(r.json()["status"], "warning", "{name}: {}", text(&r));
    }
    for (name, want) in [
        ("las_verifier_evidence_total{kind=\"cached\"}", 1),
        ("las_verifier_evidence_total{kind=\"not-cached\"}", 1),
        ("las_verifier_evidence_total{kind=\"cache-hit\"}", 1),
        ("las_verifier_evidence_cache_entries", 1),
        ("las_verifier_evidence_cache_bytes", one_entry),
    ] {
        assert_eq!(metric(v2.addr, name), want, "{name}");
    }

    assert!(t.seen().is_empty(), "the service connected: {:?}", t.seen());
    assert!(!metrics(v.addr).contains("las_verifier_evidence_fetches_total{"));
}

#[test]
fn fetching_from_a_named_las_needs_an_allowed_network_and_never_echoes_its_answer() {
    let a = SimPlatform::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let pol = policy(cfg.path(), &[&a.id]);
    let t = trap();
    let port = t.addr.port();

    // Allowed: 10.0.0.0/8 and 192.168.0.0/16 only. Every spelling of loopback is refused
    // before any connection.
    let state = tempfile::tempdir().unwrap();
    let v = verifier(
        &pol,
        state.path(),
        &["--fetch-evidence-from", "10.0.0.0/8,192.168.0.0/16"],
    );
    for las_addr in [
        t.addr.to_string(),
        format!("127.1:{port}"),
        format!("2130706433:{port}"),
        format!("0x7f000001:{port}"),
        format!("localhost:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = attest_raw(v.addr, &a, Evidence::Absent, Some(&las_addr));
        assert_eq!(r.status, 403, "{las_addr}: {}", text(&r));
        assert_eq!(r.json()["error"], "las-not-allowed", "{las_addr}");
    }
    assert!(t.seen().is_empty(), "the service connected: {:?}", t.seen());
    drop(v);

    // Loopback allowed (127.0.0.0/8).
    let state = tempfile::tempdir().unwrap();
    let v = verifier(
        &pol,
        state.path(),
        &["--fetch-evidence-from", "127.0.0.0/8"],
    );
    // A LAS answering an error body: the client learns the status only.
    let canary = Server::start(|_| Answer {
        status: 500,
        content_type: "text/plain".into(),
        body: b"SECRET-CANARY internal page".to_vec(),
    });
    let r = attest_raw(v.addr, &a, Evidence::Absent, Some(&canary.addr.to_string()));
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "las-unreachable");
    assert!(!text(&r).contains("SECRET-CANARY"), "{}", text(&r));
    assert!(text(&r).contains("HTTP 500"), "{}", text(&r));
    assert_eq!(canary.seen().len(), 1);

    // A fake LAS minting a new key per request, named with A's genuine quotes: refused,
    // nothing cached.
    let fake = Server::start(|req| {
        let nonce = hex::decode(req.query("nonce").unwrap()).unwrap();
        Answer {
            status: 200,
            content_type: "application/cose".into(),
            body: fresh_key_evidence(&nonce),
        }
    });
    for i in 0..8 {
        let r = attest_raw(v.addr, &a, Evidence::Absent, Some(&fake.addr.to_string()));
        assert_eq!(r.status, 200, "request {i}: {}", text(&r));
        assert_eq!(r.json()["status"], "contraindicated", "request {i}");
        assert_eq!(reasons(&r), ["untrusted-las"], "request {i}");
    }
    assert_eq!(fake.seen().len(), 8);
    assert_eq!(metric(v.addr, "las_verifier_evidence_cache_entries"), 0);
    // The genuine LAS, named: fetched, accepted, cached under A's key.
    let r = attest_raw(v.addr, &a, Evidence::Absent, Some(&a.las.addr.to_string()));
    assert_eq!(r.json()["status"], "warning", "{}", text(&r));
    assert_eq!(metric(v.addr, "las_verifier_evidence_cache_entries"), 1);
    assert_eq!(
        metric(v.addr, "las_verifier_evidence_fetches_total{kind=\"ok\"}"),
        9
    );
}

/// Issue 23, "a pinned key's quote decides its own mode": with the LAS key pinned and
/// nothing tolerated, a quote claiming `mode: hw` was `affirming` with hardware tier 2.
/// The pinned key proves who signed, not the hardware: `warning`, hardware 32, and the
/// note names why.
#[test]
fn a_pinned_keys_hw_claim_is_at_most_warning() {
    use las_core::quote::{QuoteClaims, encode_quote};
    use las_core::sgx::ReportBody;
    let id = PlatformIdentity::from_seal_key(&Key128::from_bytes([0x33; 16]));
    let cfg = tempfile::tempdir().unwrap();
    let pol = cfg.path().join("policy.yaml");
    std::fs::write(
        &pol,
        format!(
            "version: \"0.3\"\nname: demo\nsecurity:\n  attestation:\n    trusted_scone_qe_pubkeys: [\"{}\"]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{MRENCLAVE}\"]\n",
            id.platform_id()
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let v = verifier(&pol, state.path(), &[]);
    let (n, nb) = nonce(v.addr);
    let quote = encode_quote(
        &id,
        &QuoteClaims {
            mode: Mode::Hw,
            platform_id: id.platform_id(),
            las_version: "t".into(),
            las_mrenclave: [5; 32],
            issued_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            report_body: ReportBody {
                isvprodid: 3,
                isvsvn: 5,
                report_data: las_verifier_service::bound_report_data(
                    &nb,
                    &hex::decode(APP_DATA).unwrap(),
                ),
                ..fixtures::report_body()
            },
        },
    )
    .unwrap();
    let r = post_json(
        v.addr,
        "/v1/attest",
        &attest_body(&n, &B64.encode(quote), APP_DATA, None),
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    let claims = ear_claims(&r);
    let s = &claims["submods"]["app"];
    assert_eq!(s["ear_status"], "warning", "{s}");
    assert_eq!(s["ear_trustworthiness_vector"]["hardware"], 32, "{s}");
    assert_eq!(s["las.facts"]["las_trust"], "pinned");
    assert!(
        s["las.notes"][0]
            .as_str()
            .unwrap()
            .starts_with("pinned-key-hardware-unverified"),
        "{s}"
    );
}

/// Issue 27: verified identity evidence is kept with its exact bytes and claims; a later
/// attestation from the same platform (`las attest`, which posts new evidence for its own
/// nonce every time) is answered from the cache without decoding the evidence or checking
/// its signature again. (That the verifier still checks the age and nonce of kept evidence
/// on every use: las-verifier's
/// `kept_evidence_is_not_decoded_again_but_its_age_is_still_checked`.)
#[test]
fn a_second_attestation_does_not_check_the_evidence_signature_again() {
    let a = SimPlatform::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let pol = policy(cfg.path(), &[&a.id]);
    let state = tempfile::tempdir().unwrap();
    let v = verifier(&pol, state.path(), &[]);
    let url = format!("http://{}", v.addr);
    let attest = || {
        let o = las_attest(&url, &a, APP_DATA, &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    let checked = "las_verifier_evidence_signatures_checked_total";
    assert_eq!(metric(v.addr, checked), 0);
    attest();
    assert_eq!(metric(v.addr, checked), 1);
    assert_eq!(
        metric(v.addr, "las_verifier_evidence_total{kind=\"cached\"}"),
        1
    );
    for hits in 1..=3 {
        attest();
        assert_eq!(
            metric(v.addr, "las_verifier_evidence_total{kind=\"cache-hit\"}"),
            hits
        );
        assert_eq!(metric(v.addr, checked), 1, "checked again on reuse {hits}");
    }
    // Evidence that does not verify is counted as checked, and never kept.
    let (n, nb) = nonce(v.addr);
    let q = bound_quote(&a, &nb);
    let mut forged = identity_evidence(a.las.addr, &nb);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let b = SimPlatform::start(&[]);
    let pol2 = policy(cfg.path(), &[&a.id, &b.id]);
    let state2 = tempfile::tempdir().unwrap();
    let v2 = verifier(&pol2, state2.path(), &[]);
    let (n2, nb2) = nonce(v2.addr);
    let q2 = bound_quote(&a, &nb2);
    let mut forged2 = identity_evidence(a.las.addr, &nb2);
    forged2[last] ^= 1;
    let r = post_json(
        v2.addr,
        "/v1/attest",
        &attest_body(&n2, &q2, APP_DATA, Some(&forged2)),
    );
    assert_eq!(r.json()["status"], "contraindicated", "{:?}", r.json());
    assert_eq!(reasons(&r), ["untrusted-las"]);
    assert_eq!(metric(v2.addr, checked), 1);
    assert_eq!(metric(v2.addr, "las_verifier_evidence_cache_entries"), 0);
    // On the first service, A's entry answers (the forged bytes are not looked at).
    let r = post_json(
        v.addr,
        "/v1/attest",
        &attest_body(&n, &q, APP_DATA, Some(&forged)),
    );
    assert_eq!(r.json()["status"], "warning", "{:?}", r.json());
    assert_eq!(metric(v.addr, checked), 1);
}

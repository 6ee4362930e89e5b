//! The verification service end to end: real LAS processes (simulated platforms) and real
//! `las verifier serve` processes on loopback; `las attest` as the enclave side, `las
//! verify --ear` as the relying party, raw HTTP for replays and forged nonces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use las_testkit::verifier::{
    self, app_quote, identity_evidence, las_attest, nonce, post_json, verifier_command,
};
use las_testkit::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MRSIGNER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const APP_DATA: &str = "0123456789abcdef";

/// A running `las verifier serve` (the one launcher, `Daemon`, with another command).
struct Verifier {
    d: Daemon,
    addr: SocketAddr,
}

impl Verifier {
    fn start(policy: &Path, state: &Path) -> Verifier {
        let d = Daemon::start_command(verifier_command(policy, state, &[]));
        Verifier { addr: d.addr, d }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn policy_text(platforms: &[&str]) -> String {
    let plats = platforms
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "version: \"0.3\"\nname: demo\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    image_name: example/app\n    command: ./app\n    attestation:\n      mrenclave: [\"{MRENCLAVE}\"]\n      signer: {{mrsigner: \"{MRSIGNER}\", isvprodid: 3, isvsvn_min: 5}}\n    platforms: [{plats}]\n"
    )
}

/// The ConfigMap layout Kubernetes mounts: `policy.yaml -> ..data/policy.yaml`,
/// `..data -> ..<version>`; an update writes a new version folder and swaps `..data`
/// atomically (rename of a new symlink).
struct ConfigMapDir {
    dir: PathBuf,
    version: u32,
}

impl ConfigMapDir {
    fn new(dir: &Path, text: &str) -> ConfigMapDir {
        let mut c = ConfigMapDir {
            dir: dir.to_path_buf(),
            version: 0,
        };
        std::os::unix::fs::symlink("..data/policy.yaml", dir.join("policy.yaml")).unwrap();
        c.update(text);
        c
    }
    fn path(&self) -> PathBuf {
        self.dir.join("policy.yaml")
    }
    fn update(&mut self, text: &str) {
        self.version += 1;
        let v = format!("..v{}", self.version);
        std::fs::create_dir(self.dir.join(&v)).unwrap();
        std::fs::write(self.dir.join(&v).join("policy.yaml"), text).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&v, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }
}

fn attest(v: &Verifier, p: &SimPlatform) -> std::process::Output {
    las_attest(&v.url(), p, APP_DATA, &[])
}

/// `las verify --ear` against the service's JWKS URL; the claims.
fn check_ear(v: &Verifier, token: &str) -> serde_json::Value {
    let o = las(&["verify", "--ear", token, "--jwks", &v.url()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// A base64 quote from `p` binding SHA-512(nonce ‖ APP_DATA).
fn bound_quote(p: &SimPlatform, nonce: &[u8]) -> String {
    app_quote(
        p,
        &las_verifier_service::bound_report_data(nonce, &hex::decode(APP_DATA).unwrap()),
    )
}

/// The body `las attest` posts: the quote and the LAS's identity evidence for the same
/// nonce (`nonce_bytes`, decoded), fetched here from `las` as the enclave's side does.
fn attest_body(nonce: &str, nonce_bytes: &[u8], quote: &str, las: SocketAddr) -> serde_json::Value {
    verifier::attest_body(
        nonce,
        quote,
        APP_DATA,
        Some(&identity_evidence(las, nonce_bytes)),
    )
}

fn submod(claims: &serde_json::Value) -> &serde_json::Value {
    &claims["submods"]["app"]
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn attests_listed_and_unlisted_platforms_refuses_replays_and_shares_nonces_across_replicas() {
    let a = SimPlatform::start(&[]);
    let b = SimPlatform::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let mut cm = ConfigMapDir::new(cfg.path(), &policy_text(&[&a.id]));
    let state1 = tempfile::tempdir().unwrap();
    let v1 = Verifier::start(&cm.path(), state1.path());

    // Listed platform, simulation tolerated: warning (never affirming in simulation).
    let o = attest(&v1, &a);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), v1.d.log());
    assert!(stderr(&o).contains("ear.status: warning"), "{}", stderr(&o));
    let claims = check_ear(&v1, stdout(&o).trim());
    assert_eq!(claims["eat_profile"], "tag:ietf.org,2026:rats/ear#04");
    assert_eq!(claims["ear_status"], "warning");
    let s = submod(&claims);
    assert_eq!(s["ear_status"], "warning");
    assert_eq!(s["ear_trustworthiness_vector"]["hardware"], 32);
    assert_eq!(s["ear_trustworthiness_vector"]["instance-identity"], 2);
    assert_eq!(s["ear_trustworthiness_vector"]["executables"], 2);
    let facts = &s["las.facts"];
    assert_eq!(facts["platform_id"], a.id.as_str());
    assert_eq!(facts["mode"], "sim");
    assert_eq!(facts["mrenclave"], MRENCLAVE);
    assert_eq!(facts["mrsigner"], MRSIGNER);
    assert_eq!(facts["isvprodid"], 3);
    assert_eq!(facts["isvsvn"], 5);
    assert_eq!(facts["app_report_data"], APP_DATA);
    assert_eq!(facts["tcb_status"], "simulation");
    // The quote bound SHA-512(nonce ‖ app data), with the nonce the EAR echoes.
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims["eat_nonce"].as_str().unwrap())
        .unwrap();
    let rd = las_verifier_service::bound_report_data(&n, &hex::decode(APP_DATA).unwrap());
    assert_eq!(facts["report_data"], hex::encode(rd));
    let policy_hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(policy_text(&[&a.id]).as_bytes()))
    };
    assert_eq!(
        s["ear_appraisal_policy_ids"],
        serde_json::json!([format!("policy:sha256:{policy_hash}")])
    );
    assert_eq!(s["las.reasons"], serde_json::json!([]));

    // Unlisted platform: contraindicated, exit 1, the reason named.
    let o = attest(&v1, &b);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let claims = check_ear(&v1, stdout(&o).trim());
    let s = submod(&claims);
    assert_eq!(s["ear_status"], "contraindicated");
    assert_eq!(s["ear_trustworthiness_vector"]["instance-identity"], 97);
    let reasons = s["las.reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r["reason"] == "platform-not-allowed"),
        "{reasons:?}"
    );

    // A tampered EAR fails `las verify --ear` with exit 1.
    let token = stdout(&o).trim().to_string();
    let mut t = token.clone().into_bytes();
    let i = t.len() - 3;
    t[i] = if t[i] == b'A' { b'B' } else { b'A' };
    let o = las(&[
        "verify",
        "--ear",
        std::str::from_utf8(&t).unwrap(),
        "--jwks",
        &v1.url(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    // The relying party's check from files: the token and the JWKS saved by hand.
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("ear"), format!("{token}\n")).unwrap();
    std::fs::write(
        files.path().join("jwks.json"),
        get(v1.addr, "/.well-known/jwks.json").body,
    )
    .unwrap();
    let o = las(&[
        "verify",
        "--ear",
        files.path().join("ear").to_str().unwrap(),
        "--jwks",
        files.path().join("jwks.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("platform-not-allowed"));
    // Another service's key set (a valid P-256 key, d = 12345, no kid): rejected (exit 1).
    std::fs::write(
        files.path().join("other.json"),
        r#"{"keys":[{"kty":"EC","crv":"P-256","x":"Ju_OvQ7p40pmkYfhizqRIrL3M5RbZJzJ-fkh6fna2BI","y":"kCOL3pzHuzMNFQxncE3SWucFUgV0S28xv0BwdFhy0OY"}]}"#,
    )
    .unwrap();
    let o = las(&[
        "verify",
        "--ear",
        &token,
        "--jwks",
        files.path().join("other.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("signature does not verify"),
        "{}",
        stderr(&o)
    );
    // No verifier there: exit 2, an error naming it.
    let o = las(&[
        "attest",
        "--verifier",
        "http://127.0.0.1:1",
        "--service",
        "app",
        "--las",
        &a.las.addr.to_string(),
        "--state-dir",
        a.dir.path().to_str().unwrap(),
        "--report-data",
        APP_DATA,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("127.0.0.1:1"), "{}", stderr(&o));
    // A body over the limit (64 KiB): 413.
    let big = vec![b'x'; 70 * 1024];
    let r = http(
        v1.addr,
        "POST",
        "/v1/attest",
        &[("content-type", "application/json")],
        &big,
    );
    assert_eq!(r.status, 413);
    // Unknown fields and unknown services are refused with their kind.
    let r = post_json(
        v1.addr,
        "/v1/attest",
        &serde_json::json!({"service": "app", "nonce": "", "quote": "", "extra": 1}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "malformed-request");
    let (n, _) = nonce(v1.addr);
    let r = post_json(
        v1.addr,
        "/v1/attest",
        &serde_json::json!({"service": "nope", "nonce": n, "quote": ""}),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "unknown-service");

    // Replay: the same nonce and quote a second time are refused.
    let (n, nb) = nonce(v1.addr);
    let q = bound_quote(&a, &nb);
    let r = post_json(v1.addr, "/v1/attest", &attest_body(&n, &nb, &q, a.las.addr));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "warning");
    let r = post_json(v1.addr, "/v1/attest", &attest_body(&n, &nb, &q, a.las.addr));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "replayed-nonce");
    // A nonce of our own making (not MACed by the service) is refused.
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 56]);
    let r = post_json(
        v1.addr,
        "/v1/attest",
        &attest_body(&forged, &[7u8; 56], &q, a.las.addr),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad-nonce");
    // A quote bound to another nonce: contraindicated (report data mismatch).
    let (n2, nb2) = nonce(v1.addr);
    let r = post_json(
        v1.addr,
        "/v1/attest",
        &attest_body(&n2, &nb2, &q, a.las.addr),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "contraindicated");

    // A second replica with copies of the key files accepts the first one's nonces and
    // publishes the same key.
    let state2 = tempfile::tempdir().unwrap();
    for f in ["ear-signing-key.pem", "nonce-key"] {
        std::fs::copy(state1.path().join(f), state2.path().join(f)).unwrap();
    }
    let v2 = Verifier::start(&cm.path(), state2.path());
    assert_eq!(
        get(v1.addr, "/.well-known/jwks.json").json(),
        get(v2.addr, "/.well-known/jwks.json").json()
    );
    let (n, nb) = nonce(v1.addr);
    let q = bound_quote(&a, &nb);
    let r = post_json(v2.addr, "/v1/attest", &attest_body(&n, &nb, &q, a.las.addr));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "warning");
    // A replica with its own (different) nonce key refuses them.
    let state3 = tempfile::tempdir().unwrap();
    let v3 = Verifier::start(&cm.path(), state3.path());
    let (n, nb) = nonce(v1.addr);
    let q = bound_quote(&a, &nb);
    let r = post_json(v3.addr, "/v1/attest", &attest_body(&n, &nb, &q, a.las.addr));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad-nonce");

    // Metrics count results and refusals. A's evidence (posted with the quote) was
    // verified and cached once, then the cache answered for three more attestations; B's
    // evidence, outside the service's platforms, was not even looked at.
    let m = support_scrape(v1.addr);
    assert!(
        m.contains("las_verifier_attestations_total{kind=\"warning\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("las_verifier_attestations_total{kind=\"contraindicated\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("las_verifier_nonces_refused_total{kind=\"replayed-nonce\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("las_verifier_evidence_total{kind=\"cached\"} 1"),
        "{m}"
    );

    // Policy reload through the ConfigMap symlink swap: B becomes listed.
    let id0 = get(v1.addr, "/readyz").json()["policy"]["id"].clone();
    cm.update(&policy_text(&[&a.id, &b.id]));
    wait_for("the policy reload", || {
        get(v1.addr, "/readyz").json()["policy"]["id"] != id0
    });
    let o = attest(&v1, &b);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let id1 = get(v1.addr, "/readyz").json()["policy"]["id"].clone();

    // A broken edit: the old policy stays in force, /readyz, the log and a metric say so.
    cm.update("version: \"0.3\"\nname: demo\nservices: [ this is not a policy\n");
    wait_for("the reload error", || {
        !get(v1.addr, "/readyz").json()["policy"]["reload_error"].is_null()
    });
    let ready = get(v1.addr, "/readyz");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["policy"]["id"], id1);
    assert!(support_scrape(v1.addr).contains("las_verifier_policy_reload_failing 1"));
    assert!(
        v1.d.wait_log("keeping the policy in force", Duration::from_secs(10)),
        "{}",
        v1.d.log()
    );
    let o = attest(&v1, &b);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Fixed again: the error clears.
    cm.update(&policy_text(&[&a.id]));
    wait_for("the recovery", || {
        get(v1.addr, "/readyz").json()["policy"]["reload_error"].is_null()
    });
    let o = attest(&v1, &b);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    drop(v2);
    drop(v3);
}

fn support_scrape(addr: SocketAddr) -> String {
    String::from_utf8(get(addr, "/metrics").body).unwrap()
}

#[test]
fn refuses_a_group_readable_or_symlinked_key_and_keeps_an_existing_one() {
    let cfg = tempfile::tempdir().unwrap();
    let policy = cfg.path().join("policy.yaml");
    std::fs::write(
        &policy,
        policy_text(&["2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151"]),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(&policy, state.path());
    let jwks = get(v.addr, "/.well-known/jwks.json").json();
    drop(v);
    let key = state.path().join("ear-signing-key.pem");
    let v = Verifier::start(&policy, state.path());
    assert_eq!(
        get(v.addr, "/.well-known/jwks.json").json(),
        jwks,
        "key regenerated"
    );
    drop(v);

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = verifier_command(&policy, state.path(), &[])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));

    let other = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&key, other.path().join("ear-signing-key.pem")).unwrap();
    let o = verifier_command(&policy, other.path(), &[])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// The EAR's claims, read without checking its signature (`check_ear` does that).
fn ear_payload(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Many attestations at once, good and bad quotes mixed: the service checks the quote
/// signatures of waiting requests in batches, a batch with a bad signature falls back to
/// one-by-one checks, and every request gets its own answer (a bad signature never fails
/// its neighbours, a good one never passes a bad one).
#[test]
fn concurrent_good_and_bad_quotes_each_get_their_own_answer() {
    const N: usize = 36;
    let a = SimPlatform::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let policy = cfg.path().join("policy.yaml");
    std::fs::write(&policy, policy_text(&[&a.id])).unwrap();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(&policy, state.path());
    // First contact: the LAS evidence is fetched and cached.
    let (n, nb) = nonce(v.addr);
    let r = post_json(
        v.addr,
        "/v1/attest",
        &attest_body(&n, &nb, &bound_quote(&a, &nb), a.las.addr),
    );
    assert_eq!(r.json()["status"], "warning");

    let mut sent = 0;
    let mut last = String::new();
    // Batches form only when requests overlap: up to 4 rounds until both a batch and a
    // fallback were seen (one round is enough on an idle machine).
    for round in 0..4 {
        let bodies: Vec<(serde_json::Value, bool)> = (0..N)
            .map(|i| {
                let (n, nb) = nonce(v.addr);
                let mut q = base64::engine::general_purpose::STANDARD
                    .decode(bound_quote(&a, &nb))
                    .unwrap();
                let good = i % 3 != 1;
                if !good {
                    // The lowest byte of s: still canonical, the equation fails.
                    let at = q.len() - 32;
                    q[at] ^= 1;
                }
                let q = base64::engine::general_purpose::STANDARD.encode(&q);
                (attest_body(&n, &nb, &q, a.las.addr), good)
            })
            .collect();
        let go = std::sync::Arc::new(std::sync::Barrier::new(N));
        let threads: Vec<_> = bodies
            .into_iter()
            .map(|(body, good)| {
                let (go, addr) = (go.clone(), v.addr);
                std::thread::spawn(move || {
                    go.wait();
                    (post_json(addr, "/v1/attest", &body), good)
                })
            })
            .collect();
        for t in threads {
            let (r, good) = t.join().unwrap();
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let j = r.json();
            let s = submod(&ear_payload(j["ear"].as_str().unwrap())).clone();
            if good {
                assert_eq!(j["status"], "warning", "{s}");
                assert_eq!(s["las.reasons"], serde_json::json!([]));
            } else {
                assert_eq!(j["status"], "contraindicated", "{s}");
                assert_eq!(s["las.reasons"][0]["reason"], "bad-signature", "{s}");
                assert_eq!(s["ear_trustworthiness_vector"]["instance-identity"], 99);
            }
        }
        sent += N;
        last = support_scrape(v.addr);
        assert_eq!(
            metric(&last, "las_verifier_signatures_checked_total"),
            1 + sent as u64,
            "every quote signature checked once: {last}"
        );
        if metric(&last, "las_verifier_signature_batches_total") > 0
            && metric(&last, "las_verifier_signature_batch_fallbacks_total") > 0
        {
            eprintln!("batch and fallback seen in round {}", round + 1);
            break;
        }
    }
    assert!(
        metric(&last, "las_verifier_signature_batches_total") > 0,
        "no batch formed in 4 rounds of {N} concurrent requests: {last}"
    );
    assert!(
        metric(&last, "las_verifier_signature_batch_fallbacks_total") > 0,
        "no batch with a bad signature in 4 rounds: {last}"
    );
    let third = N / 3;
    assert_eq!(
        metric(
            &last,
            "las_verifier_attestations_total{kind=\"contraindicated\"}"
        ),
        (sent / N * third) as u64
    );
    // Evidence was verified and cached once, before the rounds.
    assert_eq!(
        metric(&last, "las_verifier_evidence_total{kind=\"cached\"}"),
        1
    );
}

/// `ear.status` of one attestation of `p` through the raw API (nonce, bound quote, attest).
fn probe(v: &Verifier, p: &SimPlatform) -> String {
    let (n, nb) = nonce(v.addr);
    let q = bound_quote(p, &nb);
    let r = post_json(v.addr, "/v1/attest", &attest_body(&n, &nb, &q, p.las.addr));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["status"].as_str().unwrap().to_owned()
}

/// Issue 23.5: a policy rewritten in place, with a pause mid-file, is never loaded half
/// written. Before, the part before the last line `platforms: [A]` (a valid policy that
/// lists every platform) was swapped in during the pause, and platform B, listed by
/// neither the old nor the new policy, got `warning` (accepted). Now an in-place rewrite
/// is taken only after its bytes stayed the same for --policy-settle; probing with quotes
/// throughout (3 s pause, default settle 5 s), B is refused every time and A accepted
/// every time. A policy with no
/// services is refused on reload (and at start), the old one kept.
#[test]
fn a_policy_rewritten_in_place_is_never_loaded_half_written() {
    let a = SimPlatform::start(&[]);
    let b = SimPlatform::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let policy = cfg.path().join("policy.yaml");
    let old = policy_text(&[&a.id]);
    std::fs::write(&policy, &old).unwrap();
    let state = tempfile::tempdir().unwrap();
    // The default --policy-settle (5s): longer than the writer's pause.
    let v = Verifier {
        d: Daemon::start_command(verifier_command(&policy, state.path(), &[])),
        addr: "0.0.0.0:0".parse().unwrap(),
    };
    let v = Verifier {
        addr: v.d.addr,
        ..v
    };
    let id_of = |text: &str| {
        use sha2::Digest;
        format!(
            "policy:sha256:{}",
            hex::encode(sha2::Sha256::digest(text.as_bytes()))
        )
    };
    let in_force = || {
        get(v.addr, "/readyz").json()["policy"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(in_force(), id_of(&old));
    assert_eq!(probe(&v, &b), "contraindicated");

    // The new policy: the same platforms, another name. Written in place (same inode):
    // everything up to its last line, a 3 s pause, then the last line.
    let new = old.replace("name: demo", "name: demo-2");
    let cut = new.rfind("    platforms:").unwrap();
    let (head, tail) = (new[..cut].to_owned(), new[cut..].to_owned());
    assert!(tail.starts_with("    platforms: [") && tail.ends_with("]\n"));
    let writer = {
        let policy = policy.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&policy)
                .unwrap();
            f.write_all(head.as_bytes()).unwrap();
            f.sync_all().unwrap();
            std::thread::sleep(Duration::from_secs(3));
            f.write_all(tail.as_bytes()).unwrap();
            f.sync_all().unwrap();
        })
    };
    let start = Instant::now();
    let (mut probes, mut seen_new) = (0, None);
    while start.elapsed() < Duration::from_secs(20) {
        let id = in_force();
        assert!(
            id == id_of(&old) || id == id_of(&new),
            "a policy that is neither the old nor the new one is in force: {id}\n{}",
            v.d.log()
        );
        assert_eq!(
            probe(&v, &b),
            "contraindicated",
            "B accepted after {:?}",
            start.elapsed()
        );
        assert_eq!(
            probe(&v, &a),
            "warning",
            "A refused after {:?}",
            start.elapsed()
        );
        probes += 1;
        if id == id_of(&new) {
            seen_new = Some(start.elapsed());
            break;
        }
    }
    writer.join().unwrap();
    let seen_new = seen_new.expect("the new policy was never taken");
    // Written at ~4 s, stable for 3 s, seen at the next poll and probe.
    assert!(
        seen_new >= Duration::from_secs(6),
        "taken after {seen_new:?}: before it settled"
    );
    assert!(probes >= 5, "only {probes} probes during the rewrite");
    assert!(v.d.log().contains("reloaded"), "{}", v.d.log());

    // A policy with no services, renamed into place (a new file: taken at once, if it
    // were usable): refused, the old policy kept, /readyz still ready and says why.
    let tmp = cfg.path().join("policy.yaml.new");
    std::fs::write(&tmp, "version: \"0.3\"\n").unwrap();
    std::fs::rename(&tmp, &policy).unwrap();
    wait_for("the refusal", || {
        get(v.addr, "/readyz").json()["policy"]["reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("no services"))
    });
    let r = get(v.addr, "/readyz");
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("ready"))
    );
    assert_eq!(in_force(), id_of(&new));
    assert_eq!(probe(&v, &b), "contraindicated");
    assert_eq!(probe(&v, &a), "warning");

    // At start too.
    let other = tempfile::tempdir().unwrap();
    let o = verifier_command(&policy, other.path(), &[])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no services"), "{}", stderr(&o));
}

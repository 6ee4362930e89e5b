//! Secrets never leave the state folder: a full session (serve at trace level, quotes,
//! bad inputs, identity evidence, a metrics scrape, the CLI, SIGTERM) is captured whole and
//! searched for the platform secret and the keys derived from it (the seal key, the
//! Ed25519 signing seed that signs quotes and its SHA-512 expansion, the report keys), in hex (both cases),
//! base64 (standard and URL-safe, every alignment), raw bytes, and any 8-byte piece of the
//! secret. The same session checks that simulation mode shows everywhere and that a policy
//! that does not tolerate simulation rejects it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use las_core::egetkey::{RootSecret, mrenclave_seal_key, report_key};
use las_core::sgx::Report;
use las_testkit::daemon::*;
use las_testkit::fixtures::*;
use las_testkit::http::*;

/// Everything the session printed or answered, as raw bytes.
#[derive(Default)]
struct Captured(Vec<(String, Vec<u8>)>);

impl Captured {
    fn add(&mut self, what: impl Into<String>, bytes: &[u8]) {
        self.0.push((what.into(), bytes.to_vec()));
    }
    fn add_resp(&mut self, what: &str, r: &Resp) {
        let mut all = format!("{}\n", r.status).into_bytes();
        for (k, v) in &r.headers {
            all.extend_from_slice(format!("{k}: {v}\n").as_bytes());
        }
        all.extend_from_slice(&r.body);
        self.add(what, &all);
    }
    fn add_out(&mut self, what: &str, o: &std::process::Output) {
        self.add(format!("{what} stdout"), &o.stdout);
        self.add(format!("{what} stderr"), &o.stderr);
    }
    fn total(&self) -> usize {
        self.0.iter().map(|(_, b)| b.len()).sum()
    }
}

/// The textual and binary spellings under which `secret` must not appear.
fn needles(secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut n = vec![
        ("raw".to_owned(), secret.to_vec()),
        ("hex".into(), hex::encode(secret).into_bytes()),
        ("HEX".into(), hex::encode_upper(secret).into_bytes()),
        ("base64".into(), STANDARD.encode(secret).into_bytes()),
        (
            "base64url".into(),
            URL_SAFE_NO_PAD.encode(secret).into_bytes(),
        ),
    ];
    // Inside a longer base64 text the secret starts at any of three alignments: the
    // characters that encode only secret bits.
    for a in 0..3 {
        let s = STANDARD_NO_PAD.encode(&secret[a..]);
        let core = &s[..s.len() - 4];
        n.push((format!("base64 at alignment {a}"), core.as_bytes().to_vec()));
        n.push((
            format!("base64url at alignment {a}"),
            core.replace('+', "-").replace('/', "_").into_bytes(),
        ));
    }
    // Any 8-byte piece, raw and in hex.
    for w in secret.windows(8) {
        n.push(("8-byte piece, raw".into(), w.to_vec()));
        n.push(("8-byte piece, hex".into(), hex::encode(w).into_bytes()));
        n.push((
            "8-byte piece, HEX".into(),
            hex::encode_upper(w).into_bytes(),
        ));
    }
    n
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn session(log_format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let work = tempfile::tempdir().unwrap();
    let mut cap = Captured::default();
    let d = Daemon::start(
        &state,
        &["--log-level", "trace", "--log-format", log_format],
    );
    let a = d.addr;

    // State files are owner-only.
    let secret_path = state.join("platform-secret");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&secret_path), 0o600);
    assert_eq!(mode(&state), 0o700);
    let secret: [u8; 32] = std::fs::read(&secret_path).unwrap().try_into().unwrap();

    // Reads.
    for path in ["/healthz", "/readyz", "/v1/platform", "/v1/target-info"] {
        cap.add_resp(path, &get(a, path));
    }
    let platform = get(a, "/v1/platform").json();
    assert_eq!(platform["mode"], "sim");
    assert_eq!(platform["secure"], false);
    cap.add_resp(
        "target-info json",
        &http(
            a,
            "GET",
            "/v1/target-info",
            &[("Accept", "application/json")],
            b"",
        ),
    );

    // Quotes, binary and JSON; the report keys of their KEYIDs are derived secrets too.
    let mut key_ids = Vec::new();
    for i in 0..4u8 {
        let rd = [i; 64];
        let report = valid_report(&state, a, rd);
        key_ids.push(Report::try_from_slice(&report).unwrap().key_id);
        let r = http(
            a,
            "POST",
            "/v1/quote",
            &[("Content-Type", "application/octet-stream")],
            &report,
        );
        assert_quote(&r, &rd);
        let q = las_core::quote::decode_and_verify_quote(&r.body).unwrap();
        assert_eq!(q.claims.mode, las_core::Mode::Sim, "quotes say sim");
        cap.add_resp("quote", &r);
        let body = serde_json::json!({ "report": STANDARD.encode(&report) }).to_string();
        let r = http(
            a,
            "POST",
            "/v1/quote",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["mode"], "sim");
        cap.add_resp("quote json", &r);
    }

    // Bad inputs: every error path that could echo something.
    let good = valid_report(&state, a, [9; 64]);
    key_ids.push(Report::try_from_slice(&good).unwrap().key_id);
    let mut flipped = good.clone();
    flipped[420] ^= 1; // in the MAC
    let mut reserved = good.clone();
    reserved[100] ^= 1;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>);
    let bad: Vec<Case> = vec![
        ("flipped MAC", vec![], flipped),
        ("reserved", vec![], reserved),
        ("short", vec![], good[..400].to_vec()),
        ("text", vec![("Content-Type", "text/plain")], good.clone()),
        (
            "json",
            vec![("Content-Type", "application/json")],
            b"{\"report\": 1}".to_vec(),
        ),
        (
            "base64",
            vec![("Content-Type", "application/json")],
            b"{\"report\": \"!!\"}".to_vec(),
        ),
        ("too large", vec![], vec![0u8; 20_000]),
    ];
    for (what, h, body) in &bad {
        let r = http(a, "POST", "/v1/quote", h, body);
        assert!(r.status >= 400, "{what}");
        cap.add_resp(what, &r);
    }
    for (m, p) in [
        ("GET", "/nope"),
        ("DELETE", "/v1/quote"),
        ("GET", "/v1/identity"),
        ("GET", "/v1/identity?nonce=zz"),
        ("GET", "/v1/identity?nonce=00"),
    ] {
        cap.add_resp(p, &http(a, m, p, &[], b""));
    }
    let mut raw = std::net::TcpStream::connect(a).unwrap();
    raw.write_all(b"\x16\x03\x01 garbage\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut raw, &mut got);
    cap.add("garbage answer", &got);

    // Identity evidence.
    let nonce = "00112233445566778899aabbccddeeff";
    let ev = get(a, &format!("/v1/identity?nonce={nonce}"));
    let claims = las_core::evidence::decode_and_verify_evidence(&ev.body).unwrap();
    assert_eq!(claims.mode, las_core::Mode::Sim, "evidence says sim");
    assert_eq!(claims.kind.as_str(), "sim");
    cap.add_resp("identity", &ev);
    cap.add_resp(
        "identity json",
        &http(
            a,
            "GET",
            &format!("/v1/identity?nonce={nonce}"),
            &[("Accept", "application/json")],
            b"",
        ),
    );

    // The CLI.
    let s = state.to_str().unwrap();
    let addr = a.to_string();
    cap.add_out("las id", &las(&["id", "--mode", "sim", "--state-dir", s]));
    cap.add_out(
        "las id --json",
        &las(&["id", "--mode", "sim", "--state-dir", s, "--json"]),
    );
    let qfile = work.path().join("q.cose");
    let qa = [
        "quote",
        "--las",
        &addr,
        "--state-dir",
        s,
        "--report-data",
        "00",
        "--log-level",
        "trace",
    ];
    let out = las(&qa);
    assert!(out.status.success(), "{}", stderr(&out));
    cap.add_out("las quote", &out);
    let mut qa_file = qa.to_vec();
    qa_file.extend_from_slice(&["-o", qfile.to_str().unwrap()]);
    let out = las(&qa_file);
    assert!(out.status.success());
    cap.add_out("las quote -o", &out);
    cap.add("quote file", &std::fs::read(&qfile).unwrap());
    for (name, tolerate) in [("strict", ""), ("tolerant", "simulation")] {
        let p = work.path().join(format!("{name}.yaml"));
        std::fs::write(
            &p,
            format!("security:\n  attestation:\n    tolerate: [{tolerate}]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{}\"]\n", "00".repeat(32)),
        )
        .unwrap();
        for json in [false, true] {
            let mut args = vec!["--log-level", "trace"];
            if json {
                args.push("--json");
            }
            let out = las_verify(&p, &qfile, &addr, &args);
            // Rejected either way (the MRENCLAVE is not the enclave's); the strict policy
            // also for simulation, on the quote and on the evidence path.
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            if name == "strict" {
                assert!(
                    stdout(&out).contains("simulation-not-tolerated"),
                    "{}",
                    stdout(&out)
                );
            }
            cap.add_out(&format!("las verify {name}"), &out);
        }
    }

    // Metrics, then SIGTERM.
    let m = get(a, "/metrics");
    let mtext = String::from_utf8_lossy(&m.body).to_string();
    assert!(mtext.contains("las_info{mode=\"sim\""), "metrics say sim");
    cap.add_resp("metrics", &m);
    let (status, log) = d.terminate_with_log();
    assert!(status.success());
    assert!(log.contains("SIMULATION MODE: NOT SECURE"), "logs say sim");
    cap.add("daemon log", log.as_bytes());

    // What must not appear: the secret, the seal key behind the platform identity, and
    // the report keys of every REPORT sent.
    let root = RootSecret::from_bytes(secret);
    let cpusvn: [u8; 16] = hex::decode(platform["cpusvn"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let mrenclave: [u8; 32] = hex::decode(platform["las_mrenclave"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let las_enclave = las_platform::sim::las_enclave(mrenclave);
    let mut secrets: Vec<(String, Vec<u8>)> = vec![("platform secret".into(), secret.to_vec())];
    let seal = mrenclave_seal_key(&root, &cpusvn, &las_enclave);
    secrets.push(("seal key".into(), seal.expose().to_vec()));
    // The Ed25519 signing seed, derived here independently of las-core (HKDF-SHA256 of the
    // seal key, docs/design.md), checked against the platform ID the daemon announced.
    let mut seed = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, seal.expose())
        .expand(las_core::identity::IDENTITY_LABEL, &mut seed)
        .unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    assert_eq!(
        hex::encode_upper(public),
        platform["platform_id"]
            .as_str()
            .unwrap()
            .to_ascii_uppercase(),
        "the seed derived here is the daemon's signing key"
    );
    secrets.push(("Ed25519 signing seed".into(), seed.to_vec()));
    // Its SHA-512 expansion (RFC 8032 5.1.5): the secret scalar's bytes and the nonce prefix.
    let expanded = <sha2::Sha512 as sha2::Digest>::digest(seed);
    secrets.push(("Ed25519 scalar bytes".into(), expanded[..32].to_vec()));
    secrets.push(("Ed25519 nonce prefix".into(), expanded[32..].to_vec()));
    for k in &key_ids {
        secrets.push((
            "report key".into(),
            report_key(&root, &cpusvn, &las_enclave.target_info(), k)
                .expose()
                .to_vec(),
        ));
    }
    let mut checked = 0;
    for (sname, sbytes) in &secrets {
        for (nname, needle) in needles(sbytes) {
            for (what, hay) in &cap.0 {
                assert!(
                    !contains(hay, &needle),
                    "the {sname} ({nname}) appears in {what}"
                );
                checked += 1;
            }
        }
    }
    println!(
        "secrets / {log_format} log at trace level: {} captured outputs ({} bytes) searched for {} secrets in {} spellings each ({checked} searches): none found",
        cap.0.len(),
        cap.total(),
        secrets.len(),
        needles(&secret).len()
    );
}

#[test]
fn no_secret_in_logs_metrics_answers_or_cli_output_text_log() {
    session("text");
}

#[test]
fn no_secret_in_logs_metrics_answers_or_cli_output_json_log() {
    session("json");
}

/// The search itself finds a planted secret in every spelling it claims to cover.
#[test]
fn the_search_finds_planted_secrets() {
    let mut secret = [0u8; 32];
    getrandom_fill(&mut secret);
    let found = |hay: &[u8]| needles(&secret).iter().any(|(_, n)| contains(hay, n));
    let mut blob = vec![7u8; 5];
    blob.extend_from_slice(&secret);
    blob.extend_from_slice(&[1, 2]);
    let planted: Vec<Vec<u8>> = vec![
        format!("INFO las: key {}", hex::encode(secret)).into_bytes(),
        format!("{{\"k\":\"{}\"}}", hex::encode_upper(secret)).into_bytes(),
        STANDARD.encode(&blob).into_bytes(),
        URL_SAFE_NO_PAD.encode(&blob[1..]).into_bytes(),
        STANDARD.encode(&blob[2..]).into_bytes(),
        [b"xx".as_slice(), &secret[10..20], b"yy"].concat(),
        format!("piece {}", hex::encode(&secret[3..12])).into_bytes(),
    ];
    for p in &planted {
        assert!(found(p), "missed {}", String::from_utf8_lossy(p));
    }
    assert!(!found(b"nothing secret here"));
}

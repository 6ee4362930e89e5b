//! The verification service held to the daemon's standard (issue 23): the real
//! `las verifier serve` on loopback, attacked with raw sockets.
//!
//! - Slow request bodies (23.1): headers with a large `Content-Length`, then one body byte
//!   a second or none, on a small connection cap. Before, the service read bodies with no
//!   deadline: four such clients held every slot for as long as they liked and a fifth
//!   client was refused throughout. Now las-server's serve loop gives headers and body one
//!   deadline: each attacker gets 408 `body-timeout` (JSON) and loses its connection, and
//!   a fresh client is served.
//! - Every refusal is the documented JSON error (23.7): `/v1/attest` takes
//!   `application/json` only (415 otherwise; before, any content type was parsed), and the
//!   413 (before: text), 404 and 405 (before: empty bodies) are `{"error", "message"}` with
//!   the kinds of the one list, `las_core::api::ErrorKind`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use las_testkit::raw::parse_response;
use las_testkit::verifier::verifier_command;
use las_testkit::*;

const POLICY: &str = "version: \"0.3\"\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n    platforms: [\"126C8098408FEB2002F5EB8B9E6C2AE26197E3617875633C5BD4EB4454278C34\"]\n";

/// `las verifier serve` on an ephemeral loopback port with `extra` options.
fn verifier(dir: &Path, extra: &[&str]) -> Daemon {
    let policy = dir.join("policy.yaml");
    if !policy.exists() {
        std::fs::write(&policy, POLICY).unwrap();
    }
    let cmd = verifier_command(&policy, &dir.join("state"), extra);
    Daemon::start_command(cmd)
}

/// An attacker: `POST /v1/attest` headers declaring `declared` body bytes, then
/// `trickle` bytes one a second (0: none). Returns what the service answered (all bytes
/// until it closed the connection, at most 25 s) and when the answer came.
fn slow_body(addr: SocketAddr, declared: usize, trickle: usize) -> JoinHandle<(Vec<u8>, Duration)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST /v1/attest HTTP/1.1\r\nHost: v\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).unwrap();
    let start = Instant::now();
    let mut w = s.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..trickle {
            std::thread::sleep(Duration::from_secs(1));
            if w.write_all(b" ").is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut answered = None;
        while start.elapsed() < Duration::from_secs(25) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    answered.get_or_insert(start.elapsed());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        (got, answered.unwrap_or(start.elapsed()))
    })
}

/// Whether a new connection is served `GET /healthz` (200) within 1 s.
fn served(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got.starts_with(b"HTTP/1.1 200")
}

#[test]
fn slow_bodies_are_cut_at_the_deadline_and_a_fresh_client_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let v = verifier(
        dir.path(),
        &["--max-connections", "4", "--header-timeout", "2s"],
    );
    assert!(served(v.addr), "the service does not answer at all");
    // Two bodies trickle a byte a second (of 60,000 declared), two never come.
    let t0 = Instant::now();
    let attackers: Vec<_> = [(60_000, 20), (60_000, 20), (50_000, 0), (50_000, 0)]
        .into_iter()
        .map(|(declared, trickle)| slow_body(v.addr, declared, trickle))
        .collect();
    // The four hold every slot: a fifth client is refused while they are within their
    // deadline (this is what the attack does; the check below is that it ends).
    std::thread::sleep(Duration::from_millis(300));
    assert!(!served(v.addr), "the connection cap of 4 is not in force");
    // Within the deadline (2 s) plus slack, a fresh client is served again.
    let mut fresh = None;
    while t0.elapsed() < Duration::from_secs(12) {
        if served(v.addr) {
            fresh = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let fresh = fresh.expect("no fresh client was served within 12 s: slow bodies hold every slot");
    assert!(
        fresh < Duration::from_secs(6),
        "served only after {fresh:?}"
    );
    // Every attacker got the JSON 408 at about the deadline, and its connection closed.
    for a in attackers {
        let (got, when) = a.join().unwrap();
        let r = parse_response(&got);
        assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&got));
        assert_eq!(r.json()["error"], "body-timeout");
        assert!(
            r.json()["message"].as_str().unwrap().contains("2s"),
            "{}",
            r.text()
        );
        assert!(
            when >= Duration::from_millis(1500) && when < Duration::from_secs(6),
            "answered after {when:?}"
        );
    }
    // The service still works and counts what it cut.
    let m = get(v.addr, "/metrics").text();
    assert!(
        m.contains("las_verifier_request_bodies_refused_total{kind=\"body-timeout\"} 4"),
        "{m}"
    );
    assert!(v.terminate().success());
}

#[test]
fn every_refusal_of_the_service_is_the_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let v = verifier(dir.path(), &[]);
    let body = br#"{"service": "app", "nonce": "x", "quote": ""}"#;
    /// Method, path, headers, body, expected status and kind.
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/attest",
            vec![("content-type", "text/plain")],
            body.to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "POST",
            "/v1/attest",
            vec![],
            body.to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "POST",
            "/v1/attest",
            vec![("content-type", "application/x-www-form-urlencoded")],
            body.to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            "POST",
            "/v1/attest",
            vec![("content-type", "application/json")],
            vec![b' '; 70 * 1024],
            413,
            "body-too-large",
        ),
        (
            "POST",
            "/v1/attest",
            vec![("content-type", "application/json; charset=utf-8")],
            b"{".to_vec(),
            400,
            "malformed-request",
        ),
        ("GET", "/v1/nothing", vec![], vec![], 404, "not-found"),
        (
            "DELETE",
            "/v1/attest",
            vec![],
            vec![],
            405,
            "method-not-allowed",
        ),
        (
            "PUT",
            "/v1/nonce",
            vec![],
            vec![],
            405,
            "method-not-allowed",
        ),
    ];
    for (method, path, headers, body, status, kind) in cases {
        let r = http(v.addr, method, path, &headers, &body);
        let what = format!("{method} {path} {headers:?}");
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{what}: {:?}",
            r.header("content-type")
        );
        let j = r.json();
        assert_eq!(j["error"], kind, "{what}: {j}");
        assert!(
            j["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {j}"
        );
    }
    // A JSON content type with parameters is JSON: the request is read (and refused for
    // its nonce, not its type).
    let r = http(
        v.addr,
        "POST",
        "/v1/attest",
        &[("content-type", "Application/JSON; charset=utf-8")],
        br#"{"service": "app", "nonce": "x", "quote": ""}"#,
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("malformed-nonce")),
        "{}",
        r.text()
    );
    assert!(v.terminate().success());
}

/// The hidden `--*-secs` spellings of the service's durations and limits (each declared
/// once with its new form; the limits' are lasd's) still work, say they are deprecated with
/// the value in the new syntax, and are checked like the new form, naming the old flag.
#[test]
fn the_old_secs_flags_still_work_and_say_they_are_deprecated() {
    let dir = tempfile::tempdir().unwrap();
    let d = verifier(
        dir.path(),
        &[
            "--nonce-lifetime-secs",
            "90",
            "--evidence-cache-secs",
            "60",
            "--ear-lifetime-secs",
            "120",
            "--las-timeout-secs",
            "3",
            "--header-timeout-secs",
            "4",
            "--write-timeout-secs",
            "6",
            "--drain-timeout-secs",
            "1",
        ],
    );
    let (status, log) = d.terminate_with_log();
    assert!(status.success(), "{log}");
    assert_deprecated_said(
        &log,
        &[
            ("--nonce-lifetime-secs", "--nonce-lifetime 1m 30s"),
            ("--evidence-cache-secs", "--evidence-cache 1m"),
            ("--ear-lifetime-secs", "--ear-lifetime 2m"),
            ("--las-timeout-secs", "--las-timeout 3s"),
            ("--header-timeout-secs", "--header-timeout 4s"),
            ("--write-timeout-secs", "--write-timeout 6s"),
            ("--drain-timeout-secs", "--drain-timeout 1s"),
        ],
    );
    let (policy, state) = (dir.path().join("policy.yaml"), dir.path().join("state"));
    for (flag, bad, says) in [
        (
            "--nonce-lifetime-secs",
            "0",
            "--nonce-lifetime-secs: `0`: must be more than 0",
        ),
        (
            "--evidence-cache-secs",
            "600",
            "--evidence-cache-secs: `600`: must be at most 9m 30s",
        ),
        (
            "--ear-lifetime-secs",
            "0",
            "--ear-lifetime-secs: `0`: must be at least 1s",
        ),
        (
            "--las-timeout-secs",
            "ten",
            "--las-timeout-secs: `ten` is not a duration",
        ),
        (
            "--write-timeout-secs",
            "2h",
            "--write-timeout-secs: `2h`: must be at most 1h",
        ),
    ] {
        let out = verifier_command(&policy, &state, &[flag, bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(says),
            "{flag} {bad}: {}",
            stderr(&out)
        );
    }
}

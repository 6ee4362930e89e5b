//! What the docs claim about the CLI, checked against the real `las` binary: the
//! Kubernetes options of `platform-ids` are refused next to `--las`/`--dns` (they used to
//! be ignored), and `las wait-ready` gives up after `--timeout` with exit 1 and a message
//! naming the LAS. (Its success path runs in the README walk-through test,
//! tests/python/test_readme.py, against a real `las serve`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn las(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_las"));
    c.args(args);
    for v in [
        "NAMESPACE",
        "INSTANCE",
        "KUBECONFIG",
        "SCONE_LAS_ADDR",
        "LAS_WAIT_TIMEOUT",
    ] {
        c.env_remove(v);
    }
    c.output().unwrap()
}

#[test]
fn kubernetes_options_are_refused_with_direct_addresses() {
    for args in [
        &["platform-ids", "--las", "127.0.0.1", "-n", "attest"][..],
        &[
            "platform-ids",
            "--las",
            "127.0.0.1",
            "--namespace",
            "attest",
        ],
        &[
            "platform-ids",
            "--las",
            "127.0.0.1",
            "--instance",
            "las-prod",
        ],
        &["platform-ids", "--dns", "localhost", "-n", "attest"],
        &[
            "platform-ids",
            "--dns",
            "localhost",
            "--instance",
            "las-prod",
        ],
        &["platform-ids", "--las", "127.0.0.1", "-l", "app=las"],
    ] {
        let out = las(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("cannot be used with"), "{args:?}: {err}");
    }
}

#[test]
fn wait_ready_gives_up_after_its_timeout() {
    // A port nobody listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let t = Instant::now();
    let out = las(&["wait-ready", "--las", &addr, "--timeout", "700ms"]);
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&addr) && err.contains("not ready within"),
        "{err}"
    );
    assert!(took >= Duration::from_millis(600), "gave up after {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn wait_ready_refuses_a_bad_timeout() {
    for bad in ["0s", "10h", "soon"] {
        let out = las(&["wait-ready", "--timeout", bad]);
        assert_eq!(out.status.code(), Some(2), "--timeout {bad}");
    }
}

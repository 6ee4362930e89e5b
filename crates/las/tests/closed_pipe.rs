//! Every `las` command writing into a closed pipe (`las verify ... | head -1`,
//! `las platform-ids | true`) ends like a Unix tool, never with a panic (exit 101):
//! `las verify` exits with its verdict's code (0 accepted, 1 rejected), `--help` with 0,
//! the other commands die by SIGPIPE. Against two live daemons on loopback.
//!
//! The pipe's read end is closed before the child starts, so every write into it fails:
//! no race with a reader that has not exited yet (as `| true` would have).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use las_testkit::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SIGPIPE: i32 = 13;

/// `las ARGS` without the caller's settings that would change it, stdin empty.
fn las_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(las_bin());
    c.args(args)
        .env_remove("LAS_SIM_CPUSVN")
        .env_remove("SCONE_LAS_ADDR")
        .env_remove("LAS_VERIFY_MAX_AGE")
        .stdin(Stdio::null());
    c
}

/// Runs `las ARGS` with stdout a pipe whose reader is already gone; stderr captured.
fn closed_stdout(args: &[&str]) -> (ExitStatus, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = las_cmd(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `las ARGS` with both stdout and stderr into one closed pipe (`2>&1 | true`).
fn closed_both(args: &[&str]) -> ExitStatus {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let err = writer.try_clone().unwrap();
    las_cmd(args).stdout(writer).stderr(err).status().unwrap()
}

fn no_panic(what: &str, status: ExitStatus, stderr: &str) {
    assert_ne!(
        status.code(),
        Some(101),
        "{what}: exit 101; stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "{what}: panicked; stderr:\n{stderr}"
    );
}

fn killed_by_sigpipe(what: &str, status: ExitStatus, stderr: &str) {
    no_panic(what, status, stderr);
    assert_eq!(
        status.signal(),
        Some(SIGPIPE),
        "{what}: expected death by SIGPIPE, got {status:?}; stderr:\n{stderr}"
    );
}

fn policy(dir: &Path, tolerate: &str, platform: &str) -> String {
    let p = dir.join(format!("policy-{}.yaml", tolerate.len()));
    std::fs::write(
        &p,
        format!(
            "security:\n  attestation:\n    tolerate: [{tolerate}]\nservices:\n  - name: app\n    platforms: [\"{platform}\"]\n    attestation:\n      mrenclave: [\"{MRENCLAVE}\"]\n"
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn no_command_panics_on_a_closed_stdout() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = Daemon::start(a_dir.path(), &[]);
    let b = Daemon::start(b_dir.path(), &[]);
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    let a_state = a_dir.path().to_str().unwrap();
    let work = tempfile::tempdir().unwrap();

    // --help: clap's own printing; exits 0.
    for args in [&["--help"][..], &["verify", "--help"], &["id", "--help"]] {
        let (s, e) = closed_stdout(args);
        no_panic(&format!("{args:?}"), s, &e);
        assert_eq!(s.code(), Some(0), "{args:?}: {e}");
    }

    // las id.
    for args in [
        &["id", "--mode", "sim", "--state-dir", a_state][..],
        &["id", "--mode", "sim", "--state-dir", a_state, "--json"],
    ] {
        let (s, e) = closed_stdout(args);
        killed_by_sigpipe(&format!("{args:?}"), s, &e);
    }

    // The logger first: a fresh state folder makes `las id` log a WARN line on stderr
    // before it prints, both into the closed pipe. (tracing-subscriber reports its own
    // write errors with eprintln!, which would panic here.)
    let fresh = tempfile::tempdir().unwrap();
    let s = closed_both(&[
        "id",
        "--mode",
        "sim",
        "--state-dir",
        fresh.path().to_str().unwrap(),
    ]);
    assert_eq!(
        s.signal(),
        Some(SIGPIPE),
        "id 2>&1 on a fresh state dir: {s:?}"
    );
    assert!(fresh.path().join("platform-secret").exists());

    // las quote (base64 to stdout).
    let quote_args = [
        "quote",
        "--las",
        &a_addr,
        "--state-dir",
        a_state,
        "--report-data",
        "c0ffee",
        "--mrenclave",
        MRENCLAVE,
    ];
    let (s, e) = closed_stdout(&quote_args);
    killed_by_sigpipe("quote", s, &e);

    // las platform-ids, directly against both LAS, each output format.
    for fmt in ["line", "wide", "json"] {
        let args = [
            "platform-ids",
            "--las",
            &a_addr,
            "--las",
            &b_addr,
            "-o",
            fmt,
        ];
        let (s, e) = closed_stdout(&args);
        killed_by_sigpipe(&format!("platform-ids -o {fmt}"), s, &e);
        // With stderr in the closed pipe too (`2>&1 | true`): no panic message can even
        // be seen, so the status is what tells.
        let s = closed_both(&args);
        assert_eq!(
            s.signal(),
            Some(SIGPIPE),
            "platform-ids -o {fmt} 2>&1: {s:?}"
        );
    }

    // las verify: the verdict decides the exit code, read or not.
    let qfile = work.path().join("quote.cose");
    quote_to_file(a.addr, a_dir.path(), "c0ffee", MRENCLAVE, &qfile);
    let q = qfile.to_str().unwrap();
    let a_id = stdout(&las(&["id", "--mode", "sim", "--state-dir", a_state]));
    let b_id = stdout(&las(&[
        "id",
        "--mode",
        "sim",
        "--state-dir",
        b_dir.path().to_str().unwrap(),
    ]));
    let accepting = policy(work.path(), "simulation", &a_id);
    let rejecting = policy(work.path(), "simulation, debug-mode", &b_id);
    for (pol, code) in [(&accepting, 0), (&rejecting, 1)] {
        for extra in [&[][..], &["--json"], &["--expect-report-data", "c0ffee"]] {
            let mut args = vec!["verify", "--policy", pol, "--quote", q, "--las", &a_addr];
            args.extend_from_slice(extra);
            // Sanity: with a reader the verdict is as expected.
            let open = las(&args);
            assert_eq!(open.status.code(), Some(code), "{}", stderr(&open));
            let (s, e) = closed_stdout(&args);
            no_panic(&format!("verify {extra:?}"), s, &e);
            assert_eq!(s.code(), Some(code), "verify {extra:?}: {e}");
            let s = closed_both(&args);
            assert_eq!(s.code(), Some(code), "verify {extra:?} 2>&1: {s:?}");
        }
    }

    // las policy set-platforms --dry-run prints the edited policy.
    let (s, e) = closed_stdout(&[
        "policy",
        "set-platforms",
        "--policy",
        &accepting,
        "--service",
        "app",
        "--dry-run",
        "--ids",
        &b_id,
    ]);
    killed_by_sigpipe("policy set-platforms --dry-run", s, &e);

    // An error while stdout is closed still reports exit 2 (the error goes to stderr).
    let (s, e) = closed_stdout(&["verify", "--policy", "/nonexistent", "--quote", q]);
    no_panic("verify with a missing policy", s, &e);
    assert_eq!(s.code(), Some(2), "{e}");

    drop((a, b));
}

//! The verification service's state held to the daemon's standard (issue 23.3), with the
//! daemon's code (`las-state`): the real `las verifier serve` must refuse, at once and
//! with the fix in its message, a key file owned by another user, a state folder others
//! may write to, a FIFO planted as a key (before: the service hung at start and SIGTERM
//! did not stop it), and a symlinked key.
//!
//! Before, the service checked key files for their mode only: in a world-writable parent
//! another user planted both keys, the service started and signed EARs with that user's
//! key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use las_testkit::verifier::verifier_command;
use las_testkit::*;

const POLICY: &str = "version: \"0.3\"\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n    platforms: [\"126C8098408FEB2002F5EB8B9E6C2AE26197E3617875633C5BD4EB4454278C34\"]\n";
const NOBODY: u32 = 65534;

/// Runs `las verifier serve` on `state` and expects it to refuse to start within 10 s
/// (exit 2) with every one of `says` in its log.
fn refused(dir: &Path, state: &Path, says: &[&str]) {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let cmd = verifier_command(&policy, state, &[]);
    let t = Instant::now();
    let mut p = Process::spawn(cmd).unwrap();
    let status = p.wait_exit(Duration::from_secs(10));
    let log = if status.is_some() {
        p.log_to_end(Duration::from_secs(5))
    } else {
        p.log()
    };
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running after {:?} (it should refuse to start): {log}",
            t.elapsed()
        )
    });
    assert_eq!(status.code(), Some(2), "{log}");
    for s in says {
        assert!(log.contains(s), "`{s}` missing: {log}");
    }
}

/// A state folder with both keys, made by a first start of the service.
fn made_state(dir: &Path) -> std::path::PathBuf {
    let state = dir.join("state");
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let cmd = verifier_command(&policy, &state, &[]);
    let d = Daemon::start_command(cmd);
    assert!(d.terminate().success());
    assert!(state.join("ear-signing-key.pem").is_file());
    assert!(state.join("nonce-key").is_file());
    state
}

#[test]
fn a_fifo_or_symlink_as_key_and_a_folder_others_may_write_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = made_state(dir.path());
    let key = state.join("ear-signing-key.pem");

    // A FIFO planted as the signing key: refused at once, never opened for a writer.
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let status = Command::new("mkfifo").arg(&key).status().unwrap();
    assert!(status.success());
    refused(
        dir.path(),
        &state,
        &["ear-signing-key.pem", "not a regular file"],
    );
    std::fs::remove_file(&key).unwrap();

    // A symlink to a good key elsewhere: refused.
    let elsewhere = dir.path().join("elsewhere.pem");
    std::fs::write(&elsewhere, &saved).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
    refused(
        dir.path(),
        &state,
        &["ear-signing-key.pem", "symbolic link"],
    );
    std::fs::remove_file(&key).unwrap();
    std::fs::rename(&elsewhere, &key).unwrap();

    // The state folder writable by others (who could swap the keys in it): refused.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(dir.path(), &state, &["0777", "chmod 700"]);
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();

    // Back to good: it starts with the same key.
    made_state(dir.path());
}

#[test]
fn keys_or_a_state_folder_of_another_user_are_refused() {
    if las_platform::sim::current_uid() != 0 {
        gate::not_tested(
            "keys and state folder owned by another user",
            "needs root (chown to nobody)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = made_state(dir.path());
    // The attack: another user planted the keys (owner-only, as the old check wanted).
    for name in ["ear-signing-key.pem", "nonce-key"] {
        let key = state.join(name);
        std::os::unix::fs::chown(&key, Some(NOBODY), Some(NOBODY)).unwrap();
        refused(dir.path(), &state, &[name, "owned by uid 65534", "chown 0"]);
        std::os::unix::fs::chown(&key, Some(0), Some(0)).unwrap();
    }
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    refused(dir.path(), &state, &["owned by uid 65534", "chown 0"]);
    std::os::unix::fs::chown(&state, Some(0), Some(0)).unwrap();
    made_state(dir.path());
}

/// A policy the service cannot read: exit 2 at once, the typed error's path and the OS's
/// reason on one line, each cause once (the error shows its source and returns it too;
/// the CLI's chain printer leaves out what the line already holds).
#[test]
fn an_unreadable_policy_is_one_clear_line_with_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let out = las(&[
        "verifier",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--policy",
        missing.to_str().unwrap(),
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains(&format!("policy {}: cannot read: ", missing.display())),
        "{line}"
    );
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "{line}"
    );
}

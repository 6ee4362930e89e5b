//! `--mode auto` with the real binary: it never simulates silently where SGX is present.
//! The SGX device files are shown to the binary under a test root
//! (`LAS_TEST_SGX_DEVICE_ROOT`); `/dev/attestation` does not exist on test machines, so the
//! LAS is never in an enclave here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use las_testkit::daemon::serve_command;
use las_testkit::{Daemon, get, las_bin};

const ROOT_ENV: &str = "LAS_TEST_SGX_DEVICE_ROOT";

/// A root with `dev` (a path like `/dev/sgx_enclave`) present as a file.
fn root_with(dev: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(dev.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, b"").unwrap();
    d
}

/// Runs `las ARGS` with the device root, waiting at most 30 s.
fn las_with_root(root: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(las_bin())
        .args(args)
        .env(ROOT_ENV, root)
        .env_remove("LAS_MODE")
        .env_remove("LAS_SIM_CPUSVN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("las {args:?} still running after 30 s (it should have refused to start)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `las serve` started from `cmd` (stderr piped), up to its "listening on" line.
#[test]
fn auto_refuses_to_simulate_where_an_sgx_device_is_visible() {
    for dev in ["/dev/sgx_enclave", "/dev/sgx/enclave", "/dev/isgx"] {
        let root = root_with(dev);
        let state = tempfile::tempdir().unwrap();
        let st = state.path().join("state");
        let st = st.to_str().unwrap();
        for args in [
            vec![
                "serve",
                "--mode",
                "auto",
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
                st,
            ],
            // `auto` is the default mode.
            vec!["serve", "--listen", "127.0.0.1:0", "--state-dir", st],
            vec!["id", "--state-dir", st],
        ] {
            let out = las_with_root(root.path(), &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{dev} {args:?}: {err}");
            let device = root.path().join(dev.trim_start_matches('/'));
            for want in [
                device.to_str().unwrap(),
                "not run inside an SGX enclave",
                "hardware image",
                "--mode sim",
            ] {
                assert!(
                    err.contains(want),
                    "{dev} {args:?}: `{want}` missing:\n{err}"
                );
            }
            assert!(!err.contains("listening on"), "{err}");
            // Nothing was simulated: no platform secret was made.
            assert!(!Path::new(st).join("platform-secret").exists());
        }
    }
}

#[test]
fn sim_chosen_explicitly_still_runs_where_an_sgx_device_is_visible() {
    let root = root_with("/dev/sgx_enclave");
    let state = tempfile::tempdir().unwrap();
    let st = state.path().to_str().unwrap();
    let out = las_with_root(root.path(), &["id", "--mode", "sim", "--state-dir", st]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(!id.is_empty());

    let mut cmd = serve_command(&las_bin(), state.path(), &["--mode", "sim"]);
    cmd.env(ROOT_ENV, root.path());
    let d = Daemon::start_command(cmd);
    let p = get(d.addr, "/v1/platform").json();
    assert_eq!(p["mode"], "sim");
    assert_eq!(p["platform_id"], id.as_str());
}

#[test]
fn auto_simulates_where_no_sgx_device_is_visible() {
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let st = state.path().to_str().unwrap();
    let out = las_with_root(root.path(), &["id", "--mode", "auto", "--state-dir", st]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut cmd = serve_command(&las_bin(), state.path(), &["--mode", "auto"]);
    cmd.env(ROOT_ENV, root.path());
    let d = Daemon::start_command(cmd);
    let p = get(d.addr, "/v1/platform").json();
    assert_eq!(p["mode"], "sim");
    assert!(
        d.wait_log("SIMULATION MODE", Duration::from_secs(5)),
        "{}",
        d.log()
    );
}

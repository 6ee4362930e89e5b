//! The daemon on the simulated platform: platform identity, the log-line contract, the
//! HTTP basics, start-up errors and graceful shutdown. Every test runs the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::os::unix::fs::PermissionsExt;

use las_testkit::daemon::*;
use las_testkit::http::*;

const PIPELINE: &str = "grep 'public key' | tail -n 1 | awk '{print $8}'";

fn is_id(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
}

#[test]
fn log_pipeline_platform_endpoint_and_las_id_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let from_log = sh_pipeline(PIPELINE, &d.log()).trim().to_string();
    assert!(
        is_id(&from_log),
        "pipeline printed {from_log:?}; log:\n{}",
        d.log()
    );

    let p = get(d.addr, "/v1/platform");
    assert_eq!(p.status, 200);
    let j = p.json();
    assert_eq!(j["platform_id"], from_log.as_str());
    assert_eq!(j["mode"], "sim");
    assert_eq!(j["secure"], false);
    assert_eq!(j["las_mrenclave"].as_str().unwrap().len(), 64);
    assert_eq!(j["cpusvn"].as_str().unwrap().len(), 32);

    let id = las(&[
        "id",
        "--mode",
        "sim",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(id.status.success(), "{}", stderr(&id));
    assert_eq!(stdout(&id), from_log);
    assert!(d.log().contains("SIMULATION MODE: NOT SECURE"));
    assert!(d.terminate().success());
}

#[test]
fn restart_keeps_the_id_other_cpusvn_or_state_dir_changes_it() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let id_of = |d: &Daemon| {
        get(d.addr, "/v1/platform").json()["platform_id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let first = Daemon::start(a.path(), &[]);
    let id1 = id_of(&first);
    assert!(first.terminate().success());
    let second = Daemon::start(a.path(), &[]);
    assert_eq!(id_of(&second), id1, "restart on the same platform: same ID");
    drop(second);

    let cpusvn = "0f0e0d0c0b0a09080706050403020100";
    let upd = Daemon::start(a.path(), &["--sim-cpusvn", cpusvn]);
    let id_upd = id_of(&upd);
    assert_ne!(id_upd, id1, "microcode update: new ID");
    assert_eq!(get(upd.addr, "/v1/platform").json()["cpusvn"], cpusvn);
    let via_id = las(&[
        "id",
        "--mode",
        "sim",
        "--state-dir",
        a.path().to_str().unwrap(),
        "--sim-cpusvn",
        cpusvn,
    ]);
    assert_eq!(stdout(&via_id), id_upd);
    drop(upd);

    let other = Daemon::start(b.path(), &[]);
    assert_ne!(id_of(&other), id1, "another server: new ID");
}

#[test]
fn another_lasd_executable_gives_another_id() {
    // The measured executable is lasd (`las id` runs it), not las.
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = tempfile::tempdir().unwrap();
    let copy = bin_dir.path().join("lasd-rebuilt");
    let mut bytes = std::fs::read(las_bin().with_file_name("lasd")).unwrap();
    bytes.extend_from_slice(b"another build");
    std::fs::write(&copy, bytes).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = dir.path().to_str().unwrap();
    let orig = stdout(&las(&["id", "--mode", "sim", "--state-dir", s]));
    let out = std::process::Command::new(&copy)
        .args(["id", "--mode", "sim", "--state-dir", s])
        .output()
        .unwrap();
    let rebuilt = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(is_id(&orig) && is_id(&rebuilt));
    assert_ne!(orig, rebuilt);
}

fn refuses_to_start(dir: &std::path::Path, needle: &str) {
    let out = las(&[
        "serve",
        "--mode",
        "sim",
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("platform-secret") && err.contains(needle),
        "{err}"
    );
}

#[test]
fn truncated_or_readable_secret_stops_serve_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().to_str().unwrap();
    assert!(
        las(&["id", "--mode", "sim", "--state-dir", s])
            .status
            .success()
    );
    let secret = dir.path().join("platform-secret");
    let original = std::fs::read(&secret).unwrap();

    std::fs::write(&secret, &original[..20]).unwrap();
    refuses_to_start(dir.path(), "20 bytes");
    assert_eq!(std::fs::read(&secret).unwrap(), &original[..20]);

    std::fs::write(&secret, &original).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    refuses_to_start(dir.path(), "chmod 600");
    assert_eq!(std::fs::read(&secret).unwrap(), original);
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

#[test]
fn port_in_use_and_bad_flags_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = serve_on_busy_port(dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("port is in use"), "{}", stderr(&out));

    let out = las(&["serve", "--listen", "not-an-address"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--listen"), "{}", stderr(&out));

    let out = las(&[
        "id",
        "--mode",
        "sim",
        "--state-dir",
        dir.path().to_str().unwrap(),
        "--sim-cpusvn",
        "xyz",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--sim-cpusvn"), "{}", stderr(&out));

    let out = las(&[
        "id",
        "--mode",
        "hw",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("hardware mode is not available in this build"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ipv6_loopback_works() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--listen", "[::1]:0"]);
    assert!(d.addr.is_ipv6());
    assert_eq!(get(d.addr, "/healthz").status, 200);
}

#[test]
fn health_ready_metrics_and_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(get(d.addr, "/healthz").status, 200);
    assert_eq!(get(d.addr, "/readyz").status, 200);

    let nf = get(d.addr, "/nope");
    assert_eq!(nf.status, 404);
    assert_eq!(nf.json()["error"], "not-found");
    let ma = http(d.addr, "DELETE", "/v1/platform", &[], b"");
    assert_eq!(ma.status, 405);
    assert_eq!(ma.json()["error"], "method-not-allowed");

    let m = get(d.addr, "/metrics");
    assert_eq!(m.status, 200);
    let text = String::from_utf8(m.body).unwrap();
    for needle in [
        "las_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1",
        "las_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "las_http_request_duration_seconds_bucket",
        "las_process_start_time_seconds ",
        "las_info{mode=\"sim\"",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[test]
fn sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(get(d.addr, "/healthz").status, 200);
    let status = d.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn json_log_format_carries_the_platform_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--log-format", "json"]);
    let log = d.log();
    let line = log.lines().find(|l| l.contains("public key")).unwrap();
    let j: serde_json::Value = serde_json::from_str(line).unwrap();
    let id = get(d.addr, "/v1/platform").json()["platform_id"].clone();
    assert_eq!(j["platform_id"], id);
}

//! `lasd`, the measured daemon, and `las serve`/`las id` that execute it (issue 14 item 1;
//! issue 15's daemon conventions: --version, durations, RUST_LOG, single-cause bind errors,
//! dual-stack listen). Every test runs the real binaries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use las_testkit::*;

fn lasd_bin() -> std::path::PathBuf {
    las_bin().with_file_name("lasd")
}

fn sha256_hex(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn las_id_is_lasd_id_and_the_sim_mrenclave_is_lasds_hash() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().to_str().unwrap();
    let via_las = las(&["id", "--mode", "sim", "--state-dir", s, "--json"]);
    assert!(via_las.status.success(), "{}", stderr(&via_las));
    let direct = Command::new(lasd_bin())
        .args(["id", "--mode", "sim", "--state-dir", s, "--json"])
        .output()
        .unwrap();
    assert!(direct.status.success(), "{}", stderr(&direct));
    let a: serde_json::Value = serde_json::from_str(&stdout(&via_las)).unwrap();
    let b: serde_json::Value = serde_json::from_str(&stdout(&direct)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a["las_mrenclave"], sha256_hex(&lasd_bin()).as_str());
    assert_ne!(a["las_mrenclave"], sha256_hex(&las_bin()).as_str());

    // The daemon `las serve` starts is lasd: same measurement, same ID.
    let d = Daemon::start(dir.path(), &[]);
    let p = get(d.addr, "/v1/platform").json();
    assert_eq!(p["platform_id"], a["platform_id"]);
    assert_eq!(p["las_mrenclave"], a["las_mrenclave"]);
    // exec, not a child: the process we started is the daemon itself.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", d.child.id())).unwrap();
    assert_eq!(comm.trim(), "lasd");
    assert!(d.terminate().success());
}

#[test]
fn a_changed_las_keeps_the_platform_id() {
    // Operator tooling (the `las` binary) is not measured: rebuild it, the ID stays.
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().to_str().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let las_copy = bin.path().join("las");
    let mut bytes = std::fs::read(las_bin()).unwrap();
    bytes.extend_from_slice(b"a new las CLI");
    std::fs::write(&las_copy, bytes).unwrap();
    std::fs::set_permissions(&las_copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(lasd_bin(), bin.path().join("lasd")).unwrap();
    let orig = las(&["id", "--mode", "sim", "--state-dir", s]);
    let changed = Command::new(&las_copy)
        .args(["id", "--mode", "sim", "--state-dir", s])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(changed.status.success(), "{}", stderr(&changed));
    assert_eq!(stdout(&orig), stdout(&changed));
}

#[test]
fn las_serve_without_lasd_names_both_places() {
    let bin = tempfile::tempdir().unwrap();
    let las_copy = bin.path().join("las");
    std::fs::copy(las_bin(), &las_copy).unwrap();
    let out = Command::new(&las_copy)
        .args(["serve", "--mode", "sim"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("lasd") && err.contains("PATH") && err.contains(bin.path().to_str().unwrap()),
        "{err}"
    );

    // On PATH it is found.
    let path_dir = tempfile::tempdir().unwrap();
    std::fs::copy(lasd_bin(), path_dir.path().join("lasd")).unwrap();
    let out = Command::new(&las_copy)
        .arg("serve")
        .arg("--version")
        .env("PATH", path_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("lasd "), "{}", stdout(&out));
}

#[test]
fn version_names_commit_and_features() {
    let out = Command::new(lasd_bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let v = stdout(&out);
    assert!(v.starts_with("lasd 0."), "{v}");
    assert!(v.contains("commit ") && v.contains("features: "), "{v}");
    if cfg!(feature = "sgx") {
        assert!(v.contains("features: sgx"), "{v}");
    } else {
        assert!(v.contains("simulation only"), "{v}");
    }
}

#[test]
fn durations_and_the_old_secs_flags() {
    let dir = tempfile::tempdir().unwrap();
    // New spelling and old alias both start the daemon.
    let d = Daemon::start(
        dir.path(),
        &["--header-timeout", "1500ms", "--drain-timeout", "2s"],
    );
    assert!(d.terminate().success());
    // The old `--*-secs` forms still work, and say that they are deprecated.
    let d = Daemon::start(
        dir.path(),
        &["--header-timeout-secs", "3", "--drain-timeout-secs", "1"],
    );
    let (status, log) = d.terminate_with_log();
    assert!(status.success());
    assert_deprecated_said(
        &log,
        &[
            ("--header-timeout-secs", "--header-timeout 3s"),
            ("--drain-timeout-secs", "--drain-timeout 1s"),
        ],
    );
    for (flag, bad, says) in [
        ("--header-timeout", "ten", "--header-timeout"),
        ("--header-timeout", "0s", "more than 0"),
        ("--drain-timeout", "2h", "at most 1h"),
        ("--header-timeout-secs", "0", "more than 0"),
    ] {
        let out = las(&["serve", "--mode", "sim", flag, bad]);
        assert_eq!(out.status.code(), Some(2), "{flag} {bad}");
        assert!(
            stderr(&out).contains(says),
            "{flag} {bad}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn bind_error_names_the_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = serve_on_busy_port(dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.contains("port is in use"), "{line}");
    assert_eq!(line.matches("os error 98").count(), 1, "{line}");
    assert_eq!(
        line.matches("in use").count(),
        2,
        "hint and OS error once each: {line}"
    );
}

#[test]
fn rust_log_is_the_fallback_filter_and_a_bad_las_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let run = |envs: &[(&str, &str)]| {
        let mut c = Command::new(lasd_bin());
        c.args(["--mode", "sim", "--listen", &addr, "--state-dir"])
            .arg(dir.path())
            .env_remove("LAS_LOG")
            .env_remove("RUST_LOG");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    // `state folder ...` is an INFO line logged before the bind fails.
    assert!(stderr(&run(&[])).contains("state folder"));
    assert!(!stderr(&run(&[("RUST_LOG", "warn")])).contains("state folder"));
    // LAS_LOG wins over RUST_LOG.
    assert!(stderr(&run(&[("RUST_LOG", "warn"), ("LAS_LOG", "info")])).contains("state folder"));
    // A RUST_LOG that other tools accept but we cannot parse is not fatal: info, warned.
    let e = stderr(&run(&[("RUST_LOG", "las=verbose")]));
    assert!(
        e.contains("ignoring RUST_LOG") && e.contains("state folder"),
        "{e}"
    );
    let out = run(&[("LAS_LOG", "las=loud")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid log filter \"las=loud\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unspecified_ipv6_listen_is_dual_stack_and_ipv6_loopback_works() {
    let dir = tempfile::tempdir().unwrap();
    // `[::]` (the default's address, on an ephemeral port) answers on IPv4 and IPv6.
    let d = Daemon::start(dir.path(), &["--listen", "[::]:0"]);
    let port = d.addr.port();
    for a in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let r = get(a.parse().unwrap(), "/v1/platform");
        assert_eq!(r.status, 200, "{a}");
    }
    assert!(d.terminate().success());
    // lasd on [::1] directly.
    let mut child = Command::new(lasd_bin())
        .args(["--mode", "sim", "--listen", "[::1]:0", "--state-dir"])
        .arg(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut addr = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap();
        if let Some(i) = line.find("listening on http://") {
            addr = Some(line[i + 20..].trim().to_string());
            break;
        }
    }
    let addr: std::net::SocketAddr = addr.expect("lasd announced its address").parse().unwrap();
    assert!(addr.is_ipv6());
    let r = get(addr, "/v1/platform");
    assert_eq!(r.status, 200);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());
}

/// Issue 23: started through the dynamic loader (`ld.so lasd`), `/proc/self/exe` is the
/// loader, so every binary started that way measured the same file and claimed one ID.
/// Simulation now refuses to start when the running code is not `/proc/self/exe`.
#[test]
fn simulation_started_through_the_dynamic_loader_is_refused() {
    let loader = ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.exists());
    let Some(loader) = loader else {
        gate::not_tested(
            "lasd started through the dynamic loader",
            "no known ld.so on this machine",
        );
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let direct = Command::new(lasd_bin())
        .args(["id", "--mode", "sim", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(direct.status.code(), Some(0), "{}", stderr(&direct));
    let via = Command::new(loader)
        .arg(lasd_bin())
        .args(["id", "--mode", "sim", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let e = stderr(&via);
    assert_eq!(via.status.code(), Some(2), "{e}");
    assert!(
        e.contains("started through a loader") && e.contains("run the executable itself"),
        "{e}"
    );
    assert!(stdout(&via).is_empty(), "no ID printed: {}", stdout(&via));
    assert_eq!(e.matches("started through a loader").count(), 1, "{e}");
}

/// Issue 23: `las serve` runs a `lasd` found on PATH when none is beside `las`; its help
/// (lasd's own) now begins by saying so and naming the `lasd` it found.
#[test]
fn las_serve_help_names_the_lasd_it_runs_and_how_it_was_found() {
    let out = Command::new(las_bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let o = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = o.lines().next().unwrap_or_default();
    assert!(
        first.contains("next to the `las` executable, else the first `lasd` on PATH")
            && first.contains(&lasd_bin().display().to_string()),
        "{first}"
    );
    assert!(o.contains("--listen"), "lasd's own help follows: {o}");
    let top = stdout(
        &Command::new(las_bin())
            .args(["help", "serve"])
            .output()
            .unwrap(),
    );
    assert!(
        top.contains("next to the `las` executable, then on PATH"),
        "{top}"
    );
}

/// The limit options of `lasd` and `las verifier serve`: one definition
/// (`las_server::LimitArgs`), so the same flags with the same syntax and defaults, except
/// the environment variables (`LAS_VERIFIER_...`) and the service's larger body cap.
#[test]
fn lasd_and_the_verification_service_take_the_same_limit_flags() {
    let help = |args: &[&str]| {
        let out = Command::new(las_bin()).args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let lasd = help(&["serve", "--help"]);
    let service = help(&["verifier", "serve", "--help"]);
    // An option's help: from its line to the next option (env line dropped).
    let block = |text: &str, flag: &str| -> String {
        let start = text
            .find(&format!("      {flag} <"))
            .unwrap_or_else(|| panic!("{flag} missing:\n{text}"));
        let mut lines = text[start..].lines();
        let first = lines.next().unwrap_or_default();
        // Words only: `las` wraps its help at 100 columns, lasd does not wrap.
        std::iter::once(first)
            .chain(lines.take_while(|l| !l.trim_start().starts_with('-')))
            .filter(|l| !l.contains("[env: "))
            .flat_map(str::split_whitespace)
            .collect::<Vec<_>>()
            .join(" ")
    };
    for flag in [
        "--header-timeout",
        "--write-timeout",
        "--max-connections",
        "--drain-timeout",
    ] {
        assert_eq!(block(&lasd, flag), block(&service, flag), "{flag}");
    }
    let (a, b) = (
        block(&lasd, "--max-body-bytes"),
        block(&service, "--max-body-bytes"),
    );
    assert!(
        a.contains("[default: 16384]") && b.contains("[default: 65536]"),
        "{a}\n{b}"
    );
    assert_eq!(a.replace("16384", "65536"), b);
    for (text, env) in [
        (&lasd, "LAS_HEADER_TIMEOUT_SECS"),
        (&service, "LAS_VERIFIER_HEADER_TIMEOUT_SECS"),
    ] {
        assert!(text.contains(&format!("[env: {env}=]")), "{text}");
    }
    assert!(
        !lasd.contains("-secs") && !service.contains("-secs"),
        "the deprecated --*-secs forms are hidden"
    );
}

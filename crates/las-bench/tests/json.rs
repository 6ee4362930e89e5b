#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

//! The las-bench executable: `micro --json` prints one JSON object with the figures
//! scripts track; `load`/`all` without wrk and oha say exactly what is missing; with them
//! and nginx (ignored unless installed: scripts/bench-tools), `load --json` carries their
//! figures, the HTTP floor and the limit it sets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_las-bench"));
    // Under `cargo test` CARGO is set; las-bench would then rebuild lasd first.
    c.env_remove("CARGO");
    c
}

fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn number(v: &serde_json::Value, key: &str) -> f64 {
    let x = v
        .get(key)
        .unwrap_or_else(|| panic!("no `{key}` in {v:#}"))
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v:#}"));
    assert!(x.is_finite() && x > 0.0, "`{key}` = {x}");
    x
}

#[test]
fn micro_json_is_one_object_with_the_rates_and_ratios() {
    let out = run(bench().args([
        "micro",
        "--json",
        "--micro-secs",
        "0.02",
        "--no-pin",
        "--no-priority",
    ]));
    assert!(out.status.success(), "{:?}", out.status);
    // The whole of stdout is the object (progress goes to stderr).
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let issue = number(&v, "quote_issue_per_s");
    let verify = number(&v, "quote_verify_per_s");
    let ed = number(&v, "ed25519_verify_per_s");
    let dcap = number(&v, "dcap_verify_per_s");
    for k in [
        "mac_check_per_s",
        "ed25519_sign_per_s",
        "quote_decode_verify_per_s",
        "quote_bytes",
        "signed_bytes",
        "dcap_quote_bytes",
    ] {
        number(&v, k);
    }
    assert!(issue > 0.0);
    assert_eq!(
        v["dcap_tcb_status"], "ConfigurationAndSWHardeningNeeded",
        "the DCAP verification ran to the end"
    );
    let ratios = &v["ratios"];
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(
        number(ratios, "quote_verify_over_ed25519_verify"),
        verify / ed
    ));
    assert!(close(
        number(ratios, "dcap_time_over_quote_verify_time"),
        verify / dcap
    ));
    let targets = v["targets"].as_array().unwrap();
    assert!(
        targets
            .iter()
            .any(|t| t["key"] == "dcap_time_over_quote_verify_time" && t["met"].is_boolean()),
        "{targets:?}"
    );
    // A micro run starts no daemon and no load generator.
    assert!(v["daemon"].is_null());
    assert!(v.get("wrk").is_none() && v.get("oha").is_none());
}

/// A PATH and cargo home without wrk and oha (but with what las-bench needs otherwise).
fn without_tools(home: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("PATH", home.join("bin")),
        ("HOME", home.to_path_buf()),
        ("CARGO_HOME", home.join("cargo")),
    ]
}

#[test]
fn load_without_the_standard_tools_names_them_and_their_install_commands() {
    let home = tempfile::tempdir().unwrap();
    for what in ["load", "all"] {
        let out = run(bench()
            .args([what, "--no-pin", "--no-priority"])
            .envs(without_tools(home.path())));
        assert_eq!(out.status.code(), Some(2), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        for needle in [
            "wrk 4.1.0 (install: apt-get update && apt-get install -y wrk)",
            "oha 1.16.0 (install: cargo install --locked --no-default-features --features native-tls --version 1.16.0 oha",
            "scripts/bench-tools",
            "--no-standard-tools",
        ] {
            assert!(err.contains(needle), "{what}: no `{needle}` in:\n{err}");
        }
        assert!(out.stdout.is_empty(), "nothing measured, nothing printed");
    }
}

/// The daemon las-bench measures: the `lasd` built beside it.
fn lasd() -> PathBuf {
    let me = PathBuf::from(env!("CARGO_BIN_EXE_las-bench"));
    let lasd = me.parent().unwrap().join("lasd");
    assert!(
        lasd.exists(),
        "{} is missing: cargo build -p lasd",
        lasd.display()
    );
    lasd
}

#[test]
fn load_without_the_standard_tools_when_asked_says_so() {
    let home = tempfile::tempdir().unwrap();
    let out = run(bench()
        .args([
            "load",
            "--json",
            "--no-standard-tools",
            "--no-pin",
            "--no-priority",
            "--warmup",
            "0.2",
            "--duration",
            "0.6",
            "--connections",
            "4",
            "--las",
        ])
        .arg(lasd())
        .envs(without_tools(home.path())));
    assert!(out.status.success(), "{:?}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["standard_tools_skipped"], true);
    assert!(v.get("wrk").is_none());
    number(&v["own_closed_loop"], "quotes_per_s");
    number(&v["own_open_loop"], "offered_per_s");
    assert_eq!(v["own_closed_loop"]["errors"], 0);
    // The targets are then judged on the own generator.
    let judged = |key: &str| {
        v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == key)
            .map(|t| t["judged"] == true)
    };
    assert_eq!(judged("p99_half_own_ms"), Some(true));
    assert_eq!(judged("p99_half_ms"), None);
    // No wrk, no nginx: no floor and no limit.
    assert!(v.get("floor").is_none() && v.get("http_limit_per_s").is_none());
    assert_eq!(judged("e2e_wrk_over_http_limit"), None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING: --no-standard-tools"));
}

/// The operator CLI built beside las-bench (`las verifier serve`; its `serve` executes
/// the `lasd` beside it).
fn las() -> PathBuf {
    let me = PathBuf::from(env!("CARGO_BIN_EXE_las-bench"));
    let las = me.parent().unwrap().join("las");
    assert!(
        las.exists(),
        "{} is missing: cargo build -p las -p lasd",
        las.display()
    );
    lasd();
    las
}

#[test]
fn roundtrip_json_has_both_phases_and_where_the_time_goes() {
    let out = run(bench()
        .args([
            "roundtrip",
            "--json",
            "--no-pin",
            "--no-priority",
            "--rate",
            "50",
            "--count",
            "5",
            "--concurrency",
            "2",
            "--duration",
            "0.5",
            "--las",
        ])
        .arg(las()));
    assert!(out.status.success(), "{:?}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"], 0);
    let low = &v["low_rate"];
    assert_eq!(low["rounds"], 5, "{low}");
    assert_eq!(number(low, "offered_per_s"), 50.0);
    let p50 = number(low, "p50_ms");
    assert!(number(low, "p99_ms") >= p50);
    let max = &v["max"];
    assert_eq!(max["concurrency"], 2);
    assert!(number(max, "rounds") >= 1.0, "{max}");
    number(max, "rounds_per_s");
    for phase in [low, max] {
        let steps = phase["steps"].as_object().unwrap();
        let names: Vec<&str> = steps.keys().map(String::as_str).collect();
        for step in [
            "nonce",
            "target_info",
            "report",
            "quote",
            "identity",
            "attest",
        ] {
            assert!(names.contains(&step), "no step {step} in {names:?}");
            number(&steps[step], "mean_ms");
        }
        let shares: f64 = steps.values().map(|s| number(s, "share")).sum();
        assert!((shares - 1.0).abs() < 1e-6, "{shares}");
    }
    // A bad setting is an error before anything starts.
    let out = run(bench()
        .args([
            "roundtrip",
            "--no-pin",
            "--no-priority",
            "--rate",
            "0",
            "--las",
        ])
        .arg(las()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate must be positive"));
}

/// `roundtrip --cert`: the CSR is a step of its own, and every round got its certificate
/// (a round without the chain counts as an error).
#[test]
fn roundtrip_cert_reports_the_csr_step() {
    let out = run(bench()
        .args([
            "roundtrip",
            "--json",
            "--cert",
            "--no-pin",
            "--no-priority",
            "--rate",
            "50",
            "--count",
            "3",
            "--concurrency",
            "1",
            "--duration",
            "0.3",
            "--las",
        ])
        .arg(las()));
    assert!(out.status.success(), "{:?}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"], 0);
    assert_eq!(v["cert"], true);
    let steps = v["low_rate"]["steps"].as_object().unwrap();
    let names: Vec<&str> = steps.keys().map(String::as_str).collect();
    assert!(names.contains(&"csr"), "{names:?}");
    assert_eq!(names.len(), 7, "{names:?}");
    number(&steps["csr"], "mean_ms");
}

/// `verifier --json`: the service's rate against the in-process one, the open loop's
/// percentiles and the errors, for plain attestations and with a CSR per request.
#[test]
fn verifier_json_has_the_ratio_and_the_certificate_row() {
    let out = run(bench()
        .args([
            "verifier",
            "--json",
            "--no-pin",
            "--no-priority",
            "--prepare",
            "60",
            "--threads",
            "2",
            "--duration",
            "0.3",
            "--micro-secs",
            "0.05",
            "--las",
        ])
        .arg(las()));
    assert!(out.status.success(), "{:?}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for row in [&v, &v["with_certificate"]] {
        let service = number(row, "service_per_s");
        let inproc = number(row, "in_process_per_s");
        let ratio = number(row, "ratio");
        assert!(
            (ratio - service / inproc).abs() < 1e-9 * ratio.max(1.0),
            "{row}"
        );
        let kept = number(row, "in_process_kept_per_s");
        let to_kept = number(row, "ratio_to_kept");
        assert!(
            (to_kept - service / kept).abs() < 1e-9 * to_kept.max(1.0),
            "{row}"
        );
        let p50 = number(row, "p50_ms");
        assert!(number(row, "p99_ms") >= p50, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
    }
    assert_eq!(v["prioritized"], false);
    assert!(v["targets"].as_array().unwrap().len() == 2);
}

#[test]
#[ignore = "needs wrk, oha and nginx (scripts/bench-tools installs them); \
            run with: cargo test -p las-bench --test json -- --ignored"]
fn load_json_carries_wrk_and_oha_figures() {
    let out = run(bench()
        .args([
            "load",
            "--json",
            "--no-priority",
            "--warmup",
            "0.2",
            "--duration",
            "1",
            "--las",
        ])
        .arg(lasd()));
    assert!(out.status.success(), "{:?}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["standard_tools_skipped"], false);
    let wrk = &v["wrk"];
    let max = number(wrk, "quotes_per_s");
    number(wrk, "p99_ms");
    assert_eq!(wrk["errors"], 0);
    let oha = &v["oha"];
    assert!((number(oha, "offered_per_s") - max / 2.0).abs() <= 1.0);
    number(oha, "quotes_per_s");
    number(oha, "p99_ms");
    assert_eq!(oha["errors"], 0);
    number(&v["ratios"], "p99_half_ms");
    number(&v["ratios"], "p99_saturation_ms");
    // The HTTP floor: wrk against nginx answering a body the size of the daemon's quote.
    let floor = &v["floor"];
    let floor_per_s = number(floor, "requests_per_s");
    assert_eq!(floor["errors"], 0);
    assert!(
        number(floor, "body_bytes") > 500.0,
        "a quote's size: {floor}"
    );
    assert!(
        floor["nginx_command"]
            .as_str()
            .unwrap()
            .contains("nginx -p /"),
        "{floor}"
    );
    assert_eq!(number(&v, "floor_per_s"), floor_per_s);
    let issue = number(&v, "quote_issue_per_s");
    let limit = number(&v, "http_limit_per_s");
    assert!(
        (limit - 1.0 / (1.0 / issue + 1.0 / floor_per_s)).abs() <= 1e-6 * limit,
        "{limit}"
    );
    let ratio = number(&v["ratios"], "e2e_wrk_over_http_limit");
    assert!(
        (ratio - max / limit).abs() <= 1e-9 * ratio.max(1.0),
        "{ratio}"
    );
    // The target is the limit; the issue ratio stays as a comparison row.
    let target = |key: &str| {
        v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == key)
            .unwrap_or_else(|| panic!("no target {key}"))
            .clone()
    };
    assert_eq!(target("e2e_wrk_over_http_limit")["judged"], true);
    assert_eq!(target("e2e_wrk_over_http_limit")["target"], ">= 0.85");
    assert_eq!(target("e2e_wrk_over_issue")["judged"], false);
}

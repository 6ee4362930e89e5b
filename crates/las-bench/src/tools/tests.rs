use super::*;

#[test]
fn wrk_times() {
    assert_eq!(wrk_ms("250.00us").unwrap(), 0.25);
    assert_eq!(wrk_ms("2.50ms").unwrap(), 2.5);
    assert_eq!(wrk_ms("1.00s").unwrap(), 1000.0);
    assert_eq!(wrk_ms("1.00m").unwrap(), 60_000.0);
    assert!(wrk_ms("12").is_err());
    assert!(wrk_ms("1.0x").is_err());
}

#[test]
fn wrk_without_latency_is_refused() {
    let t = "Running 1s test @ http://x\n  1 threads and 1 connections\n  10 requests in 1.00s, 1.00KB read\nRequests/sec:     10.00\n";
    let e = parse_wrk(t).unwrap_err().to_string();
    assert!(e.contains("--latency"), "{e}");
    assert!(parse_wrk("garbage").is_err());
}

#[test]
fn wrk_errors_are_counted() {
    let t = "  Latency Distribution\n     50%  1.00ms\n     99%  3.00ms\n  100 requests in 2.00s, 1KB read\n  Socket errors: connect 1, read 2, write 3, timeout 4\n  Non-2xx or 3xx responses: 5\nRequests/sec:     50.00\n";
    let w = parse_wrk(t).unwrap();
    assert_eq!(w.socket_errors, 10);
    assert_eq!(w.non_2xx, 5);
    assert_eq!(w.errors(), 15);
    assert_eq!(w.quotes_per_s(), 47.5);
}

#[test]
fn oha_errors_are_counted() {
    let t = r#"{"summary":{"requestsPerSec":10.0,"total":2.0,"slowest":0.01},
        "latencyPercentiles":{"p50":0.001,"p90":0.002,"p99":0.003,"p99.9":0.004},
        "statusCodeDistribution":{"200":18,"500":1},"errorDistribution":{"connection closed":1}}"#;
    let o = parse_oha(t).unwrap();
    assert_eq!((o.ok, o.errors), (18, 2));
    assert_eq!(o.ms(99.0), Some(3.0));
    assert_eq!(o.quotes_per_s(), 9.0);
    assert!(parse_oha("{}").is_err());
}

/// Real output of wrk 4.1.0 (Debian 4.1.0-3+b2) against lasd, captured by las-bench
/// (tests/fixtures/README.md).
const WRK_FIXTURE: &str = include_str!("../../tests/fixtures/wrk-4.1.0.txt");
/// Real JSON output of oha 1.16.0 against lasd (tests/fixtures/README.md).
const OHA_FIXTURE: &str = include_str!("../../tests/fixtures/oha-1.16.0.json");

#[test]
fn real_wrk_output_parses() {
    let w = parse_wrk(WRK_FIXTURE).unwrap();
    assert!(w.requests > 1000, "{w:?}");
    assert!(w.seconds > 0.5 && w.seconds < 60.0, "{w:?}");
    // wrk's own rate is requests ÷ its wall time (2 decimals printed).
    let rate = w.requests as f64 / w.seconds;
    assert!(
        (rate - w.per_s).abs() / w.per_s < 0.01,
        "{rate} vs {}",
        w.per_s
    );
    let pct: Vec<f64> = w.percentiles.iter().map(|&(p, _)| p).collect();
    assert_eq!(pct, [50.0, 75.0, 90.0, 99.0]);
    let ms: Vec<f64> = w.percentiles.iter().map(|&(_, v)| v).collect();
    assert!(ms.windows(2).all(|x| x[0] <= x[1]), "{ms:?}");
    assert!(ms[0] > 0.0 && ms[3] <= w.max_ms, "{w:?}");
    assert_eq!(w.errors(), 0, "{w:?}");
}

/// Real output of the same wrk against a daemon that answered 403 to everything.
const WRK_NON2XX_FIXTURE: &str = include_str!("../../tests/fixtures/wrk-4.1.0-non2xx.txt");

#[test]
fn real_wrk_output_with_errors_parses() {
    let w = parse_wrk(WRK_NON2XX_FIXTURE).unwrap();
    assert!(w.requests > 0);
    assert_eq!(w.non_2xx, w.requests);
    assert_eq!(w.errors(), w.requests);
    assert_eq!(w.quotes_per_s(), 0.0, "403s are not quotes");
}

#[test]
fn real_oha_output_parses() {
    let o = parse_oha(OHA_FIXTURE).unwrap();
    assert!(o.ok > 100, "{o:?}");
    assert_eq!(o.errors, 0, "{o:?}");
    assert!(o.seconds > 0.5 && o.seconds < 60.0, "{o:?}");
    let ms: Vec<f64> = o.percentiles.iter().map(|&(_, v)| v).collect();
    assert_eq!(ms.len(), 4);
    assert!(ms.windows(2).all(|x| x[0] <= x[1]), "{ms:?}");
    assert!(ms[0] > 0.0 && ms[3] <= o.max_ms, "{o:?}");
    assert!((o.quotes_per_s() - o.per_s).abs() / o.per_s < 0.05, "{o:?}");
}

#[test]
fn the_script_refuses_paths_lua_cannot_hold() {
    assert!(wrk_script(Path::new("/tmp/a\"b")).is_err());
    let s = wrk_script(Path::new("/tmp/x/report.bin")).unwrap();
    assert!(s.contains("io.open(\"/tmp/x/report.bin\", \"rb\")"), "{s}");
}

#[test]
fn request_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let r = Request::new(&[1, 2, 3]).unwrap();
    assert_eq!(std::fs::read(&r.body).unwrap(), [1, 2, 3]);
    let dir = r.body.parent().unwrap();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

#[test]
fn every_missing_tool_is_named_with_its_install_command() {
    let e = StandardTools::from_found(None, None, None)
        .unwrap_err()
        .to_string();
    for needle in [
        "wrk 4.1.0 (install: apt-get update && apt-get install -y wrk)",
        "oha 1.16.0 (install: cargo install",
        "nginx, the HTTP floor (install: apt-get update && apt-get install -y nginx-light)",
        "scripts/bench-tools",
    ] {
        assert!(e.contains(needle), "no `{needle}` in {e}");
    }
    let only_nginx = StandardTools::from_found(
        Some(PathBuf::from("/bin/true")),
        Some(PathBuf::from("/bin/true")),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(only_nginx.contains("nginx-light"), "{only_nginx}");
    assert!(!only_nginx.contains("wrk 4.1.0"), "{only_nginx}");
}

#[test]
fn tools_are_found_only_where_executable() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let exe = d.path().join("nginx");
    std::fs::write(&exe, "#!/bin/sh\n").unwrap();
    assert_eq!(find_in("nginx", [d.path().to_path_buf()]), None);
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(find_in("nginx", [d.path().to_path_buf()]), Some(exe));
    assert_eq!(find_in("nginx", Vec::<PathBuf>::new()), None);
}

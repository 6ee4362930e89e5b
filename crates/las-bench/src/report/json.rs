//! Every figure of the run as one JSON object (`--json`).

use super::targets::targets;
use super::*;

fn load_json(l: &LoadResult) -> Value {
    json!({
        "offered_per_s": l.offered,
        "quotes_per_s": l.rate(),
        "completed": l.completed,
        "seconds": l.elapsed.as_secs_f64(),
        "p50_ms": l.ms(0.5),
        "p99_ms": l.ms(0.99),
        "p99_9_ms": l.ms(0.999),
        "max_ms": l.hist.max() as f64 / 1e6,
        "errors": l.errors,
        "first_error": l.first_error,
        "daemon_cpu_us_per_quote": l.daemon_us_per_quote(),
    })
}

/// A crate count of the run, or null when it could not be counted.
fn crates(s: &Startup, package: &str) -> Value {
    s.crates
        .iter()
        .find(|(p, _)| *p == package)
        .and_then(|(_, n)| n.as_ref().ok())
        .map_or(Value::Null, |n| json!(n))
}

/// Every figure of the run as one JSON object: the in-process rates at the top level
/// (`quote_issue_per_s`, `quote_verify_per_s`, `ed25519_verify_per_s`,
/// `dcap_verify_per_s`, ...), one object per load phase (`wrk`, `oha`, `own_closed_loop`,
/// `own_open_loop`, `own_busy_poll`, `floor`), `floor_per_s` and `http_limit_per_s`,
/// `startup`, `ratios` (key → value) and `targets`.
pub(crate) fn json(run: &Run<'_>) -> Value {
    let &Run {
        machine,
        las,
        setup,
        o,
        r,
        total,
    } = run;
    let mut v = serde_json::Map::new();
    let mut put = |k: &str, x: Value| {
        v.insert(k.to_owned(), x);
    };
    put("command", json!(std::env::args().collect::<Vec<_>>()));
    put(
        "machine",
        json!({
            "cpu_model": machine.cpu_model,
            "cores": machine.cores,
            "kernel": machine.kernel,
            "loadavg_start": machine.loadavg,
            "loadavg_end": daemon::loadavg(),
        }),
    );
    put(
        "daemon",
        match las {
            Some(las) => json!({
                "path": las.display().to_string(),
                "bytes": std::fs::metadata(las).map(|m| m.len()).ok(),
            }),
            None => Value::Null,
        },
    );
    put(
        "pinning",
        if setup.pinned {
            json!({"daemon_cpu": o.daemon_cpu, "generator_cpu": o.client_cpu})
        } else {
            Value::Null
        },
    );
    put("prioritized", json!(setup.prioritized));
    put("realtime_priority", json!(setup.realtime));
    put("smoke", json!(setup.smoke));
    put("run_seconds", json!(total.as_secs_f64()));
    put("standard_tools_skipped", json!(r.standard_skipped));
    if let Some(t) = &r.tools {
        put(
            "standard_tools",
            json!({
                "wrk": {"path": t.wrk.path.display().to_string(), "version": t.wrk.version},
                "oha": {"path": t.oha.path.display().to_string(), "version": t.oha.version},
                "nginx": {"path": t.nginx.path.display().to_string(), "version": t.nginx.version},
            }),
        );
    }
    if let Some(m) = &r.micro {
        put("mac_check_per_s", json!(m.mac_check.per_sec()));
        put("quote_issue_per_s", json!(m.issue.per_sec()));
        put("ed25519_sign_per_s", json!(m.ed_sign.per_sec()));
        put(
            "quote_decode_verify_per_s",
            json!(m.decode_verify.per_sec()),
        );
        put("quote_verify_per_s", json!(m.policy_verify.per_sec()));
        put("ed25519_verify_per_s", json!(m.ed_verify.per_sec()));
        put("dcap_verify_per_s", json!(m.dcap_verify.per_sec()));
        put("quote_bytes", json!(m.quote_len));
        put("signed_bytes", json!(m.signed_len));
        put("dcap_quote_bytes", json!(m.dcap_quote_len));
        put("dcap_tcb_status", json!(m.dcap_status));
    }
    if let Some(w) = &r.wrk {
        let x = &w.run;
        put(
            "wrk",
            json!({
                "command": x.command,
                "quotes_per_s": x.quotes_per_s(),
                "requests_per_s": x.per_s,
                "requests": x.requests,
                "seconds": x.seconds,
                "p50_ms": x.ms(50.0),
                "p75_ms": x.ms(75.0),
                "p90_ms": x.ms(90.0),
                "p99_ms": x.ms(99.0),
                "max_ms": x.max_ms,
                "errors": x.errors(),
                "daemon_cpu_us_per_quote": w.daemon_us_per_quote(),
            }),
        );
    }
    if let (None, Some(i)) = (&r.micro, &r.issue_only) {
        put("quote_issue_per_s", json!(i.per_sec()));
    }
    if let Some(f) = &r.floor {
        let x = &f.run;
        put(
            "floor",
            json!({
                "command": x.command,
                "nginx_command": f.nginx,
                "body_bytes": f.body_bytes,
                "requests_per_s": x.quotes_per_s(),
                "requests": x.requests,
                "seconds": x.seconds,
                "p50_ms": x.ms(50.0),
                "p99_ms": x.ms(99.0),
                "max_ms": x.max_ms,
                "errors": x.errors(),
                "nginx_cpu_us_per_request": f.nginx_us_per_request(),
            }),
        );
    }
    if let Some(l) = r.http_limit() {
        put("floor_per_s", json!(l.floor_per_s));
        put("http_limit_per_s", json!(l.http_limit_per_s));
    }
    if let Some(h) = &r.oha {
        let x = &h.run;
        put(
            "oha",
            json!({
                "command": x.command,
                "offered_per_s": h.offered,
                "quotes_per_s": x.quotes_per_s(),
                "requests_per_s": x.per_s,
                "seconds": x.seconds,
                "p50_ms": x.ms(50.0),
                "p90_ms": x.ms(90.0),
                "p99_ms": x.ms(99.0),
                "p99_9_ms": x.ms(99.9),
                "max_ms": x.max_ms,
                "errors": x.errors,
                "daemon_cpu_us_per_quote": h.daemon_us_per_quote(),
            }),
        );
    }
    if let Some(l) = &r.saturation {
        put("own_closed_loop", load_json(l));
    }
    if let Some(l) = &r.half {
        put("own_open_loop", load_json(l));
    }
    if let Some(l) = &r.spin {
        put("own_busy_poll", load_json(l));
    }
    if let Some(k) = r.peak_rss_kib {
        put("peak_rss_mib", json!(mib(k)));
    }
    if let Some(s) = &r.startup {
        put(
            "startup",
            json!({
                "ready_ms_median": ms(s.median),
                "ready_ms_min": ms(s.min),
                "ready_ms_max": ms(s.max),
                "starts": s.starts,
                "exe_hash_ms": ms(s.hash),
                "exe_bytes": s.exe_bytes,
                "idle_rss_mib": mib(s.idle_rss_kib),
                "connections": s.conns,
                "connections_rss_mib": mib(s.conns_rss_kib),
                "lasd_crates": crates(s, "lasd"),
                "las_crates": crates(s, "las"),
            }),
        );
    }
    let targets = targets(r);
    let ratios: serde_json::Map<String, Value> = targets
        .iter()
        .map(|t| (t.key.to_owned(), json!(t.value)))
        .collect();
    put("ratios", Value::Object(ratios));
    put(
        "targets",
        Value::Array(
            targets
                .iter()
                .filter(|_| !setup.smoke)
                .map(|t| {
                    json!({
                        "name": t.name,
                        "key": t.key,
                        "value": t.value,
                        "unit": t.unit,
                        "target": t.target_shown(),
                        "judged": t.judged,
                        "met": t.met,
                    })
                })
                .collect(),
        ),
    );
    Value::Object(v)
}

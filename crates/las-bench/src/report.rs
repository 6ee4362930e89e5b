//! The report: what one run measured, printed as Markdown (the machine and command line,
//! the in-process table, the end-to-end tables, start-up and memory, the target ratios)
//! or as one JSON object ([`json()`]). Printing only; the measuring is in `main`, `load`,
//! `tools`, `micro` and `daemon`.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::daemon::{CpuTime, Machine};
use crate::load::LoadResult;
use crate::micro::{Measured, Micro};
use crate::tools::{Oha, StandardTools, Wrk};
use crate::{Opts, daemon};

/// Everything one run measured.
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) micro: Option<Micro>,
    /// The own generator's closed loop.
    pub(crate) saturation: Option<LoadResult>,
    /// The own generator's open loop.
    pub(crate) half: Option<LoadResult>,
    pub(crate) spin: Option<LoadResult>,
    pub(crate) peak_rss_kib: Option<u64>,
    pub(crate) startup: Option<Startup>,
    /// wrk's closed loop.
    pub(crate) wrk: Option<WrkPhase>,
    /// oha's open loop.
    pub(crate) oha: Option<OhaPhase>,
    /// The standard generators used.
    pub(crate) tools: Option<StandardTools>,
    /// A load was measured without them (`--no-standard-tools`).
    pub(crate) standard_skipped: bool,
}

impl Results {
    /// Failed exchanges over every load phase (own generator, wrk, oha).
    pub(crate) fn errors(&self) -> u64 {
        [&self.saturation, &self.half, &self.spin]
            .into_iter()
            .flatten()
            .map(|l| l.errors)
            .sum::<u64>()
            + self.wrk.as_ref().map_or(0, |w| w.run.errors())
            + self.oha.as_ref().map_or(0, |h| h.run.errors)
    }
}

/// wrk's closed loop and the daemon's CPU meanwhile.
#[derive(Debug)]
pub(crate) struct WrkPhase {
    pub(crate) run: Wrk,
    pub(crate) daemon_cpu: CpuTime,
}

impl WrkPhase {
    /// Daemon CPU time per quote, µs.
    pub(crate) fn daemon_us_per_quote(&self) -> f64 {
        self.daemon_cpu.run_ns as f64 / 1e3 / self.run.quotes().max(1) as f64
    }
}

/// oha's open loop, the rate it was asked for and the daemon's CPU meanwhile.
#[derive(Debug)]
pub(crate) struct OhaPhase {
    pub(crate) run: Oha,
    pub(crate) offered: f64,
    pub(crate) daemon_cpu: CpuTime,
}

impl OhaPhase {
    /// Daemon CPU time per quote, µs.
    pub(crate) fn daemon_us_per_quote(&self) -> f64 {
        self.daemon_cpu.run_ns as f64 / 1e3 / self.run.ok.max(1) as f64
    }
}

#[derive(Debug)]
pub(crate) struct Startup {
    pub(crate) median: Duration,
    pub(crate) min: Duration,
    pub(crate) max: Duration,
    pub(crate) starts: usize,
    pub(crate) hash: Duration,
    pub(crate) exe_bytes: u64,
    pub(crate) idle_rss_kib: u64,
    pub(crate) conns: usize,
    pub(crate) conns_rss_kib: u64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn row(m: &Measured) -> String {
    format!(
        "| {} | {:.2} | {:.0} |",
        m.name,
        m.ns_per_op / 1e3,
        m.per_sec()
    )
}

/// How the run was set up.
#[derive(Debug)]
pub(crate) struct Setup {
    /// Daemon and benchmark pinned to their cores.
    pub(crate) pinned: bool,
    /// In an autogroup of their own at nice -20.
    pub(crate) prioritized: bool,
    /// SCHED_FIFO priority of the daemon in the open loop.
    pub(crate) realtime: Option<u8>,
    /// A smoke run.
    pub(crate) smoke: bool,
}

pub(crate) fn print_report(
    machine: &Machine,
    las: Option<&Path>,
    setup: &Setup,
    o: &Opts,
    r: &Results,
    total: Duration,
) {
    let Setup {
        pinned,
        prioritized,
        realtime,
        smoke,
    } = *setup;
    let args: Vec<String> = std::env::args().collect();
    println!("## las-bench results\n");
    println!("- command: `{}`", args.join(" "));
    println!(
        "- machine: {}, {} cores, Linux {}; load average {} at the start, {} at the end",
        machine.cpu_model,
        machine.cores,
        machine.kernel,
        machine.loadavg,
        daemon::loadavg()
    );
    println!(
        "- daemon: {}; {}",
        match las {
            Some(las) => format!(
                "`{}` ({:.1} MiB)",
                las.display(),
                std::fs::metadata(las).map(|m| m.len()).unwrap_or(0) as f64 / (1 << 20) as f64
            ),
            None => "none started".to_owned(),
        },
        if pinned {
            format!(
                "daemon pinned to CPU {} (`taskset -c {}`), {} and in-process baselines to CPU {}",
                o.daemon_cpu,
                o.daemon_cpu,
                if r.tools.is_some() {
                    format!(
                        "load generators (wrk and oha: `taskset -c {}`; the own generator)",
                        o.client_cpu
                    )
                } else {
                    "load generator".to_owned()
                },
                o.client_cpu
            )
        } else {
            "nothing pinned".to_owned()
        }
    );
    println!(
        "- scheduling: {}{}",
        if prioritized {
            "daemon and benchmark in a session of their own whose autogroup has nice -20, so that the machine's other tenants get little of the two cores"
        } else {
            "default priority: other tenants share the cores"
        },
        match realtime {
            Some(p) => format!(
                "; during the open loops the daemon and the generators ({}) also run under SCHED_FIFO {p} (`chrt -f {p}`)",
                if r.oha.is_some() { "own, oha" } else { "own" }
            ),
            None => String::new(),
        }
    );
    println!("- whole run: {:.1} s", total.as_secs_f64());

    if let Some(m) = &r.micro {
        println!("\n### In-process, one thread\n");
        println!(
            "Quote {} B; Ed25519 signs {} B for it; DCAP quote {} B (TCB status {}).\n",
            m.quote_len, m.signed_len, m.dcap_quote_len, m.dcap_status
        );
        println!("| operation | µs/op | ops/s |");
        println!("|---|---:|---:|");
        for x in [
            &m.mac_check,
            &m.issue,
            &m.ed_sign,
            &m.decode_verify,
            &m.policy_verify,
            &m.ed_verify,
            &m.dcap_verify,
        ] {
            println!("{}", row(x));
        }
    }

    if let (Some(sat), Some(half)) = (&r.saturation, &r.half) {
        println!(
            "\n### End to end: the daemon on one core, POST /v1/quote, {} keep-alive connections\n",
            sat.connections
        );
        if r.standard_skipped {
            println!(
                "**WARNING: --no-standard-tools: wrk and oha did not run. The targets below are judged on las-bench's own generator, which reaches a lower rate than the daemon can serve (issue 17): install them with scripts/bench-tools.**\n"
            );
        }
        if let Some(t) = &r.tools {
            println!(
                "Standard generators: `{}` ({}), `{}` ({}).",
                t.wrk.path.display(),
                t.wrk.version,
                t.oha.path.display(),
                t.oha.version
            );
            if let Some(w) = &r.wrk {
                println!("- wrk: `{}`", w.run.command);
            }
            if let Some(h) = &r.oha {
                println!("- oha: `{}`", h.run.command);
            }
            println!();
        }
        println!(
            "| generator, load | offered/s | quotes/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
        if let Some(w) = &r.wrk {
            let x = &w.run;
            println!(
                "| wrk, closed loop (maximum) | - | {:.0} | {} | {} | - | {:.3} | {} |",
                x.quotes_per_s(),
                opt(x.ms(50.0)),
                opt(x.ms(99.0)),
                x.max_ms,
                x.errors()
            );
        }
        if let Some(h) = &r.oha {
            let x = &h.run;
            println!(
                "| oha, open loop at half wrk's maximum, latency-corrected | {:.0} | {:.0} | {} | {} | {} | {:.3} | {} |",
                h.offered,
                x.quotes_per_s(),
                opt(x.ms(50.0)),
                opt(x.ms(99.0)),
                opt(x.ms(99.9)),
                x.max_ms,
                x.errors
            );
        }
        let rows: Vec<(&str, &LoadResult)> = [
            Some(("own, closed loop (maximum)", sat)),
            Some((
                if r.wrk.is_some() {
                    "own, open loop at half wrk's maximum"
                } else {
                    "own, open loop at half the maximum"
                },
                half,
            )),
            r.spin
                .as_ref()
                .map(|l| ("own, diagnostic: closed loop, busy-polling generator", l)),
        ]
        .into_iter()
        .flatten()
        .collect();
        for &(name, l) in &rows {
            println!(
                "| {name} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
                l.offered
                    .map(|o| format!("{o:.0}"))
                    .unwrap_or_else(|| "-".into()),
                l.rate(),
                l.ms(0.5),
                l.ms(0.99),
                l.ms(0.999),
                l.hist.max() as f64 / 1e6,
                l.errors
            );
        }
        if r.wrk.is_some() {
            println!(
                "\nThe targets are judged on wrk's and oha's figures. The own generator decodes and checks each connection's first quote, and its busy-polling phase shows what waking a sleeping client costs the daemon; wrk and oha cannot."
            );
        }
        println!("\nWhere the time went (/proc/PID/task/*/schedstat, /proc/PID/stat):\n");
        println!(
            "| load | daemon CPU µs/quote | daemon user/sys | daemon on its core | daemon waiting for its core | generator on its core | generator waiting |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let tool_row = |name: &str, cpu: &CpuTime, per_quote: f64, secs: f64| {
            let wall = (secs * 1e9).max(1.0);
            println!(
                "| {name} | {per_quote:.1} | {:.0}% / {:.0}% | {:.0}% | {:.0}% | - | - |",
                100.0 * cpu.user_share(),
                100.0 * (1.0 - cpu.user_share()),
                100.0 * cpu.run_ns as f64 / wall,
                100.0 * cpu.wait_ns as f64 / wall,
            );
        };
        if let Some(w) = &r.wrk {
            tool_row(
                "wrk, closed loop",
                &w.daemon_cpu,
                w.daemon_us_per_quote(),
                w.run.seconds,
            );
        }
        if let Some(h) = &r.oha {
            tool_row(
                "oha, open loop",
                &h.daemon_cpu,
                h.daemon_us_per_quote(),
                h.run.seconds,
            );
        }
        for &(name, l) in &rows {
            println!(
                "| {name} | {:.1} | {:.0}% / {:.0}% | {:.0}% | {:.0}% | {:.0}% | {:.0}% |",
                l.daemon_us_per_quote(),
                100.0 * l.daemon_cpu.user_share(),
                100.0 * (1.0 - l.daemon_cpu.user_share()),
                100.0 * l.daemon_busy(),
                100.0 * l.daemon_waiting(),
                100.0 * l.client_cpu.run_ns as f64 / l.elapsed.as_nanos() as f64,
                100.0 * l.client_cpu.wait_ns as f64 / l.elapsed.as_nanos() as f64,
            );
        }
        if let Some(hwm) = r.peak_rss_kib {
            println!(
                "\nDaemon peak RSS (VmHWM) over the load: {:.1} MiB",
                mib(hwm)
            );
        }
    }

    if let Some(s) = &r.startup {
        println!("\n### Start-up and memory\n");
        println!("| figure | value |");
        println!("|---|---:|");
        println!(
            "| start-up, exec to /readyz 200 (median of {}; min to max) | {:.1} ms ({:.1} to {:.1}) |",
            s.starts,
            ms(s.median),
            ms(s.min),
            ms(s.max)
        );
        println!(
            "| of which: SHA-256 of the executable ({:.1} MiB, the simulated MRENCLAVE) | {:.1} ms |",
            s.exe_bytes as f64 / (1 << 20) as f64,
            ms(s.hash)
        );
        println!("| idle RSS | {:.1} MiB |", mib(s.idle_rss_kib));
        println!(
            "| RSS with {} idle keep-alive connections | {:.1} MiB |",
            s.conns,
            mib(s.conns_rss_kib)
        );
    }

    let targets = targets(r);
    if smoke {
        println!(
            "\nSmoke run: short phases, no priority, usually a debug build: these figures only show that the benchmark works; `las-bench all` on a release build measures (docs/performance.md)."
        );
    } else if !targets.is_empty() {
        println!("\n### Targets\n");
        println!("| figure | measured | target | |");
        println!("|---|---:|---:|---|");
        for t in &targets {
            println!(
                "| {} | {} | {} | {} |",
                t.name,
                t.shown(),
                t.target_shown(),
                match (t.judged, t.met) {
                    (true, true) => "met",
                    (true, false) => "MISSED",
                    (false, true) => "(met)",
                    (false, false) => "(missed)",
                }
            );
        }
        println!(
            "\nRows in parentheses are not targets: the same figure from another generator or from CPU time, for comparison."
        );
    }
}

/// How a figure compares with its limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cmp {
    AtLeast,
    AtMost,
}

/// One figure of the targets table.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// What it is (the table's first column).
    pub(crate) name: String,
    /// Its JSON key (in `ratios` and `targets`).
    pub(crate) key: &'static str,
    pub(crate) value: f64,
    /// "" (a ratio), "x" (a factor), "ms", "MiB" or "count".
    pub(crate) unit: &'static str,
    pub(crate) cmp: Cmp,
    pub(crate) limit: f64,
    /// A target (judged), or the same figure another way, for comparison.
    pub(crate) judged: bool,
    pub(crate) met: bool,
}

impl Target {
    fn new(
        name: impl Into<String>,
        key: &'static str,
        (value, unit): (f64, &'static str),
        (cmp, limit): (Cmp, f64),
        judged: bool,
    ) -> Self {
        let met = match cmp {
            Cmp::AtLeast => value >= limit,
            Cmp::AtMost => value <= limit,
        };
        Self {
            name: name.into(),
            key,
            value,
            unit,
            cmp,
            limit,
            judged,
            met,
        }
    }

    fn fmt(&self, v: f64) -> String {
        match self.unit {
            "" => format!("{v:.2}"),
            "x" => format!("{v:.1}"),
            "ms" if self.key.starts_with("startup") => format!("{v:.1} ms"),
            "ms" => format!("{v:.3} ms"),
            "MiB" => format!("{v:.1} MiB"),
            _ => format!("{v:.0}"),
        }
    }

    pub(crate) fn shown(&self) -> String {
        self.fmt(self.value)
    }

    pub(crate) fn target_shown(&self) -> String {
        let limit = match self.unit {
            "ms" | "MiB" => format!("{} {}", self.limit, self.unit),
            "" => format!("{:.2}", self.limit),
            _ => format!("{}", self.limit),
        };
        let t = match self.cmp {
            Cmp::AtLeast => format!(">= {limit}"),
            Cmp::AtMost if self.unit == "count" => limit,
            Cmp::AtMost => format!("<= {limit}"),
        };
        if self.judged { t } else { format!("({t})") }
    }
}

/// Every target and comparison figure the run allows. The targets are judged on the
/// standard generators when they ran, on the own generator otherwise.
pub(crate) fn targets(r: &Results) -> Vec<Target> {
    use Cmp::{AtLeast, AtMost};
    let mut t = Vec::new();
    let std = r.wrk.is_some();
    if let Some(m) = &r.micro {
        if let Some(w) = &r.wrk {
            t.push(Target::new(
                "end-to-end quotes/s (wrk) ÷ in-process quote issue rate",
                "e2e_wrk_over_issue",
                (w.run.quotes_per_s() / m.issue.per_sec(), ""),
                (AtLeast, 0.8),
                true,
            ));
        }
        if let Some(sat) = &r.saturation {
            t.push(Target::new(
                "end-to-end quotes/s (own generator) ÷ in-process quote issue rate",
                "e2e_own_over_issue",
                (sat.rate() / m.issue.per_sec(), ""),
                (AtLeast, 0.8),
                !std,
            ));
        }
        // The same ratio from CPU time, which the other tenants of a shared machine do not
        // distort (they only take the core away).
        let per_quote = r
            .wrk
            .as_ref()
            .map(WrkPhase::daemon_us_per_quote)
            .or(r.saturation.as_ref().map(LoadResult::daemon_us_per_quote));
        if let Some(pq) = per_quote {
            t.push(Target::new(
                format!(
                    "CPU time: in-process issue time ÷ daemon CPU time per quote ({})",
                    if std { "wrk" } else { "own generator" }
                ),
                "cpu_issue_over_daemon_per_quote",
                (m.issue.ns_per_op / 1e3 / pq, ""),
                (AtLeast, 0.8),
                false,
            ));
        }
        t.push(Target::new(
            "quote verify (policy) rate ÷ raw Ed25519 verify rate",
            "quote_verify_over_ed25519_verify",
            (m.policy_verify.per_sec() / m.ed_verify.per_sec(), ""),
            (AtLeast, 0.85),
            true,
        ));
        t.push(Target::new(
            "quote decode + verify rate (las-core) ÷ raw Ed25519 verify rate",
            "quote_decode_verify_over_ed25519_verify",
            (m.decode_verify.per_sec() / m.ed_verify.per_sec(), ""),
            (AtLeast, 0.85),
            false,
        ));
        t.push(Target::new(
            "DCAP verify time ÷ quote verify (policy) time",
            "dcap_time_over_quote_verify_time",
            (m.dcap_verify.ns_per_op / m.policy_verify.ns_per_op, "x"),
            (AtLeast, 15.0),
            true,
        ));
    }
    if let Some(h) = &r.oha
        && let Some(p99) = h.run.ms(99.0)
    {
        t.push(Target::new(
            "p99 at half the maximum rate (oha, latency-corrected)",
            "p99_half_ms",
            (p99, "ms"),
            (AtMost, 1.0),
            true,
        ));
    }
    if let Some(half) = &r.half {
        t.push(Target::new(
            "p99 at half the maximum rate (own generator, from the due time)",
            "p99_half_own_ms",
            (half.ms(0.99), "ms"),
            (AtMost, 1.0),
            r.oha.is_none(),
        ));
    }
    if let Some(w) = &r.wrk
        && let Some(p99) = w.run.ms(99.0)
    {
        t.push(Target::new(
            format!("p99 at saturation, {} connections (wrk)", connections(r)),
            "p99_saturation_ms",
            (p99, "ms"),
            (AtMost, 5.0),
            true,
        ));
    }
    if let Some(sat) = &r.saturation {
        t.push(Target::new(
            format!(
                "p99 at saturation, {} connections (own generator)",
                sat.connections
            ),
            "p99_saturation_own_ms",
            (sat.ms(0.99), "ms"),
            (AtMost, 5.0),
            !std,
        ));
    }
    if r.saturation.is_some() || r.wrk.is_some() {
        let errors = r.errors();
        t.push(Target::new(
            "errors (every load phase)",
            "errors",
            (errors as f64, "count"),
            (AtMost, 0.0),
            true,
        ));
    }
    if let Some(s) = &r.startup {
        // lasd's targets (issue 14).
        t.push(Target::new(
            "start-up to ready (median)",
            "startup_ms",
            (ms(s.median), "ms"),
            (AtMost, 10.0),
            true,
        ));
        t.push(Target::new(
            "idle RSS",
            "idle_rss_mib",
            (mib(s.idle_rss_kib), "MiB"),
            (AtMost, 8.0),
            true,
        ));
        t.push(Target::new(
            format!("RSS with {} idle connections", s.conns),
            "connections_rss_mib",
            (mib(s.conns_rss_kib), "MiB"),
            (AtMost, 64.0),
            true,
        ));
    }
    t
}

fn connections(r: &Results) -> usize {
    r.saturation.as_ref().map_or(0, |s| s.connections)
}

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

/// Every figure of the run as one JSON object: the in-process rates at the top level
/// (`quote_issue_per_s`, `quote_verify_per_s`, `ed25519_verify_per_s`,
/// `dcap_verify_per_s`, ...), one object per load phase (`wrk`, `oha`, `own_closed_loop`,
/// `own_open_loop`, `own_busy_poll`), `startup`, `ratios` (key → value) and `targets`.
pub(crate) fn json(
    machine: &Machine,
    las: Option<&Path>,
    setup: &Setup,
    o: &Opts,
    r: &Results,
    total: Duration,
) -> Value {
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

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

mod json;
mod targets;

pub(crate) use json::json;
use targets::targets;

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
    /// wrk against nginx: the HTTP floor.
    pub(crate) floor: Option<FloorPhase>,
    /// The in-process issue rate when the other baselines did not run (`load`).
    pub(crate) issue_only: Option<Measured>,
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
            + self.floor.as_ref().map_or(0, |f| f.run.errors())
            + self.oha.as_ref().map_or(0, |h| h.run.errors)
    }

    /// The in-process quote issue baseline of this run.
    pub(crate) fn issue(&self) -> Option<&Measured> {
        self.micro
            .as_ref()
            .map(|m| &m.issue)
            .or(self.issue_only.as_ref())
    }

    /// The HTTP floor, the limit it sets and the daemon's rate against it, when wrk,
    /// nginx and the issue baseline ran.
    pub(crate) fn http_limit(&self) -> Option<HttpLimit> {
        let (f, w, i) = (self.floor.as_ref()?, self.wrk.as_ref()?, self.issue()?);
        let floor_per_s = f.run.quotes_per_s();
        let http_limit_per_s = crate::floor::http_limit(i.per_sec(), floor_per_s);
        Some(HttpLimit {
            floor_per_s,
            issue_per_s: i.per_sec(),
            http_limit_per_s,
            e2e_per_s: w.run.quotes_per_s(),
            ratio: if http_limit_per_s > 0.0 {
                w.run.quotes_per_s() / http_limit_per_s
            } else {
                0.0
            },
            cpu_ratio: (i.ns_per_op / 1e3 + f.nginx_us_per_request()) / w.daemon_us_per_quote(),
        })
    }
}

/// The HTTP floor against the daemon (issue 27).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimit {
    /// wrk's rate against nginx.
    pub(crate) floor_per_s: f64,
    /// In-process quote issue rate.
    pub(crate) issue_per_s: f64,
    /// `1 / (1/issue + 1/floor)`.
    pub(crate) http_limit_per_s: f64,
    /// wrk's quote rate against the daemon.
    pub(crate) e2e_per_s: f64,
    /// `e2e_per_s / http_limit_per_s`.
    pub(crate) ratio: f64,
    /// The same from CPU time: (issue time + nginx CPU per request) ÷ daemon CPU per
    /// quote, which the other tenants of a shared machine distort less.
    pub(crate) cpu_ratio: f64,
}

/// wrk against nginx (the HTTP floor) and nginx's CPU meanwhile.
#[derive(Debug)]
pub(crate) struct FloorPhase {
    pub(crate) run: Wrk,
    pub(crate) nginx_cpu: CpuTime,
    /// The static answer's size (the daemon's quote size).
    pub(crate) body_bytes: usize,
    /// nginx's command line.
    pub(crate) nginx: String,
}

impl FloorPhase {
    /// nginx CPU time per request, µs.
    pub(crate) fn nginx_us_per_request(&self) -> f64 {
        self.nginx_cpu.run_ns as f64 / 1e3 / self.run.quotes().max(1) as f64
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
    /// Crates in each package's dependency tree, counted at the time of the run
    /// ([`daemon::crate_count`]), or why they could not be.
    pub(crate) crates: Vec<(&'static str, Result<usize, String>)>,
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

/// One finished run: what `print_report` and `json` print.
pub(crate) struct Run<'a> {
    pub(crate) machine: &'a Machine,
    /// The daemon executable measured (none for `micro`).
    pub(crate) las: Option<&'a Path>,
    pub(crate) setup: &'a Setup,
    pub(crate) o: &'a Opts,
    pub(crate) r: &'a Results,
    /// The whole run's wall time.
    pub(crate) total: Duration,
}

pub(crate) fn print_report(run: &Run<'_>) {
    let &Run {
        machine,
        las,
        setup,
        o,
        r,
        total,
    } = run;
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
                "**WARNING: --no-standard-tools: wrk, oha and the HTTP floor (nginx) did not run. The targets below are judged on las-bench's own generator, which reaches a lower rate than the daemon can serve (issue 17): install them with scripts/bench-tools.**\n"
            );
        }
        if let Some(t) = &r.tools {
            println!(
                "Standard generators: `{}` ({}), `{}` ({}); HTTP floor: `{}` ({}).",
                t.wrk.path.display(),
                t.wrk.version,
                t.oha.path.display(),
                t.oha.version,
                t.nginx.path.display(),
                t.nginx.version
            );
            if let Some(w) = &r.wrk {
                println!("- wrk: `{}`", w.run.command);
            }
            if let Some(f) = &r.floor {
                println!(
                    "- HTTP floor: `{}` (a static answer of {} B), driven by `{}`",
                    f.nginx, f.body_bytes, f.run.command
                );
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
        if let Some(f) = &r.floor {
            let x = &f.run;
            println!(
                "| wrk → nginx, closed loop (HTTP floor: static {} B answer) | - | {:.0} | {} | {} | - | {:.3} | {} |",
                f.body_bytes,
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
        if let Some(f) = &r.floor {
            tool_row(
                "wrk → nginx (the HTTP floor; nginx's CPU)",
                &f.nginx_cpu,
                f.nginx_us_per_request(),
                f.run.seconds,
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
        if let Some(l) = r.http_limit() {
            println!("\nThe HTTP limit of one core (issue 27):\n");
            println!("| figure | per second | µs each |");
            println!("|---|---:|---:|");
            for (name, v) in [
                ("in-process quote issue", l.issue_per_s),
                ("HTTP floor: wrk → nginx (`floor_per_s`)", l.floor_per_s),
                (
                    "HTTP limit: 1 / (1/issue + 1/floor) (`http_limit_per_s`)",
                    l.http_limit_per_s,
                ),
                ("the daemon: wrk → lasd", l.e2e_per_s),
            ] {
                println!(
                    "| {name} | {v:.0} | {:.1} |",
                    if v > 0.0 { 1e6 / v } else { 0.0 }
                );
            }
            println!(
                "\nThe daemon reaches {:.2} of the limit (`e2e_wrk_over_http_limit`); {:.1} µs of each of its quotes go beyond the exchange and the handler.",
                l.ratio,
                if l.e2e_per_s > 0.0 && l.http_limit_per_s > 0.0 {
                    1e6 / l.e2e_per_s - 1e6 / l.http_limit_per_s
                } else {
                    0.0
                }
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
        for (package, n) in &s.crates {
            println!(
                "| crates in `{package}`'s tree (`cargo tree -p {package} -e normal --prefix none --no-dedupe \\| sort -u \\| wc -l`, now) | {} |",
                match n {
                    Ok(n) => n.to_string(),
                    Err(e) => format!("not counted: {e}"),
                }
            );
        }
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

//! The report: what one run measured, printed as Markdown (the machine and command line,
//! the in-process table, the end-to-end tables, start-up and memory, the target ratios).
//! Printing only; the measuring is in `main`, `load`, `micro` and `daemon`.

use std::path::Path;
use std::time::Duration;

use crate::daemon::Machine;
use crate::load::LoadResult;
use crate::micro::{Measured, Micro};
use crate::{Opts, daemon};

/// Everything one run measured.
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) micro: Option<Micro>,
    pub(crate) saturation: Option<LoadResult>,
    pub(crate) half: Option<LoadResult>,
    pub(crate) spin: Option<LoadResult>,
    pub(crate) peak_rss_kib: Option<u64>,
    pub(crate) startup: Option<Startup>,
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
    las: &Path,
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
    let las_size = std::fs::metadata(las).map(|m| m.len()).unwrap_or(0);
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
        "- las: `{}` ({:.1} MiB); {}",
        las.display(),
        las_size as f64 / (1 << 20) as f64,
        if pinned {
            format!(
                "daemon pinned to CPU {} (`taskset -c {}`), load generator and in-process baselines to CPU {}",
                o.daemon_cpu, o.daemon_cpu, o.client_cpu
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
                "; during the open loop the daemon and the generator also run under SCHED_FIFO {p} (`chrt -f {p}`)"
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
            "\n### End to end: `las serve` on one core, POST /v1/quote, {} keep-alive connections\n",
            sat.connections
        );
        println!("| load | offered/s | quotes/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        let rows: Vec<(&str, &LoadResult)> = [
            Some(("closed loop (maximum)", sat)),
            Some(("open loop, half the maximum", half)),
            r.spin
                .as_ref()
                .map(|l| ("diagnostic: closed loop, busy-polling generator", l)),
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
        println!("\nWhere the time went (/proc/PID/task/*/schedstat, /proc/PID/stat):\n");
        println!(
            "| load | daemon CPU µs/quote | daemon user/sys | daemon on its core | daemon waiting for its core | generator on its core | generator waiting |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
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

    let mut targets: Vec<(String, String, String, bool)> = Vec::new();
    if let (Some(m), Some(sat)) = (&r.micro, &r.saturation) {
        let x = sat.rate() / m.issue.per_sec();
        targets.push((
            "end-to-end quotes/s ÷ in-process quote issue rate".into(),
            format!("{x:.2}"),
            ">= 0.70".into(),
            x >= 0.7,
        ));
    }
    if let (Some(m), Some(sat)) = (&r.micro, &r.saturation) {
        // Not a target: the same ratio from CPU time, which the other tenants of a shared
        // machine do not distort (they only take the core away).
        let x = m.issue.ns_per_op / 1e3 / sat.daemon_us_per_quote();
        targets.push((
            "(CPU time: in-process issue time ÷ daemon CPU time per quote)".into(),
            format!("{x:.2}"),
            "(>= 0.70)".into(),
            x >= 0.7,
        ));
    }
    if let Some(m) = &r.micro {
        let x = m.policy_verify.per_sec() / m.ed_verify.per_sec();
        targets.push((
            "quote verify (policy) rate ÷ raw Ed25519 verify rate".into(),
            format!("{x:.2}"),
            ">= 0.80".into(),
            x >= 0.8,
        ));
        let x = m.decode_verify.per_sec() / m.ed_verify.per_sec();
        targets.push((
            "quote decode + verify rate ÷ raw Ed25519 verify rate".into(),
            format!("{x:.2}"),
            ">= 0.80".into(),
            x >= 0.8,
        ));
        let x = m.dcap_verify.ns_per_op / m.policy_verify.ns_per_op;
        targets.push((
            "DCAP verify time ÷ quote verify (policy) time".into(),
            format!("{x:.1}"),
            ">= 15".into(),
            x >= 15.0,
        ));
    }
    if let (Some(sat), Some(half)) = (&r.saturation, &r.half) {
        targets.push((
            "p99 at half the maximum rate".into(),
            format!("{:.3} ms", half.ms(0.99)),
            "<= 1 ms".into(),
            half.ms(0.99) <= 1.0,
        ));
        targets.push((
            format!("p99 at saturation, {} connections", sat.connections),
            format!("{:.3} ms", sat.ms(0.99)),
            "<= 5 ms".into(),
            sat.ms(0.99) <= 5.0,
        ));
        let errors = sat.errors + half.errors;
        targets.push(("errors".into(), errors.to_string(), "0".into(), errors == 0));
    }
    if let Some(s) = &r.startup {
        targets.push((
            "start-up to ready (median)".into(),
            format!("{:.1} ms", ms(s.median)),
            "<= 50 ms".into(),
            ms(s.median) <= 50.0,
        ));
        targets.push((
            "idle RSS".into(),
            format!("{:.1} MiB", mib(s.idle_rss_kib)),
            "<= 16 MiB".into(),
            mib(s.idle_rss_kib) <= 16.0,
        ));
        targets.push((
            format!("RSS with {} idle connections", s.conns),
            format!("{:.1} MiB", mib(s.conns_rss_kib)),
            "<= 64 MiB".into(),
            mib(s.conns_rss_kib) <= 64.0,
        ));
    }
    if smoke {
        println!(
            "\nSmoke run: short phases, no priority, usually a debug build: these figures only show that the benchmark works; `las-bench all` on a release build measures (docs/performance.md)."
        );
    } else if !targets.is_empty() {
        println!("\n### Targets\n");
        println!("| figure | measured | target | |");
        println!("|---|---:|---:|---|");
        for (name, v, t, ok) in targets {
            println!(
                "| {name} | {v} | {t} | {} |",
                if ok { "met" } else { "MISSED" }
            );
        }
    }
}

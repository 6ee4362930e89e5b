//! `las-bench`: a reproducible benchmark of quote issuance and verification.
//!
//! ```text
//!  core 1 (this process)                              core 0
//!  ─────────────────────                              ──────
//!  in-process baselines: MAC check, quote issue,
//!    quote verify, raw Ed25519, DCAP (dcap-qvl)
//!  load generator: N keep-alive connections ──POST /v1/quote──► taskset -c 0 las serve
//!    closed loop (maximum), open loop (half of it)              (peak RSS from /proc)
//!  start-up: exec ─► /readyz 200, 20 times; idle RSS; RSS with 1,000 idle connections
//! ```
//!
//! Every target is a ratio of figures measured in the same run (the machines are shared
//! and noisy), printed as a Markdown table with the machine and the command line.
//! `las-bench all` runs everything in well under 3 minutes; `las-bench smoke` runs a
//! 5-second load and one pass of every baseline, and fails on any error (CI).

mod daemon;
mod dcap;
mod http;
mod load;
mod micro;
mod verifier;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use las_core::sgx::TargetInfo;

use crate::daemon::{CpuTime, Launch, Machine};
use crate::dcap::DcapSample;
use crate::load::LoadResult;
use crate::micro::{Measured, Micro};

/// Benchmark of the LAS: in-process baselines, the DCAP comparison, end-to-end load on
/// one pinned core, start-up and memory. Prints Markdown tables and the target ratios.
#[derive(Debug, Parser)]
#[command(name = "las-bench", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    what: What,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Everything (about a minute with the defaults).
    All,
    /// The in-process baselines and the DCAP comparison.
    Micro,
    /// End-to-end load: saturation, then an open loop at half the maximum rate.
    Load,
    /// Start-up time, idle RSS and RSS with many idle connections.
    Startup,
    /// CI: one short pass of every baseline and a 5-second load; fails on any error.
    Smoke,
    /// The verification service: attestations per second of one replica on one core
    /// (LAS evidence cached) against the in-process verification rate, and latency at
    /// half that rate.
    Verifier(VerifierArgs),
    /// Profiling: send exactly N quote requests to a running daemon (e.g. one under
    /// `valgrind --tool=callgrind`) and print the rate. See docs/performance.md.
    Drive(DriveArgs),
}

#[derive(Debug, Args)]
struct VerifierArgs {
    /// Quotes prepared (each bound to its own nonce) per load phase at most.
    #[arg(long, default_value_t = 20_000)]
    prepare: usize,
    /// Closed-loop connections (threads).
    #[arg(long, default_value_t = 8)]
    threads: usize,
}

#[derive(Debug, Args)]
struct DriveArgs {
    /// The daemon's address.
    #[arg(long)]
    addr: std::net::SocketAddr,
    /// The daemon's state folder (its platform secret makes the reports).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// Requests to send.
    #[arg(long, default_value_t = 1000)]
    requests: u64,
}

#[derive(Debug, Args)]
struct Opts {
    /// The `las` executable. Default: the one next to this executable, rebuilt first when
    /// run through `cargo run`.
    #[arg(long, global = true, value_name = "PATH")]
    las: Option<PathBuf>,
    /// Keep-alive connections of the load generator.
    #[arg(long, global = true, default_value_t = 64)]
    connections: usize,
    /// Seconds of each load phase (saturation, half rate).
    #[arg(long, global = true, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of closed-loop warm-up before the load phases.
    #[arg(long, global = true, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds per in-process baseline.
    #[arg(long, global = true, default_value_t = 1.0)]
    micro_secs: f64,
    /// Daemon starts for the start-up median.
    #[arg(long, global = true, default_value_t = 20)]
    starts: usize,
    /// Idle connections for the memory figure.
    #[arg(long, global = true, default_value_t = 1000)]
    idle_connections: usize,
    /// Core the daemon is pinned to.
    #[arg(long, global = true, default_value_t = 0)]
    daemon_cpu: usize,
    /// Core this process (load generator, baselines) is pinned to.
    #[arg(long, global = true, default_value_t = 1)]
    client_cpu: usize,
    /// Pin nothing (on a one-core machine the daemon and the generator share the core).
    #[arg(long, global = true)]
    no_pin: bool,
    /// Do not raise the priority of the daemon and this process. By default (as root,
    /// with scheduler autogroups) both run in a session of their own whose autogroup has
    /// nice -20, so that the other tenants of a shared machine get little of the two cores
    /// while figures are taken. `smoke` never does.
    #[arg(long, global = true)]
    no_priority: bool,

    /// dcap-qvl's `sample/` folder. Default: found with `cargo metadata`.
    #[arg(long, global = true, value_name = "DIR")]
    dcap_sample: Option<PathBuf>,
}

/// SCHED_FIFO priority of the daemon during the open loop (low among real-time
/// priorities: the kernel's own real-time threads stay above it).
const REALTIME_PRIO: u8 = 10;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("las-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Default)]
struct Results {
    micro: Option<Micro>,
    saturation: Option<LoadResult>,
    half: Option<LoadResult>,
    spin: Option<LoadResult>,
    peak_rss_kib: Option<u64>,
    startup: Option<Startup>,
}

#[derive(Debug)]
struct Startup {
    median: Duration,
    min: Duration,
    max: Duration,
    starts: usize,
    hash: Duration,
    exe_bytes: u64,
    idle_rss_kib: u64,
    conns: usize,
    conns_rss_kib: u64,
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let o = &cli.opts;
    if let What::Drive(a) = &cli.what {
        return drive(a, o.connections);
    }
    if let What::Verifier(a) = &cli.what {
        let machine = Machine::probe();
        let pinned = !o.no_pin && machine.cores >= 2;
        if pinned {
            daemon::pin_self(o.client_cpu)?;
        }
        let las = match &o.las {
            Some(p) => p.clone(),
            None => daemon::default_las()?,
        };
        let f = verifier::run(
            &las,
            pinned.then_some(o.daemon_cpu),
            a.threads,
            o.duration,
            o.micro_secs,
            a.prepare,
        )?;
        verifier::print(&f);
        return Ok(ExitCode::SUCCESS);
    }
    let machine = Machine::probe();
    let pinned = !o.no_pin && machine.cores >= 2;
    if pinned {
        daemon::pin_self(o.client_cpu)?;
    }
    let smoke = matches!(cli.what, What::Smoke);
    let mut prioritized = false;
    if !o.no_priority && !smoke && daemon::is_root() {
        if let Some(code) = daemon::reexec_in_own_session()? {
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)));
        }
        match daemon::raise_own_autogroup() {
            Ok(()) => prioritized = true,
            Err(e) => eprintln!("las-bench: note: {e:#}; running at normal priority"),
        }
    }
    // During the open loop (where the daemon uses well under 95% of its core and the
    // generator sleeps between sends) both also run under SCHED_FIFO, so that no other
    // tenant delays a wake-up. Not at saturation: the kernel throttles real-time tasks
    // at 95% of each second (50 ms stops).
    let realtime = prioritized.then_some(REALTIME_PRIO);
    let las = match &o.las {
        Some(p) => p.clone(),
        None => daemon::default_las()?,
    };
    let las = std::fs::canonicalize(&las)
        .with_context(|| format!("no las executable at {}", las.display()))?;
    let launch = |dir: &Path| Launch {
        las: las.clone(),
        state_dir: dir.to_path_buf(),
        cpu: pinned.then_some(o.daemon_cpu),
        extra: Vec::new(),
    };
    let (micro_budget, warmup, duration) = if smoke {
        (
            Duration::from_millis(20),
            Duration::from_millis(500),
            Duration::from_secs(2),
        )
    } else {
        (
            Duration::from_secs_f64(o.micro_secs),
            Duration::from_secs_f64(o.warmup),
            Duration::from_secs_f64(o.duration),
        )
    };
    let started = Instant::now();
    let mut r = Results::default();

    if matches!(cli.what, What::All | What::Micro | What::Smoke) {
        let dcap = match &o.dcap_sample {
            Some(d) => DcapSample::load(d)?,
            None => DcapSample::locate()?,
        };
        eprintln!("las-bench: in-process baselines ({micro_budget:?} each)");
        let dir = tempfile::tempdir()?;
        r.micro = Some(micro::run(dir.path(), &dcap, micro_budget)?);
    }
    if matches!(cli.what, What::All | What::Startup) {
        let dir = tempfile::tempdir()?;
        r.startup = Some(startup(&launch(dir.path()), o.starts, o.idle_connections)?);
    }
    if matches!(cli.what, What::All | What::Load | What::Smoke) {
        let dir = tempfile::tempdir()?;
        let p = load_phases(
            &launch(dir.path()),
            o.connections,
            (warmup, duration),
            realtime,
            !smoke,
        )?;
        r.saturation = Some(p.sat);
        r.half = Some(p.half);
        r.spin = p.spin;
        r.peak_rss_kib = Some(p.hwm);
    }

    let total = started.elapsed();
    let setup = Setup {
        pinned,
        prioritized,
        realtime,
        smoke,
    };
    print_report(&machine, &las, &setup, o, &r, total);
    let errors: u64 = [&r.saturation, &r.half]
        .into_iter()
        .flatten()
        .map(|l| l.errors)
        .sum();
    let idle = [&r.saturation, &r.half]
        .into_iter()
        .flatten()
        .any(|l| l.completed == 0);
    if errors > 0 || idle {
        eprintln!("las-bench: FAILED: {errors} errors; a load phase without quotes: {idle}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn drive(a: &DriveArgs, connections: usize) -> anyhow::Result<ExitCode> {
    let pool = reports_for(a.addr, &a.state_dir)?;
    let l = runtime()?.block_on(load::fixed_count(a.addr, pool, connections, a.requests))?;
    println!(
        "{} quotes in {:.3} s ({:.0}/s), {} errors{}",
        l.completed,
        l.elapsed.as_secs_f64(),
        l.rate(),
        l.errors,
        l.first_error
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    Ok(if l.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A daemon's target info and a pool of valid reports for it.
fn reports_for(
    addr: std::net::SocketAddr,
    state_dir: &Path,
) -> anyhow::Result<std::sync::Arc<Vec<load::Prepared>>> {
    let req = http::request("GET", "/v1/target-info", None, b"");
    let (status, ti) = http::get_blocking(addr, &req, Duration::from_secs(5))?;
    anyhow::ensure!(status == 200, "GET /v1/target-info answered {status}");
    let ti = TargetInfo::try_from_slice(&ti).context("the daemon's target info")?;
    let reports = micro::report_pool(state_dir, &ti, 256)?;
    Ok(load::prepare(&reports))
}

/// Runs a load phase and records the CPU the daemon and this process spent in it.
async fn with_cpu(
    daemon: u32,
    phase: impl std::future::Future<Output = anyhow::Result<LoadResult>>,
) -> anyhow::Result<LoadResult> {
    let me = std::process::id();
    let (d0, c0) = (CpuTime::of(daemon)?, CpuTime::of(me)?);
    let mut r = phase.await?;
    r.daemon_cpu = CpuTime::of(daemon)?.since(&d0);
    r.client_cpu = CpuTime::of(me)?.since(&c0);
    Ok(r)
}

fn load_phases(
    launch: &Launch,
    connections: usize,
    (warmup, duration): (Duration, Duration),
    realtime: Option<u8>,
    diagnose: bool,
) -> anyhow::Result<LoadPhases> {
    daemon::ensure_nofile(connections as u64 + 256)?;
    let (d, _) = launch.start()?;
    let pool = reports_for(d.addr, &launch.state_dir)?;
    let rt = runtime()?;
    let result = rt.block_on(async {
        eprintln!("las-bench: warm-up {warmup:?}, closed loop");
        load::saturate(d.addr, pool.clone(), connections, warmup, false).await?;
        eprintln!("las-bench: saturation {duration:?}, {connections} connections");
        let sat = with_cpu(
            d.pid(),
            load::saturate(d.addr, pool.clone(), connections, duration, false),
        )
        .await?;
        let spin = if diagnose {
            eprintln!(
                "las-bench: saturation {:?}, busy-polling generator",
                duration / 2
            );
            Some(
                with_cpu(
                    d.pid(),
                    load::saturate(d.addr, pool.clone(), connections, duration / 2, true),
                )
                .await?,
            )
        } else {
            None
        };
        let rate = sat.rate() / 2.0;
        eprintln!("las-bench: open loop at {rate:.0}/s for {duration:?}");
        if realtime.is_some() {
            d.set_realtime(realtime)?;
            daemon::set_realtime(std::process::id(), realtime)?;
        }
        let half = with_cpu(
            d.pid(),
            load::fixed_rate(d.addr, pool, connections, rate, duration),
        )
        .await;
        if realtime.is_some() {
            d.set_realtime(None)?;
            daemon::set_realtime(std::process::id(), None)?;
        }
        let half = half?;
        anyhow::Ok((sat, half, spin))
    });
    let (sat, half, spin) = match result {
        Ok(x) => x,
        Err(e) => return Err(e.context(format!("daemon log:\n{}", d.log_tail()))),
    };
    let hwm = d.memory()?.hwm_kib;
    for l in [Some(&sat), Some(&half), spin.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Some(e) = &l.first_error {
            eprintln!("las-bench: first error: {e}\ndaemon log:\n{}", d.log_tail());
        }
    }
    d.stop();
    Ok(LoadPhases {
        sat,
        half,
        spin,
        hwm,
    })
}

/// What the load phases measured.
#[derive(Debug)]
struct LoadPhases {
    sat: LoadResult,
    half: LoadResult,
    spin: Option<LoadResult>,
    hwm: u64,
}

fn startup(launch: &Launch, starts: usize, idle: usize) -> anyhow::Result<Startup> {
    anyhow::ensure!(starts > 0, "--starts must be at least 1");
    daemon::ensure_nofile(idle as u64 + 256)?;
    eprintln!("las-bench: start-up, {starts} starts");
    // The first start creates the platform secret (fsyncs) and pulls the executable into
    // the page cache: not what a restart costs.
    launch.start()?.0.stop();
    let mut times = Vec::with_capacity(starts);
    let mut last = None;
    for i in 0..starts {
        let (d, t) = launch.start()?;
        times.push(t);
        if i + 1 == starts {
            last = Some(d);
        } else {
            d.stop();
        }
    }
    times.sort();
    let d = last.context("no daemon")?;
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss_kib = d.memory()?.rss_kib;

    eprintln!("las-bench: {idle} idle connections");
    let pool = reports_for(d.addr, &launch.state_dir)?;
    let rt = runtime()?;
    let conns = rt.block_on(load::idle_connections(d.addr, pool, idle))?;
    std::thread::sleep(Duration::from_millis(500));
    let conns_rss_kib = d.memory()?.rss_kib;
    drop(conns);
    d.stop();

    let mut hashes: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            las_platform::measure::sha256_file(&launch.las).map(|_| t.elapsed())
        })
        .collect::<Result<_, _>>()?;
    hashes.sort();
    Ok(Startup {
        median: times[times.len() / 2],
        min: times[0],
        max: times[times.len() - 1],
        starts,
        hash: hashes[hashes.len() / 2],
        exe_bytes: std::fs::metadata(&launch.las)?.len(),
        idle_rss_kib,
        conns: idle,
        conns_rss_kib,
    })
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
struct Setup {
    /// Daemon and benchmark pinned to their cores.
    pinned: bool,
    /// In an autogroup of their own at nice -20.
    prioritized: bool,
    /// SCHED_FIFO priority of the daemon in the open loop.
    realtime: Option<u8>,
    /// A smoke run.
    smoke: bool,
}

fn print_report(
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

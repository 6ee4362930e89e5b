//! `las-bench`: a reproducible benchmark of quote issuance and verification.
//!
//! ```text
//!  core 1 (this process and its children)             core 0
//!  ──────────────────────────────────────             ──────
//!  in-process baselines: MAC check, quote issue,
//!    quote verify, raw Ed25519, DCAP (dcap-qvl)
//!  wrk: closed loop, 64 keep-alive connections ──POST /v1/quote──► taskset -c 0 lasd serve
//!  wrk: the same, the HTTP floor ─────────────────────────────────► taskset -c 0 nginx
//!  own generator: closed loop, busy-poll diagnostic,                 (peak RSS from /proc)
//!    open loop at half wrk's rate
//!  oha: open loop at half wrk's rate, --latency-correction
//!  start-up: exec ─► /readyz 200, 20 times; idle RSS; RSS with 1,000 idle connections
//! ```
//!
//! Every target is a ratio of figures measured in the same run (the machines are shared
//! and noisy), printed as a Markdown table (or one JSON object, `--json`) with the machine
//! and the command line. The targets are judged on the standard generators (wrk, oha:
//! [`tools`]); the own generator's figures stand beside them, and it alone checks every
//! connection's first quote and measures what waking a sleeping client costs.
//! `las-bench all` runs everything in about a minute; `las-bench smoke` runs a 5-second
//! load and one pass of every baseline with the own generator only, and fails on any error
//! (CI: it needs neither wrk nor oha).

#![forbid(unsafe_code)]

mod daemon;
mod dcap;
mod floor;
mod load;
mod micro;
mod report;
mod roundtrip;
mod tools;
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
use crate::report::{FloorPhase, OhaPhase, Results, Run, Setup, Startup, WrkPhase, print_report};
use crate::tools::StandardTools;

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
    /// Everything (about a minute with the defaults). Needs wrk, oha and nginx
    /// (scripts/bench-tools installs them) unless --no-standard-tools.
    All,
    /// The in-process baselines and the DCAP comparison.
    Micro,
    /// End-to-end load: saturation (wrk, own generator), the HTTP floor (wrk against
    /// nginx on the daemon's core) and the limit it sets, then an open loop at half the
    /// maximum rate (oha, own generator).
    Load,
    /// Start-up time, idle RSS and RSS with many idle connections.
    Startup,
    /// CI: one short pass of every baseline and a 5-second load; fails on any error.
    Smoke,
    /// The verification service: attestations per second of one replica on one core
    /// (LAS evidence cached) against the in-process verification rate, and latency at
    /// half that rate.
    Verifier(VerifierArgs),
    /// One enclave's whole attestation path against a live LAS and verification service
    /// (nonce, target info, REPORT, quote, attest): latency at a low fixed rate, the
    /// maximum rate, and how a round's time divides between the steps.
    Roundtrip(RoundtripArgs),
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
struct RoundtripArgs {
    /// Rounds per second of the low-rate phase (one round after another).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Rounds of the low-rate phase.
    #[arg(long, default_value_t = 200)]
    count: u64,
    /// Enclaves attesting at once in the maximum-rate phase (closed loop, --duration).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Each round also gets a workload certificate, as `las attest --key-out` does: a new
    /// key and its CSR first (step `csr`), sent with the quote; the service issues the
    /// chain within the attest step.
    #[arg(long)]
    cert: bool,
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
    /// The daemon executable: `lasd`, or `las` (whose `serve` executes the `lasd` beside
    /// it); for `verifier`, the `las` executable. Default: the one next to this executable
    /// (`lasd`; `las` for `verifier`), rebuilt first when run through `cargo run`.
    #[arg(long, global = true, value_name = "PATH")]
    las: Option<PathBuf>,
    /// Print one JSON object (every figure, the ratios and the targets) instead of
    /// Markdown.
    #[arg(long, global = true)]
    json: bool,
    /// Do not run the standard load generators (wrk, oha) nor the HTTP floor (nginx): the
    /// targets are then judged on the own generator's figures only, and the report says so
    /// loudly.
    #[arg(long, global = true)]
    no_standard_tools: bool,
    /// Keep wrk's and oha's raw outputs in DIR, created if missing (`wrk.txt`,
    /// `wrk-floor.txt`, `oha.json`; new files, never overwritten).
    #[arg(long, global = true, value_name = "DIR")]
    tool_output: Option<PathBuf>,
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

    /// A folder with `sgx_quote` and `sgx_quote_collateral.json`. Default: the committed
    /// tests/vectors/dcap (dcap-qvl 0.7.1's sample).
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
        // The priority measures of `load`: a session of our own at nice -20 (the service,
        // started from it, shares its autogroup), SCHED_FIFO during the open loops.
        let mut prioritized = false;
        if !o.no_priority && daemon::is_root() {
            if let Some(code) = daemon::reexec_in_own_session()? {
                return Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)));
            }
            match daemon::raise_own_autogroup() {
                Ok(()) => prioritized = true,
                Err(e) => eprintln!("las-bench: note: {e:#}; running at normal priority"),
            }
        }
        let f = verifier::run(
            &las,
            verifier::Settings {
                cpu: pinned.then_some(o.daemon_cpu),
                threads: a.threads,
                duration: o.duration,
                micro_secs: o.micro_secs,
                prepare_max: a.prepare,
                realtime: prioritized.then_some(REALTIME_PRIO),
                prioritized,
            },
        )?;
        if o.json {
            let v = verifier::json(&f, std::env::args().collect());
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            verifier::print(&f);
        }
        if verifier::errors(&f) > 0 {
            eprintln!(
                "las-bench: FAILED: {} attestations not answered as expected",
                verifier::errors(&f)
            );
            return Ok(ExitCode::from(1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let machine = Machine::probe();
    let pinned = !o.no_pin && machine.cores >= 2;
    if pinned {
        daemon::pin_self(o.client_cpu)?;
    }
    let smoke = matches!(cli.what, What::Smoke);
    // Found before anything is measured, so that a missing tool fails at once. The smoke
    // (the test command) never uses them.
    let wants_load = matches!(cli.what, What::All | What::Load);
    let tools = if wants_load && !o.no_standard_tools {
        Some(StandardTools::locate()?)
    } else {
        None
    };
    // Made before anything is measured, so that a run of minutes does not end on a
    // folder that is not there.
    if let Some(dir) = o.tool_output.as_deref() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--tool-output: cannot create {}", dir.display()))?;
    }
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
    if let What::Roundtrip(a) = &cli.what {
        return roundtrip(a, o, pinned, prioritized);
    }
    // During the open loop (where the daemon uses well under 95% of its core and the
    // generator sleeps between sends) both also run under SCHED_FIFO, so that no other
    // tenant delays a wake-up. Not at saturation: the kernel throttles real-time tasks
    // at 95% of each second (50 ms stops).
    let realtime = prioritized.then_some(REALTIME_PRIO);
    // `micro` starts no daemon: it needs no executable.
    let las = if matches!(cli.what, What::Micro) {
        None
    } else {
        let las = match &o.las {
            Some(p) => p.clone(),
            None => daemon::default_lasd()?,
        };
        Some(
            std::fs::canonicalize(&las)
                .with_context(|| format!("no daemon executable at {}", las.display()))?,
        )
    };
    let launch = |dir: &Path| Launch {
        las: las.clone().unwrap_or_default(),
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
    if matches!(cli.what, What::Load) && tools.is_some() {
        // The HTTP limit needs the in-process issue rate of the same run.
        eprintln!("las-bench: in-process quote issue ({micro_budget:?})");
        let dir = tempfile::tempdir()?;
        r.issue_only = Some(micro::issue_rate(dir.path(), micro_budget)?);
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
            tools.as_ref(),
            pinned.then_some(o.client_cpu),
            o.tool_output.as_deref(),
        )?;
        r.saturation = Some(p.sat);
        r.half = Some(p.half);
        r.spin = p.spin;
        r.peak_rss_kib = Some(p.hwm);
        r.wrk = p.wrk;
        r.floor = p.floor;
        r.oha = p.oha;
    }
    r.tools = tools;
    r.standard_skipped = wants_load && o.no_standard_tools;

    let total = started.elapsed();
    let setup = Setup {
        pinned,
        prioritized,
        realtime,
        smoke,
    };
    let run = Run {
        machine: &machine,
        las: las.as_deref(),
        setup: &setup,
        o,
        r: &r,
        total,
    };
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report::json(&run))?);
    } else {
        print_report(&run);
    }
    if r.standard_skipped {
        eprintln!(
            "las-bench: WARNING: --no-standard-tools: no wrk, no oha, no HTTP floor; the targets were judged on the own generator"
        );
    }
    let errors = r.errors();
    let idle = [&r.saturation, &r.half]
        .into_iter()
        .flatten()
        .any(|l| l.completed == 0)
        || r.wrk.as_ref().is_some_and(|w| w.run.quotes_per_s() <= 0.0)
        || r.floor
            .as_ref()
            .is_some_and(|f| f.run.quotes_per_s() <= 0.0)
        || r.oha.as_ref().is_some_and(|h| h.run.ok == 0);
    if errors > 0 || idle {
        eprintln!("las-bench: FAILED: {errors} errors; a load phase without quotes: {idle}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn roundtrip(
    a: &RoundtripArgs,
    o: &Opts,
    pinned: bool,
    prioritized: bool,
) -> anyhow::Result<ExitCode> {
    let las = match &o.las {
        Some(p) => p.clone(),
        None => {
            // `las serve` executes the `lasd` beside it: both current.
            daemon::default_lasd()?;
            daemon::default_las()?
        }
    };
    let f = roundtrip::run(
        &las,
        pinned.then_some(o.daemon_cpu),
        roundtrip::Settings {
            rate: a.rate,
            count: a.count,
            concurrency: a.concurrency,
            duration: Duration::from_secs_f64(o.duration),
            cert: a.cert,
        },
    )?;
    let args: Vec<String> = std::env::args().collect();
    if o.json {
        let mut v = roundtrip::json(&f, args);
        if let Some(m) = v.as_object_mut() {
            m.insert("las".into(), serde_json::json!(las.display().to_string()));
            m.insert(
                "pinning".into(),
                if pinned {
                    serde_json::json!({"las_and_service_cpu": o.daemon_cpu, "client_cpu": o.client_cpu})
                } else {
                    serde_json::Value::Null
                },
            );
            m.insert("prioritized".into(), serde_json::json!(prioritized));
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let setup = format!(
            "{}; {}",
            if pinned {
                format!(
                    "LAS and service pinned to CPU {}, this process (the enclaves) to CPU {}",
                    o.daemon_cpu, o.client_cpu
                )
            } else {
                "nothing pinned".to_owned()
            },
            if prioritized {
                "in a session of their own whose autogroup has nice -20"
            } else {
                "default priority"
            }
        );
        roundtrip::print(&f, &args.join(" "), &setup);
    }
    let idle = f.low.rounds == 0 || f.max.rounds == 0;
    if f.errors() > 0 || idle {
        eprintln!(
            "las-bench: FAILED: {} failed rounds; a phase without rounds: {idle}",
            f.errors()
        );
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
    let r = las_testkit::http::try_http(addr, "GET", "/v1/target-info", &[], b"")?;
    anyhow::ensure!(r.status == 200, "GET /v1/target-info answered {}", r.status);
    let ti = TargetInfo::try_from_slice(&r.body).context("the daemon's target info")?;
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

/// Runs a standard generator and records the CPU the daemon spent meanwhile.
fn tool_phase<T>(
    daemon: u32,
    run: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(T, CpuTime)> {
    let d0 = CpuTime::of(daemon)?;
    let t = run()?;
    Ok((t, CpuTime::of(daemon)?.since(&d0)))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the phases' settings are plain values"
)]
fn load_phases(
    launch: &Launch,
    connections: usize,
    (warmup, duration): (Duration, Duration),
    realtime: Option<u8>,
    diagnose: bool,
    tools: Option<&StandardTools>,
    client_cpu: Option<usize>,
    keep: Option<&Path>,
) -> anyhow::Result<LoadPhases> {
    daemon::ensure_nofile(connections as u64 + 256)?;
    let (d, _) = launch.start()?;
    let pool = reports_for(d.addr, &launch.state_dir)?;
    // The standard generators post one REPORT of the pool; the warm-up below checks the
    // quote the daemon answers for it (each connection's first quote is verified).
    let request = match tools {
        Some(_) => Some(tools::Request::new(
            pool.first().context("empty request pool")?.report(),
        )?),
        None => None,
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        eprintln!("las-bench: warm-up {warmup:?}, closed loop");
        let w = load::saturate(d.addr, pool.clone(), connections, warmup, false).await?;
        if let Some(e) = w.first_error {
            anyhow::bail!("the warm-up failed: {e}");
        }
        let wrk = match (tools, &request) {
            (Some(t), Some(req)) => {
                let cmd =
                    tools::wrk_command(&t.wrk, req, d.addr, connections, duration, client_cpu);
                eprintln!("las-bench: wrk: {}", tools::shown(&cmd));
                let (run, daemon_cpu) = tool_phase(d.pid(), || {
                    tools::run_wrk(cmd, keep.map(|k| (k, "wrk.txt")))
                })?;
                Some(WrkPhase { run, daemon_cpu })
            }
            _ => None,
        };
        // The HTTP floor, right after wrk against the daemon, on the daemon's core (the
        // daemon idles meanwhile).
        // On a thread of its own: the test kit's blocking client starts a runtime, which
        // cannot be done on this one's thread.
        let floor = match (tools, &request) {
            (Some(t), Some(req)) => Some(
                std::thread::scope(|s| {
                    s.spawn(|| {
                        floor_phase(
                            t,
                            req,
                            d.addr,
                            launch.cpu,
                            (connections, duration),
                            client_cpu,
                            keep,
                        )
                    })
                    .join()
                })
                .map_err(|_| anyhow::anyhow!("the HTTP floor's thread panicked"))??,
            ),
            _ => None,
        };
        eprintln!("las-bench: own generator: saturation {duration:?}, {connections} connections");
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
        // Half the maximum rate: wrk's, when it ran; both open loops offer the same rate.
        let rate = wrk.as_ref().map_or(sat.rate(), |w| w.run.quotes_per_s()) / 2.0;
        if realtime.is_some() {
            d.set_realtime(realtime)?;
            daemon::set_realtime(std::process::id(), realtime)?;
        }
        eprintln!("las-bench: own generator: open loop at {rate:.0}/s for {duration:?}");
        let half = with_cpu(
            d.pid(),
            load::fixed_rate(d.addr, pool, connections, rate, duration),
        )
        .await;
        // oha inherits SCHED_FIFO from this process (its children keep the policy).
        let oha =
            match (&half, tools, &request) {
                (Ok(_), Some(t), Some(req)) => {
                    let cmd = tools::oha_command(
                        &t.oha,
                        req,
                        d.addr,
                        connections,
                        rate,
                        duration,
                        client_cpu,
                    );
                    eprintln!("las-bench: oha: {}", tools::shown(&cmd));
                    Some(tool_phase(d.pid(), || tools::run_oha(cmd, keep)).map(
                        |(run, daemon_cpu)| OhaPhase {
                            run,
                            daemon_cpu,
                            offered: rate,
                        },
                    ))
                }
                _ => None,
            };
        if realtime.is_some() {
            d.set_realtime(None)?;
            daemon::set_realtime(std::process::id(), None)?;
        }
        let half = half?;
        let oha = oha.transpose()?;
        anyhow::Ok((sat, half, spin, wrk, floor, oha))
    });
    let (sat, half, spin, wrk, floor, oha) = match result {
        Ok(x) => x,
        Err(e) => {
            // The log on its own lines, then the error: as context it would be joined to
            // the error's message on the log's last line.
            eprintln!("las-bench: daemon log:\n{}", d.log_tail().trim_end());
            return Err(e);
        }
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
        wrk,
        floor,
        oha,
    })
}

/// What the load phases measured.
#[derive(Debug)]
struct LoadPhases {
    sat: LoadResult,
    half: LoadResult,
    spin: Option<LoadResult>,
    hwm: u64,
    wrk: Option<WrkPhase>,
    floor: Option<FloorPhase>,
    oha: Option<OhaPhase>,
}

/// wrk against nginx answering a body the size of the daemon's quote (crate::floor), with
/// the same request, connections and duration as against the daemon.
fn floor_phase(
    t: &StandardTools,
    req: &tools::Request,
    daemon: std::net::SocketAddr,
    cpu: Option<usize>,
    (connections, duration): (usize, Duration),
    client_cpu: Option<usize>,
    keep: Option<&Path>,
) -> anyhow::Result<FloorPhase> {
    let report = std::fs::read(&req.body)?;
    let quote = las_testkit::http::try_http(
        daemon,
        "POST",
        las_core::api::QUOTE,
        &[("content-type", tools::CONTENT_TYPE)],
        &report,
    )?;
    anyhow::ensure!(
        quote.status == 200,
        "POST /v1/quote answered {}",
        quote.status
    );
    let body_bytes = quote.body.len();
    let nginx = floor::Nginx::start(&t.nginx, cpu, body_bytes, &report)?;
    eprintln!("las-bench: HTTP floor: {}", nginx.command);
    let cmd = tools::wrk_command(&t.wrk, req, nginx.addr, connections, duration, client_cpu);
    eprintln!("las-bench: wrk: {}", tools::shown(&cmd));
    let (run, nginx_cpu) = tool_phase(nginx.pid(), || {
        tools::run_wrk(cmd, keep.map(|k| (k, "wrk-floor.txt")))
    })?;
    Ok(FloorPhase {
        run,
        nginx_cpu,
        body_bytes,
        nginx: nginx.command.clone(),
    })
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
    let median = |v: &[Duration]| v.get(v.len() / 2).copied();
    let none = || anyhow::anyhow!("no start-up was measured");
    Ok(Startup {
        median: median(&times).ok_or_else(none)?,
        min: times.first().copied().ok_or_else(none)?,
        max: times.last().copied().ok_or_else(none)?,
        starts,
        hash: median(&hashes).ok_or_else(none)?,
        exe_bytes: std::fs::metadata(&launch.las)?.len(),
        idle_rss_kib,
        conns: idle,
        conns_rss_kib,
        crates: ["lasd", "las"]
            .into_iter()
            .map(|p| (p, daemon::crate_count(p).map_err(|e| format!("{e:#}"))))
            .collect(),
    })
}

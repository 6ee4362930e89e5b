//! `lasd`: the Local Attestation Service daemon.
//!
//! This executable is what the platform ID is bound to: its SHA-256 is the simulated
//! MRENCLAVE, and under Gramine it is the measured program. It is built from `las-core`,
//! `las-state`, `las-http`, `las-platform` and `las-server` only (tests/tree.rs), so that a change to operator
//! tooling (`las`, the verifier, discovery) never rotates a platform ID, and reproducibly
//! (scripts/build-lasd, docs/hardware.md). `las serve` and `las id` execute it.
//!
//! `lasd [OPTIONS]` serves; `lasd id [OPTIONS]` prints the platform ID. Exit codes: 0
//! success (including a graceful stop on SIGTERM/SIGINT), 2 error.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use las_server::ServerConfig;

use cli::{Cli, IdArgs, ServeArgs};

fn main() -> ExitCode {
    let args = Cli::parse();
    if let Err(e) = las_server::logging::init(args.log_format, args.log_level.as_deref()) {
        note(&format!("error: {e}"));
        return ExitCode::from(2);
    }
    let result = match args.command {
        Some(cli::Command::Id(a)) => id(a),
        Some(cli::Command::Serve(a)) => serve(a),
        None => serve(args.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            note(&format!(
                "error: {}",
                las_server::logging::error_chain(e.as_ref())
            ));
            ExitCode::from(2)
        }
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let platform = a.platform.config()?;
    let server = ServerConfig {
        listen: a.listen.unwrap_or(cli::DEFAULT_LISTEN),
        // Only the default may fall back to IPv4: an address given explicitly is bound as given.
        listen_v4_fallback: a.listen.is_none(),
        limits: a.limits.limits().map_err(anyhow::Error::msg)?,
        ..ServerConfig::default()
    };
    tracing::info!(target: "las", "state folder {}", platform.state_dir.display());
    // Allowed one CPU only (pinned, or a cgroup of one core): every task on the thread
    // that accepts, without the multi-thread scheduler's hand-offs between threads
    // (docs/performance.md, issue 27). Identity evidence still runs on the blocking pool.
    let one_cpu = std::env::var_os("TOKIO_WORKER_THREADS").is_none()
        && std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let rt = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build()
    .context("cannot start the async runtime")?;
    rt.block_on(las_server::run(server, platform))?;
    Ok(())
}

fn id(a: IdArgs) -> anyhow::Result<()> {
    let cfg = a.platform.config()?;
    let p = las_platform::open(&cfg)?;
    for note in p.startup_notes() {
        tracing::warn!(target: "las", "{note}");
    }
    if a.json {
        let las = p.las_enclave();
        let j = serde_json::json!({
            "platform_id": p.platform_id().to_string(),
            "mode": p.mode().as_str(),
            "cpusvn": hex::encode(p.cpusvn()),
            "las_mrenclave": hex::encode(las.mrenclave),
            "las_mrsigner": hex::encode(las.mrsigner),
            "state_dir": cfg.state_dir,
        });
        print_line(&j.to_string())?;
    } else {
        print_line(&p.platform_id().to_string())?;
    }
    Ok(())
}

/// One line on stdout. A closed pipe (`lasd id | true`) ends the process by SIGPIPE, as in
/// other Unix tools (Rust ignores SIGPIPE, and `println!` would panic).
fn print_line(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
            std::process::exit(128 + 13)
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// One line on stderr; dropped when stderr is closed (nobody is left to tell).
fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

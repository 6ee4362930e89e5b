//! `las`: the Local Attestation Service in one binary.
//!
//! `las serve` runs the per-node daemon (it executes `lasd`, the measured binary); `las id` prints the platform ID; `las quote` is
//! the enclave side (get a quote for a report); `las verify` checks a quote against a
//! policy. Exit codes: 0 success, 1 rejected (verify), 2 error.

#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod out;

mod cli;
mod cmd;

use std::process::ExitCode;

use cli::Command;
use cmd::{attest, lasd, platform_ids, policy, quote, tcb_state, verifier, verify, wait_ready};

use clap::Parser;
use las_server::logging::{self, LogFormat};

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // `serve` and `id` are `lasd`: it logs, with these options (environment variables
    // reach it anyway).
    let mut global = vec![
        "--log-format".into(),
        match args.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
        .into(),
    ];
    if let Some(l) = &args.log_level {
        global.extend(["--log-level".into(), l.into()]);
    }
    let runs_lasd = matches!(args.command, cli::Command::Serve(_) | cli::Command::Id(_));
    if !runs_lasd && let Err(e) = logging::init(args.log_format, args.log_level.as_deref()) {
        note!("error: {e}");
        return ExitCode::from(2);
    }
    match run(args.command, &global) {
        Ok(code) => code,
        Err(e) if out::is_stdout_closed(&e) => closed_stdout(),
        Err(e) => {
            note!("error: {}", logging::error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}

/// The reader of stdout has gone (`las id | true`): end as other Unix tools do, killed
/// by SIGPIPE (a shell reports 141), quietly. `las verify` does not come here: it exits
/// with its verdict's code. Should re-raising SIGPIPE fail, exit 141 (128 + SIGPIPE).
fn closed_stdout() -> ExitCode {
    let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
    ExitCode::from(128 + 13)
}

/// Runs `cmd`; `global` are the global options to hand on to `lasd`.
fn run(cmd: Command, global: &[std::ffi::OsString]) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Serve(a) => lasd::exec(global, &a.args),
        Command::Id(a) => {
            // After `id`: lasd's serve options (and options before `id`) conflict with it.
            let mut args = vec![std::ffi::OsString::from("id")];
            args.extend(global.iter().cloned());
            args.extend(a.args);
            lasd::exec(&[], &args)
        }
        Command::Quote(a) => quote::run(a),
        Command::Verify(a) => verify::run(a),
        Command::PlatformIds(a) => platform_ids::run(a),
        Command::Policy(c) => policy::run(c),
        Command::TcbState(a) => tcb_state::run(a),
        Command::Completion { shell } => {
            let mut cmd = <cli::Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics on a failed write (a closed pipe).
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "las", &mut buf);
            out!("{}", String::from_utf8_lossy(&buf))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => cmd::man(<cli::Cli as clap::CommandFactory>::command(), &dir),
        Command::WaitReady(a) => wait_ready::run(a),
        Command::Verifier(c) => verifier::run(c),
        Command::Attest(a) => attest::run(a),
    }
}

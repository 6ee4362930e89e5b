//! `las`: the Local Attestation Service in one binary.
//!
//! `las serve` runs the per-node daemon; `las id` prints the platform ID; `las quote` is
//! the enclave side (get a quote for a report); `las verify` checks a quote against a
//! policy. Exit codes: 0 success, 1 rejected (verify), 2 error.

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod logging;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    logging::init(args.log_format, args.log_level.as_deref());
    match cmd::run(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

//! One module per subcommand.

pub mod attest;
mod ear;
mod id;
mod platform;
pub mod platform_ids;
pub mod policy;
mod quote;
mod serve;
pub mod verifier;
mod verify;

use std::process::ExitCode;

use crate::cli::Command;

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Serve(a) => serve::run(a),
        Command::Id(a) => id::run(a),
        Command::Quote(a) => quote::run(a),
        Command::Verify(a) => verify::run(a),
        Command::PlatformIds(a) => platform_ids::run(a),
        Command::Policy(c) => policy::run(c),
        Command::Verifier(c) => verifier::run(c),
        Command::Attest(a) => attest::run(a),
    }
}

//! One module per subcommand.

mod id;
mod platform;
pub mod platform_ids;
pub mod policy;
mod quote;
mod serve;
mod verify;
pub mod wait_ready;

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
        Command::WaitReady(a) => wait_ready::run(a),
    }
}

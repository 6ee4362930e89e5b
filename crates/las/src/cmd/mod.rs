//! One module per subcommand.

mod id;
mod platform;
mod serve;

use std::process::ExitCode;

use crate::cli::Command;

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Serve(a) => serve::run(a),
        Command::Id(a) => id::run(a),
    }
}

//! One module per subcommand.

pub mod lasd;
pub mod platform_ids;
pub mod policy;
mod quote;
mod verify;

use std::process::ExitCode;

use crate::cli::Command;

/// Runs `cmd`; `global` are the global options to hand on to `lasd`.
pub fn run(cmd: Command, global: &[std::ffi::OsString]) -> anyhow::Result<ExitCode> {
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
    }
}

//! The daemon's command line: the options `las serve` has always accepted (`las serve ARGS`
//! runs `lasd ARGS`). Every option also reads an environment variable.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use las_platform::{ModeRequest, PlatformConfig};
use las_server::logging::LogFormat;

/// `lasd --version`: version, the source commit of the daemon's crates (build.rs) and the
/// compiled features (is the SGX backend in?).
#[cfg(feature = "sgx")]
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LASD_COMMIT"),
    "; features: sgx)"
);
#[cfg(not(feature = "sgx"))]
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LASD_COMMIT"),
    "; features: none, simulation only)"
);

/// The default listen address: every IPv6 and (with IPV6_V6ONLY off) every IPv4 address;
/// `0.0.0.0` where the kernel has no IPv6.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V6(SocketAddrV6::new(
    Ipv6Addr::UNSPECIFIED,
    las_server::DEFAULT_PORT,
    0,
    0,
));

/// The LAS daemon for SGX confidential computing (`las serve` runs it).
///
/// One LAS runs on every platform (server). It holds the platform's identity key, whose
/// public key is the platform ID, checks SGX reports of enclaves on its own platform and
/// answers with signed quotes.
///
/// Without flags: simulation mode where no SGX hardware is present (NOT SECURE), listening
/// on `[::]:18766` (IPv6 and IPv4; 0.0.0.0:18766 where the kernel has no IPv6), state in
/// /var/lib/las when usable, else in the per-user state folder ($XDG_STATE_HOME/las or
/// ~/.local/state/las).
#[derive(Debug, Parser)]
#[command(
    name = "lasd",
    version = LONG_VERSION,
    about,
    long_about,
    max_term_width = 100,
    args_conflicts_with_subcommands = true,
    args_override_self = true
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "LAS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter: `target=level` directives (e.g. `info`, `debug`, `las=debug,info`).
    /// Without it: RUST_LOG, else `info`.
    #[arg(long, global = true, env = "LAS_LOG")]
    pub log_level: Option<String>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print this platform's ID (the LAS public key) without starting a server.
    ///
    /// Uses the same state folder and derivation as serving with the same flags; creates
    /// the platform secret if there is none yet, exactly as serving would.
    Id(IdArgs),
    /// Serve (the default; `lasd serve ARGS` is `lasd ARGS`, so that `las serve`-style
    /// command lines, such as the chart's container arguments, keep working).
    #[command(hide = true)]
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ModeArg {
    /// Simulated SGX platform (NOT SECURE: for development and tests).
    Sim,
    /// Hardware SGX.
    Hw,
    /// Hardware SGX where present, else simulation.
    Auto,
}

/// Options that select the platform (shared by serving and `id`).
#[derive(Debug, Args)]
pub struct PlatformArgs {
    /// State folder: holds the simulated platform's root secret. Default: /var/lib/las
    /// when usable, else $XDG_STATE_HOME/las (or ~/.local/state/las).
    #[arg(long, env = "LAS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Platform backend.
    #[arg(long, env = "LAS_MODE", value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    /// Simulation only: CPUSVN as 32 hex characters, overriding the one derived from the
    /// host's microcode revision (to demonstrate a microcode update: new platform ID).
    #[arg(long, env = "LAS_SIM_CPUSVN", value_name = "HEX32")]
    pub sim_cpusvn: Option<String>,
}

impl PlatformArgs {
    pub fn config(&self) -> anyhow::Result<PlatformConfig> {
        let sim_cpusvn = self
            .sim_cpusvn
            .as_deref()
            .map(|s| las_core::hexfmt::decode_fixed::<16>("--sim-cpusvn", s))
            .transpose()
            .context("--sim-cpusvn (env LAS_SIM_CPUSVN) must be 32 hex characters")?;
        Ok(PlatformConfig {
            mode: match self.mode {
                ModeArg::Sim => ModeRequest::Sim,
                ModeArg::Hw => ModeRequest::Hw,
                ModeArg::Auto => ModeRequest::Auto,
            },
            state_dir: self
                .state_dir
                .clone()
                .unwrap_or_else(las_platform::default_state_dir),
            sim_cpusvn,
            sim_las_mrenclave: None,
            create_secret: true,
        })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (IPv4 or IPv6, e.g. 0.0.0.0:18766 or `[::1]:18766`).
    /// Default: `[::]:18766` with IPV6_V6ONLY off (IPv6 and IPv4), or 0.0.0.0:18766 where
    /// the kernel has no IPv6.
    #[arg(long, env = "LAS_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Body cap, request deadline, write deadline, connection cap, drain time: the same
    /// options as `las verifier serve` (las_server::LimitArgs).
    #[command(flatten)]
    pub limits: las_server::LimitArgs,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Print JSON (platform_id, mode, cpusvn, las_mrenclave, state_dir) instead of the ID.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

//! Command-line interface: every option also reads an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The Local Attestation Service (LAS) for SGX confidential computing.
///
/// One LAS runs on every platform (server). It holds the platform's identity key, whose
/// public key is the platform ID, checks SGX reports of enclaves on its own platform and
/// answers with signed quotes; verifiers check those quotes against a policy.
#[derive(Debug, Parser)]
#[command(name = "las", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "LAS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter (e.g. `info`, `debug`, `las=debug`).
    #[arg(long, global = true, env = "LAS_LOG")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; the platform-ID line's 8th field is the ID.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the LAS daemon on this platform.
    ///
    /// Without flags: simulation mode where no SGX hardware is present (NOT SECURE),
    /// listening on 0.0.0.0:18766, state in /var/lib/las when usable, else in the per-user
    /// state folder ($XDG_STATE_HOME/las or ~/.local/state/las).
    Serve(ServeArgs),
    /// Print this platform's ID (the LAS public key) without starting a server.
    ///
    /// Uses the same state folder and derivation as `serve` with the same flags; creates
    /// the platform secret if there is none yet, exactly as `serve` would.
    Id(IdArgs),
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

/// Options that select the platform (shared by `serve` and `id`).
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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (IPv4 or IPv6, e.g. 0.0.0.0:18766 or [::]:18766).
    #[arg(long, env = "LAS_LISTEN", default_value = "0.0.0.0:18766")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "LAS_MAX_BODY_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=16 * 1024 * 1024))]
    pub max_body_bytes: u32,
    /// Seconds a client has to send its request headers.
    #[arg(long, env = "LAS_HEADER_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Open connections at most; further ones are closed at once.
    #[arg(long, env = "LAS_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "LAS_DRAIN_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_timeout_secs: u64,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Print JSON (platform_id, mode, cpusvn, las_mrenclave, state_dir) instead of the ID.
    #[arg(long)]
    pub json: bool,
}

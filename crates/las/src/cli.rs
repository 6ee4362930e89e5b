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
    /// Get a quote for an application enclave on this platform (the enclave side).
    ///
    /// Fetches the LAS's target info, makes an SGX REPORT for it (simulated platform: with
    /// the platform secret in --state-dir) and sends it to the LAS, which answers with a
    /// quote signed by the platform key. Writes the quote to -o FILE, or base64 to stdout.
    Quote(QuoteArgs),
    /// Verify a quote against a policy. Exit code 0: accepted, 1: rejected (each reason
    /// printed), 2: error (unreadable file, malformed policy, LAS unreachable).
    Verify(VerifyArgs),
    /// Collect the platform IDs of every LAS (Kubernetes or direct, optionally verified).
    #[command(long_about = crate::cmd::platform_ids::ABOUT)]
    PlatformIds(crate::cmd::platform_ids::PlatformIdsArgs),
    /// Edit policy files (`set-platforms`: write collected IDs into a service's platforms).
    #[command(subcommand)]
    Policy(crate::cmd::policy::PolicyCommand),
    /// The verification service (`serve`): attests enclaves over the network and answers
    /// with signed EAR attestation results (docs/api.md, "Verification service").
    #[command(subcommand)]
    Verifier(crate::cmd::verifier::VerifierCommand),
    /// Attest a (simulated) enclave to a verification service and print the EAR. Exit
    /// code 0: affirming or warning, 1: contraindicated, 2: error.
    Attest(crate::cmd::attest::AttestArgs),
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
    /// Seconds a client has to send its request headers, and again its request body.
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

#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// The LAS: `host` or `host:port` (port 18766 by default).
    #[arg(
        long = "las",
        env = "SCONE_LAS_ADDR",
        default_value = "localhost",
        value_name = "ADDR"
    )]
    pub las: String,
    /// Report data the enclave binds into its REPORT: up to 64 bytes as hex (shorter values
    /// are padded with zero bytes), e.g. the SHA-256 of its TLS public key.
    #[arg(long, value_name = "HEX")]
    pub report_data: String,
    /// MRENCLAVE of the simulated application enclave (64 hex). Default: SHA-256 of the
    /// `las` executable itself.
    #[arg(long, value_name = "HEX64")]
    pub mrenclave: Option<String>,
    /// MRSIGNER of the simulated application enclave (64 hex). Default: all zero.
    #[arg(long, value_name = "HEX64")]
    pub mrsigner: Option<String>,
    /// ISVPRODID of the simulated application enclave.
    #[arg(long, default_value_t = 0)]
    pub isvprodid: u16,
    /// ISVSVN of the simulated application enclave.
    #[arg(long, default_value_t = 0)]
    pub isvsvn: u16,
    /// Make the simulated application enclave a DEBUG enclave.
    #[arg(long)]
    pub debug: bool,
    /// State folder of the LAS on this platform (simulation: its platform secret makes the
    /// REPORT). Default: as for `las serve`.
    #[arg(long, env = "LAS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Simulation only: the platform's CPUSVN override, as given to `las serve`.
    #[arg(long, env = "LAS_SIM_CPUSVN", value_name = "HEX32")]
    pub sim_cpusvn: Option<String>,
    /// Write the quote (raw COSE_Sign1 bytes) to FILE instead of base64 to stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Seconds to wait for the LAS.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("las_trust").args(["las", "identity"])))]
pub struct VerifyArgs {
    /// Policy file (session language v0.3; only the attestation part is read).
    #[arg(long, value_name = "FILE", required_unless_present = "ear")]
    pub policy: Option<PathBuf>,
    /// The quote: raw COSE_Sign1 bytes or base64 (what `las quote` writes).
    #[arg(long, value_name = "FILE", required_unless_present = "ear")]
    pub quote: Option<PathBuf>,
    /// Instead of a quote: check an EAR from a verification service (the token, or a file
    /// holding it) against --jwks, and print its claims.
    #[arg(long, value_name = "TOKEN|FILE", requires = "jwks", conflicts_with_all = ["policy", "quote"])]
    pub ear: Option<String>,
    /// With --ear: the service's key set (a JWKS file, or its http:// URL).
    #[arg(long, value_name = "FILE|URL", requires = "ear")]
    pub jwks: Option<String>,
    /// Service of the policy to check against (default: the only service).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Report data the enclave must have bound (hex, up to 64 bytes, zero-padded).
    #[arg(long, value_name = "HEX")]
    pub expect_report_data: Option<String>,
    /// Ask this LAS for fresh identity evidence (a random nonce) to trust its key.
    #[arg(long = "las", value_name = "ADDR")]
    pub las: Option<String>,
    /// Identity evidence of the LAS read from a file (from GET /v1/identity?nonce=...).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// With --identity: the nonce that evidence must answer (hex).
    #[arg(long, value_name = "HEX", requires = "identity")]
    pub identity_nonce: Option<String>,
    /// Verify as of this time (seconds since the Unix epoch) instead of now.
    #[arg(long, value_name = "UNIX_SECS")]
    pub now: Option<u64>,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the LAS (with --las) and for the PCCS (with --pccs-url).
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
    /// DCAP collateral file(s) for `sgx-dcap` LAS evidence (JSON: one collateral object or
    /// a list; a file of the --pccs-url cache works), for verifiers without a PCCS.
    #[arg(long, value_name = "FILE", env = "LAS_DCAP_COLLATERAL")]
    pub collateral: Vec<PathBuf>,
    /// PCCS (or Intel PCS) to fetch DCAP collateral from for `sgx-dcap` LAS evidence,
    /// e.g. https://pccs.example:8081; cached on disk until it expires.
    #[arg(long, value_name = "URL", env = "LAS_PCCS_URL")]
    pub pccs_url: Option<String>,
    /// Extra CA certificate(s) (PEM) trusted for an https PCCS with its own certificate.
    #[arg(long, value_name = "FILE", env = "LAS_PCCS_CA", requires = "pccs_url")]
    pub pccs_ca: Option<PathBuf>,
    /// Cache folder of fetched collateral (default: ~/.cache/las/dcap-collateral).
    #[arg(long, value_name = "DIR", env = "LAS_COLLATERAL_CACHE")]
    pub collateral_cache: Option<PathBuf>,
}

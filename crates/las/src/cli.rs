//! Command-line interface. Options that describe the machine or the deployment (state
//! folder, mode, listen address, LAS address, limits, collateral sources) also read an
//! environment variable; options that describe one request are flags only.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use las_server::logging::LogFormat;

/// The Local Attestation Service (LAS) for SGX confidential computing.
///
/// One LAS runs on every platform (server). It holds the platform's identity key, whose
/// public key is the platform ID, checks SGX reports of enclaves on its own platform and
/// answers with signed quotes; verifiers check those quotes against a policy.
#[derive(Debug, Parser)]
#[command(name = "las", version = VERSION, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "LAS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter: `target=level` directives (e.g. `info`, `debug`, `las=debug,info`).
    /// Without it: RUST_LOG, else `info`.
    #[arg(long, global = true, env = "LAS_LOG")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// `las --version`: the package version, the commit it was built from and the compiled
/// features (is the SGX hardware backend in?), from build.rs.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LAS_BUILD_COMMIT"),
    "; features: ",
    env!("LAS_BUILD_FEATURES"),
    ")"
);

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the LAS daemon on this platform: executes `lasd ARGS` (`las serve --help`
    /// lists its options).
    ///
    /// Without flags: simulation mode where no SGX hardware is present (NOT SECURE),
    /// listening on `[::]:18766` (IPv6 and IPv4; 0.0.0.0:18766 without kernel IPv6), state in
    /// /var/lib/las when usable, else in the per-user state folder ($XDG_STATE_HOME/las or
    /// ~/.local/state/las). `lasd` is looked for next to `las`, then on PATH.
    #[command(disable_help_flag = true)]
    Serve(PassThrough),
    /// Print this platform's ID (the LAS public key) without starting a server: executes
    /// `lasd id ARGS`, so the ID is the one that `lasd` has on this platform.
    ///
    /// Uses the same state folder and derivation as `serve` with the same flags; creates
    /// the platform secret if there is none yet, exactly as `serve` would. Options:
    /// --state-dir, --mode, --sim-cpusvn, --json (`las id --help`).
    #[command(disable_help_flag = true)]
    Id(PassThrough),
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
    /// Show a platform's TCB state as `scone las show-tcb-state` does: FMSPC, PPID, Intel
    /// QE ID, CPU SVN, PCE SVN, of a LAS (`--las ADDR`) or a DCAP quote file
    /// (`--dcap-quote FILE`); with --collateral or --pccs-url also Intel's TCB status and
    /// advisories. Exit code 0: shown, 2: error.
    TcbState(crate::cmd::tcb_state::TcbStateArgs),
    /// Edit policy files (`set-platforms`: write collected IDs into a service's platforms).
    #[command(subcommand)]
    Policy(crate::cmd::policy::PolicyCommand),
    /// Print a shell completion script: `source <(las completion bash)`, or save it where
    /// your shell loads completions (e.g. ~/.local/share/bash-completion/completions/las,
    /// a directory of $fpath as _las, ~/.config/fish/completions/las.fish).
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (las.1, las-serve.1, ...) into DIR, generated from the same
    /// definitions as --help.
    Man {
        /// Output folder (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Wait until a LAS is ready (`GET /readyz`), e.g. after starting `las serve` in the
    /// background. Exit code 0: ready; 1: not ready within --timeout; 2: error.
    WaitReady(WaitReadyArgs),
    /// The verification service (`serve`): attests enclaves over the network and answers
    /// with signed EAR attestation results (docs/api.md, "Verification service").
    #[command(subcommand)]
    Verifier(crate::cmd::verifier::VerifierCommand),
    /// Attest a (simulated) enclave to a verification service and print the EAR. Exit
    /// code 0: affirming or warning, 1: contraindicated, 2: error.
    Attest(crate::cmd::attest::AttestArgs),
}

#[derive(Debug, Args)]
pub struct WaitReadyArgs {
    /// The LAS: `host` or `host:port` (port 18766 by default).
    #[arg(
        long = "las",
        env = "SCONE_LAS_ADDR",
        default_value = "localhost",
        value_name = "ADDR"
    )]
    pub las: String,
    /// How long to wait: e.g. 500ms, 10s, 2m (a bare number is seconds).
    #[arg(long, env = "LAS_WAIT_TIMEOUT", default_value = "10s", value_name = "DURATION",
          value_parser = crate::duration::parse_timeout)]
    pub timeout: std::time::Duration,
}

/// Arguments handed unchanged to `lasd`, which defines and checks them (one definition).
#[derive(Debug, Args)]
pub struct PassThrough {
    /// Options of `lasd` (see `lasd --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
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
    /// How long to wait for the LAS, e.g. 10s, 1m, 500ms (bare seconds work too).
    #[arg(long = "timeout", visible_alias = "timeout-secs", value_name = "DURATION",
          default_value = "10s", value_parser = crate::duration::parse_timeout)]
    pub timeout: Duration,
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
    /// Reject a quote issued longer ago than this (`30s`, `5m`, `1h`, `1h 30m`), judged by
    /// its issue time and the verifier's clock (or --now): `quote-too-old`. Without it and
    /// without --expect-report-data, an accepted quote may be a replay (a note says so).
    #[arg(long, value_name = "DURATION", env = "LAS_VERIFY_MAX_AGE", value_parser = parse_duration)]
    pub max_age: Option<std::time::Duration>,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print how the policy was read: the service, its attestation alternatives,
    /// platforms, tolerations, ignored advisories, and the keys not evaluated (with
    /// their lines). With --json it is the verdict's `policy` field.
    #[arg(long)]
    pub explain: bool,
    /// How long to wait for the LAS (with --las) and for the PCCS (with --pccs-url), e.g.
    /// 10s, 1m, 500ms (bare seconds work too).
    #[arg(long = "timeout", visible_alias = "timeout-secs", value_name = "DURATION",
          default_value = "10s", value_parser = crate::duration::parse_timeout)]
    pub timeout: Duration,
    /// DCAP collateral file(s) for `sgx-dcap` LAS evidence (JSON: one collateral object or
    /// a list; a file of the --pccs-url cache works), for verifiers without a PCCS.
    #[arg(long, value_name = "FILE", env = "LAS_DCAP_COLLATERAL")]
    pub collateral: Vec<PathBuf>,
    /// PCCS (or Intel PCS) to fetch DCAP collateral from for `sgx-dcap` LAS evidence,
    /// e.g. `https://pccs.example:8081`; cached on disk until it expires.
    #[arg(long, value_name = "URL", env = "LAS_PCCS_URL")]
    pub pccs_url: Option<String>,
    /// Extra CA certificate(s) (PEM) trusted for an https PCCS with its own certificate.
    #[arg(long, value_name = "FILE", env = "LAS_PCCS_CA", requires = "pccs_url")]
    pub pccs_ca: Option<PathBuf>,
    /// Cache folder of fetched collateral (default: ~/.cache/las/dcap-collateral).
    #[arg(long, value_name = "DIR", env = "LAS_COLLATERAL_CACHE")]
    pub collateral_cache: Option<PathBuf>,
}

/// A duration as `30s`, `5m`, `1h`, `1h 30m` (humantime's syntax).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 30s, 5m or 1h: {e}"))
}

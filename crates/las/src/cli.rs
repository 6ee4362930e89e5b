//! Command-line interface. Options that describe the machine or the deployment (state
//! folder, mode, listen address, LAS address, limits, collateral sources) also read an
//! environment variable; options that describe one request are flags only.

use std::ffi::OsString;
use std::path::PathBuf;

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
    /// ~/.local/state/las). `lasd` is looked for next to the `las` executable, then on PATH
    /// (`las serve --help` names the one it found).
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
    Quote(crate::cmd::quote::QuoteArgs),
    /// Verify a quote against a policy. Exit code 0: accepted, 1: rejected (each reason
    /// printed), 2: error (unreadable file, malformed policy, LAS unreachable).
    Verify(crate::cmd::verify::VerifyArgs),
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
    WaitReady(crate::cmd::wait_ready::WaitReadyArgs),
    /// The verification service (`serve`): attests enclaves over the network and answers
    /// with signed EAR attestation results (docs/api.md, "Verification service").
    #[command(subcommand)]
    Verifier(crate::cmd::verifier::VerifierCommand),
    /// Attest a (simulated) enclave to a verification service and print the EAR. Exit
    /// code 0: affirming or warning, 1: contraindicated, 2: error.
    Attest(crate::cmd::attest::AttestArgs),
}

/// Arguments handed unchanged to `lasd`, which defines and checks them (one definition).
#[derive(Debug, Args)]
pub struct PassThrough {
    /// Options of `lasd` (see `lasd --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

//! `las quote`: the enclave side of local attestation on the simulated platform.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use clap::Args;
use las_client::{LasClient, SimEnclave, attest};
use las_core::egetkey::EnclaveIdentity;
use las_core::hexfmt::decode_fixed;
use las_core::sgx::{Attributes, flags};

/// `las quote`: the simulated application enclave and its LAS (also flattened into
/// `las attest`).
#[derive(Debug, Args)]
pub struct QuoteArgs {
    #[command(flatten)]
    pub las: super::LocalLas,
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
          default_value = "10s", value_parser = las_server::duration::timeout)]
    pub timeout: Duration,
}

/// Parses up to 64 bytes of hex, zero-padded to 64.
pub fn report_data(what: &str, s: &str) -> anyhow::Result<[u8; 64]> {
    let s = s.trim();
    let b = hex::decode(s).with_context(|| format!("{what} is not hex"))?;
    anyhow::ensure!(b.len() <= 64, "{what} is {} bytes; at most 64", b.len());
    let mut out = [0u8; 64];
    out.get_mut(..b.len())
        .context("length checked above")?
        .copy_from_slice(&b);
    Ok(out)
}

pub fn run(a: QuoteArgs) -> anyhow::Result<ExitCode> {
    let rd = report_data("--report-data", &a.report_data)?;
    let (las, enclave) = sim_enclave(&a)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let q = rt.block_on(attest(&las, &enclave, &rd))?;
    match &a.output {
        Some(path) => {
            super::write_output(path, &q.bytes)?;
            note!(
                "quote from platform {} written to {} ({} bytes)",
                q.platform_id,
                path.display(),
                q.bytes.len()
            );
        }
        None => outln!(
            "{}",
            base64::engine::general_purpose::STANDARD.encode(&q.bytes)
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The LAS client and the simulated application enclave that `a` describes (shared with
/// `las attest`).
pub fn sim_enclave(a: &QuoteArgs) -> anyhow::Result<(LasClient, SimEnclave)> {
    let las_addr = a.las.parse()?;
    let mrenclave = match &a.mrenclave {
        Some(h) => decode_fixed::<32>("--mrenclave", h)?,
        None => {
            let exe = las_platform::measure::current_exe().context("cannot find own executable")?;
            las_platform::measure::sha256_file(&exe).context("cannot measure own executable")?
        }
    };
    let mrsigner = match &a.mrsigner {
        Some(h) => decode_fixed::<32>("--mrsigner", h)?,
        None => [0; 32],
    };
    let cpusvn = a
        .sim_cpusvn
        .as_deref()
        .map(|s| decode_fixed::<16>("--sim-cpusvn", s))
        .transpose()?;
    let mut f = flags::INIT | flags::MODE64BIT;
    if a.debug {
        f |= flags::DEBUG;
    }
    let identity = EnclaveIdentity {
        mrenclave,
        mrsigner,
        attributes: Attributes { flags: f, xfrm: 3 },
        isvprodid: a.isvprodid,
        isvsvn: a.isvsvn,
        ..EnclaveIdentity::default()
    };
    let state_dir = a
        .state_dir
        .clone()
        .unwrap_or_else(las_platform::default_state_dir_to_read);
    let enclave = SimEnclave::open(&state_dir, cpusvn, identity)?;
    let las = LasClient::new(las_addr, a.timeout);
    Ok((las, enclave))
}

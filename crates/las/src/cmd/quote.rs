//! `las quote`: the enclave side of local attestation on the simulated platform.

use std::process::ExitCode;

use anyhow::Context;
use base64::Engine;
use las_client::{LasAddr, LasClient, SimEnclave, attest};
use las_core::egetkey::EnclaveIdentity;
use las_core::hexfmt::decode_fixed;
use las_core::sgx::{Attributes, flags};

use crate::cli::QuoteArgs;

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
    let las_addr = LasAddr::parse(&a.las)?;
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
        .unwrap_or_else(las_platform::default_state_dir);
    let enclave = SimEnclave::open(&state_dir, cpusvn, identity)?;
    let las = LasClient::new(las_addr, a.timeout);
    Ok((las, enclave))
}

//! `las attest`: the enclave side of the exchange with a verification service. Exit 0
//! affirming or warning, 1 contraindicated, 2 error.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use las_core::api::verifier::EarStatus;
use las_verifier_service::client::VerifierClient;

use super::quote::QuoteArgs;

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The verification service, e.g. http://verifier:18767.
    #[arg(long, env = "LAS_VERIFIER_URL", value_name = "URL")]
    pub verifier: String,
    /// The policy's service to attest as.
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// The simulated enclave and its LAS, as for `las quote`. --report-data is the
    /// application's own data (e.g. SHA-256 of its TLS key); the quote binds
    /// SHA-512(nonce ‖ report data). -o writes the EAR to a file instead of stdout.
    #[command(flatten)]
    pub quote: QuoteArgs,
}

pub fn run(a: AttestArgs) -> anyhow::Result<ExitCode> {
    let app_data = hex::decode(a.quote.report_data.trim()).context("--report-data is not hex")?;
    anyhow::ensure!(
        app_data.len() <= 64,
        "--report-data is {} bytes; at most 64",
        app_data.len()
    );
    let (las, enclave) = super::quote::sim_enclave(&a.quote)?;
    let verifier = VerifierClient::new(&a.verifier, a.quote.timeout)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The enclave's side fetches its LAS's identity evidence for the service's nonce and
    // posts it with the quote: the service itself connects to no LAS.
    let answer = rt
        .block_on(verifier.attest_enclave(&a.service, &las, &enclave, &app_data))
        .context("the verifier did not appraise the quote")?;
    match &a.quote.output {
        Some(path) => {
            super::write_output(path, format!("{}\n", answer.ear).as_bytes())?;
        }
        None => outln!("{}", answer.ear)?,
    }
    note!("ear.status: {}", answer.status);
    Ok(match answer.status {
        EarStatus::Affirming | EarStatus::Warning => ExitCode::SUCCESS,
        EarStatus::Contraindicated => ExitCode::from(1),
    })
}

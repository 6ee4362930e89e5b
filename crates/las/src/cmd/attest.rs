//! `las attest`: the enclave side of the exchange with a verification service. Exit 0
//! affirming or warning, 1 contraindicated, 2 error.

use std::path::PathBuf;
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
    /// Get a workload certificate: generate a P-256 key, bind SHA-256 of its
    /// SubjectPublicKeyInfo as the first 32 bytes of the report data (--report-data then
    /// follows it, at most 32 bytes), send a CSR, and write the key here (mode 0600; a
    /// link at KEY is replaced, never followed). Needs --cert-out.
    #[arg(
        long,
        value_name = "KEY",
        requires = "cert_out",
        conflicts_with = "csr"
    )]
    pub key_out: Option<PathBuf>,
    /// Get a workload certificate for the key of this CSR (PKCS#10, PEM or DER), bound as
    /// with --key-out. Needs --cert-out.
    #[arg(long, value_name = "FILE", requires = "cert_out")]
    pub csr: Option<PathBuf>,
    /// Where to write the certificate chain (PEM: leaf, then the issuing CA) when the
    /// verdict is affirming or warning. Nothing is written otherwise.
    #[arg(long, value_name = "CERT")]
    pub cert_out: Option<PathBuf>,
}

/// Largest CSR file read.
const MAX_CSR_FILE: u64 = las_verifier_service::ca::MAX_CSR as u64;

pub fn run(a: AttestArgs) -> anyhow::Result<ExitCode> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use las_verifier_service::ca;
    let given = hex::decode(a.quote.report_data.trim()).context("--report-data is not hex")?;
    anyhow::ensure!(
        a.cert_out.is_none() || a.key_out.is_some() || a.csr.is_some(),
        "--cert-out needs --key-out (a new key) or --csr FILE (your key)"
    );
    // The workload key: new, or the caller's CSR.
    let (new_key, csr) = match (&a.key_out, &a.csr) {
        (Some(_), _) => {
            let (pem, der, key) = ca::new_workload_key()?;
            (Some(pem), Some((STANDARD.encode(der), key)))
        }
        (None, Some(path)) => {
            let meta = std::fs::metadata(path)
                .with_context(|| format!("cannot read --csr {}", path.display()))?;
            anyhow::ensure!(
                meta.len() <= MAX_CSR_FILE,
                "--csr {} is {} bytes; at most {MAX_CSR_FILE}",
                path.display(),
                meta.len()
            );
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read --csr {}", path.display()))?;
            let key = ca::parse_csr(&bytes).with_context(|| format!("--csr {}", path.display()))?;
            // The wire form: PEM text as it is, DER in base64.
            let wire = match std::str::from_utf8(&bytes) {
                Ok(t) if t.trim_start().starts_with("-----BEGIN") => t.to_owned(),
                _ => STANDARD.encode(&bytes),
            };
            (None, Some((wire, key)))
        }
        (None, None) => (None, None),
    };
    let app_data = match &csr {
        Some((_, key)) => {
            anyhow::ensure!(
                given.len() <= 32,
                "--report-data is {} bytes; with a workload key at most 32 (the key's hash takes the first 32)",
                given.len()
            );
            let mut d = key.spki_sha256().to_vec();
            d.extend_from_slice(&given);
            d
        }
        None => given,
    };
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
        .block_on(verifier.attest_enclave_with_csr(
            &a.service,
            &las,
            &enclave,
            &app_data,
            csr.as_ref().map(|(wire, _)| wire.as_str()),
        ))
        .context("the verifier did not appraise the quote")?;
    match &a.quote.output {
        Some(path) => {
            super::write_output(path, format!("{}\n", answer.ear).as_bytes())?;
        }
        None => outln!("{}", answer.ear)?,
    }
    note!("ear.status: {}", answer.status);
    if let Some(cert_out) = &a.cert_out {
        match (&answer.certificate_chain, answer.status) {
            (Some(chain), EarStatus::Affirming | EarStatus::Warning) => {
                if let (Some(path), Some(pem)) = (&a.key_out, &new_key) {
                    super::write_private(path, pem.as_bytes())?;
                }
                super::write_output(cert_out, chain.as_bytes())?;
                note!("certificate chain written to {}", cert_out.display());
            }
            (_, EarStatus::Contraindicated) => {
                note!("no certificate: the attestation was rejected (nothing written)");
            }
            _ => anyhow::bail!("the verifier accepted the enclave but sent no certificate"),
        }
    }
    Ok(match answer.status {
        EarStatus::Affirming | EarStatus::Warning => ExitCode::SUCCESS,
        EarStatus::Contraindicated => ExitCode::from(1),
    })
}

//! `las verify --ear TOKEN|FILE --jwks FILE|URL`: a relying party's check of an EAR.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use las_verifier_service::client::VerifierClient;

/// Largest EAR or JWKS file read.
const MAX_FILE: u64 = 256 * 1024;

fn read_small(path: &Path, what: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))?;
    anyhow::ensure!(
        meta.len() <= MAX_FILE,
        "{what} file {} is {} bytes; too large",
        path.display(),
        meta.len()
    );
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))
}

/// Verifies the EAR; prints its claims as JSON. Exit 0 when the signature, profile and
/// validity hold (whatever the `ear.status`: reading it is the relying party's job), 1
/// when they do not, 2 on errors (unreadable files, JWKS unreachable).
pub fn run(ear: &str, jwks: &str, now: Option<u64>, timeout: Duration) -> anyhow::Result<ExitCode> {
    let token = if ear.matches('.').count() == 2 && !Path::new(ear).exists() {
        ear.to_owned()
    } else {
        read_small(Path::new(ear), "EAR")?
    };
    let jwks: las_core::api::verifier::Jwks =
        if jwks.starts_with("http://") || jwks.starts_with("https://") {
            let base = jwks.strip_suffix("/.well-known/jwks.json").unwrap_or(jwks);
            let client = VerifierClient::new(base, timeout)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(client.jwks())
                .with_context(|| format!("cannot fetch the JWKS from {jwks}"))?
        } else {
            serde_json::from_str(&read_small(Path::new(jwks), "JWKS")?)
                .with_context(|| format!("JWKS file {jwks} is not a JWKS (RFC 7517)"))?
        };
    let now = now.unwrap_or_else(las_platform::unix_now);
    match las_verifier_service::verify_ear(&token, &jwks, now) {
        Ok(claims) => {
            outln!("{}", serde_json::to_string_pretty(&claims)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            note!("EAR REJECTED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

//! `las verifier serve`: the verification service (crate las-verifier-service).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use las_verifier::dcap::CollateralSet;
use las_verifier_service::ServiceConfig;

#[derive(Debug, Subcommand)]
pub enum VerifierCommand {
    /// Run the verification service: nonces at POST /v1/nonce, attestation at
    /// POST /v1/attest (answer: an EAR signed with ES256), its key set at
    /// GET /.well-known/jwks.json, /healthz, /readyz, /metrics. The policy file is
    /// re-read when it changes (a version that does not parse is refused and the old one
    /// kept). The state folder holds the EAR signing key and the nonce key: created once
    /// (0600), shared by replicas.
    Serve(VerifierServeArgs),
}

#[derive(Debug, Args)]
pub struct VerifierServeArgs {
    /// Policy file (session language v0.3); may define several services.
    #[arg(long, env = "LAS_VERIFIER_POLICY", value_name = "FILE")]
    pub policy: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "LAS_VERIFIER_LISTEN", default_value = "0.0.0.0:18767")]
    pub listen: SocketAddr,
    /// State folder: `ear-signing-key.pem` and `nonce-key` (created when absent).
    #[arg(long, env = "LAS_VERIFIER_STATE_DIR", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Seconds a nonce stays valid.
    #[arg(long, env = "LAS_VERIFIER_NONCE_LIFETIME_SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub nonce_lifetime_secs: u64,
    /// Seconds verified LAS identity evidence is reused per platform ID (at most 570: the
    /// verifier refuses evidence older than 600 s).
    #[arg(long, env = "LAS_VERIFIER_EVIDENCE_CACHE_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=570))]
    pub evidence_cache_secs: u64,
    /// Memory the evidence cache may hold, in bytes. Only evidence that matched the key
    /// of the quote it came with is cached; a full cache takes no new entries (it never
    /// evicts live ones).
    #[arg(long, env = "LAS_VERIFIER_EVIDENCE_CACHE_BYTES",
          default_value_t = las_verifier_service::DEFAULT_EVIDENCE_CACHE_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(0..=1 << 34))]
    pub evidence_cache_bytes: u64,
    /// Networks (CIDR, comma-separated, e.g. 10.0.0.0/8,fd00::/8) a LAS named in an
    /// attestation request (`las`) may resolve into for the service to fetch its identity
    /// evidence itself. Without it (the default) the service makes no outbound
    /// connection: clients post the evidence (`las attest` does), and a request naming a
    /// LAS is refused with `evidence-fetch-disabled`. A fetched answer is never passed to
    /// the client.
    #[arg(
        long,
        env = "LAS_VERIFIER_FETCH_EVIDENCE_FROM",
        value_name = "CIDR,...",
        value_delimiter = ','
    )]
    pub fetch_evidence_from: Vec<las_verifier_service::IpNet>,
    /// Seconds an EAR is valid (`exp` - `iat`).
    #[arg(long, env = "LAS_VERIFIER_EAR_LIFETIME_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub ear_lifetime_secs: u64,
    /// Seconds to wait for a LAS.
    #[arg(long, env = "LAS_VERIFIER_LAS_TIMEOUT_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub las_timeout_secs: u64,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "LAS_VERIFIER_MAX_BODY_BYTES", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=16 * 1024 * 1024))]
    pub max_body_bytes: u32,
    /// Seconds a client has to send its request headers.
    #[arg(long, env = "LAS_VERIFIER_HEADER_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Seconds a blocked answer write may take: a client that does not read its answers
    /// loses its connection after this long.
    #[arg(long, env = "LAS_VERIFIER_WRITE_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub write_timeout_secs: u64,
    /// Quote signatures of waiting requests verified together at most (1: each alone).
    /// A lone request is checked at once; batches form only when requests wait.
    #[arg(long, env = "LAS_VERIFIER_VERIFY_BATCH_MAX", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub verify_batch_max: u16,
    /// Open connections at most; further ones are closed at once.
    #[arg(long, env = "LAS_VERIFIER_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "LAS_VERIFIER_DRAIN_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_timeout_secs: u64,
    /// Copy `ear-signing-key.pem` and `nonce-key` from DIR (e.g. a mounted Kubernetes
    /// Secret: symlinks and group read allowed there) into the state folder before
    /// starting; a different key already in the state folder is an error.
    #[arg(long, env = "LAS_VERIFIER_IMPORT_KEYS_FROM", value_name = "DIR")]
    pub import_keys_from: Option<PathBuf>,
    /// DCAP collateral file(s) for `sgx-dcap` LAS evidence (as for `las verify`).
    #[arg(long, value_name = "FILE", env = "LAS_DCAP_COLLATERAL")]
    pub collateral: Vec<PathBuf>,
}

pub fn run(c: VerifierCommand) -> anyhow::Result<ExitCode> {
    let VerifierCommand::Serve(a) = c;
    let mut config = ServiceConfig::new(a.policy, a.state_dir);
    config.listen = a.listen;
    config.import_keys_from = a.import_keys_from;
    config.nonce_lifetime = a.nonce_lifetime_secs;
    config.evidence_cache = a.evidence_cache_secs;
    config.ear_lifetime = a.ear_lifetime_secs;
    config.evidence_cache_bytes = usize::try_from(a.evidence_cache_bytes).unwrap_or(usize::MAX);
    config.fetch_evidence_from = a.fetch_evidence_from.iter().map(|n| n.trunc()).collect();
    config.las_timeout = Duration::from_secs(a.las_timeout_secs);
    config.body_limit = a.max_body_bytes as usize;
    config.connections.header_timeout = Duration::from_secs(a.header_timeout_secs);
    config.connections.write_timeout = Duration::from_secs(a.write_timeout_secs);
    config.verify_batch_max = usize::from(a.verify_batch_max);
    config.connections.max_connections = a.max_connections as usize;
    config.connections.drain_timeout = Duration::from_secs(a.drain_timeout_secs);
    for f in &a.collateral {
        let bytes = std::fs::read(f)
            .with_context(|| format!("cannot read collateral file {}", f.display()))?;
        config.collateral.extend(
            CollateralSet::from_json(&bytes)
                .with_context(|| format!("malformed collateral file {}", f.display()))?,
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let shutdown = las_server::shutdown_signal();
        las_verifier_service::run(config, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

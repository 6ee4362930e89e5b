//! `las verifier serve`: the verification service (crate las-verifier-service).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use las_server::duration;
use las_verifier_service::{
    DEFAULT_EAR_LIFETIME, DEFAULT_EVIDENCE_CACHE, DEFAULT_LAS_TIMEOUT, DEFAULT_NONCE_LIFETIME,
    DEFAULT_POLICY_SETTLE, MAX_EVIDENCE_CACHE, ServiceConfig,
};

#[derive(Debug, Subcommand)]
pub enum VerifierCommand {
    /// Run the verification service: nonces at POST /v1/nonce, attestation at
    /// POST /v1/attest (answer: an EAR signed with ES256), its key set at
    /// GET /.well-known/jwks.json, /healthz, /readyz, /metrics. The policy file is
    /// re-read when it changes (a version that does not parse is refused and the old one
    /// kept). The state folder holds the EAR signing key, the nonce key and the CA of
    /// workload certificates (GET /v1/ca): created once (0600), shared by replicas.
    Serve(VerifierServeArgs),
}

/// The options of `las verifier serve`. The limit options are lasd's (one definition,
/// `las_server::LimitArgs`), reading `LAS_VERIFIER_...` variables, with the service's
/// body cap as default.
#[derive(Debug, Args)]
#[command(
    mut_arg("max_body_bytes", |a| a.env("LAS_VERIFIER_MAX_BODY_BYTES").default_value(SERVICE_BODY_LIMIT_TEXT)),
    mut_arg("header-timeout", |a| a.env("LAS_VERIFIER_HEADER_TIMEOUT_SECS")),
    mut_arg("write-timeout", |a| a.env("LAS_VERIFIER_WRITE_TIMEOUT_SECS")),
    mut_arg("max_connections", |a| a.env("LAS_VERIFIER_MAX_CONNECTIONS")),
    mut_arg("drain-timeout", |a| a.env("LAS_VERIFIER_DRAIN_TIMEOUT_SECS")),
)]
pub struct VerifierServeArgs {
    /// Policy file (session language v0.3); may define several services. Replace it
    /// atomically (write a new file, then rename it over the old one, as editors and
    /// Kubernetes ConfigMaps do): that is taken at once. A file rewritten in place is taken
    /// only after its bytes stayed the same for --policy-settle.
    #[arg(long, env = "LAS_VERIFIER_POLICY", value_name = "FILE")]
    pub policy: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "LAS_VERIFIER_LISTEN", default_value = "0.0.0.0:18767")]
    pub listen: SocketAddr,
    /// State folder: `ear-signing-key.pem`, `nonce-key` and the CA of workload
    /// certificates, `ca-key.pem` and `ca-cert.pem` (created when absent).
    #[arg(long, env = "LAS_VERIFIER_STATE_DIR", value_name = "DIR")]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub nonce_lifetime: NonceLifetime,
    #[command(flatten)]
    pub evidence_cache: EvidenceCache,
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
    #[command(flatten)]
    pub ear_lifetime: EarLifetime,
    #[command(flatten)]
    pub las_timeout: LasTimeout,
    /// How long a policy file rewritten in place must keep the same bytes before it is
    /// taken (`5s`; at most 1h): a writer that pauses mid-file never gets half a policy
    /// loaded. A new file renamed over the old one is taken at once.
    #[arg(long, env = "LAS_VERIFIER_POLICY_SETTLE", value_name = "DURATION",
          default_value_t = DEFAULT_POLICY_SETTLE.into(), value_parser = timeout)]
    pub policy_settle: duration::Shown,
    #[command(flatten)]
    pub limits: las_server::LimitArgs,
    /// Quote signatures of waiting requests verified together at most (1: each alone).
    /// A lone request is checked at once; batches form only when requests wait.
    #[arg(long, env = "LAS_VERIFIER_VERIFY_BATCH_MAX", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub verify_batch_max: u16,
    /// Copy `ear-signing-key.pem` and `nonce-key` (and `ca-key.pem`, `ca-cert.pem` when DIR
    /// has them) from DIR (e.g. a mounted Kubernetes Secret: symlinks and group read
    /// allowed there) into the state folder before starting; a different key already in
    /// the state folder is an error.
    #[arg(long, env = "LAS_VERIFIER_IMPORT_KEYS_FROM", value_name = "DIR")]
    pub import_keys_from: Option<PathBuf>,
    /// The form of the EAR tokens: `ietf` (draft-ietf-rats-ear-04, what Veraison's `ear`
    /// 0.6 reads) or `veraison` (the legacy dotted names Veraison's Go services and Trustee
    /// read). docs/api.md says why `ietf` is the default.
    #[arg(long, env = "LAS_VERIFIER_EAR_PROFILE", value_enum, default_value_t = EarProfileArg::Ietf)]
    pub ear_profile: EarProfileArg,
    /// SPIFFE trust domain of workload certificates: their URI SAN is
    /// `spiffe://TRUST_DOMAIN/SERVICE` (docs/workload-certificates.md).
    #[arg(long, env = "LAS_VERIFIER_TRUST_DOMAIN", default_value = "las.local")]
    pub trust_domain: String,
    /// How long a workload certificate is valid, from the quote (`1h`, `30m`; 1m to 7d).
    /// Short: nothing revokes it; one hour is SPIRE's default for X.509 SVIDs.
    #[arg(long, env = "LAS_VERIFIER_CERT_LIFETIME", value_name = "DURATION",
          default_value_t = las_verifier_service::ca::DEFAULT_CERT_LIFETIME.into(),
          value_parser = cert_lifetime)]
    pub cert_lifetime: duration::Shown,
    /// The CA certificate file (PEM; the issuing CA first, older CAs after it are served
    /// in GET /v1/ca too), e.g. from cert-manager. With --ca-key. Default: `ca-cert.pem`
    /// in the state folder, created with `ca-key.pem` on first start.
    #[arg(
        long,
        env = "LAS_VERIFIER_CA_CERT",
        value_name = "FILE",
        requires = "ca_key"
    )]
    pub ca_cert: Option<PathBuf>,
    /// The CA key file (P-256, PKCS#8 or SEC1 PEM; no group write or other bits). With
    /// --ca-cert.
    #[arg(
        long,
        env = "LAS_VERIFIER_CA_KEY",
        value_name = "FILE",
        requires = "ca_cert"
    )]
    pub ca_key: Option<PathBuf>,
    /// DCAP collateral file(s) for `sgx-dcap` LAS evidence (as for `las verify`).
    #[arg(long, value_name = "FILE", env = "LAS_DCAP_COLLATERAL")]
    pub collateral: Vec<PathBuf>,
}

/// [`las_verifier_service::SERVICE_BODY_LIMIT`] as clap's default text (checked by a test).
const SERVICE_BODY_LIMIT_TEXT: &str = "65536";

fn within(s: &str, min: Duration, max: Duration) -> Result<duration::Shown, String> {
    duration::within(s, min, max).map(Into::into)
}

fn timeout(s: &str) -> Result<duration::Shown, String> {
    duration::timeout(s).map(Into::into)
}

fn evidence_cache(s: &str) -> Result<duration::Shown, String> {
    within(s, Duration::ZERO, MAX_EVIDENCE_CACHE)
}

fn ear_lifetime(s: &str) -> Result<duration::Shown, String> {
    within(s, Duration::from_secs(1), Duration::from_secs(86400))
}

fn cert_lifetime(s: &str) -> Result<duration::Shown, String> {
    within(s, Duration::from_secs(60), Duration::from_secs(7 * 86400))
}

fn las_timeout(s: &str) -> Result<duration::Shown, String> {
    within(s, Duration::from_secs(1), Duration::from_secs(300))
}

las_server::duration_option_with_secs! {
    /// How long a nonce stays valid (`2m`, `90s`; a bare number is seconds; at most 1h).
    NonceLifetime: "nonce-lifetime", env "LAS_VERIFIER_NONCE_LIFETIME_SECS",
    default DEFAULT_NONCE_LIFETIME, check timeout
}

las_server::duration_option_with_secs! {
    /// How long verified LAS identity evidence is reused per platform ID (`5m`, `0s`; at
    /// most 9m30s: the verifier refuses evidence older than 10 minutes).
    EvidenceCache: "evidence-cache", env "LAS_VERIFIER_EVIDENCE_CACHE_SECS",
    default DEFAULT_EVIDENCE_CACHE, check evidence_cache
}

las_server::duration_option_with_secs! {
    /// How long an EAR is valid, `exp` - `iat` (`5m`; at most 24h).
    EarLifetime: "ear-lifetime", env "LAS_VERIFIER_EAR_LIFETIME_SECS",
    default DEFAULT_EAR_LIFETIME, check ear_lifetime
}

las_server::duration_option_with_secs! {
    /// How long to wait for a LAS (`5s`; at most 5m).
    LasTimeout: "las-timeout", env "LAS_VERIFIER_LAS_TIMEOUT_SECS",
    default DEFAULT_LAS_TIMEOUT, check las_timeout
}

/// `--ear-profile`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EarProfileArg {
    /// draft-ietf-rats-ear-04 (`tag:ietf.org,2026:rats/ear#04`, underscore names).
    Ietf,
    /// Legacy Veraison (`tag:github.com,2023:veraison/ear`, dotted names).
    Veraison,
}

pub fn run(c: VerifierCommand) -> anyhow::Result<ExitCode> {
    let VerifierCommand::Serve(a) = c;
    let mut config = ServiceConfig::new(a.policy, a.state_dir);
    config.listen = a.listen;
    config.import_keys_from = a.import_keys_from;
    config.nonce_lifetime = a.nonce_lifetime.get().map_err(anyhow::Error::msg)?;
    config.evidence_cache = a.evidence_cache.get().map_err(anyhow::Error::msg)?;
    config.ear_lifetime = a.ear_lifetime.get().map_err(anyhow::Error::msg)?;
    config.evidence_cache_bytes = usize::try_from(a.evidence_cache_bytes).unwrap_or(usize::MAX);
    config.fetch_evidence_from = a.fetch_evidence_from.iter().map(|n| n.trunc()).collect();
    config.las_timeout = a.las_timeout.get().map_err(anyhow::Error::msg)?;
    config.policy_settle = *a.policy_settle;
    config.limits = a.limits.limits().map_err(anyhow::Error::msg)?;
    config.verify_batch_max = usize::from(a.verify_batch_max);
    config.trust_domain = a.trust_domain;
    config.cert_lifetime = *a.cert_lifetime;
    config.ca = las_verifier_service::ca::CaSource {
        cert: a.ca_cert,
        key: a.ca_key,
    };
    config.ear_profile = match a.ear_profile {
        EarProfileArg::Ietf => las_verifier_service::EarProfile::Ietf,
        EarProfileArg::Veraison => las_verifier_service::EarProfile::Veraison,
    };
    config
        .collateral
        .extend(super::collateral::read_files(&a.collateral)?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use las_verifier_service::SERVICE_BODY_LIMIT;

    #[test]
    fn the_body_cap_default_text_is_the_service_constant() {
        assert_eq!(SERVICE_BODY_LIMIT_TEXT, SERVICE_BODY_LIMIT.to_string());
    }
}

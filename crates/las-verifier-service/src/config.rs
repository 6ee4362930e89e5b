//! The service's settings and its start-up errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use las_http::Limits;
use las_verifier::dcap::CollateralSet;

use crate::keys::KeyError;

/// Largest request body of the service by default: an attest request carries a quote
/// (and may carry LAS evidence), larger than lasd's REPORT; the one limit in which the
/// service differs from [`Limits::DEFAULT`].
pub const SERVICE_BODY_LIMIT: usize = 64 * 1024;
/// Default lifetime of a nonce.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(120);
/// Default time verified LAS identity evidence is reused per platform ID.
pub const DEFAULT_EVIDENCE_CACHE: Duration = Duration::from_secs(300);
/// Longest time verified LAS identity evidence is reused: the verifier refuses evidence
/// older than `MAX_EVIDENCE_AGE`; 30 s are left for the LAS round trip and clock skew.
pub const MAX_EVIDENCE_CACHE: Duration =
    Duration::from_secs(las_verifier::verify::MAX_EVIDENCE_AGE.saturating_sub(30));
/// Default lifetime of an EAR (`exp - iat`).
pub const DEFAULT_EAR_LIFETIME: Duration = Duration::from_secs(300);
/// Default time to wait for a LAS.
pub const DEFAULT_LAS_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time a policy file rewritten in place must keep the same bytes before it is
/// taken (see `policy`).
pub const DEFAULT_POLICY_SETTLE: Duration = Duration::from_secs(5);

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The policy file (watched; a new version that parses replaces the old one).
    pub policy: PathBuf,
    /// State folder: EAR signing key and nonce key.
    pub state_dir: PathBuf,
    /// Body cap, request deadline, write deadline, connection cap, drain time: applied by
    /// las-server's serve loop, as for the LAS daemon.
    pub limits: Limits,
    /// Lifetime of a nonce.
    pub nonce_lifetime: Duration,
    /// How long verified LAS identity evidence is reused per platform ID (at most
    /// [`MAX_EVIDENCE_CACHE`]).
    pub evidence_cache: Duration,
    /// Lifetime of an EAR (`exp - iat`).
    pub ear_lifetime: Duration,
    /// Memory the evidence cache may hold (bytes of tokens plus a fixed cost per entry).
    pub evidence_cache_bytes: usize,
    /// Networks a LAS named in an attestation request may be in for the service to fetch
    /// its identity evidence itself. Empty (the default): the service makes no outbound
    /// connection and refuses requests that name a LAS (`evidence-fetch-disabled`).
    pub fetch_evidence_from: Vec<ipnet::IpNet>,
    /// Time to wait for a LAS.
    pub las_timeout: Duration,
    /// How often the policy file is checked for changes.
    pub policy_poll: Duration,
    /// How long a policy file rewritten in place (the same inode) must keep the same bytes
    /// before it replaces the policy in force. A new file (a new inode: an atomic rename,
    /// a Kubernetes ConfigMap update) is taken at once.
    pub policy_settle: Duration,
    /// DCAP collateral for `sgx-dcap` LAS evidence.
    pub collateral: CollateralSet,
    /// Copy the key files from this folder (e.g. a mounted Secret) into `state_dir` first.
    pub import_keys_from: Option<PathBuf>,
    /// Quote signatures verified together at most (1: each alone); see `batch`.
    pub verify_batch_max: usize,
    /// The form of the EAR tokens (draft-ietf-rats-ear-04 or legacy Veraison).
    pub ear_profile: crate::ear::EarProfile,
    /// SPIFFE trust domain of workload certificates (`spiffe://TD/SERVICE`).
    pub trust_domain: String,
    /// Lifetime of a workload certificate (counted from the attestation).
    pub cert_lifetime: Duration,
    /// The operator's CA files; none: the CA in the state folder.
    pub ca: crate::ca::CaSource,
}

impl ServiceConfig {
    /// Defaults for `policy` and `state_dir`.
    pub fn new(policy: PathBuf, state_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            policy,
            state_dir,
            limits: Limits {
                body_limit: SERVICE_BODY_LIMIT,
                ..Limits::DEFAULT
            },
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
            evidence_cache: DEFAULT_EVIDENCE_CACHE,
            evidence_cache_bytes: DEFAULT_EVIDENCE_CACHE_BYTES,
            fetch_evidence_from: Vec::new(),
            ear_lifetime: DEFAULT_EAR_LIFETIME,
            las_timeout: DEFAULT_LAS_TIMEOUT,
            policy_poll: Duration::from_secs(1),
            policy_settle: DEFAULT_POLICY_SETTLE,
            collateral: CollateralSet::new(),
            import_keys_from: None,
            verify_batch_max: crate::batch::BATCH_MAX,
            ear_profile: crate::ear::EarProfile::default(),
            trust_domain: crate::ca::DEFAULT_TRUST_DOMAIN.to_owned(),
            cert_lifetime: crate::ca::DEFAULT_CERT_LIFETIME,
            ca: crate::ca::CaSource::default(),
        }
    }
}

/// Default memory bound of the evidence cache: 16 MiB (about 14,000 simulated platforms,
/// or 300 with DCAP evidence).
pub const DEFAULT_EVIDENCE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Default port of the verification service.
pub const DEFAULT_PORT: u16 = 18767;
/// The service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The policy file cannot be read, or its policy is not usable.
    #[error("policy {}: {source}", path.display())]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: crate::policy::PolicyLoadError,
    },
    /// A key file of the state folder is unusable.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The CA (workload certificates) is unusable.
    #[error("CA: {0}")]
    Ca(#[from] crate::ca::CaError),
    /// The listen address could not be bound (the OS error is its `source`).
    #[error(transparent)]
    Bind(#[from] las_http::BindError),
    /// The server loop failed.
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

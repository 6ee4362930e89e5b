//! The service's settings and its start-up errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use las_server::ConnectionLimits;
use las_verifier::dcap::CollateralSet;

use crate::keys::KeyError;

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The policy file (watched; a new version that parses replaces the old one).
    pub policy: PathBuf,
    /// State folder: EAR signing key and nonce key.
    pub state_dir: PathBuf,
    /// Largest request body (bytes).
    pub body_limit: usize,
    /// Header and write timeouts, connection cap, drain time (las-server's loop).
    pub connections: ConnectionLimits,
    /// Lifetime of a nonce (seconds).
    pub nonce_lifetime: u64,
    /// How long verified LAS identity evidence is reused per platform ID (seconds; at
    /// most `las_verifier::verify::MAX_EVIDENCE_AGE` minus the LAS round trip).
    pub evidence_cache: u64,
    /// Lifetime of an EAR (`exp - iat`, seconds).
    pub ear_lifetime: u64,
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
    /// DCAP collateral for `sgx-dcap` LAS evidence.
    pub collateral: CollateralSet,
    /// Copy the key files from this folder (e.g. a mounted Secret) into `state_dir` first.
    pub import_keys_from: Option<PathBuf>,
    /// Quote signatures verified together at most (1: each alone); see `batch`.
    pub verify_batch_max: usize,
}

impl ServiceConfig {
    /// Defaults for `policy` and `state_dir`.
    pub fn new(policy: PathBuf, state_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            policy,
            state_dir,
            body_limit: 64 * 1024,
            connections: ConnectionLimits {
                header_timeout: Duration::from_secs(10),
                write_timeout: Duration::from_secs(10),
                max_connections: 4096,
                drain_timeout: Duration::from_secs(10),
            },
            nonce_lifetime: 120,
            evidence_cache: 300,
            evidence_cache_bytes: DEFAULT_EVIDENCE_CACHE_BYTES,
            fetch_evidence_from: Vec::new(),
            ear_lifetime: 300,
            las_timeout: Duration::from_secs(5),
            policy_poll: Duration::from_secs(1),
            collateral: CollateralSet::new(),
            import_keys_from: None,
            verify_batch_max: crate::batch::BATCH_MAX,
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
    /// The policy file cannot be read or does not parse.
    #[error("policy {path}: {detail}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A key file of the state folder is unusable.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server loop failed.
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

//! # las-discovery: the platform IDs of every LAS
//!
//! Operators paste platform IDs into the `platforms:` of their policies. This crate collects
//! them, replacing the `get_platform_ids` bash function of the deployment docs
//! (`kubectl get pod` + `kubectl logs | grep 'public key'`):
//!
//! ```text
//!  Kubernetes (k8s)                         direct (collect_direct)
//!  ────────────────                         ───────────────────────
//!  list pods by label ─► ready? ─┐          --las ADDR / --dns NAME (every A/AAAA)
//!                                ▼                     │
//!        GET .../pods/NAME:PORT/proxy/v1/platform      ▼
//!        (fallback: last `public key` log line)   GET /v1/platform
//!                                │                     │
//!                 verified mode (either source): fresh nonce ─► GET /v1/identity
//!                 ─► las_verifier::verify_las_evidence_with ─► ID == /v1/platform's claim?
//!                                │
//!                                ▼
//!          Collection { found, failures } ─► ids::platforms_line ─► `platforms: [ A, B]`
//!                                                               ─► las_verifier::policy::edit::set_platforms
//! ```
//!
//! Plain mode trusts the cluster (or the network) to report keys truthfully. Verified mode
//! trusts neither: an ID is listed only when the LAS proved possession of its key by signing
//! identity evidence for a nonce chosen here, and that evidence passed the same checks as in
//! `las verify` (trusted LAS measurement, simulation only when tolerated). A swapped key, a
//! replayed answer or a simulated LAS without the tolerance becomes a [`collect::Failure`].
//!
//! What `las platform-ids` prints goes into a policy with [`set_platforms`] (`las policy
//! set-platforms`), changing only that one list:
//!
//! ```
//! let ids = las_discovery::parse_ids(
//!     "platforms: [ 2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151]",
//! )?;
//! let policy = "version: \"0.3\"\nservices:\n  - name: app  # the payments API\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n";
//! let edit = las_discovery::set_platforms(policy, "app", &ids)?;
//! assert!(edit.text.contains("# the payments API"), "comments stay");
//! assert!(edit.text.contains("platforms: [2C45C8294D491808"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod addr;
pub mod collect;
pub mod fetch;
pub mod ids;
pub mod k8s;

pub use addr::{DEFAULT_PORT, LasAddr, resolve_all};
pub use collect::{
    Collection, Failure, FailureKind, Found, Options, PlatformQe, Source, Target, Verification,
    collect_direct,
};
pub use ids::{parse_ids, platforms_line};
pub use k8s::{ClientSettings, PodSelection, collect_pods, instance_selector};
/// The comment-preserving policy editor lives with the policy language in `las-verifier`.
pub use las_verifier::policy::edit::{PlatformsEdit, PolicyEditError, set_platforms};

/// The collection cannot start or cannot proceed at all (as opposed to one LAS failing,
/// which is a [`Failure`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// An address is not `host`, `host:port` or `[v6]:port`.
    #[error(transparent)]
    Address(#[from] las_core::addr::AddrError),
    /// A name does not resolve.
    #[error("cannot resolve `{name}`: {message}")]
    Dns {
        /// The name.
        name: String,
        /// The resolver's message.
        message: String,
    },
    /// The kubeconfig file named cannot be read.
    #[error("Kubernetes configuration: cannot read {}: {source}", path.display())]
    KubeConfigRead {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The kubeconfig file named is not usable.
    #[error("Kubernetes configuration: {}: {source}", path.display())]
    KubeConfigFile {
        /// The file.
        path: std::path::PathBuf,
        /// kube's error.
        source: kube::config::KubeconfigError,
    },
    /// The default kubeconfig (with `--context`) is not usable.
    #[error("Kubernetes configuration: {0}")]
    KubeConfig(#[source] kube::config::KubeconfigError),
    /// Neither a kubeconfig nor the in-cluster service account is usable.
    #[error("Kubernetes configuration: {0}")]
    KubeInfer(#[source] kube::config::InferConfigError),
    /// The client could not be built from the configuration (TLS, proxy).
    #[error("Kubernetes configuration: cannot build the client: {0}")]
    KubeClient(#[source] kube::Error),
    /// The API server did not list the pods.
    #[error(
        "cannot list the pods in namespace `{namespace}` with selector `{selector}`: {message}"
    )]
    ListPods {
        /// Namespace.
        namespace: String,
        /// Label selector.
        selector: String,
        /// The API server's (or the transport's) message.
        message: String,
    },
    /// `las platform-ids --output json` input that is not JSON.
    #[error("not the JSON of `las platform-ids`: {0}")]
    IdsJson(#[source] serde_json::Error),
    /// The one catch-all: input that should hold platform IDs does not (what is wrong,
    /// naming the first word that is not an entry).
    #[error("{0}")]
    Ids(String),
}

//! # las-verifier-service: the networked verification service
//!
//! `las verifier serve` runs [`run`]: an HTTP service that hands out nonces, appraises an
//! application enclave's LAS quote against a policy (with `las-verifier`, the code path of
//! `las verify`) and answers with an EAR attestation result (draft-ietf-rats-ear), a JWT
//! signed with ES256 whose key is published as a JWKS. This is the RATS background-check
//! model; docs/api.md ("Verification service") is the wire contract.
//!
//! ```text
//!  app ── POST /v1/nonce ──────────────────────────► NonceBook::issue (HMAC, expiry)
//!  app: REPORTDATA = SHA-512(nonce ‖ app data) ─► LAS quote
//!  app: LAS GET /v1/identity?nonce=<the same nonce> ─► identity evidence
//!  app ── POST /v1/attest {service, nonce, quote, report_data, evidence} ─►
//!         NonceBook::consume ─► decode_quote ─► batch (signatures of waiting requests checked together)
//!         ─► evidence: cache (per platform ID) or the posted one (no outbound connection;
//!            only with --fetch-evidence-from: fetched from an allowed LAS the request names)
//!         ─► las_verifier::verify_batch_verified_with ─► evidence cached once it matched the quote's key
//!         ─► verdict::ear_claims ─► EarSigner::sign
//!  relying party ── GET /.well-known/jwks.json ─► ear::verify_ear
//! ```
//!
//! Replicas share nothing but the two key files of the state folder ([`keys`]).
//!
//! The first two steps, in process: a nonce is issued, the application binds it into its
//! REPORTDATA, and the service takes it exactly once (a replica with the same nonce key
//! takes it too; the clock is a parameter).
//!
//! ```
//! use std::time::Duration;
//! use las_verifier_service::bound_report_data;
//! use las_verifier_service::nonce::{NonceBook, NonceError};
//!
//! let book = NonceBook::new(&[7; 32], Duration::from_secs(60), 1000);
//! let now = 1_700_000_000;
//! let nonce = book.issue(now)?;
//! assert_eq!(nonce.expires, now + 60);
//! // The application: REPORTDATA = SHA-512(nonce bytes ‖ its own data).
//! let report_data = bound_report_data(&nonce.bytes, b"my TLS key hash");
//! assert_ne!(report_data, bound_report_data(&nonce.bytes, b"another key"));
//! // The service: once, then never again; expired after its lifetime.
//! assert!(book.consume(&nonce.encoded(), now + 1).is_ok());
//! assert_eq!(book.consume(&nonce.encoded(), now + 2).unwrap_err(), NonceError::Replayed);
//! let late = book.issue(now)?;
//! assert_eq!(book.consume(&late.encoded(), now + 61).unwrap_err(), NonceError::Expired);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules: `config` (settings, start-up errors), `state` (what requests share, metrics,
//! the policy reload), `policy` (what a usable policy is, and when a changed file may be
//! taken), `routes` (the HTTP handlers), `batch`
//! (quote signatures checked in batches), `verdict` (a verdict as EAR claims), `serve`
//! (start-up and las-server's connection loop), [`nonce`], [`keys`], [`ear`], [`client`].

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod batch;
pub mod ca;
pub mod client;
mod config;
pub mod ear;
pub mod keys;
pub mod nonce;
mod policy;
mod routes;
mod serve;
mod state;
mod verdict;

pub use config::{
    DEFAULT_EAR_LIFETIME, DEFAULT_EVIDENCE_CACHE, DEFAULT_EVIDENCE_CACHE_BYTES,
    DEFAULT_LAS_TIMEOUT, DEFAULT_NONCE_LIFETIME, DEFAULT_POLICY_SETTLE, DEFAULT_PORT,
    MAX_EVIDENCE_CACHE, SERVICE_BODY_LIMIT, ServiceConfig, StartError,
};
pub use ear::{
    EAR_PROFILE, EAR_PROFILE_VERAISON, EarClaims, EarError, EarProfile, EarSigner, EarSubmod,
    verify_ear,
};
/// A network of `ServiceConfig::fetch_evidence_from` (CIDR).
pub use ipnet::IpNet;
pub use policy::PolicyLoadError;
pub use routes::app;
pub use serve::{run, serve};
pub use state::AppState;

use sha2::{Digest, Sha512};

/// The REPORTDATA an application binds into its quote for the verification service:
/// `SHA-512(nonce ‖ app_data)`, with `nonce` the decoded 56 nonce bytes and `app_data`
/// the application's own report data (0 to 64 bytes, e.g. the SHA-256 of its TLS key).
pub fn bound_report_data(nonce: &[u8], app_data: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(nonce);
    h.update(app_data);
    h.finalize().into()
}

//! # las-core: the pure core of the Local Attestation Service
//!
//! No sockets, no files, no clock: everything here is a function of its inputs, so it can
//! be tested exhaustively and fuzzed.
//!
//! ```text
//!  application enclave                 LAS (any platform backend)            verifier
//!  ───────────────────                 ──────────────────────────            ────────
//!  TargetInfo ◄──── GET /v1/target-info ── sgx::TargetInfo
//!  egetkey::ereport ─► sgx::Report ─► POST /v1/quote
//!                                       check MAC (crypto::Key128, constant time)
//!                                       quote::encode_quote (COSE_Sign1, Ed25519) ──► quote::decode_and_verify_quote
//!                                       evidence::encode_evidence ◄── nonce ────────► evidence::decode_and_verify_evidence
//! ```
//!
//! - [`sgx`]: REPORT / REPORTBODY / TARGETINFO / KEYREQUEST with the SDM layouts.
//! - [`crypto`]: AES-128-CMAC and zeroizing 128-bit keys.
//! - [`egetkey`]: the software model of EGETKEY/EREPORT used by the simulated platform.
//! - [`identity`]: the platform key pair derived from the LAS seal key; its public key is
//!   the platform ID.
//! - [`quote`], [`evidence`]: the signed tokens a LAS issues.
//! - [`tcb`]: the platform below the LAS: Intel's QE ID and the PCK certificate's facts.
//!
//! The platform ID from a seal key, and back from its text form (what operators paste into
//! `platforms:`):
//!
//! ```
//! use las_core::crypto::Key128;
//! use las_core::{PlatformId, PlatformIdentity};
//!
//! let identity = PlatformIdentity::from_seal_key(&Key128::from_bytes([7; 16]));
//! let id = identity.platform_id();
//! let text = id.to_string(); // 64 upper-case hex characters: the Ed25519 public key
//! assert_eq!(text.len(), 64);
//! assert_eq!(PlatformId::parse(&text.to_lowercase())?, id); // either case in
//! // Same seal key, same ID: a restart on the same platform keeps it.
//! assert_eq!(PlatformIdentity::from_seal_key(&Key128::from_bytes([7; 16])).platform_id(), id);
//! # Ok::<(), las_core::FormatError>(())
//! ```

#![forbid(unsafe_code)]

pub mod addr;
pub mod api;
mod cbor;
pub mod crypto;
pub mod egetkey;
pub mod error;
pub mod evidence;
pub mod hexfmt;
pub mod identity;
pub mod quote;
pub mod sgx;
pub mod tcb;
mod token;

pub use error::{FormatError, KeyError, TokenError};
pub use identity::{PlatformId, PlatformIdentity};
pub use quote::Mode;
pub use token::MAX_TOKEN_SIZE;

/// Seconds since the Unix epoch (0 if the clock is before it): the one reading of the
/// wall clock that the daemon and the verification service pass, as `now`, to code that
/// takes the clock as a parameter (token `iat`, evidence freshness, nonce expiry).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

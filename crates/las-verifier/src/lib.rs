//! # las-verifier: checking LAS quotes against a policy
//!
//! ```text
//!  policy.yaml ─► Policy::from_yaml ─┐   (every key evaluated, known-and-ignored, or an error)
//!  quote ─────────────────────────────┼─► verify_quote_with(now) ─► Verdict { rejections, notes }
//!  identity evidence + nonce ─────────┘        │
//!                                              ├─ COSE signature with the platform key
//!                                              ├─ LAS trusted? pinned key, or evidence + trusted_las
//!                                              ├─ simulation tolerated? platforms? alternatives?
//!                                              └─ DEBUG bit, report data, issue time
//! ```
//!
//! One function verifies a quote against a policy: [`verify_quote_with`]. The
//! verification service's batch path, [`verify_batch_verified_with`], runs the same checks
//! on a quote whose signature las-core's batch verifier already checked.
//! [`verify_las_evidence_with`] checks a LAS's identity evidence on its own.
//!
//! This crate depends on `las-core` only: it cannot reach the daemon's code, and it reads
//! no clock (callers pass `now`). Its default build does no network or file I/O (PCCS
//! fetching is the opt-in feature `pccs`).
//!
//! A policy is read strictly: a typo is an error that names it, never a key quietly ignored.
//!
//! ```
//! use las_verifier::Policy;
//!
//! let good = "version: \"0.3\"\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n";
//! let policy = Policy::from_yaml(good.as_bytes())?;
//! assert_eq!(policy.service(None)?.name, "app");
//!
//! let typo = good.replace("mrenclave", "mrenclav");
//! let err = Policy::from_yaml(typo.as_bytes()).unwrap_err().to_string();
//! assert!(err.contains("mrenclav"), "{err}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod dcap;
pub mod policy;
pub mod verify;

pub use policy::{PlatformEntry, Policy, PolicyError, ServiceError, Tolerance};
pub use verify::{
    LasEvidence, LasPlatform, LasTrust, PINNED_HARDWARE_UNVERIFIED, Reason, Rejection, Verdict,
    VerifyError, VerifyOptions, VerifyRequest, verify_batch_verified_with,
    verify_las_evidence_with, verify_quote_with,
};

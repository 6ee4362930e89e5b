//! # las-verifier: checking LAS quotes against a policy
//!
//! ```text
//!  policy.yaml ─► Policy::from_yaml ─┐   (every key evaluated, known-and-ignored, or an error)
//!  quote ─────────────────────────────┼─► verify_quote(now) ─► Verdict { rejections, notes }
//!  identity evidence + nonce ─────────┘        │
//!                                              ├─ COSE signature with the platform key
//!                                              ├─ LAS trusted? pinned key, or evidence + trusted_las
//!                                              ├─ simulation tolerated? platforms? alternatives?
//!                                              └─ DEBUG bit, report data, issue time
//! ```
//!
//! This crate depends on `las-core` only: it cannot reach the daemon's code, and it reads
//! no clock (callers pass `now`).

#![forbid(unsafe_code)]

pub mod dcap;
pub mod policy;
pub mod verify;

pub use policy::{PlatformEntry, Policy, PolicyError, ServiceError, Tolerance};
pub use verify::{
    LasEvidence, LasPlatform, LasTrust, Reason, Rejection, Verdict, VerifyError, VerifyOptions,
    VerifyRequest, verify_las_evidence, verify_las_evidence_platform, verify_las_evidence_with,
    verify_quote, verify_quote_with, verify_verified_quote_with,
};

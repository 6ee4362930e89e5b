//! The HTTP API contract of a LAS (docs/api.md): the paths and the JSON bodies of
//! `/v1/platform`, `/v1/target-info`, `/v1/quote` and `/v1/identity`, and of error answers.
//! The server (`las-server`) builds its answers from these types, the client (`las-client`)
//! and discovery (`las-discovery`) parse them with the same types, so the three cannot drift.
//!
//! Binary forms (the default without `Accept: application/json`) are not JSON: target info is
//! the 512-byte TARGETINFO, a quote or identity evidence is a tagged COSE_Sign1
//! ([`COSE_MEDIA_TYPE`]). Byte fields in JSON are base64 (standard alphabet, padded) or hex as
//! each field says. Answers are parsed leniently (unknown fields ignored, so a newer LAS can
//! add fields); the one request body ([`QuoteRequest`]) is parsed strictly.

use serde::{Deserialize, Serialize};

/// `GET`: what the LAS says about itself ([`PlatformInfo`]).
pub const PLATFORM: &str = "/v1/platform";
/// `GET`: the LAS's TARGETINFO (binary) or [`TargetInfoAnswer`].
pub const TARGET_INFO: &str = "/v1/target-info";
/// `POST` a REPORT (binary or [`QuoteRequest`]): a quote (binary) or [`QuoteAnswer`].
pub const QUOTE: &str = "/v1/quote";
/// `GET ?nonce=HEX`: identity evidence (binary) or [`IdentityAnswer`].
pub const IDENTITY: &str = "/v1/identity";
/// Media type of quotes and identity evidence (tagged COSE_Sign1).
pub const COSE_MEDIA_TYPE: &str = "application/cose; cose-type=\"cose-sign1\"";

/// `GET /v1/platform`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformInfo {
    /// The platform ID: the LAS public key, 64 hex characters (upper case).
    pub platform_id: String,
    /// `sim` or `hw`.
    pub mode: String,
    /// Whether the platform is hardware SGX (`mode == "hw"`).
    pub secure: bool,
    /// The LAS version.
    pub las_version: String,
    /// The LAS's MRENCLAVE (64 hex).
    pub las_mrenclave: String,
    /// The LAS's MRSIGNER (64 hex).
    pub las_mrsigner: String,
    /// The LAS's ISVPRODID.
    pub las_isvprodid: u16,
    /// The LAS's ISVSVN.
    pub las_isvsvn: u16,
    /// The platform's CPUSVN (32 hex).
    pub cpusvn: String,
}

/// `GET /v1/target-info` with `Accept: application/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfoAnswer {
    /// The 512-byte TARGETINFO, base64.
    pub target_info: String,
    /// The LAS's MRENCLAVE from it (64 hex).
    pub mrenclave: String,
}

/// `POST /v1/quote` as `application/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// The 432-byte REPORT, base64.
    pub report: String,
}

/// `POST /v1/quote` answered as JSON (JSON request or `Accept: application/json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteAnswer {
    /// The quote (tagged COSE_Sign1), base64.
    pub quote: String,
    /// The platform that signed it (64 hex).
    pub platform_id: String,
    /// `sim` or `hw`.
    pub mode: String,
}

/// `GET /v1/identity?nonce=HEX` with `Accept: application/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityAnswer {
    /// The identity evidence (tagged COSE_Sign1), base64.
    pub evidence: String,
    /// The platform ID (64 hex).
    pub platform_id: String,
    /// `sim` or `hw`.
    pub mode: String,
}

/// Every error answer: a stable machine-readable kind and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// Stable kind, e.g. `invalid-report-mac` (docs/api.md lists them).
    pub error: String,
    /// What went wrong.
    pub message: String,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `ok` (healthz) or `ready` (readyz).
    pub status: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quote_request_is_strict_answers_are_lenient() {
        assert!(serde_json::from_str::<QuoteRequest>(r#"{"report":"AA==","x":1}"#).is_err());
        let a: QuoteAnswer =
            serde_json::from_str(r#"{"quote":"q","platform_id":"P","mode":"sim","new":true}"#)
                .unwrap();
        assert_eq!(a.mode, "sim");
    }
}

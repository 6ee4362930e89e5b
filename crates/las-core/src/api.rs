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

use crate::{Mode, PlatformId};

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
    /// The platform ID: the LAS public key, 64 hex characters (upper case; read in either
    /// case).
    pub platform_id: PlatformId,
    /// `sim` or `hw` (any other value is an error when read).
    pub mode: Mode,
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
    /// The platform below the LAS: QE ID and PCK facts (`unknown` from a LAS that does not
    /// send it).
    #[serde(default)]
    pub tcb_state: TcbState,
}

/// Whether a [`TcbState`] holds facts, and where they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcbStateKind {
    /// Read from a DCAP quote of the LAS at start (hardware).
    Known,
    /// Derived from the simulated platform's secret (NOT SECURE).
    Simulated,
    /// Not known (the start-up quote failed, or an older LAS): nothing may match it.
    #[default]
    Unknown,
}

/// The platform's TCB state as `scone las show-tcb-state` shows it: Intel QE ID, PPID,
/// FMSPC, PCE ID, CPU SVN, PCE SVN (hex fields lower case). Every fact is absent when
/// `state` is `unknown`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TcbState {
    /// `known`, `simulated` or `unknown`.
    pub state: TcbStateKind,
    /// Intel QE ID, 32 hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qe_id: Option<String>,
    /// PPID, 32 hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<String>,
    /// FMSPC, 12 hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmspc: Option<String>,
    /// PCE ID, 4 hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pce_id: Option<String>,
    /// CPU SVN of the PCK certificate's TCB (the platform's CPUSVN in simulation), 32 hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpusvn: Option<String>,
    /// PCE SVN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcesvn: Option<u16>,
    /// Platform instance ID (multi-package platforms), hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_instance_id: Option<String>,
    /// Why the state is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TcbState {
    /// An unknown state, with the reason.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Self {
            reason: Some(reason.into()),
            ..Self::default()
        }
    }

    /// The facts of a DCAP quote (hardware).
    pub fn from_dcap(f: &crate::tcb::DcapFacts) -> Self {
        Self {
            state: TcbStateKind::Known,
            qe_id: Some(f.qe_id.to_string()),
            ppid: Some(hex::encode(&f.ppid)),
            fmspc: Some(hex::encode(f.fmspc)),
            pce_id: Some(hex::encode(&f.pce_id)),
            cpusvn: Some(hex::encode(f.cpusvn)),
            pcesvn: Some(f.pcesvn),
            platform_instance_id: f.platform_instance_id.as_ref().map(hex::encode),
            reason: None,
        }
    }

    /// The QE ID when the state is `known` or `simulated` (never for `unknown`).
    pub fn qe_id(&self) -> Option<crate::tcb::QeId> {
        if self.state == TcbStateKind::Unknown {
            return None;
        }
        crate::tcb::QeId::parse_hex(self.qe_id.as_deref()?).ok()
    }

    /// The second start-up log line: FMSPC, PPID, CPU SVN, PCE SVN (or why unknown).
    pub fn summary(&self) -> String {
        let f = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        match self.state {
            TcbStateKind::Unknown => format!(
                "TCB state unknown: {}",
                self.reason.as_deref().unwrap_or("not reported")
            ),
            k => format!(
                "TCB state{}: FMSPC {} PPID {} CPU SVN {} PCE SVN {}",
                if k == TcbStateKind::Simulated {
                    " (SIMULATED)"
                } else {
                    ""
                },
                f(&self.fmspc),
                f(&self.ppid),
                f(&self.cpusvn),
                self.pcesvn
                    .map_or_else(|| "unknown".into(), |p| p.to_string())
            ),
        }
    }
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
    /// The platform that signed it (64 hex, upper case).
    pub platform_id: PlatformId,
    /// `sim` or `hw`.
    pub mode: Mode,
}

/// `GET /v1/identity?nonce=HEX` with `Accept: application/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityAnswer {
    /// The identity evidence (tagged COSE_Sign1), base64.
    pub evidence: String,
    /// The platform ID (64 hex, upper case).
    pub platform_id: PlatformId,
    /// `sim` or `hw`.
    pub mode: Mode,
}

/// Every error kind either server answers (the `error` of [`ErrorAnswer`]), with its HTTP
/// status: the one list for the LAS daemon and the verification service (docs/api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400: the REPORT is not 432 bytes.
    InvalidReportLength,
    /// 400: a reserved field of the REPORT is not zero.
    InvalidReport,
    /// 403: the REPORT's MAC does not verify.
    InvalidReportMac,
    /// 403: the REPORT's CPUSVN is not the platform's.
    InvalidReportCpusvn,
    /// 400: the body is not what its content type says (LAS daemon).
    BadRequest,
    /// 400: a query parameter is missing or malformed.
    InvalidParameter,
    /// 400: the attest request is malformed (verification service).
    MalformedRequest,
    /// 415: a content type the route does not take.
    UnsupportedMediaType,
    /// 413: the body (or its declared length) is over the cap.
    BodyTooLarge,
    /// 408: the request, headers and body, did not arrive in time.
    BodyTimeout,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 404: the policy has no such service.
    UnknownService,
    /// 400: the nonce is not one the service issued (malformed).
    MalformedNonce,
    /// 400: the nonce's MAC does not verify.
    BadNonce,
    /// 400: the nonce expired.
    ExpiredNonce,
    /// 400: the nonce was used already.
    ReplayedNonce,
    /// 503: too many nonces in use; retry.
    Busy,
    /// 502: the LAS could not be reached.
    LasUnreachable,
    /// 400: the request names a LAS to fetch evidence from, and the service fetches none
    /// (no `--fetch-evidence-from`).
    EvidenceFetchDisabled,
    /// 403: the LAS a request names resolves outside the networks the service may fetch from.
    LasNotAllowed,
    /// 400: the attest request's CSR is not a PKCS#10 request in PEM or base64 DER.
    MalformedCsr,
    /// 400: the CSR's self-signature does not verify with the key it carries.
    BadCsrSignature,
    /// 400: the CSR's key is not ECDSA on P-256 or P-384.
    UnsupportedKeyType,
    /// 400: the quote's report data does not bind the CSR's key.
    UnboundKey,
    /// 400: the service name cannot be a SPIFFE ID path segment (workload certificate).
    UnsupportedServiceName,
    /// 500: the workload certificate could not be issued (details are logged).
    IssueFailed,
    /// 503: shutting down.
    Unavailable,
    /// 503: identity evidence was not ready in time; retry.
    IdentityTimeout,
    /// 500: no randomness from the OS.
    NoRandomness,
    /// 500: anything else (details are logged, not sent).
    Internal,
}

impl ErrorKind {
    /// The kind as sent, e.g. `invalid-report-mac`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidReportLength => "invalid-report-length",
            ErrorKind::InvalidReport => "invalid-report",
            ErrorKind::InvalidReportMac => "invalid-report-mac",
            ErrorKind::InvalidReportCpusvn => "invalid-report-cpusvn",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::InvalidParameter => "invalid-parameter",
            ErrorKind::MalformedRequest => "malformed-request",
            ErrorKind::UnsupportedMediaType => "unsupported-media-type",
            ErrorKind::BodyTooLarge => "body-too-large",
            ErrorKind::BodyTimeout => "body-timeout",
            ErrorKind::NotFound => "not-found",
            ErrorKind::MethodNotAllowed => "method-not-allowed",
            ErrorKind::UnknownService => "unknown-service",
            ErrorKind::MalformedNonce => "malformed-nonce",
            ErrorKind::BadNonce => "bad-nonce",
            ErrorKind::ExpiredNonce => "expired-nonce",
            ErrorKind::ReplayedNonce => "replayed-nonce",
            ErrorKind::Busy => "busy",
            ErrorKind::LasUnreachable => "las-unreachable",
            ErrorKind::EvidenceFetchDisabled => "evidence-fetch-disabled",
            ErrorKind::LasNotAllowed => "las-not-allowed",
            ErrorKind::MalformedCsr => "malformed-csr",
            ErrorKind::BadCsrSignature => "bad-csr-signature",
            ErrorKind::UnsupportedKeyType => "unsupported-key-type",
            ErrorKind::UnboundKey => "unbound-key",
            ErrorKind::UnsupportedServiceName => "unsupported-service-name",
            ErrorKind::IssueFailed => "issue-failed",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::IdentityTimeout => "identity-timeout",
            ErrorKind::NoRandomness => "no-randomness",
            ErrorKind::Internal => "internal",
        }
    }

    /// The HTTP status of this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidReportLength
            | ErrorKind::InvalidReport
            | ErrorKind::BadRequest
            | ErrorKind::InvalidParameter
            | ErrorKind::MalformedRequest
            | ErrorKind::MalformedNonce
            | ErrorKind::BadNonce
            | ErrorKind::ExpiredNonce
            | ErrorKind::ReplayedNonce
            | ErrorKind::EvidenceFetchDisabled
            | ErrorKind::MalformedCsr
            | ErrorKind::BadCsrSignature
            | ErrorKind::UnsupportedKeyType
            | ErrorKind::UnboundKey
            | ErrorKind::UnsupportedServiceName => 400,
            ErrorKind::InvalidReportMac
            | ErrorKind::InvalidReportCpusvn
            | ErrorKind::LasNotAllowed => 403,
            ErrorKind::NotFound | ErrorKind::UnknownService => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::BodyTimeout => 408,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::NoRandomness | ErrorKind::Internal | ErrorKind::IssueFailed => 500,
            ErrorKind::LasUnreachable => 502,
            ErrorKind::Unavailable | ErrorKind::IdentityTimeout | ErrorKind::Busy => 503,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// The verification service's contract (docs/api.md, "Verification service"): the bodies
/// `las verifier serve` sends and reads, used by the service, its client and `las attest`.
pub mod verifier {
    use serde::{Deserialize, Serialize};

    /// `POST` (or `GET`): a fresh nonce ([`NonceAnswer`]).
    pub const NONCE: &str = "/v1/nonce";
    /// `POST` an [`AttestRequest`]: an [`AttestAnswer`].
    pub const ATTEST: &str = "/v1/attest";
    /// `GET`: the EAR signing keys ([`Jwks`]).
    pub const JWKS: &str = "/.well-known/jwks.json";

    /// `POST /v1/nonce`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct NonceAnswer {
        /// The nonce, base64url without padding (56 bytes decoded).
        pub nonce: String,
        /// Expiry, Unix seconds.
        pub expires: u64,
    }

    /// `POST /v1/attest`. Parsed strictly (unknown fields refused); new optional fields
    /// are added with `#[serde(default)]`.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AttestRequest {
        /// The policy's service to attest as.
        pub service: String,
        /// The nonce from [`NONCE`], as received.
        pub nonce: String,
        /// The quote (tagged COSE_Sign1), base64. Its REPORTDATA is
        /// `SHA-512(nonce bytes ‖ report_data)`.
        pub quote: String,
        /// The application's own report data, hex (0 to 64 bytes).
        #[serde(default)]
        pub report_data: String,
        /// Identity evidence of the LAS that signed the quote (`GET /v1/identity` with the
        /// decoded nonce bytes as its nonce), base64. The client fetches it from its own
        /// LAS; the service verifies it like any evidence (key, nonce, freshness, policy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub evidence: Option<String>,
        /// A LAS address for the service to fetch the evidence from itself. Refused
        /// (`evidence-fetch-disabled`) unless the service runs with
        /// `--fetch-evidence-from` and the address resolves into those networks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub las: Option<String>,
        /// A PKCS#10 CSR (PEM text, or base64 DER) whose key the quote binds (the first
        /// 32 bytes of `report_data` are SHA-256 of its SubjectPublicKeyInfo): the answer
        /// then carries a workload certificate when the verdict is affirming or warning.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub csr: Option<String>,
    }

    /// `POST /v1/attest` answered.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct AttestAnswer {
        /// The EAR (compact JWS, ES256).
        pub ear: String,
        /// Its `ear.status`.
        pub status: EarStatus,
        /// The workload certificate chain (PEM: leaf, then the issuing CA), when the
        /// request carried a CSR and the verdict is affirming or warning.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub certificate_chain: Option<String>,
    }

    /// An EAR's `ear.status` (draft-ietf-rats-ear).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum EarStatus {
        /// Accepted with nothing tolerated.
        Affirming,
        /// Accepted through a tolerance (or with unverified hardware).
        Warning,
        /// Rejected.
        Contraindicated,
    }

    impl EarStatus {
        /// The wire name.
        pub fn as_str(self) -> &'static str {
            match self {
                Self::Affirming => "affirming",
                Self::Warning => "warning",
                Self::Contraindicated => "contraindicated",
            }
        }
    }

    impl std::fmt::Display for EarStatus {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.as_str())
        }
    }

    /// One public key of the [`Jwks`] (RFC 7517). Only `kty` is required, so a set that
    /// also holds keys of other types still parses (they are skipped when verifying).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Jwk {
        /// `EC` for the service's keys.
        pub kty: String,
        /// `P-256`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub crv: Option<String>,
        /// The x coordinate, base64url.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub x: Option<String>,
        /// The y coordinate, base64url.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub y: Option<String>,
        /// `sig`.
        #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
        pub use_: Option<String>,
        /// `ES256`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub alg: Option<String>,
        /// The RFC 7638 thumbprint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub kid: Option<String>,
    }

    /// `GET /.well-known/jwks.json`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Jwks {
        /// The keys.
        pub keys: Vec<Jwk>,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn error_kinds_serialize_as_sent() {
        for k in [
            ErrorKind::InvalidReportMac,
            ErrorKind::BodyTimeout,
            ErrorKind::UnknownService,
            ErrorKind::LasUnreachable,
        ] {
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert_eq!(ErrorKind::BodyTimeout.status(), 408);
    }

    #[test]
    fn quote_request_is_strict_answers_are_lenient() {
        assert!(serde_json::from_str::<QuoteRequest>(r#"{"report":"AA==","x":1}"#).is_err());
        let a: QuoteAnswer = serde_json::from_str(&format!(
            r#"{{"quote":"q","platform_id":"{}","mode":"sim","new":true}}"#,
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(a.mode, Mode::Sim);
        assert_eq!(a.platform_id, PlatformId([0xab; 32]));
    }

    /// Typed `mode` and `platform_id` keep the wire form of docs/api.md byte for byte:
    /// `"sim"`/`"hw"` and 64 upper-case hex characters.
    #[test]
    fn typed_mode_and_platform_id_keep_the_wire_form() {
        let a = IdentityAnswer {
            evidence: "e".into(),
            platform_id: PlatformId([0xab; 32]),
            mode: Mode::Hw,
        };
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"evidence":"e","platform_id":"{}","mode":"hw"}}"#,
                "AB".repeat(32)
            )
        );
        assert_eq!(serde_json::from_str::<IdentityAnswer>(&json).unwrap(), a);
        let q = QuoteAnswer {
            quote: "q".into(),
            platform_id: PlatformId([1; 32]),
            mode: Mode::Sim,
        };
        assert_eq!(
            serde_json::to_value(&q).unwrap(),
            serde_json::json!({"quote": "q", "platform_id": "01".repeat(32), "mode": "sim"})
        );
    }

    /// An unknown mode or a platform ID that is not 64 hex characters is an error naming
    /// the value, never a default.
    #[test]
    fn unknown_mode_and_bad_platform_id_are_clear_errors() {
        let pid = "ab".repeat(32);
        let e = serde_json::from_str::<QuoteAnswer>(&format!(
            r#"{{"quote":"q","platform_id":"{pid}","mode":"SGX"}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown mode `SGX`: expected `sim` or `hw`"),
            "{e}"
        );
        for bad in ["P", "", &"ab".repeat(31), &"zz".repeat(32)] {
            let e = serde_json::from_str::<QuoteAnswer>(&format!(
                r#"{{"quote":"q","platform_id":"{bad}","mode":"sim"}}"#
            ))
            .unwrap_err()
            .to_string();
            assert!(
                e.contains(&format!("platform ID `{bad}` is not 64 hex characters")),
                "{e}"
            );
        }
        assert!(serde_json::from_str::<Mode>("\"Sim\"").is_err());
        assert!(serde_json::from_str::<Mode>("1").is_err());
    }

    /// A LAS without `tcb_state` (older) reads as unknown, and unknown never has a QE ID.
    #[test]
    fn a_missing_tcb_state_is_unknown_and_unknown_has_no_qe_id() {
        let p: PlatformInfo = serde_json::from_str(
            &format!(
                r#"{{"platform_id":"{}","mode":"hw","secure":true,"las_version":"1","las_mrenclave":"","las_mrsigner":"","las_isvprodid":0,"las_isvsvn":0,"cpusvn":""}}"#,
                "ab".repeat(32)
            ),
        )
        .unwrap();
        assert_eq!(p.tcb_state.state, TcbStateKind::Unknown);
        let forged = TcbState {
            qe_id: Some("85ffc69266c833546e5dca1c676a6151".into()),
            ..TcbState::unknown("start-up quote failed")
        };
        assert_eq!(forged.qe_id(), None);
        assert!(forged.summary().contains("unknown"));
    }
}

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

    /// A LAS without `tcb_state` (older) reads as unknown, and unknown never has a QE ID.
    #[test]
    fn a_missing_tcb_state_is_unknown_and_unknown_has_no_qe_id() {
        let p: PlatformInfo = serde_json::from_str(
            r#"{"platform_id":"P","mode":"hw","secure":true,"las_version":"1","las_mrenclave":"","las_mrsigner":"","las_isvprodid":0,"las_isvsvn":0,"cpusvn":""}"#,
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

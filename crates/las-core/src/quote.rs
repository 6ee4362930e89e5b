//! The LAS quote: a COSE_Sign1 by the platform key over the enclave's REPORT body and who
//! issued it. Format: docs/quote.md (CDDL).
//!
//! A LAS issues format 2 ([`QUOTE_VERSION`]): the 384-byte REPORT body appears once, raw.
//! Format 1 also carried the body decoded (an `enclave` map); it is no longer issued but is
//! still read, through its own decoding path that checks the decoded copy against the raw
//! body, so that a verifier upgraded before the LAS DaemonSet keeps working during a
//! rolling upgrade. Any other `v` is refused ([`TokenError::UnsupportedQuoteFormat`]).

use crate::cbor::{self, MapBuilder, MapReader};
use crate::error::TokenError;
use crate::identity::{PlatformId, PlatformIdentity};
use crate::sgx::{Attributes, REPORT_BODY_SIZE, ReportBody};
use crate::token;

/// COSE content type of a quote.
pub const QUOTE_CONTENT_TYPE: &str = "application/vnd.las.quote+cbor";
/// Version of the quote payload format a LAS issues (the payload's `"v"`).
pub const QUOTE_VERSION: u64 = QuoteFormat::V2.version();

/// A quote payload format, told apart by the payload's `"v"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuoteFormat {
    /// `"v": 1`: the REPORT body raw (`report_body`) and decoded (`enclave`). Read, no
    /// longer issued.
    V1,
    /// `"v": 2`: the REPORT body once, raw. What a LAS issues.
    V2,
}

impl QuoteFormat {
    /// Every format this crate reads, oldest first.
    pub const READ: [QuoteFormat; 2] = [QuoteFormat::V1, QuoteFormat::V2];

    /// The payload's `"v"` for this format.
    pub const fn version(self) -> u64 {
        match self {
            QuoteFormat::V1 => 1,
            QuoteFormat::V2 => 2,
        }
    }

    /// The format with payload version `v`, if this crate reads it.
    pub fn from_version(v: u64) -> Option<Self> {
        Self::READ.into_iter().find(|f| f.version() == v)
    }
}

impl std::fmt::Display for QuoteFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.version())
    }
}

/// Which platform backend issued a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The simulated SGX platform: protects nothing.
    Sim,
    /// Real SGX hardware.
    Hw,
}

impl Mode {
    /// `sim` or `hw`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sim => "sim",
            Mode::Hw => "hw",
        }
    }

    /// `sim` or `hw` (exactly: the wire form); anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sim" => Some(Mode::Sim),
            "hw" => Some(Mode::Hw),
            _ => None,
        }
    }
}

/// On the wire (docs/api.md) a mode is the string `sim` or `hw`.
impl serde::Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Reads `sim` or `hw`; anything else is an error that names the value.
impl<'de> serde::Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Mode::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown mode `{}`: expected `sim` or `hw`",
                s.chars().take(80).collect::<String>()
            ))
        })
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a quote says. The same in every format: the decoded REPORT body is here for Rust
/// callers, whatever the wire carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteClaims {
    /// Platform backend of the issuing LAS.
    pub mode: Mode,
    /// The issuing platform (equals the COSE `kid`).
    pub platform_id: PlatformId,
    /// Version of the issuing LAS.
    pub las_version: String,
    /// MRENCLAVE of the issuing LAS.
    pub las_mrenclave: [u8; 32],
    /// Issue time, seconds since the Unix epoch.
    pub issued_at: u64,
    /// The attested enclave's REPORT body (MAC checked by the LAS).
    pub report_body: ReportBody,
}

/// Signs a quote in the format a LAS issues ([`QUOTE_VERSION`]) with the platform key.
/// `claims.platform_id` must be the identity's.
pub fn encode_quote(
    identity: &PlatformIdentity,
    claims: &QuoteClaims,
) -> Result<Vec<u8>, TokenError> {
    token::sign(
        identity,
        QUOTE_CONTENT_TYPE,
        cbor::encode(&payload_tree(claims, QuoteFormat::V2))?,
    )
}

/// The payload's CBOR tree in `format`, keys in the order a LAS writes them. Format 1 is
/// built only to check that a format-1 payload is canonical (and by tests).
fn payload_tree(claims: &QuoteClaims, format: QuoteFormat) -> ciborium::Value {
    let b = &claims.report_body;
    let m = MapBuilder::default()
        .put("v", format.version())
        .put("mode", claims.mode.as_str())
        .bytes("platform_id", &claims.platform_id.0)
        .put("las_version", claims.las_version.as_str())
        .bytes("las_mrenclave", &claims.las_mrenclave)
        .put("iat", claims.issued_at)
        .bytes("report_body", &b.to_bytes());
    match format {
        QuoteFormat::V1 => m.put("enclave", v1_enclave_tree(b)).build(),
        QuoteFormat::V2 => m.build(),
    }
}

/// Format 1's `enclave` map: the REPORT body decoded.
fn v1_enclave_tree(b: &ReportBody) -> ciborium::Value {
    MapBuilder::default()
        .bytes("mrenclave", &b.mrenclave)
        .bytes("mrsigner", &b.mrsigner)
        .put("isvprodid", b.isvprodid)
        .put("isvsvn", b.isvsvn)
        .put(
            "attributes",
            MapBuilder::default()
                .put("flags", b.attributes.flags)
                .put("xfrm", b.attributes.xfrm)
                .put("debug", b.attributes.debug())
                .build(),
        )
        .put("miscselect", b.miscselect)
        .bytes("cpusvn", &b.cpusvn)
        .bytes("config_id", &b.config_id)
        .put("config_svn", b.config_svn)
        .bytes("isv_ext_prod_id", &b.isv_ext_prod_id)
        .bytes("isv_family_id", &b.isv_family_id)
        .bytes("report_data", &b.report_data)
        .build()
}

/// A decoded quote whose signature was verified with the key in its `kid`. Whether that
/// key is trusted is the verifier's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    /// The claims.
    pub claims: QuoteClaims,
    /// The payload format the quote came in.
    pub format: QuoteFormat,
}

/// Decodes a quote strictly and verifies its signature with the platform key it names.
/// Reads every format in [`QuoteFormat::READ`]; refuses any other `"v"`.
pub fn decode_and_verify_quote(bytes: &[u8]) -> Result<VerifiedQuote, TokenError> {
    decode_quote(bytes)?.verify()
}

/// A quote decoded and checked in every way but its signature: for a verifier that checks
/// many signatures at once ([`batch::verify_quotes`]). [`UncheckedQuote::verify`] is the
/// one-at-a-time check of [`decode_and_verify_quote`].
#[derive(Debug, Clone)]
pub struct UncheckedQuote {
    claims: QuoteClaims,
    format: QuoteFormat,
    opened: token::Opened,
}

/// What an Ed25519 signature of a token covers, and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedData {
    /// The COSE `Sig_structure` (RFC 9052, section 4.4): the bytes the key signed.
    pub message: Vec<u8>,
    /// The 64-byte Ed25519 signature (`R ‖ s`).
    pub signature: [u8; 64],
    /// The key that must have signed (the `kid`, equal to the quote's platform ID).
    pub key: PlatformId,
}

/// Decodes a quote strictly (everything [`decode_and_verify_quote`] checks) without
/// verifying its signature.
pub fn decode_quote(bytes: &[u8]) -> Result<UncheckedQuote, TokenError> {
    let opened = token::open(bytes, QUOTE_CONTENT_TYPE)?;
    let (claims, format) = decode_claims(&opened.payload)?;
    if claims.platform_id != opened.kid {
        return Err(TokenError::Inconsistent("platform_id (kid)"));
    }
    Ok(UncheckedQuote {
        claims,
        format,
        opened,
    })
}

impl UncheckedQuote {
    /// The claims, NOT yet authenticated.
    pub fn claims(&self) -> &QuoteClaims {
        &self.claims
    }

    /// The payload format the quote came in.
    pub fn format(&self) -> QuoteFormat {
        self.format
    }

    /// The signed bytes, the signature and the key (what [`batch`] checks).
    pub fn signed_data(&self) -> Result<SignedData, TokenError> {
        let (message, signature) = self.opened.signed_parts()?;
        Ok(SignedData {
            message,
            signature,
            key: self.opened.kid,
        })
    }

    /// Verifies the signature (Ed25519 `verify_strict`) with the key in `kid`.
    pub fn verify(self) -> Result<VerifiedQuote, TokenError> {
        self.opened.verify()?;
        Ok(VerifiedQuote {
            claims: self.claims,
            format: self.format,
        })
    }
}

fn decode_claims(payload: &[u8]) -> Result<(QuoteClaims, QuoteFormat), TokenError> {
    let mut m = cbor::decode_map(payload)?;
    let v = m.uint("v")?;
    let format = QuoteFormat::from_version(v).ok_or(TokenError::UnsupportedQuoteFormat(v))?;
    let claims = match format {
        QuoteFormat::V1 => decode_v1(m)?,
        QuoteFormat::V2 => decode_v2(m)?,
    };
    // Every field is now known: the payload must be exactly what a LAS writes for them in
    // this format (this is where map key order is checked).
    if cbor::encode(&payload_tree(&claims, format))? != payload {
        return Err(TokenError::NonCanonical(
            "payload (map keys not in the LAS's order)",
        ));
    }
    Ok((claims, format))
}

/// The fields every format has (all but `v`), taken from `m`.
fn common_fields(m: &mut MapReader) -> Result<QuoteClaims, TokenError> {
    let mode = Mode::parse(&m.text("mode", 8)?).ok_or(TokenError::Payload("mode"))?;
    let platform_id = PlatformId(m.bytes("platform_id")?);
    let las_version = m.text("las_version", 64)?;
    let las_mrenclave = m.bytes("las_mrenclave")?;
    let issued_at = m.uint("iat")?;
    let raw: [u8; REPORT_BODY_SIZE] = m.bytes("report_body")?;
    let report_body = ReportBody::try_from_slice(&raw)?;
    Ok(QuoteClaims {
        mode,
        platform_id,
        las_version,
        las_mrenclave,
        issued_at,
        report_body,
    })
}

/// Format 2: the common fields and nothing else (an `enclave` map is an unknown field).
fn decode_v2(mut m: MapReader) -> Result<QuoteClaims, TokenError> {
    let claims = common_fields(&mut m)?;
    m.finish("payload (unknown field)")?;
    Ok(claims)
}

/// Format 1: the common fields and `enclave`, which must agree with `report_body`.
fn decode_v1(mut m: MapReader) -> Result<QuoteClaims, TokenError> {
    let claims = common_fields(&mut m)?;
    check_v1_enclave(m.map("enclave")?, &claims.report_body)?;
    m.finish("payload (unknown field)")?;
    Ok(claims)
}

/// Format 1's decoded fields were a convenience for readers; the raw body is the truth.
/// Any disagreement makes the quote malformed.
fn check_v1_enclave(mut e: MapReader, b: &ReportBody) -> Result<(), TokenError> {
    fn same<T: PartialEq>(a: T, b: T, f: &'static str) -> Result<(), TokenError> {
        if a == b {
            Ok(())
        } else {
            Err(TokenError::Inconsistent(f))
        }
    }
    same(e.bytes("mrenclave")?, b.mrenclave, "mrenclave")?;
    same(e.bytes("mrsigner")?, b.mrsigner, "mrsigner")?;
    same(e.u16("isvprodid")?, b.isvprodid, "isvprodid")?;
    same(e.u16("isvsvn")?, b.isvsvn, "isvsvn")?;
    let mut a = e.map("attributes")?;
    let attributes = Attributes {
        flags: a.uint("flags")?,
        xfrm: a.uint("xfrm")?,
    };
    same(
        a.boolean("debug")?,
        b.attributes.debug(),
        "attributes.debug",
    )?;
    a.finish("attributes (unknown field)")?;
    same(attributes, b.attributes, "attributes")?;
    same(e.u32("miscselect")?, b.miscselect, "miscselect")?;
    same(e.bytes("cpusvn")?, b.cpusvn, "cpusvn")?;
    same(e.bytes("config_id")?, b.config_id, "config_id")?;
    same(e.u16("config_svn")?, b.config_svn, "config_svn")?;
    same(
        e.bytes("isv_ext_prod_id")?,
        b.isv_ext_prod_id,
        "isv_ext_prod_id",
    )?;
    same(e.bytes("isv_family_id")?, b.isv_family_id, "isv_family_id")?;
    same(e.bytes("report_data")?, b.report_data, "report_data")?;
    e.finish("enclave (unknown field)")
}

pub mod batch;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;

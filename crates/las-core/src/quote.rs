//! The LAS quote: a COSE_Sign1 by the platform key over the enclave's REPORT body, its
//! decoded fields, and who issued it. Format: docs/quote.md (CDDL).

use crate::cbor::{self, MapBuilder, MapReader};
use crate::error::TokenError;
use crate::identity::{PlatformId, PlatformIdentity};
use crate::sgx::{Attributes, REPORT_BODY_SIZE, ReportBody};
use crate::token;

/// COSE content type of a quote.
pub const QUOTE_CONTENT_TYPE: &str = "application/vnd.las.quote+cbor";
/// Version of the quote payload format.
pub const QUOTE_VERSION: u64 = 1;

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

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "sim" => Some(Mode::Sim),
            "hw" => Some(Mode::Hw),
            _ => None,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a quote says.
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

/// Signs a quote with the platform key. `claims.platform_id` must be the identity's.
pub fn encode_quote(identity: &PlatformIdentity, claims: &QuoteClaims) -> Vec<u8> {
    let b = &claims.report_body;
    let enclave = MapBuilder::default()
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
        .build();
    let payload = MapBuilder::default()
        .put("v", QUOTE_VERSION)
        .put("mode", claims.mode.as_str())
        .bytes("platform_id", &claims.platform_id.0)
        .put("las_version", claims.las_version.as_str())
        .bytes("las_mrenclave", &claims.las_mrenclave)
        .put("iat", claims.issued_at)
        .bytes("report_body", &b.to_bytes())
        .put("enclave", enclave)
        .build();
    token::sign(identity, QUOTE_CONTENT_TYPE, cbor::encode(&payload))
}

/// A decoded quote whose signature was verified with the key in its `kid`. Whether that
/// key is trusted is the verifier's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    /// The claims.
    pub claims: QuoteClaims,
}

/// Decodes a quote strictly and verifies its signature with the platform key it names.
pub fn decode_and_verify_quote(bytes: &[u8]) -> Result<VerifiedQuote, TokenError> {
    let opened = token::open(bytes, QUOTE_CONTENT_TYPE)?;
    let claims = decode_claims(&opened.payload)?;
    if claims.platform_id != opened.kid {
        return Err(TokenError::Inconsistent("platform_id (kid)"));
    }
    opened.verify()?;
    Ok(VerifiedQuote { claims })
}

fn decode_claims(payload: &[u8]) -> Result<QuoteClaims, TokenError> {
    let mut m = cbor::decode_map(payload)?;
    if m.uint("v")? != QUOTE_VERSION {
        return Err(TokenError::Payload("v"));
    }
    let mode = Mode::parse(&m.text("mode", 8)?).ok_or(TokenError::Payload("mode"))?;
    let platform_id = PlatformId(m.bytes("platform_id")?);
    let las_version = m.text("las_version", 64)?;
    let las_mrenclave = m.bytes("las_mrenclave")?;
    let issued_at = m.uint("iat")?;
    let raw: [u8; REPORT_BODY_SIZE] = m.bytes("report_body")?;
    let report_body = ReportBody::try_from_slice(&raw)?;
    check_enclave(m.map("enclave")?, &report_body)?;
    m.finish("payload (unknown field)")?;
    Ok(QuoteClaims {
        mode,
        platform_id,
        las_version,
        las_mrenclave,
        issued_at,
        report_body,
    })
}

/// The decoded fields are a convenience for readers; the raw body is the truth. Any
/// disagreement makes the quote malformed.
fn check_enclave(mut e: MapReader, b: &ReportBody) -> Result<(), TokenError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::crypto::Key128;
    use crate::sgx::flags;

    pub(crate) fn sample() -> (PlatformIdentity, QuoteClaims) {
        let id = PlatformIdentity::from_seal_key(&Key128::from_bytes([1; 16]));
        let claims = QuoteClaims {
            mode: Mode::Sim,
            platform_id: id.platform_id(),
            las_version: "0.1.0".into(),
            las_mrenclave: [5; 32],
            issued_at: 1_800_000_000,
            report_body: ReportBody {
                cpusvn: [1; 16],
                miscselect: 0,
                isv_ext_prod_id: [0; 16],
                attributes: Attributes {
                    flags: flags::INIT | flags::MODE64BIT,
                    xfrm: 3,
                },
                mrenclave: [2; 32],
                mrsigner: [3; 32],
                config_id: [0; 64],
                isvprodid: 1,
                isvsvn: 2,
                config_svn: 0,
                isv_family_id: [0; 16],
                report_data: [9; 64],
            },
        };
        (id, claims)
    }

    #[test]
    fn round_trip() {
        let (id, claims) = sample();
        let q = encode_quote(&id, &claims);
        assert_eq!(q[0], 0xd2, "tagged COSE_Sign1 (tag 18)");
        assert_eq!(decode_and_verify_quote(&q).unwrap().claims, claims);
    }

    #[test]
    fn every_bit_flip_and_every_byte_inversion_is_rejected() {
        let (id, claims) = sample();
        let q = encode_quote(&id, &claims);
        // Each of the 8 bits of every byte alone, then the whole byte.
        for i in 0..q.len() {
            for mask in (0..8).map(|b| 1u8 << b).chain([0xff]) {
                let mut bad = q.clone();
                bad[i] ^= mask;
                assert!(
                    decode_and_verify_quote(&bad).is_err(),
                    "byte {i} ^ {mask:#04x}"
                );
            }
        }
        for len in 0..q.len() {
            assert!(
                decode_and_verify_quote(&q[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut longer = q.clone();
        longer.push(0);
        assert!(decode_and_verify_quote(&longer).is_err());
    }

    #[test]
    fn a_kid_that_disagrees_with_the_platform_id_is_rejected() {
        let (id, claims) = sample();
        let other = PlatformIdentity::from_seal_key(&Key128::from_bytes([2; 16]));
        let mut forged = claims.clone();
        forged.platform_id = other.platform_id();
        // Signed by `id` (kid = id) but the payload names `other`.
        let q = token::sign(&id, QUOTE_CONTENT_TYPE, {
            let good = encode_quote(&other, &forged);
            token::open(&good, QUOTE_CONTENT_TYPE).unwrap().payload
        });
        assert!(matches!(
            decode_and_verify_quote(&q),
            Err(TokenError::Inconsistent("platform_id (kid)"))
        ));
    }

    #[test]
    fn a_key_swapped_in_kid_and_platform_id_fails_the_signature_check() {
        use coset::{CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
        let (id, claims) = sample();
        let other = PlatformIdentity::from_seal_key(&Key128::from_bytes([2; 16]));
        let mut forged = claims.clone();
        forged.platform_id = other.platform_id();
        let payload = {
            let good = encode_quote(&other, &forged);
            token::open(&good, QUOTE_CONTENT_TYPE).unwrap().payload
        };
        // kid and platform_id both name `other`, consistently; the signature is `id`'s.
        let forge = |signer: &PlatformIdentity| {
            CoseSign1Builder::new()
                .protected(
                    HeaderBuilder::new()
                        .algorithm(iana::Algorithm::EdDSA)
                        .key_id(other.platform_id().0.to_vec())
                        .content_type(QUOTE_CONTENT_TYPE.to_owned())
                        .build(),
                )
                .payload(payload.clone())
                .create_signature(b"", |tbs| signer.sign(tbs).to_vec())
                .build()
                .to_tagged_vec()
                .unwrap()
        };
        assert!(matches!(
            decode_and_verify_quote(&forge(&id)),
            Err(TokenError::Signature)
        ));
        // The same bytes signed by the key they name verify: only the signature differed.
        assert_eq!(
            decode_and_verify_quote(&forge(&other)).unwrap().claims,
            forged
        );
    }
}

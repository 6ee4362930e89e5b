//! LAS identity evidence: what a LAS answers to `GET /v1/identity?nonce=…`, so that a
//! verifier can trust its platform key on first contact.
//!
//! The evidence is a COSE_Sign1 by the platform key (proof of possession, and it binds
//! every field to the key) whose payload names the LAS (measurement, signer, CPUSVN), the
//! verifier's nonce, and the *binding*
//! `SHA-512("las-identity-binding-v1" || platform_id (32 bytes) || nonce)`, 64 bytes: the
//! REPORTDATA a hardware LAS puts into its DCAP quote. `sim` evidence carries no hardware
//! quote and proves nothing beyond key possession; `sgx-dcap` evidence carries the DCAP
//! quote of the LAS enclave.

use sha2::{Digest, Sha512};

use crate::cbor::{self, MapBuilder};
use crate::error::TokenError;
use crate::identity::{PlatformId, PlatformIdentity};
use crate::quote::Mode;
use crate::tcb::QeId;
use crate::token;

/// COSE content type of identity evidence.
pub const EVIDENCE_CONTENT_TYPE: &str = "application/vnd.las.identity+cbor";
/// Version of the evidence payload format.
pub const EVIDENCE_VERSION: u64 = 1;
/// Domain label of the key/nonce binding.
pub const BINDING_LABEL: &[u8] = b"las-identity-binding-v1";
/// Shortest nonce a LAS accepts (bytes).
pub const MIN_NONCE: usize = 16;
/// Longest nonce a LAS accepts (bytes).
pub const MAX_NONCE: usize = 64;
/// Largest DCAP quote carried in evidence.
pub const MAX_DCAP_QUOTE: usize = 48 * 1024;

/// The kind of evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceKind {
    /// Simulated platform: no hardware root of trust.
    Sim,
    /// A DCAP quote of the LAS enclave whose REPORTDATA is the binding.
    SgxDcap {
        /// The raw DCAP quote (v3 or v4).
        quote: Vec<u8>,
    },
}

impl EvidenceKind {
    /// `sim` or `sgx-dcap`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EvidenceKind::Sim => "sim",
            EvidenceKind::SgxDcap { .. } => "sgx-dcap",
        }
    }
}

/// What identity evidence says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceClaims {
    /// The evidence type and its hardware part.
    pub kind: EvidenceKind,
    /// Platform backend of the LAS.
    pub mode: Mode,
    /// The platform key being vouched for (equals the COSE `kid`).
    pub platform_id: PlatformId,
    /// The verifier's nonce, echoed.
    pub nonce: Vec<u8>,
    /// LAS version.
    pub las_version: String,
    /// MRENCLAVE of the LAS.
    pub las_mrenclave: [u8; 32],
    /// MRSIGNER of the LAS.
    pub las_mrsigner: [u8; 32],
    /// ISVPRODID of the LAS.
    pub las_isvprodid: u16,
    /// ISVSVN of the LAS.
    pub las_isvsvn: u16,
    /// The platform's CPUSVN.
    pub cpusvn: [u8; 16],
    /// Issue time, seconds since the Unix epoch.
    pub issued_at: u64,
    /// [`binding`] of the key and nonce.
    pub binding: [u8; 64],
    /// `sim` evidence: the simulated platform's QE ID (derived from its secret), signed
    /// with the platform key. `None` in `sgx-dcap` evidence, whose QE ID is the DCAP
    /// quote's (read by the verifier from the verified quote), and in `sim` evidence of
    /// older LASes.
    pub qe_id: Option<QeId>,
}

/// `SHA-512(BINDING_LABEL || platform_id || nonce)`: the REPORTDATA that ties a hardware
/// quote of the LAS to its platform key and to the verifier's fresh nonce.
pub fn binding(platform_id: &PlatformId, nonce: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(BINDING_LABEL);
    h.update(platform_id.0);
    h.update(nonce);
    h.finalize().into()
}

/// Signs identity evidence with the platform key.
pub fn encode_evidence(
    identity: &PlatformIdentity,
    c: &EvidenceClaims,
) -> Result<Vec<u8>, TokenError> {
    token::sign(
        identity,
        EVIDENCE_CONTENT_TYPE,
        cbor::encode(&payload_tree(c))?,
    )
}

/// The payload's CBOR tree, keys in the order a LAS writes them.
fn payload_tree(c: &EvidenceClaims) -> ciborium::Value {
    let mut m = MapBuilder::default()
        .put("v", EVIDENCE_VERSION)
        .put("type", c.kind.as_str())
        .put("mode", c.mode.as_str())
        .bytes("platform_id", &c.platform_id.0)
        .bytes("nonce", &c.nonce)
        .put("las_version", c.las_version.as_str())
        .bytes("las_mrenclave", &c.las_mrenclave)
        .bytes("las_mrsigner", &c.las_mrsigner)
        .put("las_isvprodid", c.las_isvprodid)
        .put("las_isvsvn", c.las_isvsvn)
        .bytes("cpusvn", &c.cpusvn)
        .put("iat", c.issued_at)
        .bytes("binding", &c.binding);
    if let EvidenceKind::SgxDcap { quote } = &c.kind {
        m = m.bytes("dcap_quote", quote);
    }
    if let Some(q) = &c.qe_id {
        m = m.bytes("qe_id", &q.0);
    }
    m.build()
}

/// Decodes evidence strictly, verifies its signature with the key it names, and checks
/// that its binding is the one of that key and its nonce. Whether the evidence is
/// *trusted* (simulation tolerated, DCAP quote genuine, measurement accepted, nonce fresh)
/// is the verifier's decision.
pub fn decode_and_verify_evidence(bytes: &[u8]) -> Result<EvidenceClaims, TokenError> {
    let opened = token::open(bytes, EVIDENCE_CONTENT_TYPE)?;
    let mut m = cbor::decode_map(&opened.payload)?;
    if m.uint("v")? != EVIDENCE_VERSION {
        return Err(TokenError::Payload("v"));
    }
    let kind_name = m.text("type", 16)?;
    let mode = Mode::parse(&m.text("mode", 8)?).ok_or(TokenError::Payload("mode"))?;
    let platform_id = PlatformId(m.bytes("platform_id")?);
    let nonce = m.var_bytes("nonce", MAX_NONCE)?;
    let las_version = m.text("las_version", 64)?;
    let las_mrenclave = m.bytes("las_mrenclave")?;
    let las_mrsigner = m.bytes("las_mrsigner")?;
    let las_isvprodid = m.u16("las_isvprodid")?;
    let las_isvsvn = m.u16("las_isvsvn")?;
    let cpusvn = m.bytes("cpusvn")?;
    let issued_at = m.uint("iat")?;
    let binding_field = m.bytes("binding")?;
    let kind = match kind_name.as_str() {
        "sim" if mode == Mode::Sim && !m.has("dcap_quote") => EvidenceKind::Sim,
        "sgx-dcap" if mode == Mode::Hw => EvidenceKind::SgxDcap {
            quote: m.var_bytes("dcap_quote", MAX_DCAP_QUOTE)?,
        },
        _ => return Err(TokenError::Payload("type")),
    };
    let qe_id = match kind {
        // Only the simulated platform vouches for its own QE ID; hardware evidence takes
        // it from the DCAP quote.
        EvidenceKind::Sim if m.has("qe_id") => Some(QeId(m.bytes("qe_id")?)),
        _ => None,
    };
    m.finish("payload (unknown field)")?;
    if platform_id != opened.kid {
        return Err(TokenError::Inconsistent("platform_id (kid)"));
    }
    if nonce.len() < MIN_NONCE {
        return Err(TokenError::Payload("nonce"));
    }
    if binding_field != binding(&platform_id, &nonce) {
        return Err(TokenError::Inconsistent("binding"));
    }
    let claims = EvidenceClaims {
        kind,
        mode,
        platform_id,
        nonce,
        las_version,
        las_mrenclave,
        las_mrsigner,
        las_isvprodid,
        las_isvsvn,
        cpusvn,
        issued_at,
        binding: binding_field,
        qe_id,
    };
    // Every field is now known: the payload must be exactly what a LAS writes for them
    // (this is where map key order is checked).
    if cbor::encode(&payload_tree(&claims))? != opened.payload {
        return Err(TokenError::NonCanonical(
            "payload (map keys not in the LAS's order)",
        ));
    }
    opened.verify()?;
    Ok(claims)
}

/// Identity evidence whose signature and binding verified ([`decode_and_verify_evidence`]),
/// kept with its exact bytes: a verifier that meets the same bytes again may take these
/// claims instead of decoding and checking the signature once more. Only this module
/// makes one, so the claims are always those of [`token`](Self::token). What the
/// evidence is *worth* (its age, the nonce, the policy) is still checked on every use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvidence {
    token: Vec<u8>,
    claims: EvidenceClaims,
}

impl VerifiedEvidence {
    /// Decodes and verifies `token` ([`decode_and_verify_evidence`]) and keeps it.
    pub fn verify(token: Vec<u8>) -> Result<Self, TokenError> {
        let claims = decode_and_verify_evidence(&token)?;
        Ok(Self { token, claims })
    }

    /// The exact bytes that verified.
    pub fn token(&self) -> &[u8] {
        &self.token
    }

    /// Their claims.
    pub fn claims(&self) -> &EvidenceClaims {
        &self.claims
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::crypto::Key128;

    fn sample(kind: EvidenceKind, mode: Mode) -> (PlatformIdentity, EvidenceClaims) {
        let id = PlatformIdentity::from_seal_key(&Key128::from_bytes([1; 16]));
        let nonce = vec![7u8; 32];
        let c = EvidenceClaims {
            kind,
            mode,
            platform_id: id.platform_id(),
            binding: binding(&id.platform_id(), &nonce),
            nonce,
            las_version: "0.1.0".into(),
            las_mrenclave: [1; 32],
            las_mrsigner: [2; 32],
            las_isvprodid: 0,
            las_isvsvn: 0,
            cpusvn: [3; 16],
            issued_at: 1,
            qe_id: (mode == Mode::Sim).then_some(QeId([4; 16])),
        };
        (id, c)
    }

    #[test]
    fn round_trip_and_flips() {
        for (kind, mode) in [
            (EvidenceKind::Sim, Mode::Sim),
            (
                EvidenceKind::SgxDcap {
                    quote: vec![1, 2, 3],
                },
                Mode::Hw,
            ),
        ] {
            let (id, c) = sample(kind, mode);
            let e = encode_evidence(&id, &c).unwrap();
            assert_eq!(decode_and_verify_evidence(&e).unwrap(), c);
            for i in 0..e.len() {
                let mut bad = e.clone();
                bad[i] ^= 0x80;
                assert!(decode_and_verify_evidence(&bad).is_err(), "flip at {i}");
            }
        }
    }

    /// Evidence, like quotes, only in the encoding a LAS writes (more cases in the quote
    /// tests; the code is shared).
    #[test]
    fn only_the_canonical_encoding_is_accepted() {
        let (id, c) = sample(EvidenceKind::Sim, Mode::Sim);
        let good = encode_evidence(&id, &c).unwrap();
        assert_eq!(good, encode_evidence(&id, &c).unwrap());
        let payload = token::open(&good, EVIDENCE_CONTENT_TYPE).unwrap().payload;
        let resign = |p: Vec<u8>| token::sign(&id, EVIDENCE_CONTENT_TYPE, p).unwrap();
        assert_eq!(resign(payload.clone()), good);
        let ciborium::Value::Map(mut m) = ciborium::from_reader(&payload[..]).unwrap() else {
            panic!("a map");
        };
        m.swap(2, 3);
        let swapped = resign(cbor::encode(&ciborium::Value::Map(m)).unwrap());
        let mut trailing = good.clone();
        trailing.push(0);
        let indefinite = [&[0xd2, 0x9f], &good[2..], &[0xff]].concat();
        for (what, bad) in [
            ("keys out of order", swapped),
            ("trailing byte", trailing),
            ("indefinite envelope", indefinite),
        ] {
            let r = decode_and_verify_evidence(&bad);
            assert!(
                matches!(r, Err(TokenError::NonCanonical(_))),
                "{what}: {r:?}"
            );
        }
    }

    #[test]
    fn a_quote_is_not_evidence() {
        let (id, c) = sample(EvidenceKind::Sim, Mode::Sim);
        let e = encode_evidence(&id, &c).unwrap();
        assert!(crate::quote::decode_and_verify_quote(&e).is_err());
    }

    #[test]
    fn binding_depends_on_key_and_nonce() {
        let a = PlatformId([1; 32]);
        let b = PlatformId([2; 32]);
        assert_ne!(
            binding(&a, b"0123456789abcdef"),
            binding(&b, b"0123456789abcdef")
        );
        assert_ne!(
            binding(&a, b"0123456789abcdef"),
            binding(&a, b"0123456789abcdeg")
        );
    }
}

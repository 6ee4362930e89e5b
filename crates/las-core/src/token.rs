//! The COSE_Sign1 envelope shared by quotes and identity evidence (RFC 9052, tag 18):
//! protected header = {alg: EdDSA (-8), kid: platform ID (32 bytes), content type}, an
//! empty unprotected header, the payload embedded, no external AAD. The content type
//! tells a quote from identity evidence, so that one cannot be passed off as the other.

use coset::{
    CoseSign1, CoseSign1Builder, HeaderBuilder, RegisteredLabelWithPrivate, TaggedCborSerializable,
    iana,
};
use ed25519_dalek::Signature;

use crate::cbor::{self, Part};
use crate::error::TokenError;
use crate::identity::{PlatformId, PlatformIdentity};

/// Largest token any LAS writes (a hardware identity evidence carries a DCAP quote of a
/// few KiB); decoders refuse anything larger before parsing.
pub const MAX_TOKEN_SIZE: usize = 64 * 1024;

/// The protected header a LAS writes: alg, kid, content type (coset encodes them in this
/// order, integers in shortest form).
fn protected_header(kid: &[u8], content_type: &str) -> coset::Header {
    HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(kid.to_vec())
        .content_type(content_type.to_owned())
        .build()
}

/// Signs `payload` as a tagged COSE_Sign1 with the platform key.
pub(crate) fn sign(
    identity: &PlatformIdentity,
    content_type: &str,
    payload: Vec<u8>,
) -> Result<Vec<u8>, TokenError> {
    let sign1 = CoseSign1Builder::new()
        .protected(protected_header(&identity.platform_id().0, content_type))
        .payload(payload)
        .create_signature(b"", |tbs| identity.sign(tbs).to_vec())
        .build();
    // Serialising a structure we just built with a byte payload does not fail; if it ever
    // did, an empty token must not be sent as a quote.
    sign1.to_tagged_vec().map_err(TokenError::EncodeCose)
}

/// A decoded, not yet verified, COSE_Sign1 from a LAS.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub(crate) kid: PlatformId,
    pub(crate) payload: Vec<u8>,
    sign1: CoseSign1,
}

/// Decodes a tagged COSE_Sign1 and checks its headers; the signature is checked by
/// [`Opened::verify`].
pub(crate) fn open(bytes: &[u8], content_type: &str) -> Result<Opened, TokenError> {
    if bytes.len() > MAX_TOKEN_SIZE {
        return Err(TokenError::TooLarge(bytes.len()));
    }
    // Canonical form first, so that a non-canonical token is named as such even where
    // coset would refuse it for another reason (e.g. bytes after the end).
    cbor::decode_canonical(bytes, Part::Envelope)?;
    let sign1 = CoseSign1::from_tagged_slice(bytes).map_err(TokenError::Cose)?;
    let h = &sign1.protected.header;
    if h.alg != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA)) {
        return Err(TokenError::Header("alg must be EdDSA (-8)"));
    }
    match &h.content_type {
        Some(coset::ContentType::Text(t)) if t == content_type => {}
        _ => return Err(TokenError::Header("unexpected content type")),
    }
    if !h.crit.is_empty() || !h.rest.is_empty() || !h.iv.is_empty() || !h.partial_iv.is_empty() {
        return Err(TokenError::Header("unexpected protected header parameter"));
    }
    if !sign1.unprotected.is_empty() {
        return Err(TokenError::Header("unprotected header must be empty"));
    }
    let kid: [u8; 32] = h
        .key_id
        .as_slice()
        .try_into()
        .map_err(|_| TokenError::Header("kid must be the 32-byte platform ID"))?;
    let payload = sign1
        .payload
        .clone()
        .ok_or(TokenError::Payload("payload (detached)"))?;
    if sign1.signature.len() != 64 {
        return Err(TokenError::Signature);
    }
    // The protected header is a byte string holding a map: re-build what a LAS writes
    // for these values and compare the whole token (signatures cover the header's bytes
    // as sent, so a re-encoded header would still verify).
    let canonical = CoseSign1Builder::new()
        .protected(protected_header(&kid, content_type))
        .payload(payload.clone())
        .signature(sign1.signature.clone())
        .build()
        .to_tagged_vec()
        .map_err(TokenError::Cose)?;
    if canonical != bytes {
        return Err(TokenError::NonCanonical(
            "COSE protected header (parameters out of order, repeated, or not in shortest form)",
        ));
    }
    Ok(Opened {
        kid: PlatformId(kid),
        payload,
        sign1,
    })
}

impl Opened {
    /// The bytes the signature covers (the COSE `Sig_structure`, no external AAD) and the
    /// signature, for a verifier that checks many signatures at once.
    pub(crate) fn signed_parts(&self) -> Result<(Vec<u8>, [u8; 64]), TokenError> {
        let sig: [u8; 64] = self
            .sign1
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| TokenError::Signature)?;
        Ok((self.sign1.tbs_data(b""), sig))
    }

    /// Verifies the Ed25519 signature with the key named in `kid` (strict verification:
    /// no small-order keys, canonical signatures only).
    pub(crate) fn verify(&self) -> Result<(), TokenError> {
        let vk = self.kid.verifying_key().ok_or(TokenError::Signature)?;
        self.sign1.verify_signature(b"", |sig, tbs| {
            let sig: [u8; 64] = sig.try_into().map_err(|_| TokenError::Signature)?;
            vk.verify_strict(tbs, &Signature::from_bytes(&sig))
                .map_err(|_| TokenError::Signature)
        })
    }
}

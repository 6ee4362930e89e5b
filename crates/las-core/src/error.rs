//! Error types of the core, one per concern.

/// A binary structure did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input had the wrong length.
    #[error("{what} must be {expected} bytes, got {actual}")]
    Length {
        /// Which structure.
        what: &'static str,
        /// Its size.
        expected: usize,
        /// The size given.
        actual: usize,
    },
    /// A reserved field was not zero.
    #[error("reserved field {0} is not zero")]
    Reserved(&'static str),
    /// A hex string did not decode.
    #[error("{what}: expected {expected} hex characters")]
    Hex {
        /// Which value.
        what: &'static str,
        /// Number of hex characters expected.
        expected: usize,
    },
}

/// A quote or identity evidence token could not be decoded or verified.
///
/// Not `Clone` or `PartialEq`: it carries the COSE and CBOR libraries' errors as its
/// sources; match on the variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// More than [`MAX_TOKEN_SIZE`](crate::MAX_TOKEN_SIZE) bytes: refused before decoding.
    #[error("token is {0} bytes, more than the {max} allowed", max = crate::MAX_TOKEN_SIZE)]
    TooLarge(usize),
    /// Not a tagged COSE_Sign1 (coset's reason).
    #[error("not a tagged COSE_Sign1: {0}")]
    Cose(#[source] coset::CoseError),
    /// The protected header is not what a LAS writes (alg, kid, content type).
    #[error("bad protected header: {0}")]
    Header(&'static str),
    /// The payload is missing, not CBOR, or a field is missing or of the wrong type.
    #[error("bad payload field `{0}`")]
    Payload(&'static str),
    /// The quote's payload version `v` is not a format this verifier reads (1 and 2):
    /// refused, never read as another format.
    #[error("unsupported quote format {0} (this verifier reads formats 1 and 2)")]
    UnsupportedQuoteFormat(u64),
    /// The decoded report fields disagree with the raw report body.
    #[error("decoded field `{0}` disagrees with the report body")]
    Inconsistent(&'static str),
    /// The raw report body does not parse.
    #[error("report body: {0}")]
    Body(#[from] FormatError),
    /// The signature does not verify with the key in `kid`.
    #[error("signature does not verify with the platform key")]
    Signature,
    /// The token decodes but is not in the one encoding a LAS writes (indefinite length,
    /// an integer or length not in its shortest form, map keys duplicated or out of order,
    /// bytes after the end): a token's bytes are unique, so hashes of tokens can be
    /// compared. Names the part.
    #[error("not in the canonical encoding a LAS writes: {0}")]
    NonCanonical(&'static str),
    /// The CBOR payload of a token could not be written: nothing is sent.
    #[error("cannot encode the token's CBOR payload: {0}")]
    EncodePayload(#[source] ciborium::ser::Error<std::io::Error>),
    /// The COSE_Sign1 around a token's payload could not be written: nothing is sent.
    #[error("cannot encode the token's COSE_Sign1: {0}")]
    EncodeCose(#[source] coset::CoseError),
}

/// A key could not be derived (models the EGETKEY faults).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The KEYNAME is not one this model derives.
    #[error("unsupported KEYNAME {0}")]
    KeyName(u16),
    /// The request asks for a CPUSVN or ISVSVN above the current one.
    #[error("requested {0} is above the current one")]
    Svn(&'static str),
}

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a tagged COSE_Sign1, or trailing bytes.
    #[error("not a tagged COSE_Sign1: {0}")]
    Cose(String),
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
    /// A token could not be written (CBOR or COSE encoding failed): nothing is sent.
    #[error("cannot encode the token: {0}")]
    Encode(String),
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

//! Strict reading of the CBOR maps inside LAS tokens: text keys, each once, every expected
//! key present with the expected type, no unknown keys, no trailing bytes.

// A parser of untrusted bytes: no arithmetic that can overflow (as dcap-qvl's parsers).
#![deny(clippy::arithmetic_side_effects)]

use ciborium::Value;

use crate::error::TokenError;

/// Decodes one CBOR item that must be a map in canonical form (see [`decode_canonical`]).
pub(crate) fn decode_map(bytes: &[u8]) -> Result<MapReader, TokenError> {
    let v = decode_canonical(bytes, Part::Payload)?.ok_or(TokenError::Payload("payload"))?;
    MapReader::new(v, "payload")
}

/// Which part of a token is being decoded (names it in errors).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part {
    /// The whole tagged COSE_Sign1.
    Envelope,
    /// The payload inside it.
    Payload,
}

/// Decodes one CBOR item and checks that it is in the encoding [`encode`] writes:
/// definite lengths, shortest integers and lengths, nothing after it. Re-encoding and
/// comparing is the whole check: the encoder is deterministic (ciborium writes definite
/// lengths in shortest form, map entries in the order of the tree), so any other byte
/// string for the same tree differs. Map key *order* and duplicates are left to the
/// callers, which compare with the tree they would have built. `Ok(None)`: not CBOR.
pub(crate) fn decode_canonical(bytes: &[u8], part: Part) -> Result<Option<Value>, TokenError> {
    let mut rest = bytes;
    let Ok(v) = ciborium::from_reader::<Value, _>(&mut rest) else {
        return Ok(None);
    };
    let (trailing, form) = match part {
        Part::Envelope => (
            "bytes after the end of the COSE_Sign1",
            "COSE_Sign1 (indefinite length, or an integer or length not in shortest form)",
        ),
        Part::Payload => (
            "bytes after the end of the payload",
            "payload (indefinite length, or an integer or length not in shortest form)",
        ),
    };
    if !rest.is_empty() {
        return Err(TokenError::NonCanonical(trailing));
    }
    if encode(&v)? != bytes {
        return Err(TokenError::NonCanonical(form));
    }
    Ok(Some(v))
}

pub(crate) fn encode(v: &Value) -> Result<Vec<u8>, crate::error::TokenError> {
    let mut out = Vec::with_capacity(768);
    // Writing into a Vec does not fail for a Value tree we built ourselves; if it ever did,
    // the caller gets an error instead of a truncated payload.
    ciborium::into_writer(v, &mut out).map_err(crate::error::TokenError::EncodePayload)?;
    Ok(out)
}

/// Builds a map with text keys in insertion order.
#[derive(Debug, Default)]
pub(crate) struct MapBuilder(Vec<(Value, Value)>);

impl MapBuilder {
    pub(crate) fn put(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.0.push((Value::Text(k.to_owned()), v.into()));
        self
    }
    pub(crate) fn bytes(self, k: &str, v: &[u8]) -> Self {
        self.put(k, Value::Bytes(v.to_vec()))
    }
    pub(crate) fn build(self) -> Value {
        Value::Map(self.0)
    }
}

/// Takes the fields of a map one by one; `finish` rejects what was not taken.
#[derive(Debug)]
pub(crate) struct MapReader {
    entries: Vec<(String, Value)>,
}

impl MapReader {
    pub(crate) fn new(v: Value, what: &'static str) -> Result<Self, TokenError> {
        let Value::Map(m) = v else {
            return Err(TokenError::Payload(what));
        };
        let mut entries = Vec::with_capacity(m.len());
        for (k, v) in m {
            let Value::Text(k) = k else {
                return Err(TokenError::Payload(what));
            };
            if entries.iter().any(|(e, _)| *e == k) {
                return Err(TokenError::NonCanonical("duplicate map key"));
            }
            entries.push((k, v));
        }
        Ok(Self { entries })
    }

    fn take(&mut self, k: &'static str) -> Result<Value, TokenError> {
        let i = self
            .entries
            .iter()
            .position(|(e, _)| e == k)
            .ok_or(TokenError::Payload(k))?;
        Ok(self.entries.swap_remove(i).1)
    }

    pub(crate) fn has(&self, k: &str) -> bool {
        self.entries.iter().any(|(e, _)| e == k)
    }

    pub(crate) fn bytes<const N: usize>(&mut self, k: &'static str) -> Result<[u8; N], TokenError> {
        match self.take(k)? {
            Value::Bytes(b) => b.try_into().map_err(|_| TokenError::Payload(k)),
            _ => Err(TokenError::Payload(k)),
        }
    }

    pub(crate) fn var_bytes(&mut self, k: &'static str, max: usize) -> Result<Vec<u8>, TokenError> {
        match self.take(k)? {
            Value::Bytes(b) if b.len() <= max => Ok(b),
            _ => Err(TokenError::Payload(k)),
        }
    }

    pub(crate) fn text(&mut self, k: &'static str, max: usize) -> Result<String, TokenError> {
        match self.take(k)? {
            Value::Text(t) if t.len() <= max => Ok(t),
            _ => Err(TokenError::Payload(k)),
        }
    }

    pub(crate) fn uint(&mut self, k: &'static str) -> Result<u64, TokenError> {
        match self.take(k)? {
            Value::Integer(i) => u64::try_from(i).map_err(|_| TokenError::Payload(k)),
            _ => Err(TokenError::Payload(k)),
        }
    }

    pub(crate) fn u16(&mut self, k: &'static str) -> Result<u16, TokenError> {
        u16::try_from(self.uint(k)?).map_err(|_| TokenError::Payload(k))
    }

    pub(crate) fn u32(&mut self, k: &'static str) -> Result<u32, TokenError> {
        u32::try_from(self.uint(k)?).map_err(|_| TokenError::Payload(k))
    }

    pub(crate) fn boolean(&mut self, k: &'static str) -> Result<bool, TokenError> {
        match self.take(k)? {
            Value::Bool(b) => Ok(b),
            _ => Err(TokenError::Payload(k)),
        }
    }

    pub(crate) fn map(&mut self, k: &'static str) -> Result<MapReader, TokenError> {
        MapReader::new(self.take(k)?, k)
    }

    pub(crate) fn finish(self, what: &'static str) -> Result<(), TokenError> {
        if self.entries.is_empty() {
            Ok(())
        } else {
            Err(TokenError::Payload(what))
        }
    }
}

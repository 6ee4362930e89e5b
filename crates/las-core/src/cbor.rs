//! Strict reading of the CBOR maps inside LAS tokens: text keys, each once, every expected
//! key present with the expected type, no unknown keys, no trailing bytes.

use ciborium::Value;

use crate::error::TokenError;

/// Decodes one CBOR item that must be a map, rejecting trailing bytes.
pub(crate) fn decode_map(bytes: &[u8]) -> Result<MapReader, TokenError> {
    let mut rest = bytes;
    let v: Value = ciborium::from_reader(&mut rest).map_err(|_| TokenError::Payload("payload"))?;
    if !rest.is_empty() {
        return Err(TokenError::Payload("payload (trailing bytes)"));
    }
    MapReader::new(v, "payload")
}

pub(crate) fn encode(v: &Value) -> Result<Vec<u8>, crate::error::TokenError> {
    let mut out = Vec::with_capacity(768);
    // Writing into a Vec does not fail for a Value tree we built ourselves; if it ever did,
    // the caller gets an error instead of a truncated payload.
    ciborium::into_writer(v, &mut out)
        .map_err(|e| crate::error::TokenError::Encode(format!("CBOR payload: {e}")))?;
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
                return Err(TokenError::Payload(what));
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

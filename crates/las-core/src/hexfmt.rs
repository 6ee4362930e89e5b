//! Fixed-length hex values as operators type them: either case in, upper case out.

// A parser of untrusted text: no arithmetic that can overflow (as dcap-qvl's parsers).
#![deny(clippy::arithmetic_side_effects)]

use crate::error::FormatError;

/// Decodes exactly `N` bytes from `2 * N` hex characters (either case, surrounding
/// white space ignored).
pub fn decode_fixed<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], FormatError> {
    let chars = N.saturating_mul(2);
    let err = FormatError::Hex {
        what,
        expected: chars,
    };
    let s = s.trim();
    if s.len() != chars {
        return Err(err);
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| err)?;
    Ok(out)
}

/// Upper-case hex, the form of platform IDs in logs and the CLI.
pub fn upper(b: &[u8]) -> String {
    hex::encode_upper(b)
}

//! AES-128-CMAC (the SGX REPORT MAC) and 128-bit keys that zeroize on drop.

use aes::Aes128;
use cmac::{Cmac, Mac};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 128-bit key (report key, seal key). Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key128([u8; 16]);

impl Key128 {
    /// Wraps raw key bytes.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        Self(b)
    }

    /// The raw key bytes (for derivations only).
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }

    /// AES-128-CMAC (RFC 4493) of `data` under this key.
    pub fn cmac(&self, data: &[u8]) -> [u8; 16] {
        let mut mac = <Cmac<Aes128> as cmac::digest::KeyInit>::new(&self.0.into());
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Checks `tag` against the CMAC of `data`, in constant time.
    pub fn verify_cmac(&self, data: &[u8], tag: &[u8; 16]) -> bool {
        self.cmac(data).ct_eq(tag).into()
    }
}

impl std::fmt::Debug for Key128 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key128(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// RFC 4493, section 4: the four AES-CMAC examples.
    #[test]
    fn rfc4493_known_answers() {
        let key = Key128::from_bytes(h("2b7e1516 28aed2a6 abf71588 09cf4f3c").try_into().unwrap());
        let m = h(
            "6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51 \
                   30c81c46 a35ce411 e5fbc119 1a0a52ef f69f2445 df4f9b17 ad2b417b e66c3710",
        );
        let cases = [
            (0, "bb1d6929 e9593728 7fa37d12 9b756746"),
            (16, "070a16b4 6b4d4144 f79bdd9d d04a287c"),
            (40, "dfa66747 de9ae630 30ca3261 1497c827"),
            (64, "51f0bebf 7e3b9d92 fc497417 79363cfe"),
        ];
        for (len, want) in cases {
            let tag = key.cmac(&m[..len]);
            assert_eq!(tag.to_vec(), h(want), "length {len}");
            assert!(key.verify_cmac(&m[..len], &tag));
            let mut bad = tag;
            bad[15] ^= 1;
            assert!(!key.verify_cmac(&m[..len], &bad));
        }
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let k = Key128::from_bytes([0xab; 16]);
        assert!(!format!("{k:?}").contains("ab"));
    }
}

//! AES-128-CMAC (the SGX REPORT MAC) and 128-bit keys that zeroize on drop.

use aes::Aes128;
use cmac::{Cmac, Mac};
use hkdf::Hkdf;
use sha2::Sha256;
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

/// HKDF-SHA256 (RFC 5869) of `ikm` into `okm`: the one HKDF of the project (the platform
/// identity's seed, the simulated EGETKEY). `salt = None` is RFC 5869's "not provided"
/// (HashLen zero bytes).
///
/// The output length is part of the type: `N` above HKDF-SHA256's limit of 255 * 32 bytes
/// does not compile (an inline `const` assertion), and that limit is the only error
/// `expand` has. So no result is discarded: the error arm cannot be reached.
pub(crate) fn hkdf_sha256<const N: usize>(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
    okm: &mut [u8; N],
) {
    const { assert!(N <= 255 * 32, "HKDF-SHA256 gives at most 255 * 32 bytes") };
    #[allow(clippy::expect_used)] // impossible: N is within the limit checked above
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, okm)
        .expect("HKDF-SHA256 output length within 255 * 32 (checked at compile time)");
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

    /// RFC 5869 appendix A, test cases 1 to 3 (HKDF-SHA256), through the project's HKDF.
    #[test]
    fn hkdf_sha256_matches_rfc_5869() {
        let h = |s: &str| hex::decode(s).unwrap();
        let cases = [
            (
                h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                Some(h("000102030405060708090a0b0c")),
                h("f0f1f2f3f4f5f6f7f8f9"),
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
            ),
            (
                (0x00..=0x4f).collect(),
                Some((0x60..=0xaf).collect()),
                (0xb0..=0xff).collect(),
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
            ),
            (
                h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                None,
                Vec::new(),
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
            ),
        ];
        for (i, (ikm, salt, info, okm)) in cases.iter().enumerate() {
            fn run<const N: usize>(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> Vec<u8> {
                let mut o = [0u8; N];
                hkdf_sha256(salt, ikm, info, &mut o);
                o.to_vec()
            }
            let got = match h(okm).len() {
                42 => run::<42>(salt.as_deref(), ikm, info),
                82 => run::<82>(salt.as_deref(), ikm, info),
                n => panic!("no RFC 5869 case of {n} bytes"),
            };
            assert_eq!(hex::encode(&got), *okm, "RFC 5869 test case {}", i + 1);
        }
        // Case 3's salt is the empty string: the same as no salt (RFC 5869 2.2).
        let mut empty = [0u8; 42];
        hkdf_sha256(Some(b""), &cases[2].0, b"", &mut empty);
        assert_eq!(hex::encode(empty), cases[2].3);
    }
}

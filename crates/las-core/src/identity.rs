//! The platform identity: an Ed25519 key pair derived from the LAS's seal key. Its public
//! key is the platform ID that operators paste into policies.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::Zeroize;

use crate::crypto::Key128;
use crate::error::FormatError;

/// HKDF label of the identity derivation. Changing it changes every platform ID: bump the
/// version only with a migration note.
pub const IDENTITY_LABEL: &[u8] = b"las platform identity v1";

/// A platform ID: the 32-byte Ed25519 public key of a LAS. Displayed as 64 upper-case hex
/// characters; parsed from either case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlatformId(pub [u8; 32]);

impl PlatformId {
    /// Parses 64 hex characters (either case).
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        crate::hexfmt::decode_fixed("platform ID", s).map(Self)
    }

    /// The Ed25519 public key, if these 32 bytes are a valid curve point.
    ///
    /// Decompressing the point costs about a tenth of a signature check, and a verifier
    /// checks many tokens from the same few platforms: each thread remembers the last
    /// [`RECENT_KEYS`] valid keys (a pure memo: same bytes, same key; invalid bytes are
    /// decoded, and refused, every time).
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        RECENT.with(|r| {
            let mut r = r.borrow_mut();
            if let Some(vk) = r.get(self) {
                return Some(vk);
            }
            let vk = VerifyingKey::from_bytes(&self.0).ok()?;
            r.put(*self, vk);
            Some(vk)
        })
    }
}

/// How many decompressed platform keys each thread keeps.
pub const RECENT_KEYS: usize = 16;

thread_local! {
    static RECENT: std::cell::RefCell<RecentKeys> = const {
        std::cell::RefCell::new(RecentKeys { slots: [None; RECENT_KEYS], next: 0 })
    };
}

/// A fixed-size memo of decompressed keys, replaced round-robin.
struct RecentKeys {
    slots: [Option<(PlatformId, VerifyingKey)>; RECENT_KEYS],
    next: usize,
}

impl RecentKeys {
    fn get(&self, id: &PlatformId) -> Option<VerifyingKey> {
        self.slots
            .iter()
            .flatten()
            .find(|(k, _)| k == id)
            .map(|(_, vk)| *vk)
    }

    fn put(&mut self, id: PlatformId, vk: VerifyingKey) {
        if let Some(slot) = self.slots.get_mut(self.next) {
            *slot = Some((id, vk));
        }
        self.next = (self.next + 1) % RECENT_KEYS;
    }
}

impl std::fmt::Display for PlatformId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl std::fmt::Debug for PlatformId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlatformId({self})")
    }
}

/// On the wire (docs/api.md) a platform ID is 64 upper-case hex characters.
impl serde::Serialize for PlatformId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads 64 hex characters (either case); anything else is an error that names the value.
impl<'de> serde::Deserialize<'de> for PlatformId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(|_| {
            serde::de::Error::custom(format!(
                "platform ID `{}` is not 64 hex characters",
                s.chars().take(80).collect::<String>()
            ))
        })
    }
}

impl std::str::FromStr for PlatformId {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The platform's signing key. The secret half is zeroized on drop (ed25519-dalek's
/// `zeroize` feature) and never printed.
pub struct PlatformIdentity {
    key: SigningKey,
}

impl PlatformIdentity {
    /// Derives the identity from the LAS's MRENCLAVE-bound seal key:
    /// `seed = HKDF-SHA256(salt = none, ikm = seal key, info = IDENTITY_LABEL)`.
    pub fn from_seal_key(seal_key: &Key128) -> Self {
        let mut seed = [0u8; 32];
        crate::crypto::hkdf_sha256(None, seal_key.expose(), IDENTITY_LABEL, &mut seed);
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        Self { key }
    }

    /// The platform ID (public key).
    pub fn platform_id(&self) -> PlatformId {
        PlatformId(self.key.verifying_key().to_bytes())
    }

    /// Signs `msg` with the platform key (Ed25519, RFC 8032).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

impl std::fmt::Debug for PlatformIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlatformIdentity({})", self.platform_id())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn platform_id_round_trips_in_either_case() {
        let id = PlatformIdentity::from_seal_key(&Key128::from_bytes([3; 16])).platform_id();
        let s = id.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s, s.to_uppercase());
        assert_eq!(PlatformId::parse(&s).unwrap(), id);
        assert_eq!(PlatformId::parse(&s.to_lowercase()).unwrap(), id);
        assert!(PlatformId::parse(&s[..63]).is_err());
        assert!(PlatformId::parse(&format!("{}G", &s[..63])).is_err());
    }

    #[test]
    fn remembered_keys_are_the_decoded_keys() {
        let ids: Vec<PlatformId> = (0..RECENT_KEYS as u8 * 2 + 3)
            .map(|i| PlatformIdentity::from_seal_key(&Key128::from_bytes([i; 16])).platform_id())
            .collect();
        // Twice round, more keys than slots: hits and evictions both happen.
        for _ in 0..2 {
            for id in &ids {
                let vk = id.verifying_key().unwrap();
                assert_eq!(vk, VerifyingKey::from_bytes(&id.0).unwrap());
                assert_eq!(vk.to_bytes(), id.0);
            }
        }
        // Not a point on the curve: refused every time, never remembered.
        let mut bad = None;
        for b in 0..=255u8 {
            let id = PlatformId([b; 32]);
            if VerifyingKey::from_bytes(&id.0).is_err() {
                bad = Some(id);
                break;
            }
        }
        let bad = bad.expect("some 32 repeated bytes are not a point");
        assert!(bad.verifying_key().is_none());
        assert!(bad.verifying_key().is_none());
    }

    #[test]
    fn identity_is_a_function_of_the_seal_key() {
        let a = PlatformIdentity::from_seal_key(&Key128::from_bytes([3; 16]));
        let b = PlatformIdentity::from_seal_key(&Key128::from_bytes([3; 16]));
        let c = PlatformIdentity::from_seal_key(&Key128::from_bytes([4; 16]));
        assert_eq!(a.platform_id(), b.platform_id());
        assert_ne!(a.platform_id(), c.platform_id());
        let sig = a.sign(b"m");
        let vk = a.platform_id().verifying_key().unwrap();
        assert!(
            vk.verify_strict(b"m", &ed25519_dalek::Signature::from_bytes(&sig))
                .is_ok()
        );
        // Debug shows the public ID only: neither the signing key (seed) nor the seal key
        // it comes from, in any of the encodings a log could carry.
        let dbg = format!("{a:?} {a:#?}");
        assert!(dbg.contains(&a.platform_id().to_string()), "{dbg}");
        let seed = a.key.to_bytes();
        let seal = [3u8; 16];
        use base64::Engine as _;
        for secret in [&seed[..], &seal[..]] {
            for enc in [
                hex::encode(secret),
                hex::encode_upper(secret),
                base64::engine::general_purpose::STANDARD.encode(secret),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
                format!("{secret:?}"),
            ] {
                assert!(!dbg.contains(&enc), "Debug shows a secret as {enc}: {dbg}");
            }
        }
    }

    /// RFC 8032 section 7.1, TEST 1 to 3 (Ed25519): the platform key signs and its ID
    /// verifies exactly as the RFC says, through `PlatformIdentity::sign` and
    /// `PlatformId::verifying_key` (the path every quote and evidence takes).
    #[test]
    fn ed25519_matches_rfc_8032() {
        let cases = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
        ];
        for (i, (sk, pk, msg, sig)) in cases.iter().enumerate() {
            let seed: [u8; 32] = hex::decode(sk).unwrap().try_into().unwrap();
            let id = PlatformIdentity {
                key: SigningKey::from_bytes(&seed),
            };
            let msg = hex::decode(msg).unwrap();
            assert_eq!(hex::encode(id.platform_id().0), *pk, "TEST {}", i + 1);
            assert_eq!(hex::encode(id.sign(&msg)), *sig, "TEST {}", i + 1);
            let want: [u8; 64] = hex::decode(sig).unwrap().try_into().unwrap();
            let vk = id.platform_id().verifying_key().unwrap();
            assert!(
                vk.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&want))
                    .is_ok()
            );
        }
    }
}

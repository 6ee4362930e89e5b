//! The platform identity: an Ed25519 key pair derived from the LAS's seal key. Its public
//! key is the platform ID that operators paste into policies.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;
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
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
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
        let hk = Hkdf::<Sha256>::new(None, seal_key.expose());
        let mut seed = [0u8; 32];
        // 32 bytes is within HKDF-SHA256's output limit: expand cannot fail.
        let _ = hk.expand(IDENTITY_LABEL, &mut seed);
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
        assert!(!format!("{a:?}").contains("seed"));
    }
}

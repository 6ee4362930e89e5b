//! Authenticated, time-limited nonces: no database, shared by replicas through the key.
//!
//! Layout (56 bytes, sent as unpadded base64url):
//!
//! ```text
//!  random (16) ‖ expiry (8, big-endian Unix seconds) ‖ HMAC-SHA256(nonce key, random ‖ expiry) (32)
//! ```
//!
//! A replica accepts a nonce whose MAC verifies under its nonce key (compared in constant
//! time) and whose expiry has not passed. Single use is enforced per replica with a
//! bounded in-memory set of the nonces it has consumed, each kept until its expiry; across
//! replicas, single use is bounded by the lifetime only (a nonce could be used once per
//! replica within it). Keep the lifetime short.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of a decoded nonce.
pub const NONCE_LEN: usize = 56;
const RANDOM_LEN: usize = 16;

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Not base64url of 56 bytes.
    #[error("the nonce is not {NONCE_LEN} bytes of base64url")]
    Malformed,
    /// The MAC does not verify: not issued with this service's nonce key.
    #[error("the nonce was not issued by this verification service (bad MAC)")]
    BadMac,
    /// Its expiry has passed.
    #[error("the nonce has expired")]
    Expired,
    /// It was used already.
    #[error("the nonce was used already")]
    Replayed,
    /// The replay set is full of unexpired nonces.
    #[error("too many outstanding nonces; retry later")]
    Busy,
}

impl NonceError {
    /// Stable kind for API errors and metrics.
    pub fn kind(self) -> &'static str {
        match self {
            NonceError::Malformed => "malformed-nonce",
            NonceError::BadMac => "bad-nonce",
            NonceError::Expired => "expired-nonce",
            NonceError::Replayed => "replayed-nonce",
            NonceError::Busy => "busy",
        }
    }
}

/// Issues and consumes nonces.
pub struct NonceBook {
    mac: Hmac<Sha256>,
    /// Lifetime of a new nonce, in whole seconds (expiry is Unix seconds on the wire).
    lifetime: u64,
    used: Mutex<HashMap<[u8; RANDOM_LEN], u64>>,
    max_used: usize,
}

impl std::fmt::Debug for NonceBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceBook")
            .field("lifetime", &self.lifetime())
            .finish_non_exhaustive()
    }
}

/// An issued nonce.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The 56 bytes.
    pub bytes: [u8; NONCE_LEN],
    /// Expiry (Unix seconds).
    pub expires: u64,
}

impl Issued {
    /// The wire form (unpadded base64url).
    pub fn encoded(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes)
    }
}

impl NonceBook {
    /// A book keyed with `key`; nonces live `lifetime` (whole seconds: an expiry is Unix
    /// seconds on the wire, so a fraction of a second is dropped); at most `max_used`
    /// consumed, unexpired nonces are remembered (further ones are refused as busy).
    pub fn new(key: &[u8; 32], lifetime: Duration, max_used: usize) -> Self {
        #[allow(clippy::expect_used)] // HMAC takes keys of any length.
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
        Self {
            mac,
            lifetime: lifetime.as_secs(),
            used: Mutex::new(HashMap::new()),
            max_used,
        }
    }

    /// How long a new nonce lives.
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.lifetime)
    }

    /// A new nonce valid until `now + lifetime` (`now`: Unix seconds, the injected clock).
    pub fn issue(&self, now: u64) -> Result<Issued, getrandom::Error> {
        let mut bytes = [0u8; NONCE_LEN];
        let (head, tag) = bytes.split_at_mut(RANDOM_LEN + 8);
        let (random, exp) = head.split_at_mut(RANDOM_LEN);
        getrandom::getrandom(random)?;
        let expires = now.saturating_add(self.lifetime);
        exp.copy_from_slice(&expires.to_be_bytes());
        let mut m = self.mac.clone();
        m.update(head);
        tag.copy_from_slice(&m.finalize().into_bytes());
        Ok(Issued { bytes, expires })
    }

    /// Checks MAC and expiry without consuming.
    pub fn check(&self, encoded: &str, now: u64) -> Result<Issued, NonceError> {
        let raw = URL_SAFE_NO_PAD
            .decode(encoded.trim())
            .map_err(|_| NonceError::Malformed)?;
        let bytes: [u8; NONCE_LEN] = raw.try_into().map_err(|_| NonceError::Malformed)?;
        let (head, tag) = bytes.split_at(RANDOM_LEN + 8);
        let mut m = self.mac.clone();
        m.update(head);
        // verify_slice compares in constant time.
        m.verify_slice(tag).map_err(|_| NonceError::BadMac)?;
        let (_, exp) = head.split_at(RANDOM_LEN);
        let mut e = [0u8; 8];
        e.copy_from_slice(exp);
        let expires = u64::from_be_bytes(e);
        if now >= expires {
            return Err(NonceError::Expired);
        }
        Ok(Issued { bytes, expires })
    }

    /// Checks and consumes: a second call with the same nonce is refused until expiry,
    /// after which [`check`](Self::check) refuses it as expired.
    pub fn consume(&self, encoded: &str, now: u64) -> Result<Issued, NonceError> {
        let n = self.check(encoded, now)?;
        let mut id = [0u8; RANDOM_LEN];
        id.copy_from_slice(n.bytes.split_at(RANDOM_LEN).0);
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.contains_key(&id) {
            return Err(NonceError::Replayed);
        }
        if used.len() >= self.max_used {
            used.retain(|_, exp| *exp > now);
            if used.len() >= self.max_used {
                return Err(NonceError::Busy);
            }
        }
        used.insert(id, n.expires);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_check_consume_replay_expire() {
        let b = NonceBook::new(&[7; 32], Duration::from_secs(60), 2);
        let n = b.issue(1000).unwrap();
        assert_eq!(n.expires, 1060);
        let s = n.encoded();
        assert!(b.check(&s, 1059).is_ok());
        assert_eq!(b.check(&s, 1060).unwrap_err(), NonceError::Expired);
        b.consume(&s, 1001).unwrap();
        assert_eq!(b.consume(&s, 1002).unwrap_err(), NonceError::Replayed);
        // Another key: bad MAC. A flipped byte: bad MAC.
        let other = NonceBook::new(&[8; 32], Duration::from_secs(60), 2);
        assert_eq!(other.check(&s, 1001).unwrap_err(), NonceError::BadMac);
        let mut raw = n.bytes;
        raw[20] ^= 1;
        assert_eq!(
            b.check(&URL_SAFE_NO_PAD.encode(raw), 1001).unwrap_err(),
            NonceError::BadMac
        );
        assert_eq!(b.check("abc", 1001).unwrap_err(), NonceError::Malformed);
        // Same key (another replica) accepts it.
        let replica = NonceBook::new(&[7; 32], Duration::from_secs(60), 2);
        replica.consume(&s, 1001).unwrap();
    }

    #[test]
    fn bounded_replay_set() {
        let b = NonceBook::new(&[1; 32], Duration::from_secs(10), 2);
        let a = b.issue(0).unwrap().encoded();
        let c = b.issue(0).unwrap().encoded();
        let d = b.issue(0).unwrap().encoded();
        b.consume(&a, 1).unwrap();
        b.consume(&c, 1).unwrap();
        assert_eq!(b.consume(&d, 1).unwrap_err(), NonceError::Busy);
        // Once the first two expired their slots are reclaimed.
        let e = b.issue(20).unwrap().encoded();
        b.consume(&e, 21).unwrap();
    }
}

//! Quote signatures verified many at a time, with the one acceptance rule of this crate.
//!
//! [`verify_quotes`] takes decoded quotes ([`super::UncheckedQuote`]) and returns, for
//! each, a [`BatchVerified`] quote or the reason it was refused. A [`BatchVerified`] can be
//! made nowhere else: a verifier that appraises one (`las_verifier`'s
//! `verify_batch_verified_with`) cannot be handed a quote whose signature nobody checked.
//!
//! With the `batch` feature, two or more signatures that pass the strict checks below are
//! verified together (ed25519-dalek's `verify_batch`, one multi-scalar multiplication for
//! the lot, cheaper per signature than each alone); a batch that fails is checked again one
//! signature at a time, so a bad quote fails only itself. Without the feature (the LAS
//! daemon's build: no merlin, no keccak) every signature is checked alone.
//!
//! ## Strictness
//!
//! A lone signature is checked with `verify_strict`, as [`super::decode_and_verify_quote`]
//! does. `verify_batch` is laxer than `verify_strict` in four ways; `strict_checks`
//! closes the first three before a signature joins a batch, so each is refused exactly as
//! `verify_strict` refuses it:
//! - a weak (small-order) public key: refused;
//! - a small-order `R`: refused;
//! - a non-canonical encoding of `R` (`y >= p`, or the sign bit set for `x = 0`): refused;
//! - (a non-canonical `s >= l`: both refuse already; checked first anyway, so that it
//!   costs no fallback.)
//!
//! The fourth difference is left, and is safe for us: `verify_batch` combines the
//! equations with pseudo-random 128-bit factors, so a signature whose `R` or key carries a
//! small torsion component (a mixed-order point) can pass in a batch (with probability 1/8
//! to 1/2 per attempt, which the signer can repeat) where `verify_strict`'s cofactorless
//! equation refuses it. Making such a signature takes the platform's private key: an
//! honest signer's `R = r·B` and key `a·B` have no torsion component, and nobody else can
//! add one to a valid signature (it changes the hash `h`). The holder of a platform key
//! can sign any quote anyway, so no quote is accepted that the key's holder did not sign.
//! Whether a key is trusted at all is decided afterwards by the policy, for every quote
//! alike.

use super::{QuoteClaims, QuoteFormat, SignedData, UncheckedQuote, VerifiedQuote};
use crate::TokenError;

/// A quote whose signature [`verify_quotes`] verified. Opaque: only this module makes one.
#[derive(Debug)]
pub struct BatchVerified(VerifiedQuote);

impl BatchVerified {
    /// The authenticated claims.
    pub fn claims(&self) -> &QuoteClaims {
        &self.0.claims
    }

    /// The payload format the quote came in.
    pub fn format(&self) -> QuoteFormat {
        self.0.format
    }

    /// The verified quote (to read; nothing takes a [`VerifiedQuote`] as proof).
    pub fn into_verified(self) -> VerifiedQuote {
        self.0
    }
}

/// What [`verify_quotes`] did, for a caller's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Signatures checked.
    pub signatures: u64,
    /// 1 when two or more signatures were verified together with `verify_batch`.
    pub batches: u64,
    /// 1 when that batch failed and each signature was checked alone.
    pub fallbacks: u64,
}

/// Verifies the signature of every quote; the answers are in the same order. A refused
/// quote gets [`TokenError::Signature`] (its other checks passed when it was decoded).
pub fn verify_quotes(
    quotes: Vec<UncheckedQuote>,
) -> (Vec<Result<BatchVerified, TokenError>>, BatchStats) {
    let data: Vec<Option<SignedData>> = quotes.iter().map(|q| q.signed_data().ok()).collect();
    let (ok, stats) = check_many(&data);
    let out = quotes
        .into_iter()
        .zip(ok)
        .map(|(q, ok)| {
            if ok {
                Ok(BatchVerified(VerifiedQuote {
                    claims: q.claims,
                    format: q.format,
                }))
            } else {
                Err(TokenError::Signature)
            }
        })
        .collect();
    (out, stats)
}

/// A signature that passed [`strict_checks`].
struct Ready<'a> {
    key: ed25519_dalek::VerifyingKey,
    signature: ed25519_dalek::Signature,
    message: &'a [u8],
}

/// The checks `verify_strict` makes and `verify_batch` does not (module docs): a weak
/// key, a non-canonical or small-order `R`, a non-canonical `s`. `None`: refused.
fn strict_checks(d: &SignedData) -> Option<Ready<'_>> {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    let key = d.key.verifying_key()?;
    if key.is_weak() {
        return None;
    }
    let (r, s) = d.signature.split_at(32);
    let r: [u8; 32] = r.try_into().ok()?;
    let s: [u8; 32] = s.try_into().ok()?;
    Option::<Scalar>::from(Scalar::from_canonical_bytes(s))?;
    let point = CompressedEdwardsY(r).decompress()?;
    if point.is_small_order() || point.compress().0 != r {
        return None;
    }
    Some(Ready {
        key,
        signature: ed25519_dalek::Signature::from_bytes(&d.signature),
        message: &d.message,
    })
}

/// Whether each signature verifies (`None`: no signature to check, refused).
fn check_many(items: &[Option<SignedData>]) -> (Vec<bool>, BatchStats) {
    let mut ok = vec![false; items.len()];
    let mut stats = BatchStats {
        signatures: items.len() as u64,
        ..BatchStats::default()
    };
    let ready: Vec<(usize, Ready<'_>)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.as_ref().and_then(strict_checks).map(|r| (i, r)))
        .collect();
    let alone = |r: &Ready<'_>| r.key.verify_strict(r.message, &r.signature).is_ok();
    let all = cfg!(feature = "batch") && ready.len() > 1 && {
        stats.batches = 1;
        let together = batch_verifies(&ready);
        if !together {
            stats.fallbacks = 1;
        }
        together
    };
    for (i, r) in &ready {
        if let Some(o) = ok.get_mut(*i) {
            *o = all || alone(r);
        }
    }
    (ok, stats)
}

#[cfg(feature = "batch")]
fn batch_verifies(ready: &[(usize, Ready<'_>)]) -> bool {
    let messages: Vec<&[u8]> = ready.iter().map(|(_, r)| r.message).collect();
    let signatures: Vec<ed25519_dalek::Signature> =
        ready.iter().map(|(_, r)| r.signature).collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = ready.iter().map(|(_, r)| r.key).collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

/// Without the `batch` feature there is no batch equation (never called).
#[cfg(not(feature = "batch"))]
fn batch_verifies(_: &[(usize, Ready<'_>)]) -> bool {
    false
}

#[cfg(test)]
mod tests;

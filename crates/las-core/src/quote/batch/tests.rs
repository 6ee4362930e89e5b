//! The batch verifier against `verify_strict`: the same answer for every signature, bad
//! ones fail only themselves, and what `verify_batch` alone would let through is refused.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::PlatformId;
use crate::quote::SignedData;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};

fn verify_many(items: &[&SignedData]) -> (Vec<bool>, BatchStats) {
    let items: Vec<Option<SignedData>> = items.iter().map(|d| Some((*d).clone())).collect();
    check_many(&items)
}

fn refs(items: &[SignedData]) -> Vec<&SignedData> {
    items.iter().collect()
}

/// Batch counters as the `batch` feature makes them (without it: none).
fn batched(batches: u64, fallbacks: u64) -> (u64, u64) {
    if cfg!(feature = "batch") {
        (batches, fallbacks)
    } else {
        (0, 0)
    }
}

fn signed(seed: u8, message: &[u8]) -> SignedData {
    let k = SigningKey::from_bytes(&[seed; 32]);
    SignedData {
        message: message.to_vec(),
        signature: k.sign(message).to_bytes(),
        key: PlatformId(k.verifying_key().to_bytes()),
    }
}

/// A signature `(R, s)` by the key `A` made from its parts: `s = r + h·a`.
fn forged(a: Scalar, key: EdwardsPoint, r: Scalar, big_r: EdwardsPoint, m: &[u8]) -> SignedData {
    let (rb, kb) = (big_r.compress().0, key.compress().0);
    let h = Scalar::from_hash(
        Sha512::new()
            .chain_update(rb)
            .chain_update(kb)
            .chain_update(m),
    );
    let s = r + h * a;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&rb);
    signature[32..].copy_from_slice(s.as_bytes());
    SignedData {
        message: m.to_vec(),
        signature,
        key: PlatformId(kb),
    }
}

fn parts(d: &SignedData) -> (VerifyingKey, Signature) {
    (
        VerifyingKey::from_bytes(&d.key.0).unwrap(),
        Signature::from_bytes(&d.signature),
    )
}

#[test]
fn a_good_batch_verifies_in_one_go() {
    let items: Vec<_> = (1..=8).map(|i| signed(i, &[i; 100])).collect();
    let (ok, m) = verify_many(&refs(&items));
    assert_eq!(ok, vec![true; 8]);
    assert_eq!((m.batches, m.fallbacks), batched(1, 0));
}

#[test]
fn one_bad_signature_fails_only_itself() {
    let mut items: Vec<_> = (1..=8).map(|i| signed(i, &[i; 100])).collect();
    // A wrong `s` (still canonical): passes the strict checks, fails the equation.
    items[3].signature[32] ^= 1;
    // Signed by another key than the one named.
    items[6].key = items[0].key;
    let want: Vec<bool> = (0..8).map(|i| i != 3 && i != 6).collect();
    let (ok, m) = verify_many(&refs(&items));
    assert_eq!(ok, want);
    assert_eq!((m.batches, m.fallbacks), batched(1, 1));
    // Alone, each gets the same answer, and a lone signature is not a batch.
    for (d, w) in items.iter().zip(&want) {
        assert_eq!(
            verify_many(&[d]),
            (
                vec![*w],
                BatchStats {
                    signatures: 1,
                    ..BatchStats::default()
                }
            )
        );
    }
}

/// Signatures `verify_batch` accepts and `verify_strict` refuses: the strict checks
/// refuse them before the batch, and their neighbours still pass.
#[test]
fn what_verify_strict_refuses_is_refused_in_a_batch_too() {
    let a = Scalar::from_bytes_mod_order([42; 32]);
    let r = Scalar::from_bytes_mod_order([17; 32]);
    // A small-order R (the identity) and s = h·a: the equation holds.
    let small_r = forged(a, a * B, Scalar::ZERO, EdwardsPoint::identity(), b"small R");
    // A weak (small-order) key: the identity; s = r.
    let weak_key = forged(
        Scalar::ZERO,
        EdwardsPoint::identity(),
        r,
        r * B,
        b"weak key",
    );
    let good = signed(1, b"good");
    for bad in [&small_r, &weak_key] {
        let (k, s) = parts(bad);
        assert!(k.verify_strict(&bad.message, &s).is_err());
        #[cfg(feature = "batch")]
        {
            let (gk, gs) = parts(&good);
            assert!(
                ed25519_dalek::verify_batch(&[&bad.message, &good.message], &[s, gs], &[k, gk])
                    .is_ok(),
                "verify_batch alone would accept it"
            );
        }
        let (ok, m) = verify_many(&[bad, &good, &good]);
        assert_eq!(ok, [false, true, true]);
        assert_eq!(m.fallbacks, 0, "refused before the batch");
    }
    // A non-canonical s (s + l) and a non-canonical R encoding (y + p of a valid y).
    let mut high_s = signed(2, b"high s");
    let s = Scalar::from_canonical_bytes(high_s.signature[32..].try_into().unwrap()).unwrap();
    let l_plus = {
        // s + l as 32 bytes: add the group order's bytes with carry.
        let l: [u8; 32] =
            hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
                .unwrap()
                .try_into()
                .unwrap();
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s.as_bytes()[i]) + u16::from(l[i]) + carry;
            out[i] = v as u8;
            carry = v >> 8;
        }
        out
    };
    // s + l < 2^253: it passes the "top 3 bits clear" test some libraries stop at.
    assert_eq!(l_plus[31] & 0xe0, 0);
    high_s.signature[32..].copy_from_slice(&l_plus);
    assert!(strict_checks(&high_s).is_none());
    // A point of large order with a small y (< 19), written as y + p: it decodes to
    // the same point, but is not the canonical encoding.
    let y = (2u8..19)
        .find(|&y| {
            let mut c = [0u8; 32];
            c[0] = y;
            CompressedEdwardsY(c)
                .decompress()
                .is_some_and(|p| !p.is_small_order())
        })
        .unwrap();
    let mut canonical = [0u8; 32];
    canonical[0] = y;
    let mut r = [0xffu8; 32];
    r[0] = 0xed + y;
    r[31] = 0x7f;
    assert_eq!(
        CompressedEdwardsY(r).decompress().unwrap().compress().0,
        canonical
    );
    let mut odd_r = signed(3, b"odd R");
    odd_r.signature[..32].copy_from_slice(&canonical);
    assert!(strict_checks(&odd_r).is_some(), "the canonical form passes");
    odd_r.signature[..32].copy_from_slice(&r);
    assert!(strict_checks(&odd_r).is_none());
    assert_eq!(
        verify_many(&[&high_s, &odd_r, &good]).0,
        [false, false, true]
    );
}

/// Real quotes through the public entry: good ones come back verified with their claims,
/// a tampered one is refused, in order.
#[test]
fn verify_quotes_returns_verified_quotes_in_order() {
    use crate::quote::{decode_and_verify_quote, decode_quote, encode_quote};
    let (id, mut claims) = crate::quote::tests::sample();
    let good = encode_quote(&id, &claims).unwrap();
    let want = decode_and_verify_quote(&good).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 32] ^= 1;
    claims.issued_at += 1;
    let other = encode_quote(&id, &claims).unwrap();
    let quotes = [&good, &bad, &other, &good]
        .iter()
        .map(|q| decode_quote(q).unwrap())
        .collect();
    let (out, stats) = verify_quotes(quotes);
    assert_eq!(stats.signatures, 4);
    let ok: Vec<bool> = out.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, false, true, true]);
    assert_eq!(out[0].as_ref().unwrap().claims(), &want.claims);
    assert!(matches!(out[1], Err(TokenError::Signature)));
}

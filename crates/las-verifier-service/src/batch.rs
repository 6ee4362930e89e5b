//! Quote signatures checked in batches: when several attestation requests wait, their
//! Ed25519 signatures are verified together (ed25519-dalek's `verify_batch`, one
//! multi-scalar multiplication for the lot), which costs less per signature than checking
//! each alone.
//!
//! ```text
//!  attest handler ── SignedData ──► bounded queue ──► worker (one per runtime thread)
//!        ▲                                              takes what waits, up to BATCH_MAX
//!        │                                              ├─ strict checks per signature (below)
//!        │                                              ├─ 1 left: verify_strict
//!        │                                              ├─ n left: verify_batch
//!        │                                              │    └─ fails: each alone (verify_strict)
//!        └──────────────── good / bad (oneshot) ◄───────┘
//! ```
//!
//! No timer waits for a batch to fill: a worker takes whatever is queued when it is free
//! (after letting the request tasks that are ready run once, see [`work`]), so a lone
//! request is checked at once, and batches form by themselves under load (the requests
//! that arrived while the previous batch was being checked). A batch that fails
//! is checked again one signature at a time, so one bad quote never fails its neighbours.
//!
//! ## Strictness
//!
//! A lone signature is checked with `verify_strict`, as `las verify` does. `verify_batch`
//! is laxer than `verify_strict` in four ways; [`strict_checks`] closes the first three
//! before a signature joins a batch, so each is refused exactly as `verify_strict`
//! refuses it:
//! - a weak (small-order) public key: refused ([`VerifyingKey::is_weak`]);
//! - a small-order `R`: refused;
//! - a non-canonical encoding of `R` (`y >= p`, or the sign bit set for `x = 0`): refused;
//! - (a non-canonical `s >= l` both refuse already; checked first anyway, so that it costs
//!   no fallback.)
//!
//! The fourth difference is left, and is safe for us: `verify_batch` combines the
//! equations with pseudo-random 128-bit factors, so a signature whose `R` or key carries a
//! small torsion component (a mixed-order point) can pass in a batch (with probability 1/8
//! to 1/2 per attempt, which the signer can repeat) where `verify_strict`'s cofactorless
//! equation refuses it. Making such a signature takes the platform's private key: an
//! honest signer's `R = r·B` and key `a·B` have no torsion component, and nobody else can
//! add one to a valid signature (it changes the hash `h`). The holder of a platform key
//! can sign any quote anyway, so no quote is accepted that the key's holder did not sign;
//! only whether `las verify` agrees on such a deliberately odd signature can differ.
//! Whether a key is trusted at all is decided afterwards by the policy (pinned key or
//! identity evidence), for every quote alike.

use std::sync::{Arc, Once};

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};
use las_core::quote::SignedData;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Signatures per batch at most: past a few dozen the saving per signature grows little,
/// and a worker holds its thread for the whole batch (about 20 µs per signature).
pub const BATCH_MAX: usize = 32;
/// Signatures waiting at most; a handler that finds the queue full waits for room.
const QUEUE_MAX: usize = 1024;

/// The batch counters, registered in the service's registry.
#[derive(Debug, Clone)]
pub(crate) struct BatchMetrics {
    /// Quote signatures checked.
    signatures: Counter,
    /// Batches of two or more signatures checked with `verify_batch`.
    batches: Counter,
    /// Batches that failed and were checked one signature at a time.
    fallbacks: Counter,
    /// Signatures per batch (1 = checked alone at once).
    sizes: Histogram,
}

impl BatchMetrics {
    pub(crate) fn register(r: &mut Registry) -> Self {
        let m = Self {
            signatures: Counter::default(),
            batches: Counter::default(),
            fallbacks: Counter::default(),
            sizes: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0]),
        };
        r.register(
            "signatures_checked",
            "Quote signatures checked (alone or in a batch)",
            m.signatures.clone(),
        );
        r.register(
            "signature_batches",
            "Batches of two or more quote signatures verified together",
            m.batches.clone(),
        );
        r.register(
            "signature_batch_fallbacks",
            "Batches that did not verify and were checked one signature at a time",
            m.fallbacks.clone(),
        );
        r.register(
            "signature_batch_size",
            "Quote signatures per check (1: a lone request, checked at once)",
            m.sizes.clone(),
        );
        m
    }
}

struct Job {
    data: SignedData,
    reply: oneshot::Sender<bool>,
}

/// The queue and its workers. The workers start on first use, on the runtime of the
/// first request, one per runtime worker thread.
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    started: Once,
    max: usize,
    metrics: BatchMetrics,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Batcher {
    /// A batcher taking up to `max` signatures at a time (1: every signature alone).
    pub(crate) fn new(max: usize, metrics: BatchMetrics) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        Self {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            started: Once::new(),
            max: max.clamp(1, BATCH_MAX),
            metrics,
        }
    }

    /// Whether the signature in `data` verifies (strictly; see the module docs).
    pub(crate) async fn verify(&self, data: SignedData) -> bool {
        self.started.call_once(|| {
            let workers = tokio::runtime::Handle::current().metrics().num_workers();
            for _ in 0..workers.max(1) {
                tokio::spawn(work(self.rx.clone(), self.max, self.metrics.clone()));
            }
        });
        let (reply, answer) = oneshot::channel();
        match self.tx.send(Job { data, reply }).await {
            Ok(()) => answer.await.unwrap_or(false),
            // The workers are gone (the runtime is shutting down): check it here.
            Err(mpsc::error::SendError(job)) => verify_many(&[&job.data], &self.metrics)
                .first()
                .copied()
                .unwrap_or(false),
        }
    }
}

/// A worker: takes what waits (at least one), checks it, answers, again.
///
/// After the first signature it yields once before taking the rest: the request tasks
/// that are ready to run (their requests already read) then queue their signatures too.
/// Without it, on one runtime thread the worker would run as soon as the first request
/// woke it (Tokio runs a task just woken next) and never see a second signature. The
/// yield is one pass of the scheduler, not a timer: alone, a signature waits for nothing.
async fn work(rx: Arc<Mutex<mpsc::Receiver<Job>>>, max: usize, metrics: BatchMetrics) {
    let mut jobs = Vec::with_capacity(max);
    loop {
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut jobs, max).await == 0 {
                return;
            }
            if jobs.len() < max {
                tokio::task::yield_now().await;
                while jobs.len() < max {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
            }
        }
        let data: Vec<&SignedData> = jobs.iter().map(|j| &j.data).collect();
        let ok = verify_many(&data, &metrics);
        for (job, ok) in jobs.drain(..).zip(ok) {
            // The request may have been dropped (client gone): nobody to tell.
            let _ = job.reply.send(ok);
        }
    }
}

/// A signature that passed [`strict_checks`], ready for `verify_batch`.
struct Ready<'a> {
    key: VerifyingKey,
    signature: Signature,
    message: &'a [u8],
}

/// The checks `verify_strict` makes and `verify_batch` does not (module docs): a weak
/// key, a non-canonical or small-order `R`, a non-canonical `s`. `None`: refused.
fn strict_checks(d: &SignedData) -> Option<Ready<'_>> {
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
        signature: Signature::from_bytes(&d.signature),
        message: &d.message,
    })
}

/// Verifies every signature of `items`; the answers are in the same order.
pub(crate) fn verify_many(items: &[&SignedData], metrics: &BatchMetrics) -> Vec<bool> {
    let mut ok = vec![false; items.len()];
    if items.is_empty() {
        return ok;
    }
    metrics.sizes.observe(items.len() as f64);
    metrics.signatures.inc_by(items.len() as u64);
    let ready: Vec<(usize, Ready<'_>)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, d)| strict_checks(d).map(|r| (i, r)))
        .collect();
    let alone = |r: &Ready<'_>| r.key.verify_strict(r.message, &r.signature).is_ok();
    if let [(i, r)] = ready.as_slice() {
        if let Some(o) = ok.get_mut(*i) {
            *o = alone(r);
        }
        return ok;
    }
    if ready.len() > 1 {
        metrics.batches.inc();
        let messages: Vec<&[u8]> = ready.iter().map(|(_, r)| r.message).collect();
        let signatures: Vec<Signature> = ready.iter().map(|(_, r)| r.signature).collect();
        let keys: Vec<VerifyingKey> = ready.iter().map(|(_, r)| r.key).collect();
        let all = ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
        if !all {
            metrics.fallbacks.inc();
        }
        for (i, r) in &ready {
            if let Some(o) = ok.get_mut(*i) {
                *o = all || alone(r);
            }
        }
    }
    ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::traits::Identity;
    use ed25519_dalek::{Signer, SigningKey};
    use las_core::PlatformId;
    use sha2::{Digest, Sha512};

    fn refs(items: &[SignedData]) -> Vec<&SignedData> {
        items.iter().collect()
    }

    fn metrics() -> BatchMetrics {
        BatchMetrics::register(&mut Registry::default())
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
    fn forged(
        a: Scalar,
        key: EdwardsPoint,
        r: Scalar,
        big_r: EdwardsPoint,
        m: &[u8],
    ) -> SignedData {
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
        let m = metrics();
        let items: Vec<_> = (1..=8).map(|i| signed(i, &[i; 100])).collect();
        assert_eq!(verify_many(&refs(&items), &m), vec![true; 8]);
        assert_eq!((m.batches.get(), m.fallbacks.get()), (1, 0));
    }

    #[test]
    fn one_bad_signature_fails_only_itself() {
        let m = metrics();
        let mut items: Vec<_> = (1..=8).map(|i| signed(i, &[i; 100])).collect();
        // A wrong `s` (still canonical): passes the strict checks, fails the equation.
        items[3].signature[32] ^= 1;
        // Signed by another key than the one named.
        items[6].key = items[0].key;
        let want: Vec<bool> = (0..8).map(|i| i != 3 && i != 6).collect();
        assert_eq!(verify_many(&refs(&items), &m), want);
        assert_eq!((m.batches.get(), m.fallbacks.get()), (1, 1));
        // Alone, each gets the same answer.
        for (d, w) in items.iter().zip(&want) {
            assert_eq!(verify_many(&[d], &m), vec![*w]);
        }
        assert_eq!(m.batches.get(), 1, "a lone signature is not a batch");
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
            let (gk, gs) = parts(&good);
            assert!(k.verify_strict(&bad.message, &s).is_err());
            assert!(
                ed25519_dalek::verify_batch(&[&bad.message, &good.message], &[s, gs], &[k, gk])
                    .is_ok(),
                "verify_batch alone would accept it"
            );
            let m = metrics();
            assert_eq!(verify_many(&[bad, &good, &good], &m), [false, true, true]);
            assert_eq!(m.fallbacks.get(), 0, "refused before the batch");
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
            verify_many(&[&high_s, &odd_r, &good], &metrics()),
            [false, false, true]
        );
    }

    /// One runtime thread (as `las-bench verifier` runs the service: a multi-thread
    /// runtime with one worker, which runs a task just woken next): requests that are
    /// ready together are checked together, and a lone one alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn on_one_thread_waiting_requests_form_a_batch() {
        let b = Arc::new(Batcher::new(BATCH_MAX, metrics()));
        assert!(b.verify(signed(1, b"alone")).await);
        assert_eq!(b.metrics.batches.get(), 0);
        let tasks: Vec<_> = (1..=8u8)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.verify(signed(i, &[i; 10])).await })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(b.metrics.batches.get(), 1, "the 8 waiting were one batch");
        assert_eq!(b.metrics.signatures.get(), 9);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_each_get_their_own_answer() {
        let b = Arc::new(Batcher::new(BATCH_MAX, metrics()));
        let tasks: Vec<_> = (0..200u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move {
                    let seed = (i % 250) as u8 + 1;
                    let mut d = signed(seed, &i.to_le_bytes());
                    let good = i % 7 != 0;
                    if !good {
                        d.signature[40] ^= 0x10;
                    }
                    (good, b.verify(d).await)
                })
            })
            .collect();
        for t in tasks {
            let (want, got) = t.await.unwrap();
            assert_eq!(want, got);
        }
        assert_eq!(b.metrics.signatures.get(), 200);
    }
}

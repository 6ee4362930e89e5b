//! Quote signatures checked in batches: when several attestation requests wait, their
//! quotes go to las-core's batch verifier together ([`las_core::quote::batch`], which owns
//! the acceptance rule: strict checks, then one `verify_batch`, and each alone when that
//! fails), and each request gets back a [`BatchVerified`] quote or nothing.
//!
//! ```text
//!  attest handler ── UncheckedQuote ──► bounded queue ──► worker (one per runtime thread)
//!        ▲                                                 takes what waits, up to BATCH_MAX
//!        │                                                 las_core::quote::batch::verify_quotes
//!        └──────────── BatchVerified / refused (oneshot) ◄─┘
//! ```
//!
//! No timer waits for a batch to fill: a worker takes whatever is queued when it is free
//! (after letting the request tasks that are ready run once, see [`work`]), so a lone
//! request is checked at once, and batches form by themselves under load (the requests
//! that arrived while the previous batch was being checked). A refused quote takes the
//! handler's one-at-a-time path, which names the reason.

use std::sync::{Arc, Once};

use las_core::quote::UncheckedQuote;
use las_core::quote::batch::{BatchStats, BatchVerified, verify_quotes};
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
    quote: UncheckedQuote,
    reply: oneshot::Sender<Option<BatchVerified>>,
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

    /// The quote with its signature verified (strictly; see las-core's `quote::batch`),
    /// or `None` when it does not verify.
    pub(crate) async fn verify(&self, quote: UncheckedQuote) -> Option<BatchVerified> {
        self.started.call_once(|| {
            let workers = tokio::runtime::Handle::current().metrics().num_workers();
            for _ in 0..workers.max(1) {
                tokio::spawn(work(self.rx.clone(), self.max, self.metrics.clone()));
            }
        });
        let (reply, answer) = oneshot::channel();
        match self.tx.send(Job { quote, reply }).await {
            Ok(()) => answer.await.ok().flatten(),
            // The workers are gone (the runtime is shutting down): check it here.
            Err(mpsc::error::SendError(job)) => check(vec![job.quote], &self.metrics)
                .pop()
                .and_then(Result::ok),
        }
    }
}

/// Verifies `quotes` with las-core's batch verifier and counts what it did.
fn check(
    quotes: Vec<UncheckedQuote>,
    metrics: &BatchMetrics,
) -> Vec<Result<BatchVerified, las_core::TokenError>> {
    if quotes.is_empty() {
        return Vec::new();
    }
    metrics.sizes.observe(quotes.len() as f64);
    let (out, stats): (_, BatchStats) = verify_quotes(quotes);
    metrics.signatures.inc_by(stats.signatures);
    metrics.batches.inc_by(stats.batches);
    metrics.fallbacks.inc_by(stats.fallbacks);
    out
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
        let (quotes, replies): (Vec<_>, Vec<_>) =
            jobs.drain(..).map(|j| (j.quote, j.reply)).unzip();
        for (reply, verified) in replies.into_iter().zip(check(quotes, &metrics)) {
            // The request may have been dropped (client gone): nobody to tell.
            let _ = reply.send(verified.ok());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use las_core::PlatformIdentity;
    use las_core::crypto::Key128;
    use las_core::quote::{QuoteClaims, decode_quote, encode_quote};
    use las_core::sgx::{Attributes, ReportBody};

    fn metrics() -> BatchMetrics {
        BatchMetrics::register(&mut Registry::default())
    }

    /// A quote of platform `seed` with `isvsvn` (distinct messages), decoded.
    fn quote(seed: u8, isvsvn: u16, tamper: bool) -> UncheckedQuote {
        let id = PlatformIdentity::from_seal_key(&Key128::from_bytes([seed; 16]));
        let mut q = encode_quote(
            &id,
            &QuoteClaims {
                mode: las_core::Mode::Sim,
                platform_id: id.platform_id(),
                las_version: "t".into(),
                las_mrenclave: [5; 32],
                issued_at: 1_800_000_000,
                report_body: ReportBody {
                    cpusvn: [1; 16],
                    miscselect: 0,
                    cet_attributes: 0,
                    isv_ext_prod_id: [0; 16],
                    attributes: Attributes { flags: 3, xfrm: 3 },
                    mrenclave: [0xaa; 32],
                    mrsigner: [0xbb; 32],
                    config_id: [0; 64],
                    isvprodid: 1,
                    isvsvn,
                    config_svn: 0,
                    isv_family_id: [0; 16],
                    report_data: [0; 64],
                },
            },
        )
        .unwrap();
        if tamper {
            // The lowest byte of s: still canonical, the equation fails.
            let at = q.len() - 32;
            q[at] ^= 1;
        }
        decode_quote(&q).unwrap()
    }

    /// One runtime thread (as `las-bench verifier` runs the service: a multi-thread
    /// runtime with one worker, which runs a task just woken next): requests that are
    /// ready together are checked together, and a lone one alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn on_one_thread_waiting_requests_form_a_batch() {
        let b = Arc::new(Batcher::new(BATCH_MAX, metrics()));
        assert!(b.verify(quote(1, 0, false)).await.is_some());
        assert_eq!(b.metrics.batches.get(), 0);
        // The quotes are signed first, and the 8 requests are spawned from a task on the
        // runtime's one worker: none of them runs before all 8 are ready, as when 8
        // requests were read in one pass. (Spawned from the test's own thread, while
        // quotes were still being signed, the worker could finish the first request
        // before the rest existed: that is two batches, and the test failed under load.)
        let quotes: Vec<_> = (1..=8u8).map(|i| quote(i, u16::from(i), false)).collect();
        let spawner = b.clone();
        let all_verified = tokio::spawn(async move {
            let tasks: Vec<_> = quotes
                .into_iter()
                .map(|q| {
                    let b = spawner.clone();
                    tokio::spawn(async move { b.verify(q).await.is_some() })
                })
                .collect();
            let mut ok = true;
            for t in tasks {
                ok &= t.await.unwrap();
            }
            ok
        });
        assert!(all_verified.await.unwrap());
        assert_eq!(b.metrics.batches.get(), 1, "the 8 waiting were one batch");
        assert_eq!(b.metrics.signatures.get(), 9);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_each_get_their_own_answer() {
        let b = Arc::new(Batcher::new(BATCH_MAX, metrics()));
        let tasks: Vec<_> = (0..200u16)
            .map(|i| {
                let b = b.clone();
                let good = i % 7 != 0;
                let q = quote((i % 25) as u8 + 1, i, !good);
                let want = q.claims().clone();
                tokio::spawn(async move {
                    let got = b.verify(q).await;
                    if let Some(v) = &got {
                        assert_eq!(v.claims(), &want, "another request's quote");
                    }
                    (good, got.is_some())
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

//! `las-bench roundtrip`: one enclave's whole attestation path, as an application sees it
//! at its start, against a live LAS and a live verification service, through the client
//! library `las attest` uses (las-client, las_verifier_service::client).
//!
//! ```text
//!  this process (client core)                            daemon core
//!  one round, fresh connections (an application starting):
//!   1 nonce        POST /v1/nonce ─────────────────────► las verifier serve (1 worker)
//!   2 target info  GET /v1/target-info ─┐
//!   3 report       SimEnclave EREPORT   │ las_client::attest
//!   4 quote        POST /v1/quote ──────┴──────────────► las serve → lasd
//!                  + the client's check of the quote
//!   5 identity     GET /v1/identity?nonce=… ───────────► las serve → lasd
//!   6 attest       POST /v1/attest (quote + evidence) ─► las verifier serve → EAR
//!  low rate:  rounds one after another, round i due at t0 + i/rate (latency from the due
//!             time: no coordinated omission)
//!  maximum:   C enclaves, each round after round, for --duration (closed loop)
//! ```
//!
//! The steps are those of `VerifierClient::attest_enclave` (what `las attest` calls), timed
//! one by one around the same library calls: a [`ReportSource`] wrapper records when
//! `las_client::attest` asks for the REPORT, which splits its target-info request from its
//! quote request.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use hdrhistogram::Histogram;
use las_client::{ClientError, LasAddr, LasClient, ReportSource, SimEnclave};
use las_core::api::verifier::{AttestRequest, EarStatus};
use las_core::sgx::{Report, TargetInfo};
use las_verifier_service::client::VerifierClient;
use serde_json::{Value, json};

use crate::verifier::{APP_DATA, SERVICE};

/// The steps of one round, in order.
pub const STEPS: [&str; 6] = [
    "nonce",
    "target_info",
    "report",
    "quote",
    "identity",
    "attest",
];

/// The steps of a round with a workload certificate (`--cert`): a new key and its CSR
/// first (`las attest --key-out`), then the same steps, the CSR sent with the quote.
pub const CERT_STEPS: [&str; 7] = [
    "csr",
    "nonce",
    "target_info",
    "report",
    "quote",
    "identity",
    "attest",
];

/// What each step means (the report's first column), by its key.
fn step_name(key: &str, cert: bool) -> &'static str {
    match key {
        "csr" => "CSR (a new P-256 key and its CSR, in the application)",
        "nonce" => "nonce (`POST /v1/nonce`, service)",
        "target_info" => "target info (`GET /v1/target-info`, LAS)",
        "report" => "REPORT (simulated EREPORT, in the enclave)",
        "quote" => "quote (`POST /v1/quote`, LAS; the client's check of it)",
        "identity" => "identity evidence (`GET /v1/identity`, LAS)",
        "attest" if cert => {
            "attest (`POST /v1/attest` with quote, evidence and CSR, service: appraisal, signed EAR and the issued certificate chain)"
        }
        "attest" => {
            "attest (`POST /v1/attest` with quote and evidence, service: appraisal and signed EAR)"
        }
        _ => "?",
    }
}

/// The steps of a round.
fn steps_of(cert: bool) -> &'static [&'static str] {
    if cert { &CERT_STEPS } else { &STEPS }
}

/// One round's step times, in [`steps_of`] order.
type Steps = Vec<Duration>;

/// Times the REPORT `las_client::attest` asks for: its start and end.
struct Timed<'a> {
    inner: &'a SimEnclave,
    at: Cell<Option<(Instant, Instant)>>,
}

impl ReportSource for Timed<'_> {
    fn make_report(
        &self,
        target: &TargetInfo,
        report_data: &[u8; 64],
    ) -> Result<Report, ClientError> {
        let start = Instant::now();
        let r = self.inner.make_report(target, report_data);
        self.at.set(Some((start, Instant::now())));
        r
    }
}

/// Where the round goes.
#[derive(Debug, Clone)]
struct Peers {
    las: LasAddr,
    service: String,
    timeout: Duration,
    /// With a CSR and a workload certificate.
    cert: bool,
}

/// One enclave's whole path, on fresh connections (what an application does once, at its
/// start). Fails unless the service answers `warning` (the policy tolerates simulation).
async fn round(p: &Peers, enclave: &SimEnclave) -> anyhow::Result<Steps> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let tc = Instant::now();
    // As `las attest --key-out`: a new key, its CSR, the key's SPKI hash leading the
    // application data the quote binds.
    let (csr, app_data) = if p.cert {
        let (_pem, der, key) = las_verifier_service::ca::new_workload_key()?;
        let mut d = key.spki_sha256().to_vec();
        d.extend_from_slice(&APP_DATA);
        (Some(b64.encode(der)), d)
    } else {
        (None, APP_DATA.to_vec())
    };
    let t0 = Instant::now();
    let las = LasClient::new(p.las.clone(), p.timeout);
    let verifier = VerifierClient::new(&p.service, p.timeout)?;
    let n = verifier
        .nonce()
        .await
        .context("cannot get a nonce from the verifier")?;
    let t1 = Instant::now();
    let rd = las_verifier_service::bound_report_data(&n.bytes, &app_data);
    let timed = Timed {
        inner: enclave,
        at: Cell::new(None),
    };
    let q = las_client::attest(&las, &timed, &rd)
        .await
        .context("cannot get a quote from the LAS")?;
    let t4 = Instant::now();
    let (t2, t3) = timed.at.get().context("no REPORT was made")?;
    // As `attest_enclave`: the enclave's side fetches its LAS's identity evidence for the
    // same nonce and posts it with the quote.
    let evidence = las
        .identity(&n.bytes)
        .await
        .context("cannot get the LAS's identity evidence")?;
    let t5 = Instant::now();
    let a = verifier
        .attest(&AttestRequest {
            service: SERVICE.to_owned(),
            nonce: n.nonce,
            quote: b64.encode(&q.bytes),
            report_data: hex::encode(&app_data),
            evidence: Some(b64.encode(evidence)),
            csr,
            ..AttestRequest::default()
        })
        .await
        .context("the verifier did not appraise the quote")?;
    let t6 = Instant::now();
    anyhow::ensure!(
        a.status == EarStatus::Warning,
        "the verifier answered {:?}, not warning",
        a.status
    );
    anyhow::ensure!(
        a.certificate_chain.is_some() == p.cert,
        "a certificate chain {} the answer",
        if p.cert {
            "missing from"
        } else {
            "unasked for in"
        }
    );
    let mut steps = Vec::with_capacity(7);
    if p.cert {
        steps.push(t0 - tc);
    }
    steps.extend([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5]);
    Ok(steps)
}

/// Round latencies and step times of one phase.
#[derive(Debug)]
pub struct Phase {
    /// Offered rate (low-rate phase), rounds/s.
    pub offered: Option<f64>,
    /// Enclaves at once (maximum phase).
    pub concurrency: usize,
    /// Rounds completed.
    pub rounds: u64,
    /// Failed rounds.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Round latency, µs (from the due time in the low-rate phase).
    pub hist: Histogram<u64>,
    /// Each step's times, µs.
    pub steps: Vec<Histogram<u64>>,
    /// The steps' keys ([`STEPS`], or [`CERT_STEPS`] with `--cert`).
    pub names: &'static [&'static str],
}

impl Phase {
    fn new(offered: Option<f64>, concurrency: usize, cert: bool) -> anyhow::Result<Self> {
        let names = steps_of(cert);
        let h = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3);
        Ok(Self {
            offered,
            concurrency,
            rounds: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            hist: h()?,
            steps: names.iter().map(|_| h()).collect::<Result<_, _>>()?,
            names,
        })
    }

    fn record(&mut self, latency: Duration, r: anyhow::Result<Steps>) -> anyhow::Result<()> {
        match r {
            Ok(steps) => {
                self.rounds += 1;
                self.hist.record(us(latency))?;
                for (h, d) in self.steps.iter_mut().zip(steps) {
                    h.record(us(d))?;
                }
            }
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{e:#}"));
                }
            }
        }
        Ok(())
    }

    /// Rounds per second.
    pub fn rate(&self) -> f64 {
        self.rounds as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn ms(h: &Histogram<u64>, q: f64) -> f64 {
        h.value_at_quantile(q) as f64 / 1e3
    }

    /// The sum of every step's mean, ms.
    fn steps_mean_ms(&self) -> f64 {
        self.steps.iter().map(|h| h.mean() / 1e3).sum()
    }

    fn json(&self) -> Value {
        let total = self.steps_mean_ms();
        let steps: serde_json::Map<String, Value> = self
            .names
            .iter()
            .zip(&self.steps)
            .map(|(name, h)| {
                (
                    (*name).to_owned(),
                    json!({
                        "p50_ms": Self::ms(h, 0.5),
                        "p99_ms": Self::ms(h, 0.99),
                        "mean_ms": h.mean() / 1e3,
                        "share": if total > 0.0 { h.mean() / 1e3 / total } else { 0.0 },
                    }),
                )
            })
            .collect();
        json!({
            "offered_per_s": self.offered,
            "concurrency": self.concurrency,
            "rounds": self.rounds,
            "rounds_per_s": self.rate(),
            "seconds": self.elapsed.as_secs_f64(),
            "p50_ms": Self::ms(&self.hist, 0.5),
            "p99_ms": Self::ms(&self.hist, 0.99),
            "max_ms": self.hist.max() as f64 / 1e3,
            "errors": self.errors,
            "first_error": self.first_error,
            "steps": Value::Object(steps),
        })
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// What `roundtrip` measured.
#[derive(Debug)]
pub struct Figures {
    /// Rounds one after another at a low fixed rate.
    pub low: Phase,
    /// Closed loop: the maximum rate.
    pub max: Phase,
}

impl Figures {
    /// Failed rounds over both phases.
    pub fn errors(&self) -> u64 {
        self.low.errors + self.max.errors
    }
}

/// The phases' settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Rounds per second of the low-rate phase.
    pub rate: f64,
    /// Rounds of the low-rate phase.
    pub count: u64,
    /// Enclaves at once in the maximum phase.
    pub concurrency: usize,
    /// Length of the maximum phase.
    pub duration: Duration,
    /// Each round also makes a CSR and gets a workload certificate.
    pub cert: bool,
}

/// Starts a LAS and a verification service from `las` (both pinned to `cpu`) and runs
/// both phases.
pub fn run(las: &std::path::Path, cpu: Option<usize>, s: Settings) -> anyhow::Result<Figures> {
    anyhow::ensure!(
        s.rate > 0.0 && s.rate.is_finite(),
        "--rate must be positive"
    );
    anyhow::ensure!(s.count > 0, "--count must be at least 1");
    anyhow::ensure!(s.concurrency > 0, "--concurrency must be at least 1");
    let setup = crate::verifier::setup(las, cpu, cpu)?;
    let peers = Peers {
        las: LasAddr::parse(&setup.las.addr.to_string())?,
        service: format!("http://{}", setup.svc.addr),
        timeout: Duration::from_secs(10),
        cert: s.cert,
    };
    let enclave = Rc::new(crate::verifier::enclave(&setup)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let r = local.block_on(&rt, async {
        // A first round (connections, caches) before anything is measured.
        round(&peers, &enclave)
            .await
            .context("the first round failed")?;

        eprintln!(
            "las-bench: roundtrip: {} rounds at {}/s, one after another",
            s.count, s.rate
        );
        let mut low = Phase::new(Some(s.rate), 1, s.cert)?;
        let t0 = Instant::now() + Duration::from_millis(20);
        for i in 0..s.count {
            let due = t0 + Duration::from_secs_f64(i as f64 / s.rate);
            tokio::time::sleep_until(due.into()).await;
            let r = round(&peers, &enclave).await;
            low.record(due.elapsed(), r)?;
        }
        low.elapsed = t0.elapsed();

        eprintln!(
            "las-bench: roundtrip: closed loop, {} enclaves at once, {:?}",
            s.concurrency, s.duration
        );
        let start = Instant::now();
        let deadline = start + s.duration;
        let tasks: Vec<_> = (0..s.concurrency)
            .map(|_| {
                let (peers, enclave) = (peers.clone(), enclave.clone());
                tokio::task::spawn_local(async move {
                    let mut p = Phase::new(None, 1, peers.cert)?;
                    // Bounded in time, and in count as a second guard.
                    for _ in 0..10_000_000u64 {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let t = Instant::now();
                        let r = round(&peers, &enclave).await;
                        p.record(t.elapsed(), r)?;
                    }
                    anyhow::Ok(p)
                })
            })
            .collect();
        let mut max = Phase::new(None, s.concurrency, s.cert)?;
        for t in tasks {
            let p = t.await.context("a round task failed")??;
            max.rounds += p.rounds;
            max.errors += p.errors;
            if max.first_error.is_none() {
                max.first_error = p.first_error;
            }
            max.hist.add(&p.hist)?;
            for (a, b) in max.steps.iter_mut().zip(&p.steps) {
                a.add(b)?;
            }
        }
        max.elapsed = start.elapsed();
        anyhow::Ok(Figures { low, max })
    });
    if r.is_err() {
        eprintln!("las-bench: LAS log:\n{}", setup.las.log_tail().trim_end());
    }
    r
}

/// The figures as Markdown.
pub fn print(f: &Figures, command: &str, setup: &str) {
    println!("## las-bench roundtrip: one enclave's attestation, as an application sees it\n");
    println!("- command: `{command}`");
    println!("- {setup}");
    let cert = f.low.names.len() == CERT_STEPS.len();
    println!(
        "- each round: a fresh client (new connections), {}nonce → target info → REPORT → quote → identity evidence → attest{}, through las-client and las_verifier_service::client (as `las attest`{})\n",
        if cert { "CSR → " } else { "" },
        if cert {
            " with the CSR (a workload certificate issued)"
        } else {
            ""
        },
        if cert { " --key-out" } else { "" }
    );
    println!("| phase | rounds | rounds/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, p) in [
        (
            format!(
                "low rate, {}/s, one after another (latency from the due time)",
                f.low.offered.unwrap_or_default()
            ),
            &f.low,
        ),
        (
            format!(
                "maximum: {} enclaves at once, closed loop",
                f.max.concurrency
            ),
            &f.max,
        ),
    ] {
        println!(
            "| {name} | {} | {:.1} | {:.3} | {:.3} | {:.3} | {} |",
            p.rounds,
            p.rate(),
            Phase::ms(&p.hist, 0.5),
            Phase::ms(&p.hist, 0.99),
            p.hist.max() as f64 / 1e3,
            p.errors
        );
    }
    println!("\nWhere a round's time goes:\n");
    println!("| step | low rate: p50 ms | p99 ms | mean ms | share | maximum: mean ms | share |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (lt, mt) = (f.low.steps_mean_ms(), f.max.steps_mean_ms());
    let share = |v: f64, t: f64| if t > 0.0 { 100.0 * v / t } else { 0.0 };
    for (i, key) in f.low.names.iter().enumerate() {
        let name = step_name(key, cert);
        let (Some(l), Some(m)) = (f.low.steps.get(i), f.max.steps.get(i)) else {
            continue;
        };
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.0}% | {:.3} | {:.0}% |",
            Phase::ms(l, 0.5),
            Phase::ms(l, 0.99),
            l.mean() / 1e3,
            share(l.mean() / 1e3, lt),
            m.mean() / 1e3,
            share(m.mean() / 1e3, mt)
        );
    }
    println!("| whole round (sum of the means) | | | {lt:.3} | 100% | {mt:.3} | 100% |");
    for p in [&f.low, &f.max] {
        if let Some(e) = &p.first_error {
            println!("\nFirst error: {e}");
        }
    }
}

/// The figures as one JSON object: `low_rate` and `max` (each with `rounds_per_s`,
/// `p50_ms`, `p99_ms`, `max_ms`, `errors` and `steps`: `nonce`, `target_info`, `report`,
/// `quote`, `identity`, `attest`, with `--cert` also `csr`, each with `p50_ms`, `p99_ms`,
/// `mean_ms`, `share`), `cert` and `errors`.
pub fn json(f: &Figures, command: Vec<String>) -> Value {
    json!({
        "command": command,
        "cert": f.low.names.len() == CERT_STEPS.len(),
        "low_rate": f.low.json(),
        "max": f.max.json(),
        "errors": f.errors(),
    })
}

//! The load generator: N keep-alive connections posting valid REPORTs to `POST /v1/quote`.
//!
//! - Closed loop ([`saturate`]): every connection sends its next request as soon as the
//!   previous answer is in; the rate reached is the daemon's maximum.
//! - Open loop ([`fixed_rate`]): request i is due at `t0 + i / rate`, whatever happened
//!   before; latency is measured from the due time, so a stalled daemon shows up as the
//!   whole backlog it causes (no coordinated omission). Connection c sends requests
//!   c, c + N, c + 2N, ...
//!
//! Each connection's first quote is decoded and its signature and report body checked, so
//! a daemon answering 200 with garbage counts as errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use las_core::quote::decode_and_verify_quote;
use las_core::sgx::{REPORT_BODY_SIZE, Report};

use las_testkit::http::{AsyncConn as Conn, Bytes, build};
use las_testkit::procfs::CpuTime;

/// A REPORT ready to send (its bytes shared, not copied, by every request) and the report
/// body its quote must carry.
#[derive(Debug)]
pub struct Prepared {
    report: Bytes,
    body: [u8; REPORT_BODY_SIZE],
}

impl Prepared {
    /// The REPORT this request posts.
    pub fn report(&self) -> &[u8] {
        &self.report
    }
}

/// Turns reports into `POST /v1/quote` requests.
pub fn prepare(reports: &[Report]) -> Arc<Vec<Prepared>> {
    Arc::new(
        reports
            .iter()
            .map(|r| Prepared {
                report: Bytes::copy_from_slice(&r.to_bytes()),
                body: r.body.to_bytes(),
            })
            .collect(),
    )
}

/// The outcome of one load phase.
#[derive(Debug)]
pub struct LoadResult {
    /// Connections used.
    pub connections: usize,
    /// Offered rate (open loop), requests/s.
    pub offered: Option<f64>,
    /// Quotes received (status 200).
    pub completed: u64,
    /// Failed exchanges (non-200, I/O errors, bad quotes).
    pub errors: u64,
    /// The first error seen.
    pub first_error: Option<String>,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Latencies, nanoseconds.
    pub hist: Histogram<u64>,
    /// CPU the daemon spent during the phase.
    pub daemon_cpu: CpuTime,
    /// CPU this process (the load generator) spent during the phase.
    pub client_cpu: CpuTime,
}

impl LoadResult {
    /// Quotes per second.
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }

    /// Daemon CPU time per quote, µs.
    pub fn daemon_us_per_quote(&self) -> f64 {
        self.daemon_cpu.run_ns as f64 / 1e3 / self.completed.max(1) as f64
    }

    /// Share of the wall time the daemon was on a CPU.
    pub fn daemon_busy(&self) -> f64 {
        self.daemon_cpu.run_ns as f64 / self.elapsed.as_nanos() as f64
    }

    /// Share of the wall time the daemon was runnable but waited for its core.
    pub fn daemon_waiting(&self) -> f64 {
        self.daemon_cpu.wait_ns as f64 / self.elapsed.as_nanos() as f64
    }

    /// A latency quantile, milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1e6
    }
}

#[expect(
    clippy::expect_used,
    reason = "constant bounds that hdrhistogram accepts: its only errors are bad bounds"
)]
fn new_hist() -> Histogram<u64> {
    // 1 ns .. 100 s at 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

#[derive(Debug)]
struct Tally {
    completed: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Histogram<u64>,
    last: Instant,
}

impl Tally {
    fn new() -> Self {
        Self {
            completed: 0,
            errors: 0,
            first_error: None,
            hist: new_hist(),
            last: Instant::now(),
        }
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }
}

/// Sends one request and checks the answer; `check` decodes the quote too.
async fn one(conn: &mut Conn, p: &Prepared, check: bool) -> Result<(), String> {
    let req = build(
        conn.addr(),
        "POST",
        "/v1/quote",
        &[("content-type", "application/octet-stream")],
        p.report.clone(),
    )
    .map_err(|e| e.to_string())?;
    let (status, body) = conn.exchange(req).await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(body.get(..200).unwrap_or(&body))
        ));
    }
    if check {
        let q = decode_and_verify_quote(&body).map_err(|e| format!("bad quote: {e}"))?;
        if q.claims.report_body.to_bytes() != p.body {
            return Err("the quote carries another report body".into());
        }
    }
    Ok(())
}

async fn connect_all(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Conn>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(Conn::connect(addr).await?);
    }
    Ok(v)
}

async fn merge(
    connections: usize,
    offered: Option<f64>,
    start: Instant,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
) -> anyhow::Result<LoadResult> {
    let mut r = LoadResult {
        connections,
        offered,
        completed: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        hist: new_hist(),
        daemon_cpu: CpuTime::default(),
        client_cpu: CpuTime::default(),
    };
    let mut last = start;
    for t in tasks {
        let t = t.await?;
        r.completed += t.completed;
        r.errors += t.errors;
        if r.first_error.is_none() {
            r.first_error = t.first_error;
        }
        r.hist.add(&t.hist)?;
        last = last.max(t.last);
    }
    r.elapsed = last.duration_since(start).max(Duration::from_micros(1));
    Ok(r)
}

/// Closed loop for `duration` on `connections` connections. With `busy_poll` the
/// generator never sleeps (a task spins), so the daemon never has to wake it: the
/// difference in the daemon's CPU per quote is what waking a sleeping client costs.
pub async fn saturate(
    addr: SocketAddr,
    pool: Arc<Vec<Prepared>>,
    connections: usize,
    duration: Duration,
    busy_poll: bool,
) -> anyhow::Result<LoadResult> {
    let conns = connect_all(addr, connections).await?;
    let start = Instant::now();
    let end = start + duration;
    if busy_poll {
        tokio::spawn(async move {
            while Instant::now() < end {
                tokio::task::yield_now().await;
            }
        });
    }
    closed_loop(conns, pool, start, Stop::At(end, addr)).await
}

/// When a closed loop stops.
#[derive(Clone, Copy)]
enum Stop {
    /// At this instant; a connection that fails is opened again to this address.
    At(Instant, SocketAddr),
    /// After exactly this many requests over all connections; a connection that fails
    /// stops (its share is then missing, and the error counted).
    After(u64),
}

/// Each connection sends its next request as soon as the last one is answered, taking
/// requests `c, c + n, c + 2n, ...` of the pool (connection `c` of `n`); the first answer
/// on each connection is checked in full.
async fn closed_loop(
    conns: Vec<Conn>,
    pool: Arc<Vec<Prepared>>,
    start: Instant,
    stop: Stop,
) -> anyhow::Result<LoadResult> {
    let connections = conns.len();
    let tasks = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut t = Tally::new();
                let mut k = c;
                loop {
                    match stop {
                        Stop::At(end, _) if Instant::now() >= end => break,
                        Stop::After(total) if k as u64 >= total => break,
                        _ => {}
                    }
                    let Some(p) = pool.get(k % pool.len().max(1)) else {
                        t.error("empty request pool".into());
                        break;
                    };
                    let sent = Instant::now();
                    match one(&mut conn, p, k == c).await {
                        Ok(()) => {
                            t.completed += 1;
                            let _ = t.hist.record(sent.elapsed().as_nanos() as u64);
                        }
                        Err(e) => {
                            t.error(e);
                            let Stop::At(_, addr) = stop else { break };
                            match Conn::connect(addr).await {
                                Ok(c) => conn = c,
                                Err(_) => break,
                            }
                        }
                    }
                    t.last = Instant::now();
                    k += connections;
                }
                t
            })
        })
        .collect();
    merge(connections, None, start, tasks).await
}

/// Closed loop until exactly `total` requests were answered (profiling: instruction counts
/// per request need a known count).
pub async fn fixed_count(
    addr: SocketAddr,
    pool: Arc<Vec<Prepared>>,
    connections: usize,
    total: u64,
) -> anyhow::Result<LoadResult> {
    let conns = connect_all(addr, connections).await?;
    let start = Instant::now();
    closed_loop(conns, pool, start, Stop::After(total)).await
}

/// Open loop at `rate` requests/s for `duration` on `connections` connections.
///
/// A pacer thread sleeps until each request's due time (nanosleep: tens of microseconds
/// late at worst, without spinning, so the generator can run at real-time priority
/// without being throttled) and hands the request to its connection; a connection still
/// busy with an earlier request sends it as soon as it is free, and the latency still
/// counts from the due time.
pub async fn fixed_rate(
    addr: SocketAddr,
    pool: Arc<Vec<Prepared>>,
    connections: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(rate > 0.0, "the offered rate must be positive");
    let conns = connect_all(addr, connections).await?;
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let start = Instant::now() + Duration::from_millis(20);
    let mut queues = Vec::with_capacity(connections);
    let tasks = conns
        .into_iter()
        .map(|mut conn| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
            queues.push(tx);
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut t = Tally::new();
                let mut first = true;
                while let Some((i, due)) = rx.recv().await {
                    let Some(p) = pool.get(i as usize % pool.len().max(1)) else {
                        t.error("empty request pool".into());
                        break;
                    };
                    match one(&mut conn, p, first).await {
                        Ok(()) => {
                            t.completed += 1;
                            let _ = t.hist.record(due.elapsed().as_nanos() as u64);
                        }
                        Err(e) => {
                            t.error(e);
                            match Conn::connect(addr).await {
                                Ok(c) => conn = c,
                                Err(_) => break,
                            }
                        }
                    }
                    first = false;
                    t.last = Instant::now();
                }
                t
            })
        })
        .collect();
    let pacer = std::thread::Builder::new()
        .name("pacer".into())
        .spawn(move || {
            for i in 0..total {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                // A connection that gave up drops its queue: its share is not sent.
                if let Some(q) = queues.get(i as usize % queues.len().max(1)) {
                    let _ = q.send((i, due));
                }
            }
        })?;
    let r = merge(connections, Some(rate), start, tasks).await;
    let _ = pacer.join();
    r
}

/// Opens `n` connections, sends one quote request on each and keeps them all open
/// (idle, keep-alive) until the returned value is dropped.
pub async fn idle_connections(
    addr: SocketAddr,
    pool: Arc<Vec<Prepared>>,
    n: usize,
) -> anyhow::Result<Vec<Conn>> {
    let mut conns = connect_all(addr, n).await?;
    for (i, c) in conns.iter_mut().enumerate() {
        let p = pool
            .get(i % pool.len().max(1))
            .ok_or_else(|| anyhow::anyhow!("empty request pool"))?;
        one(c, p, i == 0)
            .await
            .map_err(|e| anyhow::anyhow!("idle connection {i}: {e}"))?;
    }
    Ok(conns)
}

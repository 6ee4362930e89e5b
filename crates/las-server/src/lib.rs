//! # las-server: the LAS daemon as a library
//!
//! [`app`] builds the HTTP router over an [`AppState`] (the platform backend, metrics and
//! limits); [`serve`] runs it on las-http's connection loop ([`serve_router`], shared with
//! the verification service: every limit, graceful drain); [`run`] is the whole daemon:
//! open the platform, bind, log the platform ID, serve until SIGTERM/SIGINT. What both
//! servers share lives in `las-http`; this crate is what only the daemon needs.
//!
//! ```text
//!  TcpListener ─► accept (connection cap) ─► write deadline ─► hyper http1 (header timeout)
//!     ├─ POST /v1/quote (las_http::FastRoute, before the router) ─► Platform::check_report ─► encode_quote
//!     └─ Router                                                   ├─ /v1/platform, /v1/target-info
//!                                                                 ├─ /v1/quote (other methods: 405)
//!                                                                 ├─ /v1/identity ─► slot ─► blocking pool ─► Platform::identity_evidence
//!                                                                 └─ /healthz /readyz /metrics
//! ```
//!
//! A daemon on the simulated platform, on loopback, answering `GET /v1/platform` with
//! the contract's type:
//!
//! ```
//! use std::io::{Read, Write};
//! use las_platform::{ModeRequest, PlatformConfig};
//! use las_server::{AppState, ServerConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let platform = las_platform::open(&PlatformConfig {
//!     mode: ModeRequest::Sim,
//!     state_dir: dir.path().join("state"),
//!     sim_cpusvn: Some([1; 16]),
//!     sim_las_mrenclave: Some([2; 32]), // instead of measuring this test binary
//!     create_secret: true,
//! })?;
//! let id = platform.platform_id();
//! let state = AppState::new(platform, ServerConfig::default());
//! let rt = tokio::runtime::Runtime::new()?;
//! let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = rt.spawn(las_server::serve(listener, state, async { stopped.await.ok(); }));
//!
//! let mut c = std::net::TcpStream::connect(addr)?;
//! c.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
//! c.write_all(b"GET /v1/platform HTTP/1.1\r\nHost: las\r\nConnection: close\r\n\r\n")?;
//! let mut answer = String::new();
//! c.read_to_string(&mut answer)?;
//! let (head, body) = answer.split_once("\r\n\r\n").ok_or("no body")?;
//! assert!(head.starts_with("HTTP/1.1 200"), "{head}");
//! let info: las_core::api::PlatformInfo = serde_json::from_str(body)?;
//! assert_eq!((info.platform_id, info.mode, info.secure), (id, las_core::Mode::Sim, false));
//! stop.send(()).ok();
//! rt.block_on(server)??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod api;
mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use las_platform::{Platform, PlatformConfig, PlatformError};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use api::{COSE_MEDIA_TYPE, app};
// What lasd takes from las-http through this crate (one dependency for the daemon).
pub use las_http::{
    ApiError, BindError, ConnectionMetrics, ErrorKind, Limits, MAX_CONNECTION_BUFFER, bind,
    bind_with_fallback, duration, logging, serve_router, shutdown_signal,
};
#[cfg(feature = "clap")]
pub use las_http::{LimitArgs, duration_option_with_secs};
pub use metrics::Metrics;

/// The LAS version (the `las` package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The daemon's settings: where it listens, the limits every server shares ([`Limits`])
/// and the identity-evidence slots only the daemon has.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on. An unspecified IPv6 address (`[::]`) is bound with
    /// IPV6_V6ONLY off, so it also accepts IPv4 (dual stack).
    pub listen: SocketAddr,
    /// Where the kernel has no IPv6 (no AF_INET6 sockets, or `::` not bindable), bind
    /// `0.0.0.0` on the same port instead of failing. Set for the default listen address
    /// only: an address given explicitly is bound as given.
    pub listen_v4_fallback: bool,
    /// Body cap, request deadline, write deadline, connection cap, drain time.
    pub limits: Limits,
    /// Identity requests whose evidence is being made at once, at most. Evidence is made
    /// on Tokio's blocking pool: in hardware mode it writes and reads `/dev/attestation`
    /// (a DCAP quote from the host's AESM takes milliseconds to seconds), which must never
    /// occupy an async worker. Further requests wait for a slot without holding a thread.
    /// 0 counts as 1.
    pub identity_concurrency: usize,
    /// How long an identity request may wait for a slot plus its evidence; then it is
    /// answered 503 `identity-timeout`. The evidence being made still holds its slot until
    /// the platform returns, so a stalled AESM cannot grow the blocking pool.
    pub identity_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, DEFAULT_PORT)),
            listen_v4_fallback: true,
            limits: Limits::default(),
            identity_concurrency: DEFAULT_IDENTITY_CONCURRENCY,
            identity_timeout: Duration::from_secs(10),
        }
    }
}

/// Default of [`ServerConfig::identity_concurrency`]. Gramine's attestation files are one
/// write-then-read sequence per process (serialised in `las_platform::hw::gramine`), so
/// more than a couple of slots would only park blocking threads on that lock.
pub const DEFAULT_IDENTITY_CONCURRENCY: usize = 2;

/// The LAS port of the existing deployment (`SCONE_LAS_ADDR` defaults to it).
pub const DEFAULT_PORT: u16 = 18766;

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The platform backend.
    pub platform: Box<dyn Platform>,
    /// Metrics.
    pub metrics: Metrics,
    /// Limits.
    pub config: ServerConfig,
    /// Set once shutdown has begun: /readyz answers 503.
    pub shutting_down: AtomicBool,
    /// Slots of `identity_concurrency`: one per identity evidence being made.
    pub identity_slots: Arc<Semaphore>,
}

impl AppState {
    /// State for `platform` with `config`.
    pub fn new(platform: Box<dyn Platform>, config: ServerConfig) -> Arc<Self> {
        let start = las_platform::unix_now();
        let metrics = Metrics::new(
            platform.mode().as_str(),
            VERSION,
            &platform.platform_id().to_string(),
            start,
        );
        let identity_slots = Arc::new(Semaphore::new(config.identity_concurrency.max(1)));
        Arc::new(Self {
            platform,
            metrics,
            config,
            shutting_down: AtomicBool::new(false),
            identity_slots,
        })
    }
}

/// The daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The platform backend could not be opened.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// The listen address could not be bound (the OS error is its `source`).
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The server loop failed.
    #[error("server error")]
    Serve(#[from] std::io::Error),
}

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting, marks
/// the daemon not ready and lets in-flight requests finish (up to `drain_timeout`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // POST /v1/quote, the hot route, is answered before the router (same limits, same
    // answer, same metrics); every other request goes through it.
    las_http::serve_routes(
        listener,
        app(state.clone()),
        Some(api::quote_route(state.clone())),
        &state.config.limits,
        state.metrics.connections(),
        &state.shutting_down,
        shutdown,
    )
    .await
}

/// Logs what an operator needs at start: the simulation warning, the platform ID (8th
/// whitespace-separated field of the text log line, the contract of
/// `grep 'public key' | tail -n 1 | awk '{print $8}'`), the LAS measurement.
pub fn log_identity(platform: &dyn Platform) {
    let id = platform.platform_id();
    if platform.mode() == las_core::Mode::Sim {
        tracing::warn!(
            target: "las",
            "SIMULATION MODE: NOT SECURE. The platform secret is a file on disk; quotes from this LAS prove nothing and verifiers reject them unless a policy tolerates `simulation`"
        );
    }
    tracing::info!(target: "las", platform_id = %id, "platform has public key {id}");
    let las = platform.las_enclave();
    tracing::info!(
        target: "las",
        "LAS measurement: mode={} mrenclave={} mrsigner={} isvprodid={} isvsvn={} cpusvn={} version={}",
        platform.mode(),
        hex::encode(las.mrenclave),
        hex::encode(las.mrsigner),
        las.isvprodid,
        las.isvsvn,
        hex::encode(platform.cpusvn()),
        VERSION
    );
    log_tcb_state(&platform.tcb_state());
}

/// The platform below the LAS, as SCONE's LAS logs it: `Intel QE ID: <32 lowercase hex>`
/// with the ID as the last field (`grep 'Intel QE ID' | tail -n 1 | awk '{print $NF}'`),
/// then FMSPC, PPID, CPU SVN and PCE SVN. An unknown state is logged without that phrase,
/// so that the extraction never yields a word that is not a QE ID.
pub fn log_tcb_state(t: &las_core::api::TcbState) {
    match t.qe_id() {
        Some(q) => {
            tracing::info!(target: "las", "Intel QE ID: {q}");
            tracing::info!(target: "las", "{}", t.summary());
        }
        None => tracing::warn!(
            target: "las",
            "{} (no QE ID: policies that name this platform by INTEL_QE_ID do not match it)",
            t.summary()
        ),
    }
}

/// The whole daemon: open the platform, bind, log, serve until SIGTERM/SIGINT.
pub async fn run(config: ServerConfig, platform: PlatformConfig) -> Result<(), StartError> {
    // First: from here on SIGTERM/SIGINT stop the daemon gracefully.
    let shutdown = shutdown_signal();
    let p = las_platform::open(&platform)?;
    for note in p.startup_notes() {
        tracing::warn!(target: "las", "{note}");
    }
    let listener = bind_with_fallback(config.listen, config.listen_v4_fallback).await?;
    let local = listener.local_addr()?;
    log_identity(&*p);
    tracing::info!(target: "las", "listening on http://{local}");
    let state = AppState::new(p, config);
    serve(listener, state, shutdown).await?;
    tracing::info!(target: "las", "stopped");
    Ok(())
}

//! # las-server: the LAS daemon as a library
//!
//! [`app`] builds the HTTP router over an [`AppState`] (the platform backend, metrics and
//! limits); [`serve`] runs it on a listener with explicit limits (body size, header read
//! timeout, write timeout, read-buffer cap, connection cap) and drains in-flight requests on shutdown; [`run`] is the
//! whole daemon: open the platform, bind, log the platform ID, serve until SIGTERM/SIGINT.
//! The connection loop itself, [`serve_router`], takes any router with its limits and
//! counters: the verification service (`las-verifier-service`) serves with it too.
//!
//! ```text
//!  TcpListener ─► accept (connection cap) ─► write deadline ─► hyper http1 (header timeout) ─► Router
//!                                                                 ├─ /v1/platform, /v1/target-info
//!                                                                 ├─ /v1/quote ─► Platform::check_report ─► encode_quote
//!                                                                 ├─ /v1/identity ─► slot ─► blocking pool ─► Platform::identity_evidence
//!                                                                 └─ /healthz /readyz /metrics
//! ```

#![forbid(unsafe_code)]

mod api;
mod deadline;
mod error;
pub mod logging;
mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use las_platform::{Platform, PlatformConfig, PlatformError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

pub use api::{COSE_MEDIA_TYPE, app};
pub use error::ApiError;
pub use metrics::Metrics;

/// The LAS version (the `las` package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Limits and addresses of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on. An unspecified IPv6 address (`[::]`) is bound with
    /// IPV6_V6ONLY off, so it also accepts IPv4 (dual stack).
    pub listen: SocketAddr,
    /// Where the kernel has no IPv6 (no AF_INET6 sockets, or `::` not bindable), bind
    /// `0.0.0.0` on the same port instead of failing. Set for the default listen address
    /// only: an address given explicitly is bound as given.
    pub listen_v4_fallback: bool,
    /// Largest request body accepted (bytes); larger ones get 413.
    pub body_limit: usize,
    /// Time a client has to send a request's headers (then the connection is closed), and
    /// again to send a request's body (then it gets 408 `body-timeout`).
    pub header_timeout: Duration,
    /// Time a blocked response write may take to reach the kernel: a client that does not
    /// read its responses (e.g. pipelines requests and never reads) loses its connection
    /// after this long.
    pub write_timeout: Duration,
    /// Open connections at most; further ones are closed at once.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub drain_timeout: Duration,
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
            body_limit: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections: 4096,
            drain_timeout: Duration::from_secs(10),
            identity_concurrency: DEFAULT_IDENTITY_CONCURRENCY,
            identity_timeout: Duration::from_secs(10),
        }
    }
}

/// Default of [`ServerConfig::identity_concurrency`]. Gramine's attestation files are one
/// write-then-read sequence per process (serialised in `las_platform::hw::gramine`), so
/// more than a couple of slots would only park blocking threads on that lock.
pub const DEFAULT_IDENTITY_CONCURRENCY: usize = 2;

/// Largest read (and write) buffer of a connection: caps the pipelined requests hyper holds
/// for one connection (more stay in the kernel, and the client's own writes block). Requests
/// are served one at a time per connection; 64 KiB fits any request head the LAS accepts.
pub const MAX_CONNECTION_BUFFER: usize = 64 * 1024;

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
    /// The listen address could not be bound. The OS error is the `source` (printed once,
    /// by the `{:#}` cause chain), not part of this message.
    #[error("cannot listen on {addr}{hint}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
        /// A hint for the common causes.
        hint: &'static str,
    },
    /// The server loop failed.
    #[error("server error")]
    Serve(#[from] std::io::Error),
}

/// Binds the listen address with a clear error: an unspecified IPv6 address as dual stack.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    bind_socket(addr).map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (the port is in use: is another LAS running? choose another with --listen)"
            }
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
            std::io::ErrorKind::AddrNotAvailable => " (no such local address)",
            _ => "",
        };
        StartError::Bind { addr, source, hint }
    })
}

/// `bind`, and for the default address the IPv4 fallback where the kernel has no IPv6.
pub async fn bind_with_fallback(
    addr: SocketAddr,
    v4_fallback: bool,
) -> Result<TcpListener, StartError> {
    match bind(addr).await {
        Err(StartError::Bind { source, .. })
            if v4_fallback && addr.ip().is_unspecified() && addr.is_ipv6() && no_ipv6(&source) =>
        {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            tracing::info!(target: "las", "no IPv6 on this host ({source}); listening on IPv4 only");
            bind(v4).await
        }
        other => other,
    }
}

/// The errors a kernel without IPv6 gives for an AF_INET6 socket or for binding `::`.
fn no_ipv6(e: &std::io::Error) -> bool {
    const EAFNOSUPPORT: i32 = 97;
    e.raw_os_error() == Some(EAFNOSUPPORT)
        || e.kind() == std::io::ErrorKind::AddrNotAvailable
        || e.kind() == std::io::ErrorKind::Unsupported
}

fn bind_socket(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // Dual stack regardless of net.ipv6.bindv6only: `[::]` also accepts IPv4.
        socket.set_only_v6(false)?;
    }
    // As std and tokio do on Unix: a restarted LAS can rebind while old sockets are in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(std::net::TcpListener::from(socket))
}

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting, marks
/// the daemon not ready and lets in-flight requests finish (up to `drain_timeout`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let c = &state.config;
    let limits = ConnectionLimits {
        header_timeout: c.header_timeout,
        write_timeout: c.write_timeout,
        max_connections: c.max_connections,
        drain_timeout: c.drain_timeout,
    };
    serve_router(
        listener,
        app(state.clone()),
        &limits,
        state.metrics.connections(),
        &state.shutting_down,
        shutdown,
    )
    .await
}

/// The limits of [`serve_router`]'s connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers (this also bounds an idle keep-alive
    /// connection: waiting for the next request is reading its headers).
    pub header_timeout: Duration,
    /// Time a blocked response write may take to reach the kernel (see `deadline`).
    pub write_timeout: Duration,
    /// Open connections at most; further ones are closed at once.
    pub max_connections: usize,
    /// How long in-flight requests may take after `shutdown`.
    pub drain_timeout: Duration,
}

/// The counters [`serve_router`] keeps; each server registers them in its own registry,
/// under its own prefix.
#[derive(Debug, Clone, Default)]
pub struct ConnectionMetrics {
    /// Open connections.
    pub open: Gauge,
    /// Connections closed at once because `max_connections` were open.
    pub refused: Counter,
    /// Connections closed because the client did not read its responses in time.
    pub write_timeouts: Counter,
}

/// The connection loop of the LAS daemon and of the verification service: serves `router`
/// on `listener` with a connection cap, a header read timeout, a write deadline and a
/// capped read buffer, until `shutdown` completes; then stops accepting, sets `stopping`
/// (so /readyz answers 503) and lets in-flight requests finish (up to `drain_timeout`).
pub async fn serve_router(
    listener: TcpListener,
    router: axum::Router,
    limits: &ConnectionLimits,
    metrics: ConnectionMetrics,
    stopping: &AtomicBool,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(target: "las", "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    metrics.refused.inc();
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    router.clone().oneshot(req)
                });
                let io = deadline::WriteDeadline::new(
                    stream,
                    limits.write_timeout,
                    metrics.write_timeouts.clone(),
                );
                // The header timeout also bounds an idle keep-alive connection: waiting for
                // the next request is reading its headers. Responses to pipelined requests
                // are flushed one by one (no `pipeline_flush`), so each is under the write
                // deadline on its own.
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .max_buf_size(MAX_CONNECTION_BUFFER)
                    .pipeline_flush(false)
                    .serve_connection(TokioIo::new(io), svc);
                let conn = graceful.watch(conn);
                let open = metrics.open.clone();
                open.inc();
                tokio::spawn(async move {
                    let _ = conn.await;
                    open.dec();
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    stopping.store(true, Ordering::Relaxed);
    tracing::info!(target: "las", "shutting down: draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(target: "las", "drain timeout reached; closing remaining connections");
        }
    }
    Ok(())
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this is called, not
/// when the future is first polled: a signal that arrives just after the daemon says it
/// listens must still mean a graceful stop (exit 0), not the default action (death by the
/// signal). Call it inside the Tokio runtime, before announcing the listener.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(target: "las", "cannot install the SIGTERM/SIGINT handlers: {e}");
                std::future::pending::<()>().await;
            }
        }
    }
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

//! # las-http: what both LAS servers share
//!
//! The LAS daemon (`lasd`, crate las-server) and the verification service
//! (`las verifier serve`, crate las-verifier-service) serve HTTP with the same rules, so
//! they live here once, beside no platform, verifier or client code:
//!
//! - [`serve_router`]: the connection loop with every limit of [`Limits`] (connection cap,
//!   one deadline for headers and body, body cap, write deadline, capped buffers, graceful
//!   drain); a server built on it cannot leave one out. [`serve_routes`] is the same loop
//!   with a [`FastRoute`] answered before the router (the daemon's `POST /v1/quote`);
//! - [`Limits`], its one default, `LimitArgs` (feature `clap`: the options, flattened into both binaries)
//!   and [`duration`], the one duration syntax of every binary;
//! - [`ApiError`] over [`ErrorKind`]: the one JSON error of both servers;
//! - [`bind`] (dual stack, clear errors), [`shutdown_signal`], [`logging`],
//!   [`ConnectionMetrics`] (registered by each server under its prefix).
//!
//! ```text
//!  TcpListener ─► accept (connection cap) ─► write deadline ─► hyper http1 (header timeout)
//!     ─► body read (cap, deadline shared with the headers; 413/408 JSON, connection closed)
//!     ─► the fast route (if any, exact method and path) or the server's axum Router
//!     ─► one yield (ready connections answer first: answers leave in bursts) ─► answer
//! ```
//!
//! A server on loopback with the default limits: a route answers, a body over the cap
//! gets 413 `body-too-large` before it is read, and the loop drains on shutdown.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::sync::atomic::AtomicBool;
//! use las_http::{ConnectionMetrics, Limits};
//!
//! let rt = tokio::runtime::Runtime::new()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
//! let addr = listener.local_addr()?;
//! let router = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" }));
//! let metrics = ConnectionMetrics::register(&mut prometheus_client::registry::Registry::default());
//! let server = rt.spawn(async move {
//!     static STOPPING: AtomicBool = AtomicBool::new(false);
//!     let shutdown = async { stopped.await.ok(); };
//!     las_http::serve_router(listener, router, &Limits::default(), metrics, &STOPPING, shutdown).await
//! });
//! let ask = |request: &str| -> std::io::Result<String> {
//!     let mut c = std::net::TcpStream::connect(addr)?;
//!     c.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
//!     c.write_all(request.as_bytes())?;
//!     let mut answer = String::new();
//!     c.read_to_string(&mut answer)?;
//!     Ok(answer)
//! };
//! let ok = ask("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with("hi"), "{ok}");
//! let too_big = Limits::default().body_limit + 1;
//! let refused = ask(&format!(
//!     "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: {too_big}\r\nConnection: close\r\n\r\n"
//! ))?;
//! assert!(refused.starts_with("HTTP/1.1 413") && refused.contains("body-too-large"), "{refused}");
//! stop.send(()).ok();
//! rt.block_on(server)??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod body;
mod deadline;
mod error;
pub mod limits;
pub mod logging;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use body::{FastAnswer, FastRoute};
pub use error::{ApiError, ErrorKind, method_not_allowed, not_found};
#[cfg(feature = "clap")]
pub use limits::LimitArgs;
pub use limits::{Limits, duration};

/// Largest read (and write) buffer of a connection: caps the pipelined requests hyper holds
/// for one connection (more stay in the kernel, and the client's own writes block). Requests
/// are served one at a time per connection; 64 KiB fits any request head the LAS accepts.
pub const MAX_CONNECTION_BUFFER: usize = 64 * 1024;

/// The listen address could not be bound. The OS error is the `source` (printed once,
/// by the `{:#}` cause chain), not part of this message.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}{hint}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// The I/O error.
    pub source: std::io::Error,
    /// A hint for the common causes.
    pub hint: &'static str,
}

/// Binds the listen address with a clear error: an unspecified IPv6 address as dual stack.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    bind_socket(addr).map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (the port is in use: is another LAS running? choose another with --listen)"
            }
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
            std::io::ErrorKind::AddrNotAvailable => " (no such local address)",
            _ => "",
        };
        BindError { addr, source, hint }
    })
}

/// `bind`, and for the default address the IPv4 fallback where the kernel has no IPv6.
pub async fn bind_with_fallback(
    addr: SocketAddr,
    v4_fallback: bool,
) -> Result<TcpListener, BindError> {
    match bind(addr).await {
        Err(BindError { source, .. })
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

/// The counters [`serve_router`] keeps; each server registers them in its own registry
/// ([`ConnectionMetrics::register`]), under its own prefix.
#[derive(Debug, Clone, Default)]
pub struct ConnectionMetrics {
    /// Open connections.
    pub open: Gauge,
    /// Connections closed at once because `max_connections` were open.
    pub refused: Counter,
    /// Connections closed because the client did not read its responses in time.
    pub write_timeouts: Counter,
    /// Requests answered by the serve loop before any route saw them, by error kind
    /// (`body-too-large`, `body-timeout`, `bad-request`).
    pub bodies_refused: Family<KindLabel, Counter>,
}

/// The `kind` label of [`ConnectionMetrics::bodies_refused`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The error kind (docs/api.md).
    pub kind: String,
}

impl ConnectionMetrics {
    /// New counters, registered in `r` (the same names in every server, under its prefix).
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register(
            "connections_open",
            "Open client connections",
            m.open.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed at once because the connection cap was reached",
            m.refused.clone(),
        );
        r.register(
            "connections_write_timeout",
            "Connections closed because the client did not read its responses within the write timeout",
            m.write_timeouts.clone(),
        );
        r.register(
            "request_bodies_refused",
            "Requests refused for their body before routing (too large, too late, unreadable), by error kind",
            m.bodies_refused.clone(),
        );
        m
    }
}

/// The connection loop of the LAS daemon and of the verification service: serves `router`
/// on `listener` until `shutdown` completes, then stops accepting, sets `stopping` (so
/// /readyz answers 503) and lets in-flight requests finish (up to `drain_timeout`).
///
/// Every limit of [`Limits`] is applied here, so no server can leave one out: the
/// connection cap; one deadline for a request's headers and body together (see
/// the `body` module): a request not read in full in time gets 408 `body-timeout` and its
/// connection is closed, freeing its slot; the body cap (413 `body-too-large`, before
/// reading when the length is declared); the write deadline; a capped read buffer. Routes
/// get the body already read, within the cap.
pub async fn serve_router(
    listener: TcpListener,
    router: axum::Router,
    limits: &Limits,
    metrics: ConnectionMetrics,
    stopping: &AtomicBool,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_routes(listener, router, None, limits, metrics, stopping, shutdown).await
}

/// [`serve_router`] with a [`FastRoute`] answered before the router (the same limits
/// apply to it: it gets the body read within the cap and the deadline).
pub async fn serve_routes(
    listener: TcpListener,
    router: axum::Router,
    fast: Option<FastRoute>,
    limits: &Limits,
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
                let svc = body::ReadFirst::new(
                    router.clone(),
                    fast.clone(),
                    *limits,
                    metrics.bodies_refused.clone(),
                );
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

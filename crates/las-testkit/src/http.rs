//! The one HTTP client of the tests and the benchmark: hyper 1's HTTP/1.1 connection API
//! (`hyper::client::conn::http1`) over a tokio `TcpStream`, one keep-alive connection per
//! [`AsyncConn`] (the benchmark's closed loop) or per blocking [`Client`] (the tests).
//!
//! hyper's low-level connection API rather than hyper-util's pooled `Client`: the tests and
//! the benchmark both want to own exactly which connection a request goes over (N
//! connections in a closed loop, a connection the daemon should close), which a pool hides.
//!
//! Every blocking call has a deadline ([`DEFAULT_DEADLINE`] unless set), so a daemon that
//! stops answering fails the test instead of hanging it. Requests that must be malformed on
//! purpose go through [`crate::raw`], never through here.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
pub use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// How long a blocking exchange (connect, send, whole response) may take.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);
/// Largest response body accepted (the LAS's answers are far smaller; /metrics included).
pub const MAX_BODY: usize = 16 << 20;

/// What went wrong with one exchange.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// Socket error (connect, nodelay).
    Io(std::io::Error),
    /// hyper's error: the connection closed, a malformed response, ...
    Hyper(hyper::Error),
    /// The request could not be built (bad method, path or header).
    Request(String),
    /// The body exceeded [`MAX_BODY`] or could not be read.
    Body(String),
    /// No whole response within the deadline.
    Timeout(Duration),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "i/o error: {e}"),
            HttpError::Hyper(e) => write!(f, "http error: {e}"),
            HttpError::Request(e) => write!(f, "cannot build the request: {e}"),
            HttpError::Body(e) => write!(f, "response body: {e}"),
            HttpError::Timeout(d) => write!(f, "no whole response within {d:?}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<std::io::Error> for HttpError {
    fn from(e: std::io::Error) -> Self {
        HttpError::Io(e)
    }
}

impl From<hyper::Error> for HttpError {
    fn from(e: hyper::Error) -> Self {
        HttpError::Hyper(e)
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers in the order received (names lower-case as hyper gives them).
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics (naming the body) if it is not.
    #[allow(clippy::panic)]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Builds a request: `Host` from `addr` unless given, the body with its Content-Length
/// (hyper adds it from the body's exact size, `0` for an empty POST).
pub fn build(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Request<Full<Bytes>>, HttpError> {
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|e| HttpError::Request(e.to_string()))?;
    let mut b = Request::builder().method(method).uri(path);
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(header::HOST.as_str()))
    {
        b = b.header(header::HOST, addr.to_string());
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(body.into()))
        .map_err(|e| HttpError::Request(e.to_string()))
}

/// An async keep-alive HTTP/1.1 connection (hyper's connection API).
#[derive(Debug)]
pub struct AsyncConn {
    addr: SocketAddr,
    tx: SendRequest<Full<Bytes>>,
}

impl AsyncConn {
    /// Connects (TCP_NODELAY, as a latency-sensitive client would) and hands the
    /// connection's I/O to a tokio task of the current runtime.
    pub async fn connect(addr: SocketAddr) -> Result<Self, HttpError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // Ends when the peer closes or every sender is dropped; its error is the next
        // request's error.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { addr, tx })
    }

    /// Where it is connected.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the connection is gone (closed by the peer, or broken).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Sends `req` and reads the whole response: (status, body). The cheapest form, for
    /// the benchmark's loop.
    pub async fn exchange(&mut self, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), HttpError> {
        self.tx.ready().await?;
        let resp = self.tx.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| HttpError::Body(e.to_string()))?
            .to_bytes();
        Ok((status, body))
    }

    /// Sends `req` and reads the whole response with its headers.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Resp, HttpError> {
        self.tx.ready().await?;
        let resp = self.tx.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| HttpError::Body(e.to_string()))?
            .to_bytes();
        Ok(Resp {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), header_text(v)))
                .collect(),
            body: body.to_vec(),
        })
    }
}

fn header_text(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

fn runtime() -> Result<tokio::runtime::Runtime, HttpError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A blocking keep-alive HTTP/1.1 connection for the tests: an [`AsyncConn`] driven by its
/// own single-threaded runtime. Every request has a deadline.
#[derive(Debug)]
pub struct Client {
    rt: tokio::runtime::Runtime,
    conn: AsyncConn,
    deadline: Duration,
}

impl Client {
    /// Connects within [`DEFAULT_DEADLINE`].
    pub fn connect(addr: SocketAddr) -> Result<Client, HttpError> {
        let rt = runtime()?;
        let conn = rt
            .block_on(async {
                tokio::time::timeout(DEFAULT_DEADLINE, AsyncConn::connect(addr)).await
            })
            .map_err(|_| HttpError::Timeout(DEFAULT_DEADLINE))??;
        Ok(Client {
            rt,
            conn,
            deadline: DEFAULT_DEADLINE,
        })
    }

    /// Sets the deadline of each later request.
    pub fn with_deadline(mut self, d: Duration) -> Client {
        self.deadline = d;
        self
    }

    /// Whether the daemon closed the connection (after `Connection: close`, or on drain).
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Sends one request on this connection and reads its whole response. An error means
    /// the connection is unusable: connect again.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Resp, HttpError> {
        let req = build(
            self.conn.addr(),
            method,
            path,
            headers,
            Bytes::copy_from_slice(body),
        )?;
        let d = self.deadline;
        let conn = &mut self.conn;
        self.rt
            .block_on(async { tokio::time::timeout(d, conn.send(req)).await })
            .map_err(|_| HttpError::Timeout(d))?
    }
}

/// One request over a fresh connection, within [`DEFAULT_DEADLINE`]; the error names what
/// failed.
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, HttpError> {
    Client::connect(addr)?.request(method, path, headers, body)
}

/// One request over a fresh connection; panics (naming the request and the error) if no
/// whole response arrives within [`DEFAULT_DEADLINE`].
#[allow(clippy::panic)]
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    try_http(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"))
}

/// `GET path` over a fresh connection (see [`fn@http`]).
pub fn get(addr: SocketAddr, path: &str) -> Resp {
    http(addr, "GET", path, &[], b"")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_host_length_and_type() {
        let a: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let r = build(
            a,
            "POST",
            "/v1/quote",
            &[("Content-Type", "application/octet-stream")],
            &b"xy"[..],
        )
        .unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri(), "/v1/quote");
        assert_eq!(r.headers()["host"], "127.0.0.1:9");
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        let own = build(a, "GET", "/", &[("Host", "las")], &b""[..]).unwrap();
        assert_eq!(own.headers().get_all("host").iter().count(), 1);
        assert!(build(a, "GE T", "/", &[], &b""[..]).is_err());
    }

    #[test]
    fn a_silent_server_is_a_timeout_not_a_hang() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut c = Client::connect(addr)
            .unwrap()
            .with_deadline(Duration::from_millis(300));
        let _held = l.accept().unwrap();
        let t = std::time::Instant::now();
        assert!(matches!(
            c.request("GET", "/", &[], b""),
            Err(HttpError::Timeout(_))
        ));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

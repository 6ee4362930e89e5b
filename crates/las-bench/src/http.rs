//! A minimal HTTP/1.1 client: one request at a time on a keep-alive connection, responses
//! framed by Content-Length (all the LAS sends). Hand-rolled so that the load generator
//! spends its core on sending, not on a client library's machinery.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest response body accepted (the LAS's tokens are capped at 64 KiB).
const MAX_BODY: usize = 1 << 20;

/// What went wrong with one exchange.
#[derive(Debug)]
pub enum HttpError {
    /// Socket error.
    Io(std::io::Error),
    /// The peer closed the connection before a whole response.
    Closed,
    /// The response is not HTTP/1.1 with a Content-Length we accept.
    Malformed(&'static str),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "i/o error: {e}"),
            HttpError::Closed => f.write_str("connection closed before a whole response"),
            HttpError::Malformed(what) => write!(f, "malformed response: {what}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<std::io::Error> for HttpError {
    fn from(e: std::io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// The parsed head of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Bytes of the head including the blank line.
    pub head_len: usize,
    /// Content-Length.
    pub body_len: usize,
}

/// Parses a response head from the start of `buf`: `Ok(None)` while incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HttpError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(HttpError::Malformed("head too long"));
        }
        return Ok(None);
    };
    let head = buf
        .get(..end)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or(HttpError::Malformed("not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(HttpError::Malformed("status line"))?;
    let mut body_len = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed("header line"));
        };
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .trim()
                .parse::<usize>()
                .map_err(|_| HttpError::Malformed("content-length"))?;
            if n > MAX_BODY {
                return Err(HttpError::Malformed("body too long"));
            }
            body_len = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Malformed("chunked responses are not expected"));
        }
    }
    Ok(Some(Head {
        status,
        head_len: end + 4,
        body_len: body_len.ok_or(HttpError::Malformed("no content-length"))?,
    }))
}

/// A request as bytes.
pub fn request(method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(ct) = content_type {
        r.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut out = r.into_bytes();
    out.extend_from_slice(body);
    out
}

/// An async keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects (TCP_NODELAY, as a latency-sensitive client would).
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `req` and reads the whole response: (status, body).
    pub async fn exchange(&mut self, req: &[u8]) -> Result<(u16, &[u8]), HttpError> {
        self.stream.write_all(req).await?;
        self.buf.clear();
        let head = loop {
            if let Some(h) = parse_head(&self.buf)? {
                break h;
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(HttpError::Closed);
            }
        };
        let total = head.head_len + head.body_len;
        while self.buf.len() < total {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(HttpError::Closed);
            }
        }
        if self.buf.len() > total {
            return Err(HttpError::Malformed("bytes after the response"));
        }
        let body = self
            .buf
            .get(head.head_len..total)
            .ok_or(HttpError::Malformed("Content-Length beyond the bytes read"))?;
        Ok((head.status, body))
    }
}

/// One blocking exchange on a fresh connection (start-up polling, set-up requests).
pub fn get_blocking(
    addr: SocketAddr,
    req: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), HttpError> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(req)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(h) = parse_head(&buf)? {
            let total = h.head_len + h.body_len;
            if let Some(body) = buf.get(h.head_len..total) {
                return Ok((h.status, body.to_vec()));
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_and_wait_for_more() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-type: x\r\nContent-Length: 3\r\n\r\nabc";
        let h = parse_head(r).unwrap().unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                head_len: r.len() - 3,
                body_len: 3
            }
        );
        assert!(parse_head(&r[..20]).unwrap().is_none());
    }

    #[test]
    fn bad_heads_are_rejected() {
        for bad in [
            &b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }

    #[test]
    fn requests_carry_length_and_type() {
        let r = request("POST", "/v1/quote", Some("application/octet-stream"), b"xy");
        assert_eq!(
            r,
            b"POST /v1/quote HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n\r\nxy"
        );
        let g = request("GET", "/readyz", None, b"");
        assert_eq!(g, b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    }
}

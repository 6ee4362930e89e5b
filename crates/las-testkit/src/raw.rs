//! Raw-socket HTTP/1.1, ONLY for the cases that must send or watch broken HTTP on purpose:
//! bad request lines and headers, slow or half-sent requests, oversized bodies, pipelining,
//! reading a response on a socket the test wrote by hand, waiting for the daemon to close a
//! connection. Everything else goes through [`mod@crate::http`] (hyper).
//!
//! Every read has a deadline (the socket's read timeout, 20 s unless set), so a daemon that
//! stops answering fails the test instead of hanging it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::http::Resp;

/// Read and write deadline of a [`Conn`] unless the stream has one.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// One hand-written HTTP/1.1 connection kept alive across requests. [`Conn::request`]
/// writes exactly what it is given (plus Host and Content-Length), so headers the tests
/// pass are sent verbatim, however wrong.
#[derive(Debug)]
pub struct Conn {
    /// The socket (write raw bytes to it directly for half-sent or pipelined requests).
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects with [`DEADLINE`] on connect, reads and writes; TCP_NODELAY.
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, DEADLINE)?;
        stream.set_read_timeout(Some(DEADLINE))?;
        stream.set_write_timeout(Some(DEADLINE))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Wraps a connected stream (read deadline [`DEADLINE`] unless it has one).
    pub fn from_stream(stream: TcpStream) -> Conn {
        if stream.read_timeout().ok().flatten().is_none() {
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
        }
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends one request (the given headers verbatim, then Content-Length) and reads one
    /// response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Resp> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: las\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut all = req.into_bytes();
        all.extend_from_slice(body);
        self.stream.write_all(&all)?;
        self.read(method == "HEAD")
    }

    /// Reads one response framed by Content-Length or chunked encoding (or by EOF).
    pub fn read_response(&mut self) -> io::Result<Resp> {
        self.read(false)
    }

    fn read(&mut self, head_only: bool) -> io::Result<Resp> {
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().unwrap());
        let chunked = head
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
        let total = if head_only {
            head_end
        } else if let Some(n) = length {
            while self.buf.len() < head_end + n {
                self.fill()?;
            }
            head_end + n
        } else if chunked {
            loop {
                if let Some(p) = find(&self.buf[head_end..], b"\r\n0\r\n\r\n") {
                    break head_end + p + 7;
                }
                if self.buf[head_end..].starts_with(b"0\r\n\r\n") {
                    break head_end + 5;
                }
                self.fill()?;
            }
        } else {
            // No framing: the body ends with the connection.
            loop {
                match self.fill() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break self.buf.len(),
                    Err(e) => return Err(e),
                }
            }
        };
        let resp = parse_response(&self.buf[..total]);
        self.buf.drain(..total);
        Ok(resp)
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses one whole raw response (head, then a Content-Length, chunked or EOF-framed body).
/// Panics on a response that is not HTTP (the tests want to see it).
pub fn parse_response(raw: &[u8]) -> Resp {
    let split = find(raw, b"\r\n\r\n").expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = find(b, b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

/// Waits until the peer closes `s` (EOF or reset), reading and discarding what it sends.
/// Returns how long that took, or `None` if it is still open after `limit`.
pub fn wait_closed(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut sink = [0u8; 4096];
    loop {
        let left = limit.checked_sub(start.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut sink) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if start.elapsed() >= limit {
                    return None;
                }
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_plain_responses_parse() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let p = parse_response(b"HTTP/1.1 415 X\r\ncontent-length: 2\r\n\r\nno");
        assert_eq!((p.status, p.header("Content-Length")), (415, Some("2")));
    }
}

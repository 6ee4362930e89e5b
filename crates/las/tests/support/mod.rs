//! Helpers of the hardening suites (bad input, faults, soak, secrets): a keep-alive HTTP/1.1
//! client, valid REPORTs made the way an application on the simulated platform makes them,
//! and /proc readings of the daemon. Used together with `common` (declare both modules).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use las_core::egetkey::EnclaveIdentity;
use las_core::sgx::{Attributes, TargetInfo, flags};
use las_platform::sim::SimCpu;

use crate::common::{Resp, parse_response};

/// One HTTP/1.1 connection that is kept alive across requests.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_write_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Wraps a connected stream (read timeout 20 s unless set).
    pub fn from_stream(stream: TcpStream) -> Conn {
        if stream.read_timeout().ok().flatten().is_none() {
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
        }
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends one request (with Content-Length) and reads one response.
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

/// The application enclave the suites attest (a release enclave).
pub fn app_enclave() -> EnclaveIdentity {
    EnclaveIdentity {
        mrenclave: [0xaa; 32],
        mrsigner: [0xbb; 32],
        attributes: Attributes {
            flags: flags::INIT | flags::MODE64BIT,
            xfrm: 3,
        },
        isvprodid: 3,
        isvsvn: 5,
        ..EnclaveIdentity::default()
    }
}

/// The LAS's TARGETINFO, fetched from the daemon.
pub fn target_info(addr: SocketAddr) -> TargetInfo {
    let r = crate::common::get(addr, "/v1/target-info");
    assert_eq!(r.status, 200);
    TargetInfo::try_from_slice(&r.body).unwrap()
}

/// A valid REPORT for the LAS at `addr`, made on the platform whose state folder is `dir`
/// (the simulated EREPORT), binding `report_data`.
pub fn valid_report(dir: &Path, addr: SocketAddr, report_data: [u8; 64]) -> Vec<u8> {
    let cpu = SimCpu::open(dir, None, false).unwrap();
    cpu.ereport(&app_enclave(), &target_info(addr), &report_data)
        .unwrap()
        .to_bytes()
        .to_vec()
}

/// Asserts that `r` is a quote for `report_data` from the platform at `addr` that verifies.
pub fn assert_quote(r: &Resp, report_data: &[u8; 64]) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let q = las_core::quote::decode_and_verify_quote(&r.body).expect("quote verifies");
    assert_eq!(&q.claims.report_body.report_data, report_data);
    assert_eq!(q.claims.mode, las_core::Mode::Sim);
}

/// The daemon still works: a fresh valid REPORT gets a verifying quote.
pub fn still_answers(dir: &Path, addr: SocketAddr) {
    let mut rd = [0u8; 64];
    getrandom_fill(&mut rd);
    let report = valid_report(dir, addr, rd);
    let r = crate::common::http(
        addr,
        "POST",
        "/v1/quote",
        &[("Content-Type", "application/octet-stream")],
        &report,
    );
    assert_quote(&r, &rd);
}

/// Random bytes from the OS (the tests use no RNG crate).
pub fn getrandom_fill(b: &mut [u8]) {
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(b)
        .unwrap();
}

/// A small deterministic PRNG (xorshift64*) for reproducible random choices in tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn from_os() -> Rng {
        let mut b = [0u8; 8];
        getrandom_fill(&mut b);
        Rng(u64::from_le_bytes(b) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A `/proc/PID/status` field in kB (VmRSS, VmHWM, ...).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Open file descriptors of `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The value of a metric line `name{labels} value` (exact name + labels prefix).
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == name_and_labels).then(|| v.parse().ok()).flatten()
    })
}

/// Scrapes /metrics.
pub fn scrape(addr: SocketAddr) -> String {
    let r = crate::common::get(addr, "/metrics");
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).unwrap()
}

/// CPU seconds (user + system) used by `pid` so far.
pub fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = s.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime), counted after the command name.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

//! Clients that stop reading (issue 13, attack 1): four clients take all four connection
//! slots, each pipelines about 3,000 `GET /metrics` with a 2 KB receive buffer and never
//! reads. Before the write deadline every new client was refused for as long as they
//! stayed (still after 60 s). Now each loses its slot once a response has been blocked for
//! `--write-timeout-secs`, a new client is served within that bound, and honest keep-alive
//! clients (which read their responses, pipelining or not) are never cut, even while an
//! attacker runs beside them. An idle keep-alive connection is closed after the header
//! timeout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use las_testkit::fixtures::*;
use las_testkit::raw::{Conn, wait_closed};
use las_testkit::*;

const WRITE_TIMEOUT: u64 = 3;
const HEADER_TIMEOUT: u64 = 2;
const PIPELINED: usize = 3000;

fn daemon(dir: &std::path::Path) -> Daemon {
    Daemon::start(
        dir,
        &[
            "--max-connections",
            "4",
            "--header-timeout-secs",
            &HEADER_TIMEOUT.to_string(),
            "--write-timeout-secs",
            &WRITE_TIMEOUT.to_string(),
        ],
    )
}

/// A client with a 2 KB receive buffer that pipelines `PIPELINED` requests and never reads.
/// Returns the socket (kept open by the caller) once the writer thread is running.
fn attacker(addr: SocketAddr) -> (TcpStream, JoinHandle<()>) {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).unwrap();
    s.set_recv_buffer_size(2048).unwrap();
    s.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let stream = TcpStream::from(s);
    // Our own writes block once the daemon stops reading: bounded, in a thread.
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let req = b"GET /metrics HTTP/1.1\r\nHost: las\r\n\r\n";
        let all: Vec<u8> = req
            .iter()
            .copied()
            .cycle()
            .take(req.len() * PIPELINED)
            .collect();
        // Ends with an error once the daemon closes the connection.
        let _ = w.write_all(&all);
    });
    (stream, writer)
}

/// One attempt by a new client: connect, GET /healthz, read the answer. `true` if served.
fn served(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: las\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    raw.starts_with(b"HTTP/1.1 200")
}

#[test]
fn clients_that_never_read_lose_their_slots_within_the_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path());
    let addr = d.addr;

    let start = Instant::now();
    let attackers: Vec<_> = (0..4).map(|_| attacker(addr)).collect();
    // Let the daemon fill the attackers' buffers: from here every slot is taken.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !served(addr),
        "a fifth client is refused while the four attackers hold the slots (else this test shows nothing)"
    );

    // A new client retries until served: within the write timeout (plus slack for a loaded
    // machine), not never.
    let bound = Duration::from_secs(WRITE_TIMEOUT + 5);
    let served_after = loop {
        if served(addr) {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < bound,
            "no new client served {bound:?} after four slow readers connected; log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("new client served {served_after:?} after the slow readers connected");
    assert!(
        served_after >= Duration::from_secs(WRITE_TIMEOUT) - Duration::from_millis(500),
        "served before any write could have timed out ({served_after:?}): were the slots full?"
    );

    // Every attacker's connection is closed by the daemon, without the attacker reading.
    for (s, _) in &attackers {
        assert!(
            wait_closed_without_reading(
                s,
                bound.saturating_sub(start.elapsed()) + Duration::from_secs(2)
            )
            .is_some(),
            "an attacker's connection is still open {:?} after it connected",
            start.elapsed()
        );
    }
    for (mut s, writer) in attackers {
        let _ = wait_closed(&mut s, Duration::from_secs(5));
        writer.join().unwrap();
    }
    let m = scrape(addr);
    assert_eq!(
        metric(&m, "las_connections_write_timeout_total"),
        Some(4.0),
        "{m}"
    );
    assert!(metric(&m, "las_connections_refused_total").unwrap() >= 1.0);
    still_answers(dir.path(), addr);
}

/// An honest keep-alive client: `rounds` rounds of `batch` pipelined GETs, each round's
/// responses read in full before the next. Returns how many responses it got (all 200).
fn honest(addr: SocketAddr, rounds: usize, batch: usize) -> usize {
    let mut c = Conn::connect(addr).unwrap();
    let mut got = 0;
    for _ in 0..rounds {
        let mut reqs = Vec::new();
        for i in 0..batch {
            let path = if i % 2 == 0 {
                "/metrics"
            } else {
                "/v1/platform"
            };
            reqs.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: las\r\n\r\n").as_bytes());
        }
        c.stream.write_all(&reqs).unwrap();
        for _ in 0..batch {
            let r = c.read_response().expect("honest client cut");
            assert_eq!(r.status, 200);
            got += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    got
}

#[test]
fn honest_keep_alive_clients_are_not_cut_while_an_attacker_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path());
    let addr = d.addr;
    // Three honest clients on one connection each for about 3 × the write timeout and
    // 4 × the header timeout, beside one attacker in the fourth slot.
    let rounds = 120;
    let honest: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || honest(addr, rounds, 8)))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let (mut s, writer) = attacker(addr);
    let cut = wait_closed_without_reading(&s, Duration::from_secs(WRITE_TIMEOUT + 10));
    assert!(cut.is_some(), "the attacker was not cut");
    eprintln!("attacker cut after {:?}", start.elapsed());
    let _ = wait_closed(&mut s, Duration::from_secs(5));
    writer.join().unwrap();
    for h in honest {
        assert_eq!(h.join().unwrap(), rounds * 8);
    }
    let m = scrape(addr);
    assert_eq!(
        metric(&m, "las_connections_write_timeout_total"),
        Some(1.0),
        "only the attacker was cut: {m}"
    );
}

/// Waits (without reading: the attacker must not drain its buffer) until the daemon has
/// closed or reset `s`, seen as the connection leaving ESTABLISHED in /proc/net/tcp.
fn wait_closed_without_reading(s: &TcpStream, limit: Duration) -> Option<Duration> {
    let local = s.local_addr().unwrap();
    let start = Instant::now();
    while start.elapsed() < limit {
        if !established(local) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Whether the TCP socket bound to `local` (IPv4 loopback) is still ESTABLISHED (state 01).
fn established(local: SocketAddr) -> bool {
    let SocketAddr::V4(v4) = local else {
        panic!("the test daemon listens on IPv4 loopback")
    };
    let want = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    );
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"01")
    })
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path());
    let mut c = Conn::connect(d.addr).unwrap();
    let r = c.request("GET", "/healthz", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    let idle = wait_closed(&mut c.stream, Duration::from_secs(HEADER_TIMEOUT + 8))
        .expect("an idle keep-alive connection stays open");
    assert!(
        idle >= Duration::from_secs(HEADER_TIMEOUT) - Duration::from_millis(200),
        "closed too early: {idle:?}"
    );
    eprintln!("idle keep-alive connection closed after {idle:?}");
}

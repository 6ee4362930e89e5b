//! Bad input against the running daemon on loopback: every truncation, extension and
//! single-bit flip of a valid REPORT, wrong content types, oversized and stalled bodies,
//! malformed JSON, unknown routes and methods, non-HTTP garbage, slow clients and more
//! connections than the cap. After each group the daemon must still answer a valid quote
//! request; each test prints how many inputs it tried (`--nocapture` shows it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use las_core::sgx::{REPORT_SIZE, report_offsets as o};
use las_testkit::daemon::*;
use las_testkit::fixtures::*;
use las_testkit::http::*;
use las_testkit::procfs::*;
use las_testkit::raw::*;

/// Sends on a keep-alive connection, reconnecting when the daemon closed it.
fn send(
    conn: &mut Option<Conn>,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    for _ in 0..3 {
        if conn.is_none() {
            *conn = Some(Conn::connect(addr).unwrap());
        }
        match conn.as_mut().unwrap().request(method, path, headers, body) {
            Ok(r) => {
                if r.header("connection") == Some("close") {
                    *conn = None;
                }
                return r;
            }
            Err(_) => *conn = None,
        }
    }
    panic!("{method} {path}: no answer after 3 connections");
}

/// `POST /v1/quote` with Content-Type `ct`.
fn post_quote(conn: &mut Option<Conn>, addr: std::net::SocketAddr, ct: &str, body: &[u8]) -> Resp {
    send(
        conn,
        addr,
        "POST",
        "/v1/quote",
        &[("Content-Type", ct)],
        body,
    )
}

fn kind(r: &Resp) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_owned()
}

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

/// Whether byte `i` of a REPORT lies in a reserved field of the body.
fn reserved(i: usize) -> bool {
    [
        (o::RESERVED1, 11), // byte 20 is CET_ATTRIBUTES: a flip there fails the MAC
        (o::RESERVED2, 32),
        (o::RESERVED3, 32),
        (o::RESERVED4, 42),
    ]
    .iter()
    .any(|&(off, len)| (off..off + len).contains(&i))
}

#[test]
fn every_truncation_extension_and_bit_flip_of_a_report_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let rd = [0x5a; 64];
    let good = valid_report(dir.path(), d.addr, rd);
    let mut c = None;
    assert_quote(
        &send(&mut c, d.addr, "POST", "/v1/quote", &[OCTET], &good),
        &rd,
    );

    // Every truncation, 0..431 bytes.
    let mut truncations = 0;
    for len in 0..REPORT_SIZE {
        let r = send(&mut c, d.addr, "POST", "/v1/quote", &[OCTET], &good[..len]);
        assert_eq!(
            (r.status, kind(&r).as_str()),
            (400, "invalid-report-length"),
            "{len}"
        );
        truncations += 1;
    }
    // Every extension by 1..=1616 bytes (up to 2048), then every 512 bytes up to the cap,
    // with random tails.
    let mut rng = Rng::from_os();
    let mut extensions = 0;
    let lens = (REPORT_SIZE + 1..=2048).chain((2560..=16 * 1024).step_by(512));
    for len in lens {
        let mut b = good.clone();
        b.extend((REPORT_SIZE..len).map(|_| rng.next() as u8));
        let r = send(&mut c, d.addr, "POST", "/v1/quote", &[OCTET], &b);
        assert_eq!(
            (r.status, kind(&r).as_str()),
            (400, "invalid-report-length"),
            "{len}"
        );
        extensions += 1;
    }
    still_answers(dir.path(), d.addr);

    // Every single-bit flip: reserved fields are refused as malformed, every other bit by
    // the MAC check (body bits change what is MACed, KEYID bits change the key, MAC bits
    // the tag).
    let mut flips = 0;
    let (mut by_mac, mut by_reserved) = (0, 0);
    for i in 0..REPORT_SIZE {
        for bit in 0..8 {
            let mut b = good.clone();
            b[i] ^= 1 << bit;
            let r = send(&mut c, d.addr, "POST", "/v1/quote", &[OCTET], &b);
            if reserved(i) {
                assert_eq!((r.status, kind(&r).as_str()), (400, "invalid-report"));
                by_reserved += 1;
            } else {
                assert_eq!(
                    (r.status, kind(&r).as_str()),
                    (403, "invalid-report-mac"),
                    "byte {i} bit {bit}"
                );
                by_mac += 1;
            }
            flips += 1;
        }
    }
    // The JSON form goes through the same check: a sample of flips.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut json_flips = 0;
    for i in (0..REPORT_SIZE).step_by(7).filter(|&i| !reserved(i)) {
        let mut b = good.clone();
        b[i] ^= 0x80;
        let body = serde_json::json!({ "report": b64.encode(&b) }).to_string();
        let r = post_quote(&mut c, d.addr, "application/json", body.as_bytes());
        assert_eq!((r.status, kind(&r).as_str()), (403, "invalid-report-mac"));
        json_flips += 1;
    }
    still_answers(dir.path(), d.addr);

    let m = scrape(d.addr);
    assert_eq!(
        metric(
            &m,
            "las_quotes_refused_total{reason=\"invalid-report-mac\"}"
        ),
        Some((by_mac + json_flips) as f64)
    );
    println!(
        "bad input / REPORT: {truncations} truncations, {extensions} extensions, {flips} single-bit flips ({by_mac} refused by the MAC check, {by_reserved} as malformed reserved fields), {json_flips} flips in the JSON form: all refused; total {}",
        truncations + extensions + flips + json_flips
    );
    assert!(d.terminate().success());
}

#[test]
fn content_types_malformed_json_routes_and_methods() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let rd = [0x11; 64];
    let good = valid_report(dir.path(), d.addr, rd);
    let mut c = None;
    let mut tried = 0;

    // Content types: binary forms accepted, JSON with a binary body refused, anything
    // else 415.
    for ct in [
        None,
        Some("application/octet-stream"),
        Some("APPLICATION/OCTET-STREAM"),
        Some("application/octet-stream; charset=binary"),
    ] {
        let h: Vec<(&str, &str)> = ct.map(|v| ("Content-Type", v)).into_iter().collect();
        assert_quote(&send(&mut c, d.addr, "POST", "/v1/quote", &h, &good), &rd);
        tried += 1;
    }
    // Anything else: 415, and JSON with a binary body 400. Control characters make the
    // header line itself invalid HTTP (RFC 9110 5.5): hyper refuses the request with a bare
    // 400 (no JSON) before any content type is read.
    const UNSUPPORTED: Option<&str> = Some("unsupported-media-type");
    for (ct, status, want) in [
        ("text/plain", 415, UNSUPPORTED),
        ("application/xml", 415, UNSUPPORTED),
        ("multipart/form-data; boundary=x", 415, UNSUPPORTED),
        ("application/x-www-form-urlencoded", 415, UNSUPPORTED),
        ("", 415, UNSUPPORTED),
        ("application/octet-streams", 415, UNSUPPORTED),
        ("application/jsonx", 415, UNSUPPORTED),
        ("*/*", 415, UNSUPPORTED),
        ("application/cose", 415, UNSUPPORTED),
        ("application/json", 400, Some("bad-request")),
        ("application/octet-stream\u{0}", 400, None),
        ("\u{7f}", 400, None),
    ] {
        let r = post_quote(&mut c, d.addr, ct, &good);
        assert_eq!(
            (r.status, want.map(|_| kind(&r))),
            (status, want.map(str::to_owned)),
            "{ct:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
        tried += 1;
    }
    // A non-ASCII (obs-text) content type is valid HTTP: the documented 415, sent raw.
    let mut raw = TcpStream::connect(d.addr).unwrap();
    raw.write_all(b"POST /v1/quote HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/\xff\xfe\r\nContent-Length: 432\r\n\r\n").unwrap();
    raw.write_all(&good).unwrap();
    let r = Conn::from_stream(raw).read_response().unwrap();
    assert_eq!(
        (r.status, kind(&r).as_str()),
        (415, "unsupported-media-type"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    tried += 1;
    still_answers(dir.path(), d.addr);

    // Malformed JSON.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&good);
    let deep = format!("{{\"report\": {}{}}}", "[".repeat(5000), "]".repeat(5000));
    let long = format!("{{\"report\": \"{}\"}}", "A".repeat(16_000));
    let mut flipped = good.clone();
    flipped[70] ^= 1; // in MRENCLAVE
    let flipped = base64::engine::general_purpose::STANDARD.encode(&flipped);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "bad-request"),
        (b"{".to_vec(), "bad-request"),
        (b"}".to_vec(), "bad-request"),
        (b"[]".to_vec(), "bad-request"),
        (b"null".to_vec(), "bad-request"),
        (b"\"report\"".to_vec(), "bad-request"),
        (b"{\"report\": 5}".to_vec(), "bad-request"),
        (b"{\"report\": null}".to_vec(), "bad-request"),
        (b"{\"report\": [1,2,3]}".to_vec(), "bad-request"),
        (b"{\"report\": \"!!!\"}".to_vec(), "bad-request"),
        (b"{\"report\": \"\"}".to_vec(), "invalid-report-length"),
        (b"{\"Report\": \"AAAA\"}".to_vec(), "bad-request"),
        (
            format!("{{\"report\": \"{b64}\", \"extra\": 1}}").into_bytes(),
            "bad-request",
        ),
        (
            format!("{{\"report\": \"{b64}\", \"report\": \"{b64}\"}}").into_bytes(),
            "bad-request",
        ),
        (
            format!("{{\"report\": \"{b64}\"}} trailing").into_bytes(),
            "bad-request",
        ),
        (
            format!("{{\"report\": \"{}\"}}", &b64[..b64.len() - 1]).into_bytes(),
            "bad-request",
        ),
        (
            format!("{{\"report\": \"{flipped}\"}}").into_bytes(),
            "invalid-report-mac",
        ),
        (deep.into_bytes(), "bad-request"),
        (long.into_bytes(), "invalid-report-length"),
        (b"{\"report\": \"\xff\xfe\"}".to_vec(), "bad-request"),
        (b"{\"report\": \"AA\x00AA\"}".to_vec(), "bad-request"),
        (
            b"\xef\xbb\xbf{\"report\": \"AAAA\"}".to_vec(),
            "bad-request",
        ),
        (b"{\"report\": \"\\u0000\"}".to_vec(), "bad-request"),
        (vec![b'{'; 16_000], "bad-request"),
    ];
    for (body, want) in &cases {
        let r = post_quote(&mut c, d.addr, "application/json", body);
        assert_eq!(
            kind(&r),
            *want,
            "{}: {}",
            String::from_utf8_lossy(&body[..body.len().min(60)]),
            String::from_utf8_lossy(&r.body)
        );
        // The status follows from the kind (las-server error.rs): a bad MAC is 403.
        let status = if *want == "invalid-report-mac" {
            403
        } else {
            400
        };
        assert_eq!(r.status, status, "{want}");
        tried += 1;
    }
    // Valid JSON, odd but legal spellings: accepted.
    for body in [
        format!("{{\"report\":\"{b64}\"}}"),
        format!(" \n{{ \"report\" : \"{b64}\" }}\n "),
        format!("{{\"report\": \" {b64} \"}}"),
    ] {
        let r = post_quote(&mut c, d.addr, "application/json", body.as_bytes());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["mode"], "sim");
        tried += 1;
    }
    still_answers(dir.path(), d.addr);

    // Unknown routes: 404 JSON. Absolute-form URIs route by their path.
    let long_path = format!("/{}", "a".repeat(8000));
    for path in [
        "/",
        "/v1",
        "/v1/",
        "/v1/quote/",
        "/v1/quote/x",
        "/V1/QUOTE",
        "/v2/quote",
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/v1/quote%00",
        "/v1//quote",
        "/metrics/x",
        "/v1/platform.json",
        long_path.as_str(),
    ] {
        for method in ["GET", "POST"] {
            let r = send(&mut c, d.addr, method, path, &[], b"");
            assert_eq!((r.status, kind(&r).as_str()), (404, "not-found"), "{path}");
            tried += 1;
        }
    }
    let r = send(
        &mut c,
        d.addr,
        "GET",
        "http://evil.example/v1/platform",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    tried += 1;

    // Wrong methods on every route: 405 JSON; HEAD on GET routes answers headers only.
    let routes = [
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/metrics", "GET"),
        ("/v1/platform", "GET"),
        ("/v1/target-info", "GET"),
        ("/v1/quote", "POST"),
        ("/v1/identity", "GET"),
    ];
    for (path, allowed) in routes {
        for method in [
            "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "get", "BREW",
        ] {
            if method == allowed {
                continue;
            }
            let r = send(&mut c, d.addr, method, path, &[], b"");
            assert_eq!(
                (r.status, kind(&r).as_str()),
                (405, "method-not-allowed"),
                "{method} {path}"
            );
            tried += 1;
        }
    }
    let r = send(&mut c, d.addr, "HEAD", "/v1/platform", &[], b"");
    assert_eq!(r.status, 200);
    tried += 1;

    // Invented methods do not create metric series (one label value `other`).
    for i in 0..100 {
        let r = send(&mut c, d.addr, &format!("X{i}"), "/nowhere", &[], b"");
        assert_eq!(r.status, 404);
        tried += 1;
    }
    let m = scrape(d.addr);
    assert!(
        !m.contains("method=\"X"),
        "a metric series per invented method"
    );
    assert!(m.contains("method=\"other\""), "{m}");
    still_answers(dir.path(), d.addr);
    println!(
        "bad input / content types, JSON, routes, methods: {tried} requests, all answered with the documented status and error kind"
    );
    assert!(d.terminate().success());
}

/// Sends `head` then `body` on a fresh connection, reads one answer and checks that the
/// connection is then closed (not left hanging).
fn raw_exchange(addr: std::net::SocketAddr, head: &str, body: &[u8], limit: Duration) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // The daemon may answer (and close) before it has read all of a large body.
    let _ = s.write_all(body);
    let mut conn = Conn::from_stream(s.try_clone().unwrap());
    conn.stream.set_read_timeout(Some(limit)).unwrap();
    let r = conn.read_response().expect("an answer in time");
    assert!(
        wait_closed(&mut s, limit).is_some(),
        "connection left open after {}",
        r.status
    );
    r
}

#[test]
fn oversized_and_stalled_bodies_are_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--header-timeout-secs", "2"]);
    let limit = Duration::from_secs(20);
    let mut tried = 0;
    let post = |len: &str| {
        format!(
            "POST /v1/quote HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
        )
    };

    // Just over the default cap, sent in full.
    let r = raw_exchange(d.addr, &post("16385"), &[0u8; 16385], limit);
    assert_eq!((r.status, kind(&r).as_str()), (413, "body-too-large"));
    tried += 1;
    // Exactly the cap: read, then refused as a REPORT of the wrong length.
    let mut c = None;
    let r = send(&mut c, d.addr, "POST", "/v1/quote", &[OCTET], &[0u8; 16384]);
    assert_eq!(
        (r.status, kind(&r).as_str()),
        (400, "invalid-report-length")
    );
    tried += 1;
    // A declared 100 MB with nothing sent: refused at once (before the body timeout).
    let t = Instant::now();
    let r = raw_exchange(d.addr, &post("100000000"), b"", limit);
    assert_eq!((r.status, kind(&r).as_str()), (413, "body-too-large"));
    assert!(
        t.elapsed() < Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
    tried += 1;
    // A declared 100 MB and 1 MB of it streamed.
    let r = raw_exchange(d.addr, &post("100000000"), &vec![7u8; 1 << 20], limit);
    assert_eq!(r.status, 413);
    tried += 1;
    // Chunked, no length, 64 KiB of chunks: 413 once over the cap.
    let mut chunks = Vec::new();
    for _ in 0..16 {
        chunks.extend_from_slice(b"1000\r\n");
        chunks.extend(std::iter::repeat_n(b'a', 4096));
        chunks.extend_from_slice(b"\r\n");
    }
    let r = raw_exchange(
        d.addr,
        "POST /v1/quote HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        &chunks,
        limit,
    );
    assert_eq!((r.status, kind(&r).as_str()), (413, "body-too-large"));
    tried += 1;
    // JSON over the cap.
    let big_json = format!("{{\"report\": \"{}\"}}", "A".repeat(20_000));
    let r = raw_exchange(
        d.addr,
        &format!(
            "POST /v1/quote HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            big_json.len()
        ),
        big_json.as_bytes(),
        limit,
    );
    assert_eq!(r.status, 413);
    tried += 1;
    // A body that stalls after 100 of 432 bytes, and a chunked body that stalls: 408
    // after the 2 s deadline, then the connection is closed.
    for (head, part) in [
        (post("432"), vec![1u8; 100]),
        (
            "POST /v1/quote HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
            b"10\r\naaaaaaaaaaaaaaaa\r\n".to_vec(),
        ),
    ] {
        let t = Instant::now();
        let r = raw_exchange(d.addr, &head, &part, limit);
        assert_eq!((r.status, kind(&r).as_str()), (408, "body-timeout"));
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took < limit,
            "{took:?}"
        );
        tried += 1;
    }
    // A GET with a declared body it never sends is answered and closed, not held.
    let r = raw_exchange(
        d.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n",
        b"",
        limit,
    );
    assert_eq!(r.status, 200);
    tried += 1;
    still_answers(dir.path(), d.addr);
    assert!(d.terminate().success());

    // The cap is configurable.
    let d = Daemon::start(dir.path(), &["--max-body-bytes", "1024"]);
    let mut c = None;
    still_answers(dir.path(), d.addr);
    let r = send(&mut c, d.addr, "POST", "/v1/quote", &[OCTET], &[0u8; 1025]);
    assert_eq!((r.status, kind(&r).as_str()), (413, "body-too-large"));
    let r = send(&mut c, d.addr, "POST", "/v1/quote", &[OCTET], &[0u8; 1024]);
    assert_eq!(
        (r.status, kind(&r).as_str()),
        (400, "invalid-report-length")
    );
    tried += 2;
    still_answers(dir.path(), d.addr);
    println!(
        "bad input / bodies: {tried} oversized or stalled bodies, none left a connection hanging"
    );
    assert!(d.terminate().success());
}

/// The status of the first response line in `raw`, if any.
fn status_of(raw: &[u8]) -> Option<u16> {
    let s = String::from_utf8_lossy(raw);
    s.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Sends `bytes`, then reads until the daemon closes; returns the answer's status.
fn garbage(addr: std::net::SocketAddr, bytes: &[u8], limit: Duration) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.write_all(bytes);
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match std::io::Read::read(&mut s, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        assert!(start.elapsed() < limit, "connection not closed");
    }
    assert!(
        start.elapsed() < limit,
        "connection not closed within {limit:?}"
    );
    status_of(&got)
}

/// Waits until `las_connections_open` (which counts the scrape itself) is `n`: the gauge
/// drops just after a socket closes, so give it a moment.
fn wait_open_connections(addr: std::net::SocketAddr, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&scrape(addr), "las_connections_open") != Some(n as f64) {
        assert!(Instant::now() < deadline, "connections left open");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn garbage_slow_clients_and_more_connections_than_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--header-timeout-secs", "1"]);
    let limit = Duration::from_secs(15);
    let mut rng = Rng::from_os();

    // Non-HTTP and broken HTTP: answered 4xx or just closed, never 5xx, never held.
    let mut inputs: Vec<Vec<u8>> = vec![
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
        b"\r\n\r\n\r\n\r\n".to_vec(),
        vec![0u8; 4096],
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST /v1/quote HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
            .to_vec(),
        b"POST /v1/quote HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .to_vec(),
        b"POST /v1/quote HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n"
            .to_vec(),
        b"POST /v1/quote HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
        format!("GET /healthz HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(500_000)).into_bytes(),
        format!(
            "GET /healthz HTTP/1.1\r\n{}\r\n",
            (0..200).map(|i| format!("X{i}: a\r\n")).collect::<String>()
        )
        .into_bytes(),
        format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100_000)).into_bytes(),
        b"GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n".to_vec(),
        b"GET /healthz HTTP/1.1\r\nX\x00Y: z\r\n\r\n".to_vec(),
        b"GET /healthz HTTP/1.1\nHost: x\n\n".to_vec(),
        b"GET /healthz HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n".to_vec(),
        b"GET /healthz HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(),
        b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n".to_vec(),
        b"GET /healthz HTTP/1.0\r\n\r\n".to_vec(),
        b"GET /healthz\r\n\r\n".to_vec(),
        b"G\xffT /healthz HTTP/1.1\r\n\r\n".to_vec(),
    ];
    for _ in 0..60 {
        let n = 1 + rng.below(4096) as usize;
        inputs.push((0..n).map(|_| rng.next() as u8).collect());
    }
    // Random bytes after a valid request line and header.
    for _ in 0..20 {
        let mut b = b"POST /v1/quote HTTP/1.1\r\nHost: x\r\n".to_vec();
        b.extend((0..1 + rng.below(512)).map(|_| rng.next() as u8));
        inputs.push(b);
    }
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for input in &inputs {
        let st = garbage(d.addr, input, limit);
        if let Some(s) = st {
            assert!(
                s < 500,
                "{s} for {:?}",
                String::from_utf8_lossy(&input[..input.len().min(60)])
            );
        }
        *statuses
            .entry(st.map_or("closed".into(), |s| s.to_string()))
            .or_default() += 1;
    }
    still_answers(dir.path(), d.addr);
    println!(
        "bad input / garbage: {} inputs, outcomes {statuses:?}",
        inputs.len()
    );

    // Slow clients: 8 connections trickling a request one byte per 150 ms (7 s in all)
    // are cut off by the 1 s header timeout; so is an idle one.
    let req = b"GET /v1/platform HTTP/1.1\r\nHost: x\r\nUser-Agent: trickle\r\n\r\n";
    let t0 = Instant::now();
    let trickles: Vec<_> = (0..8)
        .map(|_| {
            let addr = d.addr;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let start = Instant::now();
                for b in req {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(150));
                }
                let mut rest = Vec::new();
                s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                let _ = std::io::Read::read_to_end(&mut s, &mut rest);
                (start.elapsed(), status_of(&rest))
            })
        })
        .collect();
    let mut idle = TcpStream::connect(d.addr).unwrap();
    let idle_closed = wait_closed(&mut idle, limit).expect("idle connection closed");
    for t in trickles {
        let (took, status) = t.join().unwrap();
        assert_ne!(status, Some(200), "a trickled request was served");
        assert!(took < Duration::from_secs(8), "trickled for {took:?}");
    }
    assert!(idle_closed >= Duration::from_millis(900), "{idle_closed:?}");
    // The daemon side: no connection left open but the scrape's own.
    wait_open_connections(d.addr, 1);
    println!(
        "bad input / slow clients: 8 trickling and 1 idle connection cut off by the header timeout ({:?} for the idle one, {:?} for the group)",
        idle_closed,
        t0.elapsed()
    );
    still_answers(dir.path(), d.addr);
    assert!(d.terminate().success());

    // More connections than the cap: 16 held (long header timeout), then 1000 more are
    // each closed at once, counted, and memory stays flat.
    let d = Daemon::start(
        dir.path(),
        &["--max-connections", "16", "--header-timeout-secs", "60"],
    );
    let pid = d.child.id();
    still_answers(dir.path(), d.addr);
    // Take the 16 slots with keep-alive connections that were served once (so each surely
    // holds a slot); one refused because an earlier connection was still closing is
    // retried.
    let rss0 = status_kib(pid, "VmRSS");
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while held.len() < 16 {
        assert!(Instant::now() < deadline, "cannot take 16 connection slots");
        if let Ok(mut c) = Conn::connect(d.addr)
            && let Ok(r) = c.request("GET", "/healthz", &[], b"")
        {
            assert_eq!(r.status, 200);
            held.push(c);
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let over = 1000;
    let t = Instant::now();
    for _ in 0..over {
        let mut s = TcpStream::connect(d.addr).unwrap();
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            wait_closed(&mut s, Duration::from_secs(10)).is_some(),
            "an over-cap connection was held"
        );
    }
    let refused_in = t.elapsed();
    let rss1 = status_kib(pid, "VmRSS");
    drop(held);
    // Slots free up once the daemon sees the held connections close.
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        if let Ok(mut conn) = Conn::connect(d.addr)
            && let Ok(r) = conn.request("GET", "/metrics", &[], b"")
        {
            break String::from_utf8(r.body).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never freed its slots"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let refused = metric(&m, "las_connections_refused_total").unwrap();
    assert!(refused >= over as f64, "{refused}");
    still_answers(dir.path(), d.addr);
    println!(
        "bad input / connection cap 16: {over} connections over the cap closed at once in {refused_in:?}; las_connections_refused_total {refused}; RSS {rss0} kB -> {rss1} kB"
    );
    assert!(
        rss1 < rss0 + 16 * 1024,
        "RSS grew from {rss0} kB to {rss1} kB"
    );
    assert!(d.terminate().success());
}

//! The hardware backend end to end on a machine without SGX: `GraminePlatform` on a
//! stand-in `/dev/attestation` folder, with REPORT keys from the real `hw/enclu.rs`
//! ENCLU[EGETKEY] executed under the test-only emulator (`src/hw/emulator.rs`, a signal
//! handler doing what the CPU does inside an enclave), served by the daemon library
//! (`las_server::serve`) on a loopback port and talked to over real sockets.
//!
//! Why in-process and not the `las`/`lasd` binary: the binary reads Gramine's files at the
//! fixed path `/dev/attestation` and executes the real instruction; pointing it at a
//! stand-in folder or loading the emulator into it would need a hook in the shipped binary
//! that lets whoever controls its environment replace the seal key. Everything after
//! `las_platform::open` is the same code the binary runs (`AppState`, `serve`, `app`).
//!
//! Run by `cargo test -p las-platform --features sgx` (scripts/test).
#![cfg(all(feature = "sgx", target_arch = "x86_64", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../src/hw/emulator.rs"]
mod emulator;
#[path = "../src/testing.rs"]
mod testing;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use las_core::egetkey::{self, RootSecret};
use las_core::evidence::{EvidenceKind, binding, decode_and_verify_evidence};
use las_core::quote::decode_and_verify_quote;
use las_core::sgx::TargetInfo;
use las_core::{Mode, PlatformIdentity};
use las_platform::Platform;
use las_platform::hw::{AttestationFs, Egetkey, GraminePlatform};
use las_server::{AppState, ServerConfig};
use testing::{AESM_QUOTE, CPUSVN, app_identity, app_report, las_identity, write_attestation_fs};

fn root() -> RootSecret {
    RootSecret::from_bytes([0x31; 32])
}

/// Gramine's files as the LAS enclave sees them, made with the same model the emulated
/// CPU uses.
fn stand_in(dir: &Path) {
    write_attestation_fs(dir, &root());
}

fn enter() -> emulator::Entered {
    emulator::enter(emulator::Enclave {
        root: root(),
        cpusvn: CPUSVN,
        identity: las_identity(),
    })
}

/// The daemon library serving `platform` on 127.0.0.1 (a 2-worker runtime, as on a
/// 2-core node) until dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Server {
    fn start(platform: GraminePlatform, config: ServerConfig) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let listener = rt
            .block_on(las_server::bind("127.0.0.1:0".parse().unwrap()))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(Box::new(platform), config);
        rt.spawn(las_server::serve(listener, state, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            rt: Some(rt),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(10));
        }
    }
}

/// One HTTP/1.1 exchange (Connection: close) with a bounded wait for the answer.
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8], wait: Duration) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: las\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: no answer within {wait:?}: {e}"));
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

/// The status line and headers of a GET.
fn raw_head(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: las\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

/// The `error` kind of an error body (`{"error":"<kind>","message":...}`).
fn kind(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .split("\"error\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn hw_backend_serves_under_emulated_enclu() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    let _cpu = enter();
    let before = emulator::executed();
    // Start-up as `las serve --mode hw` does it, self-test included.
    let p = GraminePlatform::open_with(AttestationFs::new(dir.path()), Arc::new(Egetkey)).unwrap();
    assert_eq!(
        emulator::executed(),
        before + 1,
        "the self-test executed EGETKEY"
    );
    let seal = egetkey::mrenclave_seal_key(&root(), &CPUSVN, &las_identity());
    let id = PlatformIdentity::from_seal_key(&seal).platform_id();
    assert_eq!(p.platform_id(), id);
    let srv = Server::start(p, ServerConfig::default());
    let addr = srv.addr;

    assert_eq!(http(addr, "GET", "/readyz", b"", WAIT).0, 200);
    let (st, body) = http(addr, "GET", "/v1/platform", b"", WAIT);
    assert_eq!(st, 200);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("\"mode\":\"hw\""), "{body}");
    assert!(body.contains(&id.to_string()), "{body}");

    // Target info is Gramine's my_target_info.
    let (st, ti) = http(addr, "GET", "/v1/target-info", b"", WAIT);
    assert_eq!(st, 200);
    assert_eq!(ti, las_identity().target_info().to_bytes().to_vec());
    let target = TargetInfo::try_from_slice(&ti).unwrap();

    // An application REPORT for that target, made by the (modelled) CPU: checked with the
    // REPORT key from ENCLU[EGETKEY] and quoted.
    let r = app_report(&root(), &target, &[0x11; 64]);
    let n = emulator::executed();
    let (st, q) = http(addr, "POST", "/v1/quote", &r.to_bytes(), WAIT);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&q));
    assert_eq!(
        emulator::executed(),
        n + 1,
        "the REPORT check executed EGETKEY"
    );
    let q = decode_and_verify_quote(&q).unwrap().claims;
    assert_eq!(q.mode, Mode::Hw);
    assert_eq!(q.platform_id, id);
    assert_eq!(q.report_body.mrenclave, [0xaa; 32]);
    assert_eq!(q.report_body.report_data, [0x11; 64]);

    // Forged, for another enclave, from another CPU: refused.
    let mut forged = r.to_bytes();
    forged[431] ^= 1;
    let other_target = app_report(&root(), &app_identity().target_info(), &[0; 64]);
    let other_cpu = app_report(&RootSecret::from_bytes([2; 32]), &target, &[0; 64]);
    for bad in [
        forged.to_vec(),
        other_target.to_bytes().to_vec(),
        other_cpu.to_bytes().to_vec(),
    ] {
        let (st, body) = http(addr, "POST", "/v1/quote", &bad, WAIT);
        assert_eq!((st, kind(&body).as_str()), (403, "invalid-report-mac"));
    }

    // Identity: the binding goes to user_report_data, Gramine's quote comes back signed.
    let nonce = [0x42u8; 32];
    let (st, ev) = http(
        addr,
        "GET",
        &format!("/v1/identity?nonce={}", hex::encode(nonce)),
        b"",
        WAIT,
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&ev));
    let c = decode_and_verify_evidence(&ev).unwrap();
    assert_eq!(c.platform_id, id);
    assert_eq!(c.mode, Mode::Hw);
    assert_eq!(c.las_mrenclave, [0x4c; 32]);
    assert_eq!(
        c.kind,
        EvidenceKind::SgxDcap {
            quote: AESM_QUOTE.to_vec()
        }
    );
    assert_eq!(
        std::fs::read(dir.path().join("user_report_data")).unwrap(),
        binding(&id, &nonce).to_vec()
    );
}

#[test]
fn slow_quotes_do_not_stall_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    // `quote` becomes a FIFO: a read blocks until this test writes, as a read of Gramine's
    // `quote` blocks while the host's AESM works. Holding it open read-write keeps readers
    // blocked in read() (not in open()) until we write and close.
    let fifo = dir.path().join("quote");
    std::fs::remove_file(&fifo).unwrap();
    let made = std::process::Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut aesm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();

    let _cpu = enter();
    let p = GraminePlatform::open_with(AttestationFs::new(dir.path()), Arc::new(Egetkey)).unwrap();
    let id = p.platform_id();
    let timeout = Duration::from_secs(2);
    let srv = Server::start(
        p,
        ServerConfig {
            identity_concurrency: 2,
            identity_timeout: timeout,
            ..ServerConfig::default()
        },
    );
    let addr = srv.addr;

    // Three times as many identity requests as the runtime has workers.
    let nonce = hex::encode([0x42u8; 32]);
    let waiting: Vec<_> = (0..6)
        .map(|_| {
            let path = format!("/v1/identity?nonce={nonce}");
            std::thread::spawn(move || {
                let t = Instant::now();
                let r = http(addr, "GET", &path, b"", Duration::from_secs(30));
                (r, t.elapsed())
            })
        })
        .collect();
    // Wait until one of them is inside the quote read (it wrote user_report_data first).
    let deadline = Instant::now() + WAIT;
    while std::fs::read(dir.path().join("user_report_data"))
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "no identity request reached the quote"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // Meanwhile the probes and quotes answer.
    let target = las_identity().target_info();
    let r = app_report(&root(), &target, &[0x11; 64]);
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(
            http(addr, "GET", "/readyz", b"", Duration::from_secs(5)).0,
            200
        );
        let (st, q) = http(
            addr,
            "POST",
            "/v1/quote",
            &r.to_bytes(),
            Duration::from_secs(5),
        );
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&q));
        assert_eq!(
            http(addr, "GET", "/healthz", b"", Duration::from_secs(5)).0,
            200
        );
        slowest = slowest.max(t.elapsed());
    }
    println!("readyz + quote + healthz while identity waits: slowest round {slowest:?}");

    // The identity requests wait for the slow quote, then get a stable 503.
    for h in waiting {
        let ((st, body), took) = h.join().unwrap();
        assert_eq!((st, kind(&body).as_str()), (503, "identity-timeout"));
        assert!(took >= timeout, "answered after {took:?}");
    }
    // Both slots are still held by the stalled reads: a new request also times out, and
    // is told when to retry.
    let path = format!("/v1/identity?nonce={nonce}");
    let (st, body) = http(addr, "GET", &path, b"", WAIT);
    assert_eq!((st, kind(&body).as_str()), (503, "identity-timeout"));
    let raw = raw_head(addr, &path);
    assert!(raw.to_ascii_lowercase().contains("retry-after: 1"), "{raw}");

    // The AESM answers: the stalled reader gets this quote, later reads a regular file.
    std::fs::write(dir.path().join("quote.new"), AESM_QUOTE).unwrap();
    std::fs::rename(dir.path().join("quote.new"), &fifo).unwrap();
    aesm.write_all(AESM_QUOTE).unwrap();
    drop(aesm);
    let deadline = Instant::now() + WAIT;
    loop {
        let (st, ev) = http(addr, "GET", &path, b"", WAIT);
        if st == 200 {
            assert_eq!(decode_and_verify_evidence(&ev).unwrap().platform_id, id);
            break;
        }
        assert_eq!((st, kind(&ev).as_str()), (503, "identity-timeout"));
        assert!(Instant::now() < deadline, "identity did not recover");
    }
}

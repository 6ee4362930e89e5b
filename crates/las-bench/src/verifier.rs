//! `las-bench verifier`: attestations per second of ONE verification-service replica on
//! one core (`taskset -c`, `TOKIO_WORKER_THREADS=1`) with the LAS evidence cached,
//! against the in-process policy verification rate (`verify_quote_with` with the same
//! cached evidence, on this process's core); then an open loop at half the measured
//! maximum for the latency percentiles.
//!
//! ```text
//!  this process (client core)                         service core
//!  prepare: POST /v1/nonce, quote bound to it (LAS) ─┐
//!  closed loop: T keep-alive connections ───────────POST /v1/attest──► taskset -c N las verifier serve
//!  open loop at max/2: latency from the scheduled send time (no coordinated omission)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use hdrhistogram::Histogram;
use las_core::egetkey::EnclaveIdentity;
use las_core::sgx::{Attributes, flags};
use las_testkit::http::Client;

use crate::daemon::Launch;

/// What one run measured.
#[derive(Debug)]
pub struct Figures {
    /// In-process `verify_quote_with` per second (one core), given the evidence bytes
    /// (decoded and signature-checked in every call).
    pub inproc_rate: f64,
    /// The same given the evidence as the service's cache holds it
    /// (`VerifyOptions::verified_evidence`: age, nonce and policy checked, not decoded).
    pub inproc_kept_rate: f64,
    /// In-process ES256 signatures of an EAR claim set per second (one core): the largest
    /// piece of work the service adds to the verification.
    pub sign_rate: f64,
    /// The attestations as `las attest` sends them (quote and identity evidence).
    pub plain: ServiceFigures,
    /// The same with a CSR in every request (`las attest --key-out/--csr`): each answer
    /// carries a workload certificate chain.
    pub cert: ServiceFigures,
    /// Whether this process and the service ran in a session of their own at nice -20
    /// (and under SCHED_FIFO during the open loops), as `las-bench load` does.
    pub prioritized: bool,
}

/// The service's figures for one kind of request.
#[derive(Debug)]
pub struct ServiceFigures {
    /// Closed-loop attestations per second of the service.
    pub max_rate: f64,
    /// Requests the closed loop completed.
    pub max_count: usize,
    /// Open-loop target rate (half of `max_rate`).
    pub half_target: f64,
    /// Achieved open-loop rate.
    pub half_rate: f64,
    /// Open-loop latency percentiles (ms): p50, p99, p99.9, max.
    pub half_ms: [f64; 4],
    /// Answers that were not 200 with `warning` (and a certificate chain, with a CSR),
    /// over both loops.
    pub errors: usize,
}

/// A running `las verifier serve`; killed when dropped.
pub(crate) struct Service {
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// One keep-alive connection of the test kit's client (hyper), for the service's JSON API.
fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
    Ok(Client::connect(addr)?.with_deadline(Duration::from_secs(30)))
}

/// `POST path` with a JSON body on `c`: (status, body).
fn post_json(c: &mut Client, path: &str, body: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let r = c.request(
        "POST",
        path,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )?;
    Ok((r.status, r.body))
}

const MRENCLAVE: [u8; 32] = [0xaa; 32];
/// The application's own report data (bound with the nonce).
pub(crate) const APP_DATA: [u8; 32] = [0x5a; 32];
/// The policy's service the benchmark's enclave attests as.
pub(crate) const SERVICE: &str = "app";

struct Prepared {
    /// The JSON body of `POST /v1/attest`.
    body: String,
    quote: Vec<u8>,
    rd: [u8; 64],
}

/// A LAS, a verification service whose policy accepts the benchmark's enclave (with a
/// `warning`: simulation is tolerated), and that enclave.
pub(crate) struct Setup {
    _dir: tempfile::TempDir,
    las_state: PathBuf,
    pub(crate) las: crate::daemon::Daemon,
    pub(crate) svc: Service,
    pub(crate) enclave: las_client::SimEnclave,
    policy: las_verifier::Policy,
}

/// Starts `las serve` (pinned to `las_cpu`) and `las verifier serve` (pinned to `cpu`,
/// one tokio worker) from the `las` executable `las`.
pub(crate) fn setup(
    las: &Path,
    las_cpu: Option<usize>,
    cpu: Option<usize>,
) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let las_state = dir.path().join("las");
    std::fs::create_dir(&las_state)?;
    let (d, _) = Launch {
        las: las.to_path_buf(),
        state_dir: las_state.clone(),
        cpu: las_cpu,
        extra: Vec::new(),
    }
    .start()?;
    let platform = connect(d.addr)?.request("GET", las_core::api::PLATFORM, &[], b"")?;
    let pid = serde_json::from_slice::<las_core::api::PlatformInfo>(&platform.body)
        .context("GET /v1/platform")?
        .platform_id;
    let policy_text = format!(
        "version: \"0.3\"\nname: bench\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{}\"]\n    platforms: [\"{pid}\"]\n",
        hex::encode(MRENCLAVE)
    );
    let policy_path = dir.path().join("policy.yaml");
    std::fs::write(&policy_path, &policy_text)?;
    let policy = las_verifier::Policy::from_yaml(policy_text.as_bytes())?;
    let addr = free_port()?;
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if let Some(cpu) = cpu {
        argv.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
    }
    argv.push(las.as_os_str().to_owned());
    let mut cmd = Command::new(argv.first().context("argv")?);
    cmd.args(argv.get(1..).unwrap_or_default())
        .args(["verifier", "serve", "--nonce-lifetime", "1h", "--listen"])
        .arg(addr.to_string())
        .arg("--policy")
        .arg(&policy_path)
        .arg("--state-dir")
        .arg(dir.path().join("verifier"))
        .env("TOKIO_WORKER_THREADS", "1")
        .env("LAS_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let svc = Service {
        child: cmd.spawn().context("cannot start las verifier serve")?,
        addr,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = Client::connect(addr)
            && let Ok(r) = c.request("GET", "/healthz", &[], b"")
            && r.status == 200
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("las verifier serve did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let enclave = open_enclave(&las_state)?;
    Ok(Setup {
        _dir: dir,
        las_state,
        las: d,
        svc,
        enclave,
        policy,
    })
}

/// The application enclave the policy lists, on the simulated platform of `las_state`.
fn open_enclave(las_state: &Path) -> anyhow::Result<las_client::SimEnclave> {
    let identity = EnclaveIdentity {
        mrenclave: MRENCLAVE,
        attributes: Attributes {
            flags: flags::INIT | flags::MODE64BIT,
            xfrm: 3,
        },
        ..EnclaveIdentity::default()
    };
    Ok(las_client::SimEnclave::open(las_state, None, identity)?)
}

/// Another handle on the setup's enclave (the same identity and platform).
pub(crate) fn enclave(s: &Setup) -> anyhow::Result<las_client::SimEnclave> {
    open_enclave(&s.las_state)
}

fn prepare(s: &Setup, n: usize, with_csr: bool) -> anyhow::Result<Vec<Prepared>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = las_client::LasClient::new(
        las_client::LasAddr::parse(&s.las.addr.to_string())?,
        Duration::from_secs(10),
    );
    let mut conn = connect(s.svc.addr)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (st, body) = post_json(&mut conn, "/v1/nonce", "")?;
        anyhow::ensure!(st == 200, "POST /v1/nonce: {st}");
        let nonce = serde_json::from_slice::<las_core::api::verifier::NonceAnswer>(&body)
            .context("POST /v1/nonce: not a nonce answer")?
            .nonce;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&nonce)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        // With a CSR (as `las attest --key-out`): a new key per request, whose SPKI hash
        // leads the application data.
        let (app_data, csr) = if with_csr {
            let (_pem, der, key) = las_verifier_service::ca::new_workload_key()?;
            let mut d = key.spki_sha256().to_vec();
            d.extend_from_slice(&APP_DATA);
            (d, Some(b64.encode(der)))
        } else {
            (APP_DATA.to_vec(), None)
        };
        let rd = las_verifier_service::bound_report_data(&raw, &app_data);
        let q = rt.block_on(las_client::attest(&client, &s.enclave, &rd))?;
        // The enclave's side posts its LAS's identity evidence for the nonce (as `las
        // attest` does): the service connects to no LAS.
        let evidence = rt.block_on(client.identity(&raw))?;
        let body = serde_json::to_string(&las_core::api::verifier::AttestRequest {
            service: "app".into(),
            nonce,
            quote: b64.encode(&q.bytes),
            report_data: hex::encode(&app_data),
            evidence: Some(b64.encode(evidence)),
            csr,
            ..Default::default()
        })?;
        out.push(Prepared {
            body,
            quote: q.bytes,
            rd,
        });
    }
    Ok(out)
}

fn ok_answer(status: u16, body: &[u8], with_csr: bool) -> bool {
    const WANT: &[u8] = b"\"status\":\"warning\"";
    const CHAIN: &[u8] = b"\"certificate_chain\":\"-----BEGIN CERTIFICATE";
    let has = |want: &[u8]| body.windows(want.len()).any(|w| w == want);
    status == 200 && has(WANT) && has(CHAIN) == with_csr
}

/// How a run is made.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The service's core (`None`: not pinned).
    pub cpu: Option<usize>,
    /// Closed-loop connections (threads).
    pub threads: usize,
    /// Seconds of each loop.
    pub duration: f64,
    /// Seconds of each in-process baseline.
    pub micro_secs: f64,
    /// Pre-made requests per loop at most.
    pub prepare_max: usize,
    /// SCHED_FIFO priority of the service and this process during the open loops
    /// (`None`: normal policy).
    pub realtime: Option<u8>,
    /// Whether this process runs in a session of its own at nice -20 (reported only).
    pub prioritized: bool,
}

/// Runs the comparison. `prepare_max` bounds the pre-made quotes per phase.
pub fn run(las: &Path, set: Settings) -> anyhow::Result<Figures> {
    let s = setup(las, None, set.cpu)?;
    eprintln!(
        "las-bench: verifier: preparing {} nonces and quotes",
        set.prepare_max
    );
    let items = prepare(&s, set.prepare_max, false)?;
    // First contact: the service verifies and caches the LAS evidence.
    let mut c = connect(s.svc.addr)?;
    let first = items.first().context("no items")?;
    let (st, body) = post_json(&mut c, "/v1/attest", &first.body)?;
    anyhow::ensure!(
        ok_answer(st, &body, false),
        "first attestation failed: {st} {}",
        String::from_utf8_lossy(&body)
    );

    // In-process baseline: `verify_quote_with` given identity evidence (decoded and its
    // signature checked in every call, as any caller of the library without a cache).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = las_client::LasClient::new(
        las_client::LasAddr::parse(&s.las.addr.to_string())?,
        Duration::from_secs(10),
    );
    let ev_nonce = [7u8; 32];
    let evidence = rt.block_on(client.identity(&ev_nonce))?;
    let collateral = las_verifier::dcap::CollateralSet::new();
    let opts = las_verifier::VerifyOptions {
        dcap_collateral: Some(&collateral),
        ..las_verifier::VerifyOptions::default()
    };
    // In-process verification of the prepared quotes for `micro_secs`: quotes per second.
    let rate = |opts: &las_verifier::VerifyOptions| -> anyhow::Result<f64> {
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed().as_secs_f64() < set.micro_secs {
            let p = items.get(n % items.len()).context("item")?;
            let req = las_verifier::VerifyRequest {
                service: Some("app"),
                expected_report_data: Some(&p.rd),
                las_evidence: Some(las_verifier::LasEvidence {
                    token: &evidence,
                    expected_nonce: Some(&ev_nonce),
                }),
                now: las_platform::unix_now(),
            };
            let v = las_verifier::verify_quote_with(&s.policy, &p.quote, &req, opts)?;
            anyhow::ensure!(
                v.accepted(),
                "in-process verification rejected: {:?}",
                v.rejections
            );
            n += 1;
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    };
    let inproc_rate = rate(&opts)?;

    // The same with the evidence kept as the service keeps it.
    let kept = las_core::evidence::VerifiedEvidence::verify(evidence.clone())?;
    let kept_opts = las_verifier::VerifyOptions {
        verified_evidence: Some(&kept),
        ..opts
    };
    let inproc_kept_rate = rate(&kept_opts)?;

    // The EAR signature alone, on a claim set of the size the service signs.
    let signer = las_verifier_service::EarSigner::new(
        las_verifier_service::keys::StateKeys::load_or_create(&s._dir.path().join("verifier"))?
            .signing,
    );
    let claims = serde_json::json!({"eat_profile": las_verifier_service::EAR_PROFILE, "pad": "x".repeat(1400)});
    let start = Instant::now();
    let mut signed = 0usize;
    while start.elapsed().as_secs_f64() < set.micro_secs {
        std::hint::black_box(signer.sign(&claims));
        signed += 1;
    }
    let sign_rate = signed as f64 / start.elapsed().as_secs_f64();

    let plain = service_loops(&s, set, items, false)?;
    eprintln!(
        "las-bench: verifier: with a CSR per request: preparing {}",
        set.prepare_max
    );
    let items = prepare(&s, set.prepare_max, true)?;
    let cert = service_loops(&s, set, items, true)?;
    let _ = &s.las_state;
    Ok(Figures {
        inproc_rate,
        inproc_kept_rate,
        sign_rate,
        plain,
        cert,
        prioritized: set.prioritized,
    })
}

/// The closed loop over `items` (the first is used already), then an open loop at half
/// its rate over fresh requests of the same kind.
fn service_loops(
    s: &Setup,
    set: Settings,
    items: Vec<Prepared>,
    with_csr: bool,
) -> anyhow::Result<ServiceFigures> {
    let items = Arc::new(items);
    let threads = set.threads.max(1);
    let next = Arc::new(AtomicUsize::new(1));
    let errors = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(set.duration);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (items, next, errors, addr) =
                (items.clone(), next.clone(), errors.clone(), s.svc.addr);
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let mut c = connect(addr)?;
                let mut done = 0;
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = items.get(i) else { break };
                    let (st, body) = post_json(&mut c, "/v1/attest", &p.body)?;
                    if !ok_answer(st, &body, with_csr) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut max_count = 0;
    for h in handles {
        max_count += h
            .join()
            .map_err(|_| anyhow::anyhow!("load thread panicked"))??;
    }
    let max_rate = max_count as f64 / start.elapsed().as_secs_f64();
    if max_count + 1 >= items.len() {
        eprintln!(
            "las-bench: verifier: all {} prepared quotes used before the duration ended; raise --prepare",
            items.len()
        );
    }

    // Open loop at half the maximum.
    let half_target = max_rate / 2.0;
    let need = ((half_target * set.duration) as usize).clamp(1, set.prepare_max);
    eprintln!("las-bench: verifier: preparing {need} more for the open loop");
    let items = Arc::new(prepare(s, need, with_csr)?);
    let k = threads.clamp(1, 8);
    if set.realtime.is_some() {
        crate::daemon::set_realtime(s.svc.child.id(), set.realtime)?;
        crate::daemon::set_realtime(std::process::id(), set.realtime)?;
    }
    let t0 = Instant::now() + Duration::from_millis(50);
    let handles: Vec<_> = (0..k)
        .map(|t| {
            let (items, errors, addr) = (items.clone(), errors.clone(), s.svc.addr);
            std::thread::spawn(move || -> anyhow::Result<Histogram<u64>> {
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                let mut c = connect(addr)?;
                let mut j = t;
                while let Some(p) = items.get(j) {
                    let at = t0 + Duration::from_secs_f64(j as f64 / half_target);
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    let (st, body) = post_json(&mut c, "/v1/attest", &p.body)?;
                    if !ok_answer(st, &body, with_csr) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    h.record(at.elapsed().as_micros().max(1) as u64)?;
                    j += k;
                }
                Ok(h)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut joined = Ok(());
    for h in handles {
        match h.join() {
            Ok(Ok(h)) => hist.add(h)?,
            Ok(Err(e)) => joined = Err(e),
            Err(_) => joined = Err(anyhow::anyhow!("load thread panicked")),
        }
    }
    let half_rate = items.len() as f64 / t0.elapsed().as_secs_f64();
    if set.realtime.is_some() {
        crate::daemon::set_realtime(s.svc.child.id(), None)?;
        crate::daemon::set_realtime(std::process::id(), None)?;
    }
    joined?;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(ServiceFigures {
        max_rate,
        max_count,
        half_target,
        half_rate,
        half_ms: [ms(0.5), ms(0.99), ms(0.999), hist.max() as f64 / 1000.0],
        errors: errors.load(Ordering::Relaxed),
    })
}

/// The service's closed-loop rate over the in-process rate.
fn ratio(f: &Figures, r: &ServiceFigures) -> f64 {
    r.max_rate / f.inproc_rate
}

/// Prints the figures as a Markdown table with the targets.
pub fn print(f: &Figures) {
    println!("\n## Verification service (one replica, one core, LAS evidence cached)\n");
    println!(
        "Priority: {}\n",
        if f.prioritized {
            "this process and the service in a session of their own at nice -20, SCHED_FIFO during the open loops"
        } else {
            "default (not root, or --no-priority)"
        }
    );
    println!("| Figure | Value | Target |");
    println!("| --- | --- | --- |");
    println!(
        "| in-process `verify_quote_with` (evidence given, decoded and checked in each call) | {:.0}/s | |",
        f.inproc_rate
    );
    println!(
        "| in-process `verify_quote_with`, evidence kept as the service keeps it (not decoded again) | {:.0}/s | |",
        f.inproc_kept_rate
    );
    println!(
        "| in-process ES256 signature of a ~1.5 KiB EAR | {:.0}/s ({:.0} µs) | |",
        f.sign_rate,
        1e6 / f.sign_rate
    );
    for (name, r) in [
        ("quote and evidence (`las attest`)", &f.plain),
        (
            "with a CSR per request (`las attest --key-out`): certificate issued",
            &f.cert,
        ),
    ] {
        let ratio = ratio(f, r);
        println!(
            "| service, closed loop, {name} | {:.0}/s ({} requests) | |",
            r.max_rate, r.max_count
        );
        println!(
            "| ratio service / in-process ({name}) | {ratio:.2} | >= 0.70 {} |",
            if ratio >= 0.7 { "met" } else { "NOT met" }
        );
        println!(
            "| open loop at {:.0}/s (achieved {:.0}/s), {name}: p50 / p99 / p99.9 / max | {:.2} / {:.2} / {:.2} / {:.2} ms | p99 <= 2 ms {} |",
            r.half_target,
            r.half_rate,
            r.half_ms[0],
            r.half_ms[1],
            r.half_ms[2],
            r.half_ms[3],
            if r.half_ms[1] <= 2.0 {
                "met"
            } else {
                "NOT met"
            }
        );
        println!(
            "| ratio service / in-process with kept evidence ({name}), comparison | {:.2} | |",
            r.max_rate / f.inproc_kept_rate
        );
        println!("| errors ({name}) | {} | 0 |", r.errors);
    }
}

fn service_json(f: &Figures, r: &ServiceFigures) -> serde_json::Value {
    serde_json::json!({
        "service_per_s": r.max_rate,
        "in_process_per_s": f.inproc_rate,
        "ratio": ratio(f, r),
        "in_process_kept_per_s": f.inproc_kept_rate,
        "ratio_to_kept": r.max_rate / f.inproc_kept_rate,
        "requests": r.max_count,
        "half_rate_target_per_s": r.half_target,
        "half_rate_per_s": r.half_rate,
        "p50_ms": r.half_ms[0],
        "p99_ms": r.half_ms[1],
        "p999_ms": r.half_ms[2],
        "max_ms": r.half_ms[3],
        "errors": r.errors,
    })
}

/// The figures as one JSON object: the plain attestations at the top level
/// (`service_per_s`, `in_process_per_s`, `ratio`, `p50_ms`, `p99_ms` of the open loop at
/// half the maximum, `errors`), the same keys for requests with a CSR under
/// `with_certificate`, the targets, and how it ran.
pub fn json(f: &Figures, command: Vec<String>) -> serde_json::Value {
    let mut v = service_json(f, &f.plain);
    if let Some(m) = v.as_object_mut() {
        m.insert("command".into(), serde_json::json!(command));
        m.insert("ear_sign_per_s".into(), serde_json::json!(f.sign_rate));
        m.insert("with_certificate".into(), service_json(f, &f.cert));
        m.insert(
            "targets".into(),
            serde_json::json!([
                {"key": "ratio", "target": ">= 0.7", "met": ratio(f, &f.plain) >= 0.7},
                {"key": "p99_ms", "target": "<= 2", "met": f.plain.half_ms[1] <= 2.0},
            ]),
        );
        m.insert("prioritized".into(), serde_json::json!(f.prioritized));
    }
    v
}

/// Failed answers over every loop.
pub fn errors(f: &Figures) -> usize {
    f.plain.errors + f.cert.errors
}

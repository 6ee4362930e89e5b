//! In-process baselines on one thread: what one core can do without HTTP.
//!
//! The harness: a warm-up, then batches sized to about 10 ms each until the time budget
//! is spent; the figure is the median batch (robust against the other tenants of a shared
//! machine stealing the core for a moment).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use ed25519_dalek::{Signature, Signer, SigningKey};
use las_core::egetkey::EnclaveIdentity;
use las_core::quote::{QuoteClaims, decode_and_verify_quote, encode_quote};
use las_core::sgx::{Report, TargetInfo};
use las_platform::sim::{SimCpu, SimPlatform};
use las_platform::{ModeRequest, Platform, PlatformConfig};
use las_verifier::policy::Policy;
use las_verifier::verify::{VerifyOptions, VerifyRequest, verify_quote_with};

use crate::dcap::DcapSample;

/// One measured operation.
#[derive(Debug, Clone)]
pub struct Measured {
    /// What was measured.
    pub name: String,
    /// Median time per operation.
    pub ns_per_op: f64,
}

impl Measured {
    /// Operations per second.
    pub fn per_sec(&self) -> f64 {
        1e9 / self.ns_per_op
    }
}

/// Times `f` for about `budget` (plus a tenth of it as warm-up).
pub fn time<F: FnMut()>(name: &str, budget: Duration, mut f: F) -> Measured {
    let warm_end = Instant::now() + budget / 10;
    let mut per_op = Duration::ZERO;
    let mut n = 0u32;
    while Instant::now() < warm_end || n == 0 {
        let t = Instant::now();
        f();
        per_op = t.elapsed();
        n += 1;
    }
    let target = Duration::from_millis(10);
    let batch = (target.as_nanos() / per_op.as_nanos().max(1)).clamp(1, 1_000_000) as u64;
    let mut samples = Vec::new();
    let end = Instant::now() + budget;
    while Instant::now() < end || samples.len() < 3 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    samples.sort_by(f64::total_cmp);
    Measured {
        name: name.to_owned(),
        // At least three samples: the loop above runs until it has them.
        ns_per_op: samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN),
    }
}

/// The in-process figures.
#[derive(Debug, Clone)]
pub struct Micro {
    /// Report MAC check (report-key derivation + AES-CMAC).
    pub mac_check: Measured,
    /// Quote issue: MAC check + claims + CBOR/COSE + Ed25519 sign (the handler's work).
    pub issue: Measured,
    /// Raw Ed25519 sign of a message of the signed size.
    pub ed_sign: Measured,
    /// Quote decode + signature verification (las-core).
    pub decode_verify: Measured,
    /// Full verification against a policy (las-verifier).
    pub policy_verify: Measured,
    /// Raw Ed25519 verify_strict of a message of the signed size.
    pub ed_verify: Measured,
    /// DCAP quote verification (dcap-qvl).
    pub dcap_verify: Measured,
    /// Size of the quote, bytes.
    pub quote_len: usize,
    /// Size of the message Ed25519 signs for a quote (the COSE Sig_structure), bytes.
    pub signed_len: usize,
    /// Size of the DCAP quote, bytes.
    pub dcap_quote_len: usize,
    /// The DCAP quote's TCB status (proves the verification ran to the end).
    pub dcap_status: String,
}

/// A simulated platform in `dir` and a valid report for it.
pub struct Fixture {
    /// The LAS side.
    pub platform: SimPlatform,
    /// A report of an application enclave on that platform, targeted at the LAS.
    pub report: Report,
}

impl Fixture {
    /// A fresh platform in `dir` with a fixed LAS measurement.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        let platform = SimPlatform::open(&PlatformConfig {
            mode: ModeRequest::Sim,
            state_dir: dir.to_path_buf(),
            sim_cpusvn: None,
            sim_las_mrenclave: Some([0x5a; 32]),
            create_secret: true,
        })
        .context("cannot open the in-process simulated platform")?;
        let cpu = SimCpu::open(dir, None, false)?;
        let report = cpu.ereport(&app_enclave(), &platform.target_info(), &[7; 64])?;
        Ok(Self { platform, report })
    }
}

/// The simulated application enclave whose reports the benchmark sends.
pub fn app_enclave() -> EnclaveIdentity {
    EnclaveIdentity {
        mrenclave: [0x11; 32],
        mrsigner: [0x22; 32],
        isvprodid: 1,
        isvsvn: 3,
        ..EnclaveIdentity::default()
    }
}

/// `n` valid reports for the LAS with target info `ti` on the platform of `state_dir`,
/// each with its own report data and KEYID.
pub fn report_pool(state_dir: &Path, ti: &TargetInfo, n: usize) -> anyhow::Result<Vec<Report>> {
    let cpu = SimCpu::open(state_dir, None, false)?;
    let me = app_enclave();
    (0..n)
        .map(|i| {
            let mut rd = [0u8; 64];
            rd[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Ok(cpu.ereport(&me, ti, &rd)?)
        })
        .collect()
}

/// What the daemon's quote handler does for a binary request (crates/las-server api.rs).
fn issue(p: &SimPlatform, report: &[u8]) -> anyhow::Result<Vec<u8>> {
    let report = p.check_report(report)?;
    let claims = QuoteClaims {
        mode: p.mode(),
        platform_id: p.platform_id(),
        las_version: env!("CARGO_PKG_VERSION").to_owned(),
        las_mrenclave: p.las_enclave().mrenclave,
        issued_at: las_platform::unix_now(),
        report_body: report.body,
    };
    Ok(encode_quote(p.identity(), &claims)?)
}

/// The in-process quote issue rate alone (`las-bench load`: the HTTP limit needs it).
pub fn issue_rate(dir: &Path, budget: Duration) -> anyhow::Result<Measured> {
    let fx = Fixture::new(dir)?;
    let p = &fx.platform;
    let report = fx.report.to_bytes();
    issue(p, &report).context("the in-process LAS refused its own report")?;
    Ok(time(ISSUE, budget, || {
        black_box(issue(p, black_box(&report)).is_ok());
    }))
}

/// The name of the quote issue baseline.
const ISSUE: &str = "quote issue (MAC check + CBOR/COSE + Ed25519 sign)";

/// A policy that accepts the benchmark's quotes: the platform key pinned, simulation
/// tolerated, the application's measurement listed, the platform allowed.
pub fn policy_for(platform_id: &str) -> anyhow::Result<Policy> {
    let yaml = format!(
        r#"version: "0.3"
security:
  attestation:
    mode: hardware
    tolerate: [simulation]
    trusted_scone_qe_pubkeys: [{platform_id}]
services:
  - name: app
    attestation:
      mrenclave: ["{mre}"]
      signer: {{mrsigner: "{mrs}", isvprodid: 1, isvsvn_min: 2}}
    platforms: [{platform_id}]
"#,
        mre = hex::encode([0x11; 32]),
        mrs = hex::encode([0x22; 32]),
    );
    Ok(Policy::from_yaml(yaml.as_bytes())?)
}

/// Runs every in-process baseline, each for about `budget`.
pub fn run(dir: &Path, dcap: &DcapSample, budget: Duration) -> anyhow::Result<Micro> {
    let fx = Fixture::new(dir)?;
    let p = &fx.platform;
    let report = fx.report.to_bytes();
    let quote = issue(p, &report).context("the in-process LAS refused its own report")?;
    let verified = decode_and_verify_quote(&quote).context("our own quote does not verify")?;
    anyhow::ensure!(verified.claims.report_body == fx.report.body);
    let policy = policy_for(&p.platform_id().to_string())?;
    let now = las_platform::unix_now();
    let req = VerifyRequest {
        service: Some("app"),
        expected_report_data: Some(&[7; 64]),
        las_evidence: None,
        now,
    };
    let verdict = verify_quote_with(&policy, &quote, &req, &VerifyOptions::default())?;
    anyhow::ensure!(
        verdict.accepted(),
        "the benchmark policy rejects the quote: {:?}",
        verdict.rejections
    );

    // Ed25519 signs the COSE Sig_structure: its exact bytes, from the quote's own decoder.
    let msg = las_core::quote::decode_quote(&quote)
        .context("our own quote does not decode")?
        .signed_data()
        .context("our own quote has no signed data")?
        .message;
    let signed_len = msg.len();
    let key = SigningKey::from_bytes(&[9; 32]);
    let vk = key.verifying_key();
    let sig: Signature = key.sign(&msg);

    let dcap_status = dcap.verify_once()?;

    let mac_check = time(
        "report MAC check (HKDF report key + AES-CMAC)",
        budget,
        || {
            black_box(p.check_report(black_box(&report)).is_ok());
        },
    );
    let issue_m = time(ISSUE, budget, || {
        black_box(issue(p, black_box(&report)).is_ok());
    });
    let ed_sign = time(
        &format!("raw Ed25519 sign ({signed_len} B)"),
        budget,
        || {
            black_box(key.sign(black_box(&msg)));
        },
    );
    let decode_verify = time(
        "quote decode + verify (las-core decode_and_verify_quote)",
        budget,
        || {
            black_box(decode_and_verify_quote(black_box(&quote)).is_ok());
        },
    );
    let policy_verify = time(
        "quote verify against a policy (las-verifier verify_quote_with)",
        budget,
        || {
            black_box(
                verify_quote_with(&policy, &quote, black_box(&req), &VerifyOptions::default())
                    .is_ok(),
            );
        },
    );
    let ed_verify = time(
        &format!("raw Ed25519 verify_strict ({signed_len} B)"),
        budget,
        || {
            black_box(vk.verify_strict(black_box(&msg), &sig).is_ok());
        },
    );
    let dcap_verify = time(
        &format!(
            "DCAP quote verify (dcap-qvl {}, SGX sample quote)",
            crate::dcap::DCAP_QVL_VERSION
        ),
        budget,
        || {
            black_box(dcap.verify().is_ok());
        },
    );
    Ok(Micro {
        mac_check,
        issue: issue_m,
        ed_sign,
        decode_verify,
        policy_verify,
        ed_verify,
        dcap_verify,
        quote_len: quote.len(),
        signed_len,
        dcap_quote_len: dcap.quote_len(),
        dcap_status,
    })
}

//! Fixtures: the application enclave the suites attest, valid REPORTs made the way an
//! application on the simulated platform makes them, the standard quote claims, checks
//! that a daemon still answers, randomness, and /metrics readings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;

use las_core::egetkey::EnclaveIdentity;
use las_core::quote::QuoteClaims;
use las_core::sgx::{Attributes, ReportBody, TargetInfo, flags};
use las_core::{Mode, PlatformIdentity};
use las_platform::sim::SimCpu;

use crate::http::{Resp, get, http};

/// The application enclave the suites attest (a release enclave).
pub fn app_enclave() -> EnclaveIdentity {
    las_platform::testing::release_enclave(0xaa, 0xbb, 3, 5)
}

/// MRENCLAVE of [`app_enclave`], hex.
pub const APP_MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// MRSIGNER of [`app_enclave`], hex.
pub const APP_MRSIGNER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// The options of `las quote` and `las attest` that have [`app_enclave`] (built as
/// `mrenclave`, hex) ask the LAS at `las` (state folder `state_dir`) for a quote over
/// `report_data` (hex): `--las --state-dir --report-data --mrenclave --mrsigner
/// --isvprodid --isvsvn`.
pub fn app_quote_args<'a>(
    las: &'a str,
    state_dir: &'a str,
    report_data: &'a str,
    mrenclave: &'a str,
) -> [&'a str; 14] {
    [
        "--las",
        las,
        "--state-dir",
        state_dir,
        "--report-data",
        report_data,
        "--mrenclave",
        mrenclave,
        "--mrsigner",
        APP_MRSIGNER,
        "--isvprodid",
        "3",
        "--isvsvn",
        "5",
    ]
}

/// The standard REPORT body of hand-made quotes: a release 64-bit enclave, MRENCLAVE
/// `aa..`, MRSIGNER `bb..`, ISVPRODID 1, ISVSVN 1, CPUSVN `01..`, zero report data. Change
/// fields with struct update: `ReportBody { mrenclave: X, ..report_body() }`.
pub fn report_body() -> ReportBody {
    ReportBody {
        cpusvn: [1; 16],
        miscselect: 0,
        cet_attributes: 0,
        isv_ext_prod_id: [0; 16],
        attributes: Attributes {
            flags: flags::INIT | flags::MODE64BIT,
            xfrm: 3,
        },
        mrenclave: [0xaa; 32],
        mrsigner: [0xbb; 32],
        config_id: [0; 64],
        isvprodid: 1,
        isvsvn: 1,
        config_svn: 0,
        isv_family_id: [0; 16],
        report_data: [0; 64],
    }
}

/// Quote claims of platform `id` for `body`, issued at `issued_at` by a LAS with
/// `las_mrenclave` (version "t").
pub fn quote_claims(
    id: &PlatformIdentity,
    mode: Mode,
    las_mrenclave: [u8; 32],
    issued_at: u64,
    report_body: ReportBody,
) -> QuoteClaims {
    QuoteClaims {
        mode,
        platform_id: id.platform_id(),
        las_version: "t".into(),
        las_mrenclave,
        issued_at,
        report_body,
    }
}

/// The LAS's TARGETINFO, fetched from the daemon.
pub fn target_info(addr: SocketAddr) -> TargetInfo {
    let r = get(addr, "/v1/target-info");
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

/// Asserts that `r` is a quote for `report_data` from the simulated platform that verifies.
pub fn assert_quote(r: &Resp, report_data: &[u8; 64]) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let q = las_core::quote::decode_and_verify_quote(&r.body).expect("quote verifies");
    assert_eq!(&q.claims.report_body.report_data, report_data);
    assert_eq!(q.claims.mode, Mode::Sim);
}

/// The daemon still works: a fresh valid REPORT gets a verifying quote.
pub fn still_answers(dir: &Path, addr: SocketAddr) {
    let mut rd = [0u8; 64];
    getrandom_fill(&mut rd);
    let report = valid_report(dir, addr, rd);
    let r = http(
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
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from the OS.
    pub fn from_os() -> Rng {
        let mut b = [0u8; 8];
        getrandom_fill(&mut b);
        Rng(u64::from_le_bytes(b) | 1)
    }
    /// The next number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The value of a metric line `name{labels} value` (exact name + labels).
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == name_and_labels).then(|| v.parse().ok()).flatten()
    })
}

/// The sum of every sample of metric `name` whose labels include all of `labels`
/// (`("route", "/v1/quote")`, ...); 0 if there is none.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            let (n, rest) = match k.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (k, ""),
            };
            if n != name {
                return None;
            }
            let have: Vec<(&str, &str)> = rest
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .collect();
            labels
                .iter()
                .all(|want| have.contains(want))
                .then(|| v.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Scrapes /metrics.
pub fn scrape(addr: SocketAddr) -> String {
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_quote_args_name_the_app_enclave() {
        let e = app_enclave();
        let a = app_quote_args("L", "S", "R", APP_MRENCLAVE);
        assert_eq!(hex::decode(a[7]).unwrap(), e.mrenclave);
        assert_eq!(hex::decode(a[9]).unwrap(), e.mrsigner);
        assert_eq!(a[11].parse::<u16>().unwrap(), e.isvprodid);
        assert_eq!(a[13].parse::<u16>().unwrap(), e.isvsvn);
        assert_eq!(
            &a[..6],
            ["--las", "L", "--state-dir", "S", "--report-data", "R"]
        );
    }

    #[test]
    fn metric_lines_are_found_by_name_and_labels() {
        let t = "# TYPE x counter\nx_total{route=\"/a\",status=\"200\"} 3\nx_total{route=\"/a\",status=\"400\"} 2\nx_total{route=\"/b\",status=\"200\"} 7\ny 1.5\n";
        assert_eq!(metric(t, "y"), Some(1.5));
        assert_eq!(metric(t, "x_total{route=\"/a\",status=\"400\"}"), Some(2.0));
        assert_eq!(metric_sum(t, "x_total", &[("route", "/a")]), 5.0);
        assert_eq!(metric_sum(t, "x_total", &[("status", "200")]), 10.0);
        assert_eq!(metric_sum(t, "x_total", &[]), 12.0);
        assert_eq!(metric_sum(t, "z", &[]), 0.0);
    }
}

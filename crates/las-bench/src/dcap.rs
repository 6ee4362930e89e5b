//! The DCAP comparison: a real Intel SGX DCAP quote and its collateral, the sample of the
//! dcap-qvl 0.7.1 crate package committed under tests/vectors/dcap (see its README),
//! verified at a time inside the collateral's validity window.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use dcap_qvl::QuoteCollateralV3;

/// The dcap-qvl version this benchmark was written against (printed with the figures).
pub const DCAP_QVL_VERSION: &str = "0.7";

/// A DCAP quote, its parsed collateral and a time at which the collateral is valid.
#[derive(Debug)]
pub struct DcapSample {
    quote: Vec<u8>,
    collateral: QuoteCollateralV3,
    /// Verification time, seconds since the Unix epoch.
    pub now: u64,
    /// Where the files came from.
    pub dir: PathBuf,
}

impl DcapSample {
    /// Loads the sample from `dir` (dcap-qvl's `sample/` folder).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let qpath = dir.join("sgx_quote");
        let cpath = dir.join("sgx_quote_collateral.json");
        let quote = std::fs::read(&qpath).with_context(|| format!("{}", qpath.display()))?;
        let raw = std::fs::read(&cpath).with_context(|| format!("{}", cpath.display()))?;
        let collateral: QuoteCollateralV3 = serde_json::from_slice(&raw)
            .with_context(|| format!("{}: not DCAP collateral", cpath.display()))?;
        let now = validity_midpoint(&collateral)?;
        Ok(Self {
            quote,
            collateral,
            now,
            dir: dir.to_path_buf(),
        })
    }

    /// Loads the committed sample (tests/vectors/dcap: dcap-qvl 0.7.1's, see its README).
    pub fn locate() -> anyhow::Result<Self> {
        Self::load(&las_testkit::vectors::dcap_dir())
    }

    /// The DCAP quote's size.
    pub fn quote_len(&self) -> usize {
        self.quote.len()
    }

    /// One full verification (certificate chain, CRLs, TCB info, QE identity, QE report,
    /// quote signature) with the collateral already parsed, as a verifier with a warm
    /// collateral cache does.
    pub fn verify(&self) -> anyhow::Result<dcap_qvl::verify::VerifiedReport> {
        dcap_qvl::verify::verify(&self.quote, &self.collateral, self.now)
    }

    /// Verifies once and returns the TCB status, or why it failed.
    pub fn verify_once(&self) -> anyhow::Result<String> {
        let r = self.verify().with_context(|| {
            format!(
                "the DCAP sample quote in {} does not verify at {}",
                self.dir.display(),
                self.now
            )
        })?;
        Ok(r.status)
    }
}

/// The middle of the window in which both the TCB info and the QE identity are valid
/// (each from `issueDate` to `nextUpdate`).
fn validity_midpoint(c: &QuoteCollateralV3) -> anyhow::Result<u64> {
    let window = |json: &str, what: &str| -> anyhow::Result<(u64, u64)> {
        let v: serde_json::Value =
            serde_json::from_str(json).with_context(|| format!("{what} is not JSON"))?;
        let date = |k: &str| -> anyhow::Result<u64> {
            let s = v
                .get(k)
                .and_then(|s| s.as_str())
                .with_context(|| format!("{what} has no {k}"))?;
            rfc3339_utc(s).with_context(|| format!("{what}.{k} `{s}` is not a UTC date"))
        };
        Ok((date("issueDate")?, date("nextUpdate")?))
    };
    let (a0, a1) = window(&c.tcb_info, "tcb_info")?;
    let (b0, b1) = window(&c.qe_identity, "qe_identity")?;
    let (start, end) = (a0.max(b0), a1.min(b1));
    if start >= end {
        bail!("the TCB info and QE identity validity windows do not overlap");
    }
    Ok(start + (end - start) / 2)
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ` (optionally with fractional seconds).
fn rfc3339_utc(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_utc("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(rfc3339_utc("2025-06-19T10:56:11Z"), Some(1_750_330_571));
        assert_eq!(rfc3339_utc("2025-06-19T10:56:11.5Z"), Some(1_750_330_571));
        assert_eq!(rfc3339_utc("2025-06-19T10:56:11+02:00"), None);
        assert_eq!(rfc3339_utc("2025-13-19T10:56:11Z"), None);
    }

    #[test]
    fn the_sample_verifies_inside_its_window() {
        let s = DcapSample::locate().unwrap();
        assert!(s.quote_len() > 1000);
        s.verify_once().unwrap();
    }
}

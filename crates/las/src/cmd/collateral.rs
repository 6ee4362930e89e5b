//! Where DCAP collateral comes from: the options `--collateral`, `--pccs-url`, `--pccs-ca`
//! and `--collateral-cache`, declared once and flattened into `las verify` and
//! `las tcb-state`, and the one function that turns them into a [`CollateralSet`]
//! (`las verifier serve` reads its `--collateral` files with it too).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use las_verifier::dcap::pccs::{PccsClient, default_cache_dir};
use las_verifier::dcap::{CollateralSet, collateral_key};

/// The DCAP collateral options.
#[derive(Debug, Args)]
#[command(next_help_heading = "DCAP collateral")]
pub struct CollateralArgs {
    /// DCAP collateral file(s) (JSON: one collateral object or a list; a file of the
    /// --pccs-url cache works), for verifiers without a PCCS: checks `sgx-dcap` evidence
    /// and gives its TCB status and advisories.
    #[arg(long, value_name = "FILE", env = "LAS_DCAP_COLLATERAL")]
    pub collateral: Vec<PathBuf>,
    /// PCCS (or Intel PCS) to fetch DCAP collateral from for `sgx-dcap` evidence, e.g.
    /// `https://pccs.example:8081`; cached on disk until it expires.
    #[arg(long, value_name = "URL", env = "LAS_PCCS_URL")]
    pub pccs_url: Option<String>,
    /// Extra CA certificate(s) (PEM) trusted for an https PCCS with its own certificate.
    #[arg(long, value_name = "FILE", env = "LAS_PCCS_CA", requires = "pccs_url")]
    pub pccs_ca: Option<PathBuf>,
    /// Cache folder of fetched collateral (default: ~/.cache/las/dcap-collateral).
    #[arg(long, value_name = "DIR", env = "LAS_COLLATERAL_CACHE")]
    pub collateral_cache: Option<PathBuf>,
}

/// The collateral of `files` (each JSON: one collateral object or a list).
pub fn read_files(files: &[PathBuf]) -> anyhow::Result<CollateralSet> {
    let mut set = CollateralSet::new();
    for f in files {
        let bytes = std::fs::read(f)
            .with_context(|| format!("cannot read collateral file {}", f.display()))?;
        set.extend(
            CollateralSet::from_json(&bytes)
                .with_context(|| format!("malformed collateral file {}", f.display()))?,
        );
    }
    Ok(set)
}

impl CollateralArgs {
    /// Whether any collateral was asked for (a file or a PCCS).
    pub fn given(&self) -> bool {
        !self.collateral.is_empty() || self.pccs_url.is_some()
    }

    /// The collateral files, plus, with --pccs-url, what the PCCS has for `quote`'s
    /// platform (unless a file covers it), waiting at most `timeout` for the PCCS.
    pub fn load(
        &self,
        quote: Option<&[u8]>,
        now: u64,
        timeout: Duration,
    ) -> anyhow::Result<CollateralSet> {
        let mut set = read_files(&self.collateral)?;
        let (Some(url), Some(quote)) = (self.pccs_url.as_deref(), quote) else {
            return Ok(set);
        };
        let key = collateral_key(quote).context("the LAS's DCAP quote names no platform")?;
        if set.covers(&key, now) {
            return Ok(set);
        }
        let mut client = PccsClient::new(url)?.timeout(timeout);
        if let Some(ca) = self.pccs_ca.as_deref() {
            client = client.extra_ca_file(ca);
        }
        if let Some(dir) = self
            .collateral_cache
            .as_deref()
            .map(Path::to_path_buf)
            .or_else(default_cache_dir)
        {
            client = client.cache_dir(dir);
        }
        set.push(client.collateral_blocking(&key, now).with_context(|| {
            format!(
                "cannot get DCAP collateral for FMSPC {} from {url}",
                key.fmspc
            )
        })?);
        Ok(set)
    }
}

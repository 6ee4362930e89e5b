//! Turning the shared platform options into a `PlatformConfig`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use las_platform::{ModeRequest, PlatformConfig};

use crate::cli::{ModeArg, PlatformArgs};

/// The system-wide state folder.
pub const SYSTEM_STATE_DIR: &str = "/var/lib/las";

pub fn config(a: &PlatformArgs) -> anyhow::Result<PlatformConfig> {
    let sim_cpusvn = a
        .sim_cpusvn
        .as_deref()
        .map(|s| las_core::hexfmt::decode_fixed::<16>("--sim-cpusvn", s))
        .transpose()
        .context("--sim-cpusvn (env LAS_SIM_CPUSVN) must be 32 hex characters")?;
    let state_dir = match &a.state_dir {
        Some(d) => d.clone(),
        None => default_state_dir(),
    };
    Ok(PlatformConfig {
        mode: match a.mode {
            ModeArg::Sim => ModeRequest::Sim,
            ModeArg::Hw => ModeRequest::Hw,
            ModeArg::Auto => ModeRequest::Auto,
        },
        state_dir,
        sim_cpusvn,
        sim_las_mrenclave: None,
        create_secret: true,
    })
}

/// /var/lib/las when this user can write there (or create it), else the per-user state
/// folder: $XDG_STATE_HOME/las, ~/.local/state/las, or ./las-state as a last resort.
pub fn default_state_dir() -> PathBuf {
    let sys = Path::new(SYSTEM_STATE_DIR);
    if writable_dir(sys) {
        return sys.to_path_buf();
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("las");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/state/las");
    }
    PathBuf::from("las-state")
}

fn writable_dir(dir: &Path) -> bool {
    if std::fs::symlink_metadata(dir).is_err() {
        // Created like every state folder: 0700 (the secret's folder is owner-only).
        return las_platform::sim::ensure_dir(dir).is_ok();
    }
    // A random-named O_EXCL probe: never follows or truncates a file planted there.
    tempfile::Builder::new()
        .prefix(".las-write-probe-")
        .tempfile_in(dir)
        .is_ok()
}

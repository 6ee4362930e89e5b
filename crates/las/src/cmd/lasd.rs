//! `las serve` and `las id`: executing the daemon binary `lasd`.
//!
//! The platform ID is bound to `lasd`'s measurement (its SHA-256 in simulation), so
//! everything that derives the ID runs `lasd` itself rather than code linked into `las`:
//! `las serve ARGS` is `lasd ARGS` and `las id ARGS` is `lasd id ARGS`. The process is
//! replaced (exec), so signals, the PID and the exit code are `lasd`'s own.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// The `lasd` that `las` runs: the one next to the `las` executable (a release archive,
/// the image, or cargo's target/<profile> folder), else the first on PATH.
pub fn find() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the `las` executable's folder")?;
    let beside = exe.parent().map(|d| d.join("lasd"));
    if let Some(b) = beside.as_deref().filter(|b| is_executable(b)) {
        return Ok(b.to_path_buf());
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join("lasd"))
        .find(|c| is_executable(c));
    on_path.with_context(|| {
        format!(
            "the daemon binary `lasd` was found neither next to `las` ({}) nor on PATH; build it with `cargo build --release` (builds both) or scripts/build-lasd, or install it beside `las`",
            beside.map_or_else(|| "?".into(), |b| b.display().to_string())
        )
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Replaces this process with `lasd` `args`; returns only if that fails.
pub fn exec(global: &[OsString], args: &[OsString]) -> anyhow::Result<ExitCode> {
    let lasd = find()?;
    let err = std::process::Command::new(&lasd)
        .args(global)
        .args(args)
        .exec();
    Err(err).with_context(|| format!("cannot execute {}", lasd.display()))
}

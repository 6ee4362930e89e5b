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

/// Where `las serve` and `las id` look for `lasd`, as `--help` and the README say it.
pub const LOOKUP: &str = "`las serve` and `las id` run the `lasd` next to the `las` executable, else the first `lasd` on PATH";

/// The `lasd` that `las` runs: the one next to the `las` executable (a release archive,
/// the image, or cargo's `target/<profile>` folder), else the first on PATH.
pub fn find() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the `las` executable's folder")?;
    let beside = exe.parent().map(|d| d.join("lasd"));
    #[cfg(debug_assertions)]
    if let Some(b) = &beside {
        build_under_cargo_run(&exe, b)?;
    }
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

/// DEBUG BUILDS ONLY (`cargo run -- serve` in a checkout): a release `las` never runs
/// `$CARGO` (issue 23: with `CARGO`/`CARGO_TARGET_DIR` set, `las id` ran `$CARGO build`).
///
/// `cargo run` builds only the `las` binary. When `las` was
/// started by cargo from this workspace's target folder and the `lasd` beside it is missing
/// or older than `las`, build it there first (same profile and features), so that
/// `cargo run -- serve` starts the current daemon on a fresh checkout.
#[cfg(debug_assertions)]
fn build_under_cargo_run(las: &Path, lasd: &Path) -> anyhow::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let Some(profile_dir) = las.parent() else {
        return Ok(());
    };
    let Some(target_dir) = profile_dir.parent() else {
        return Ok(());
    };
    let workspace_target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let same_target = std::fs::canonicalize(target_dir)
        .ok()
        .zip(std::fs::canonicalize(&workspace_target).ok())
        .is_some_and(|(a, b)| a == b)
        || std::env::var_os("CARGO_TARGET_DIR").is_some_and(|t| Path::new(&t) == target_dir);
    if !manifest.is_file() || !same_target {
        return Ok(());
    }
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let stale = match (modified(lasd), modified(las)) {
        (Some(d), Some(l)) => d < l,
        _ => true,
    };
    if !stale {
        return Ok(());
    }
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--locked", "-p", "lasd", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => return Ok(()),
    }
    if cfg!(feature = "sgx") {
        cmd.args(["--features", "lasd/sgx"]);
    }
    note!("las: building the daemon binary lasd (cargo run builds only las)");
    let st = cmd.status().context("cannot run cargo to build lasd")?;
    anyhow::ensure!(st.success(), "building lasd failed ({st})");
    // An up-to-date lasd keeps its old time stamp: mark it checked, so the next start
    // does not ask cargo again.
    if let Ok(f) = std::fs::File::options().append(true).open(lasd) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
    Ok(())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Replaces this process with `lasd` `args`; returns only if that fails.
pub fn exec(global: &[OsString], args: &[OsString]) -> anyhow::Result<ExitCode> {
    let lasd = find()?;
    // `las serve --help` is lasd's help: say first which lasd that is and why.
    if args.iter().any(|a| a == "--help" || a == "-h") {
        outln!("{LOOKUP}; this one is {}.\n", lasd.display())?;
    }
    let err = std::process::Command::new(&lasd)
        .args(global)
        .args(args)
        .exec();
    Err(err).with_context(|| format!("cannot execute {}", lasd.display()))
}

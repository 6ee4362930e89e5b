//! Build metadata for `las --version`: the commit (`git describe`) and the compiled features.
//!
//! Kept small and self-contained so the daemon binary can carry the same logic. Without a
//! `.git` (a source tarball, a Docker build context without it) the commit comes from
//! `LAS_BUILD_COMMIT`, else it is `unknown`: never a build failure.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=LAS_BUILD_COMMIT");
    let commit = std::env::var("LAS_BUILD_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            // Rebuild when HEAD moves (a new commit or a checkout).
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                println!("cargo:rerun-if-changed={dir}/HEAD");
                if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
                    println!("cargo:rerun-if-changed={dir}/{r}");
                }
            }
            git(&["describe", "--always", "--tags", "--abbrev=12"])
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let mut features = Vec::new();
    if std::env::var_os("CARGO_FEATURE_SGX").is_some() {
        features.push("sgx");
    }
    let features = if features.is_empty() {
        "none (no SGX hardware backend)".to_owned()
    } else {
        features.join(",")
    };
    println!("cargo:rustc-env=LAS_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=LAS_BUILD_FEATURES={features}");
}

//! Names the source commit in `lasd --version`: the last commit that changed the daemon's
//! own sources (lasd, las-core, las-state, las-http, las-platform, las-server), not HEAD. A commit that only
//! touches the verifier, discovery or the `las` CLI must not change lasd's bytes, because
//! those bytes are the platform's measurement (its ID). `LASD_SOURCE_COMMIT` overrides it
//! (image builds without a .git folder); without git and without it: `unknown`.

use std::process::Command;

const SOURCES: [&str; 6] = [
    "crates/lasd",
    "crates/las-core",
    "crates/las-state",
    "crates/las-http",
    "crates/las-platform",
    "crates/las-server",
];

fn main() {
    println!("cargo::rerun-if-env-changed=LASD_SOURCE_COMMIT");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for s in SOURCES {
        println!("cargo::rerun-if-changed={}", root.join(s).display());
    }
    let commit = std::env::var("LASD_SOURCE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git_commit(&root))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=LASD_COMMIT={}", commit.trim());
}

fn git_commit(root: &std::path::Path) -> Option<String> {
    // A commit changes the index: rerun then so the label follows new commits.
    if let Some(index) = git(
        root,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
    ) {
        println!("cargo::rerun-if-changed={}", index.trim());
    }
    let mut args = vec!["log", "-1", "--format=%h", "--abbrev=12", "--"];
    args.extend(SOURCES);
    git(root, &args).filter(|c| !c.trim().is_empty())
}

fn git(root: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

//! lasd's dependency tree is its trusted code base and part of its measurement: it holds
//! no verifier, discovery, Kubernetes, DCAP, YAML, TLS or HTTP-client crate, and at most
//! 120 crates (issue 14; docs/hardware.md).
//!
//! Counted as `cargo tree -p lasd -e normal --prefix none --no-dedupe | sort -u`: every
//! package (name and version) once, lasd itself and build-time proc macros included.
//! (Without `--no-dedupe`, `sort -u` counts a package twice when cargo marks its second
//! occurrence with `(*)`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::collections::BTreeSet;
use std::process::Command;

const MAX_CRATES: usize = 120;

/// Crate names (or name prefixes ending in `*`) that must not be in lasd's tree.
const FORBIDDEN: &[&str] = &[
    "las",
    "las-verifier",
    "las-discovery",
    "las-client",
    "kube*",
    "k8s-openapi",
    "dcap-qvl",
    "x509-cert",
    "serde_norway",
    "serde_yaml*",
    "serde-saphyr",
    "saphyr*",
    "unsafe-libyaml*",
    "yaml-rust*",
    "rustls*",
    "hyper-rustls",
    "ring",
    "aws-lc*",
    "openssl*",
    "native-tls",
    "reqwest",
    "ureq",
    "isahc",
    "curl*",
];

/// `cargo tree -p PACKAGE EXTRA`, one crate per line, offline.
fn cargo_tree(package: &str, extra: &[&str]) -> String {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--manifest-path",
            manifest,
            "-p",
            package,
            "--prefix",
            "none",
        ])
        .args(["--no-dedupe", "--locked", "--offline"])
        .args(extra)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn matches(name: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

#[test]
fn lasd_tree_has_no_forbidden_crate_and_at_most_120_crates() {
    let tree = cargo_tree("lasd", &["-e", "normal"]);
    let packages: BTreeSet<&str> = tree.lines().filter(|l| !l.trim().is_empty()).collect();
    let names: BTreeSet<&str> = packages
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains("las-server") && names.contains("tokio"),
        "{tree}"
    );
    let bad: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| FORBIDDEN.iter().any(|p| matches(n, p)))
        .collect();
    assert!(bad.is_empty(), "forbidden crates in lasd's tree: {bad:?}");
    println!("lasd's tree: {} crates", packages.len());
    assert!(
        packages.len() <= MAX_CRATES,
        "lasd's tree has {} crates (at most {MAX_CRATES}):\n{tree}",
        packages.len()
    );
}

#[test]
fn lasd_has_no_http_client_code() {
    // hyper and hyper-util serve; their client halves must stay off.
    let features = cargo_tree("lasd", &["-e", "features"]);
    let client: Vec<&str> = features
        .lines()
        .filter(|l| {
            (l.starts_with("hyper ") || l.starts_with("hyper-util "))
                && l.contains("feature \"client")
        })
        .collect();
    assert!(
        client.is_empty(),
        "HTTP client features in lasd: {client:?}"
    );
}

#[test]
fn the_forbidden_list_catches_what_las_pulls_in() {
    // The check is not vacuous: the full `las` binary has these crates.
    let tree = cargo_tree("las", &["-e", "normal"]);
    for must in ["las-verifier", "kube", "dcap-qvl", "rustls", "serde_norway"] {
        assert!(
            tree.lines()
                .any(|l| l.split_whitespace().next() == Some(must)),
            "{must} missing from las's tree"
        );
    }
}

/// Issue 24.2: the serve loop and everything both servers share is in las-http, so the
/// verification service links neither the daemon (las-server) nor the platform code.
#[test]
fn the_verification_service_links_no_daemon_or_platform_code() {
    let tree = cargo_tree("las-verifier-service", &["-e", "normal"]);
    let names: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains("las-http"), "{tree}");
    for not in ["las-server", "las-platform"] {
        assert!(!names.contains(not), "{not} in the service's tree:\n{tree}");
    }
}

//! The verifier library does no network or file I/O by default (issue 24 item 8): its
//! default build's dependency tree holds no async runtime, HTTP or TLS client. PCCS
//! fetching (`dcap::pccs`) is the opt-in feature `pccs`, which `las` enables.
//!
//! Asked of cargo as `cargo tree -p las-verifier -e normal --prefix none` (default features).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::process::Command;

/// Crates that mean I/O: an async runtime, HTTP, TLS (rustls itself; `rustls-pki-types` is
/// only certificate types, which DCAP's X.509 parsing uses), a temp-file writer.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "hyper",
    "hyper-util",
    "hyper-rustls",
    "http-body-util",
    "rustls",
    "rustls-native-certs",
    "tempfile",
    "reqwest",
];

fn tree(extra: &[&str]) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--manifest-path", manifest, "-p", "las-verifier"])
        .args(["-e", "normal", "--prefix", "none", "--locked", "--offline"])
        .args(extra)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_default_build_has_no_runtime_http_or_tls_crate() {
    let names = tree(&[]);
    assert!(names.iter().any(|n| n == "dcap-qvl"), "{names:?}");
    let found: Vec<_> = names
        .iter()
        .filter(|n| FORBIDDEN.contains(&n.as_str()))
        .collect();
    assert!(
        found.is_empty(),
        "I/O crates in the default build: {found:?}"
    );
}

#[test]
fn the_pccs_feature_brings_them_in() {
    // The check above would pass on an empty tree: with the feature, they are there.
    let names = tree(&["--features", "pccs"]);
    for want in ["tokio", "hyper", "rustls"] {
        assert!(names.iter().any(|n| n == want), "{want} missing with pccs");
    }
}

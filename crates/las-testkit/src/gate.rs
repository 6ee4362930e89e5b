//! Tests that need what a machine may lack (root, `unshare`, Docker): they say so, and they
//! fail on CI, whose machine (root, same kind as ours) must run every one of them.

/// Whether this runs on CI: `CI` set to anything but empty, `0` or `false` (GitHub, GitLab
/// and our `.ci/run` set `CI=true`).
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Reports that `what` could not be tested here because of `why`: on CI a panic (the test
/// fails), elsewhere a `NOT TESTED: what: why` line on stdout and stderr (shown by
/// `cargo test -- --nocapture` and by nextest for the test). The caller returns after it.
#[allow(clippy::panic)]
pub fn not_tested(what: &str, why: &str) {
    let line = format!("NOT TESTED: {what}: {why}");
    if on_ci() {
        panic!("{line} (CI is set: this machine must run this test)");
    }
    println!("{line}");
    eprintln!("{line}");
}

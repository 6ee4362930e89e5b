//! Platforms named by Intel's QE ID (issue 22): a policy that lists only `INTEL_QE_ID:`
//! entries admits quotes from the original lasd, from a rebuilt (different) lasd and after
//! a CPUSVN change on the same platform, with no policy edit, and refuses another
//! platform. Every step runs the real binaries on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use las_testkit::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn platform(d: &Daemon) -> serde_json::Value {
    get(d.addr, "/v1/platform").json()
}

/// A lasd executable that differs from the built one (another MRENCLAVE, another key).
fn rebuilt_lasd(dir: &Path) -> std::path::PathBuf {
    let copy = dir.join("lasd");
    let mut bytes = std::fs::read(las_bin().with_file_name("lasd")).unwrap();
    bytes.extend_from_slice(b"a rebuilt lasd");
    std::fs::write(&copy, bytes).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Quote of a simulated enclave on `state`'s platform by the LAS at `d`, then
/// `las verify --las` (fresh identity evidence) against `policy`: the output.
fn quote_and_verify(d: &Daemon, state: &Path, policy: &Path, work: &Path) -> std::process::Output {
    let q = work.join(format!("q-{}.cose", d.addr.port()));
    quote_to_file(d.addr, state, "c0ffee", MRENCLAVE, &q);
    las_verify(
        policy,
        &q,
        &d.addr.to_string(),
        &["--expect-report-data", "c0ffee", "--json"],
    )
}

#[test]
fn a_qe_id_policy_survives_a_new_lasd_and_a_cpusvn_change_and_refuses_other_platforms() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let original = Daemon::start(state.path(), &[]);
    let p0 = platform(&original);
    let tcb = &p0["tcb_state"];
    assert_eq!(tcb["state"], "simulated", "{p0}");
    let qe = tcb["qe_id"].as_str().unwrap().to_string();
    assert!(
        qe.len() == 32
            && qe
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{qe}"
    );
    assert_eq!(tcb["fmspc"], "53494d000000");
    assert_eq!(tcb["ppid"].as_str().unwrap().len(), 32);
    assert_ne!(tcb["ppid"], tcb["qe_id"], "each with its own label");

    // SCONE's extraction from the log.
    assert!(original.wait_log("Intel QE ID: ", std::time::Duration::from_secs(5)));
    let extracted = sh_pipeline(
        "grep 'Intel QE ID' | tail -n 1 | awk '{print $NF}'",
        &original.log(),
    );
    assert_eq!(extracted.trim(), qe);
    assert!(
        original
            .log()
            .contains("TCB state (SIMULATED): FMSPC 53494d000000")
    );

    let policy = work.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: \"0.3.10\"\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [{MRENCLAVE}]\n    platforms: [INTEL_QE_ID:{}]\n",
            qe.to_uppercase()
        ),
    )
    .unwrap();
    let policy_before = std::fs::read(&policy).unwrap();

    let o = quote_and_verify(&original, state.path(), &policy, work.path());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["las_platform"]["qe_id"], qe.as_str());
    assert_eq!(j["las_platform"]["simulated"], true);
    drop(original);

    // A rebuilt lasd on the same platform: a new key, the same QE ID, still admitted.
    let bin = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(rebuilt_lasd(bin.path()));
    cmd.args(["--mode", "sim", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .env_remove("LAS_SIM_CPUSVN")
        .env_remove("LAS_LOG_FORMAT");
    let rebuilt = Daemon::start_command(cmd);
    let p1 = platform(&rebuilt);
    assert_ne!(
        p1["platform_id"], p0["platform_id"],
        "a new lasd: a new key"
    );
    assert_ne!(p1["las_mrenclave"], p0["las_mrenclave"]);
    assert_eq!(p1["tcb_state"]["qe_id"], qe.as_str());
    let o = quote_and_verify(&rebuilt, state.path(), &policy, work.path());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    drop(rebuilt);

    // A microcode (CPUSVN) update: a new key, the same QE ID, still admitted.
    let cpusvn = "0f0e0d0c0b0a09080706050403020100";
    let updated = Daemon::start(state.path(), &["--sim-cpusvn", cpusvn]);
    let p2 = platform(&updated);
    assert_ne!(p2["platform_id"], p0["platform_id"]);
    assert_eq!(p2["tcb_state"]["qe_id"], qe.as_str());
    assert_eq!(p2["tcb_state"]["cpusvn"], cpusvn);
    let out = las(&[
        "quote",
        "--las",
        &updated.addr.to_string(),
        "--state-dir",
        state.path().to_str().unwrap(),
        "--sim-cpusvn",
        cpusvn,
        "--report-data",
        "c0ffee",
        "--mrenclave",
        MRENCLAVE,
        "-o",
        work.path().join("q-cpusvn.cose").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = las_verify(
        &policy,
        &work.path().join("q-cpusvn.cose"),
        &updated.addr.to_string(),
        &["--expect-report-data", "c0ffee"],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("Intel QE ID {qe} (SIMULATED)")),
        "{}",
        stdout(&o)
    );
    drop(updated);

    // Another platform (another secret): another QE ID, refused.
    let other_state = tempfile::tempdir().unwrap();
    let other = Daemon::start(other_state.path(), &[]);
    let p3 = platform(&other);
    assert_ne!(p3["tcb_state"]["qe_id"], qe.as_str());
    let o = quote_and_verify(&other, other_state.path(), &policy, work.path());
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let reasons: Vec<&str> = j["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["platform-not-allowed"], "{j}");

    // Without the simulation tolerance the same QE ID admits nothing.
    let strict = work.path().join("strict.yaml");
    std::fs::write(
        &strict,
        String::from_utf8(policy_before.clone())
            .unwrap()
            .replace("tolerate: [simulation]", "tolerate: []"),
    )
    .unwrap();
    let o = quote_and_verify(&other, other_state.path(), &strict, work.path());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        std::fs::read(&policy).unwrap(),
        policy_before,
        "no policy edit"
    );
}

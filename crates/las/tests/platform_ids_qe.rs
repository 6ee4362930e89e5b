//! `las platform-ids --qe-id`, `las platform-ids --check POLICY` and `las policy
//! set-platforms` with QE-ID entries (issue 22 item 5), against real LAS processes on
//! simulated platforms (state folders), directly and through the stand-in Kubernetes API
//! server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::process::Output;

use las_testkit::daemon::*;
use las_testkit::fakes::*;
use las_testkit::http::*;

struct Las {
    dir: tempfile::TempDir,
    d: Daemon,
    id: String,
    qe: String,
}

fn start_las(dir: Option<tempfile::TempDir>, extra: &[&str]) -> Las {
    let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let d = Daemon::start(dir.path(), extra);
    let j = get(d.addr, "/v1/platform").json();
    Las {
        id: j["platform_id"].as_str().unwrap().to_string(),
        qe: j["tcb_state"]["qe_id"].as_str().unwrap().to_string(),
        d,
        dir,
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn qe_line(qes: &[&str]) -> String {
    let mut v: Vec<String> = qes.iter().map(|q| format!("INTEL_QE_ID:{q}")).collect();
    v.sort();
    format!("platforms: [ {}]", v.join(", "))
}

const ALT: &str = "    attestation:\n      mrenclave: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n";

fn policy(dir: &std::path::Path, name: &str, platforms: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "security:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n{ALT}    platforms: [{platforms}]\n  - name: open\n{ALT}"
        ),
    )
    .unwrap();
    p
}

#[test]
fn qe_ids_from_the_api_the_log_and_verified_evidence() {
    let (a, b) = (start_las(None, &[]), start_las(None, &[]));
    assert_ne!(a.qe, b.qe, "two platforms, two QE IDs");
    let want = qe_line(&[&a.qe, &b.qe]);

    // Kubernetes: through the pod proxy, and from the log when the proxy fails.
    let mut broken = FakePod::running("las-b", "node-2", b.d.addr, b.d.log());
    broken.las = None;
    let kube = fake_kube(
        "attest",
        "las",
        vec![
            FakePod::running("las-a", "node-1", a.d.addr, a.d.log()),
            broken,
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let kc = write_kubeconfig(tmp.path(), kube.addr);
    let env = [("NAMESPACE", "attest"), ("INSTANCE", "las")];
    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--qe-id",
        ],
        &env,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), want);
    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-o",
            "json",
        ],
        &env,
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["las"][0]["qe_id"], a.qe.as_str());
    assert_eq!(j["las"][1]["qe_id"], b.qe.as_str(), "from the log");
    assert_eq!(j["las"][1]["source"], "pod-log");

    // Direct, plain and verified.
    let (aa, ba) = (a.d.addr.to_string(), b.d.addr.to_string());
    let o = las(&["platform-ids", "--las", &aa, "--las", &ba, "--qe-id"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), want);
    let o = las(&[
        "platform-ids",
        "--las",
        &aa,
        "--las",
        &ba,
        "--qe-id",
        "--verify",
        "--allow-simulation",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), want);

    // What it prints is what `las policy set-platforms` takes.
    let p = policy(tmp.path(), "p.yaml", &a.id);
    let o = las_with_stdin(
        &[
            "policy",
            "set-platforms",
            "--policy",
            p.to_str().unwrap(),
            "--service",
            "app",
        ],
        want.as_bytes(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(
        text.contains(&format!("\"INTEL_QE_ID:{}\"", a.qe)),
        "{text}"
    );
    let o = las(&[
        "platform-ids",
        "--las",
        &aa,
        "--las",
        &ba,
        "--check",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

/// The upgrade runbook: before and after a LAS update (here a microcode update, a new key
/// on the same platform), `--check` shows which nodes a policy would refuse.
#[test]
fn check_names_refused_nodes_and_unused_entries() {
    let a = start_las(None, &[]);
    let b = start_las(None, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let (aa, ba) = (a.d.addr.to_string(), b.d.addr.to_string());
    let check = |p: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["platform-ids", "--las", &aa, "--las", &ba, "--check"];
        args.push(p.to_str().unwrap());
        args.extend_from_slice(extra);
        las(&args)
    };

    // Keys of both: admitted. A stale third entry is named as unused.
    let stale = "INTEL_QE_ID:00112233445566778899aabbccddeeff";
    let keys = policy(
        tmp.path(),
        "keys.yaml",
        &format!("{}, {}, {stale}", a.id, b.id),
    );
    let o = check(&keys, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("service app: 2 of 2 LAS admitted"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(&format!("UNUSED ENTRY: {stale}")),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("service open: no `platforms`"),
        "{}",
        stdout(&o)
    );

    // One node by key, one by QE ID: mixed lists work.
    let mixed = policy(
        tmp.path(),
        "mixed.yaml",
        &format!("{}, INTEL_QE_ID:{}", a.id, b.qe),
    );
    assert_eq!(code(&check(&mixed, &[])), 0);
    let qes = policy(
        tmp.path(),
        "qe.yaml",
        &format!("INTEL_QE_ID:{}, INTEL_QE_ID:{}", a.qe, b.qe),
    );

    // The update: LAS a restarts with another CPUSVN on the same platform.
    let Las { dir, d, .. } = a;
    drop(d);
    let a2 = start_las(
        Some(dir),
        &["--sim-cpusvn", "0f0e0d0c0b0a09080706050403020100"],
    );
    assert_ne!(a2.id, b.id);
    let aa = a2.d.addr.to_string();
    let check = |p: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["platform-ids", "--las", &aa, "--las", &ba, "--check"];
        args.push(p.to_str().unwrap());
        args.extend_from_slice(extra);
        las(&args)
    };
    let o = check(&keys, &[]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("REFUSED: LAS {aa}: platform {}", a2.id)),
        "{}",
        stdout(&o)
    );
    let o = check(&keys, &["-o", "json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["admitted"], false);
    assert_eq!(
        j["services"][0]["refused"][0]["platform_id"],
        a2.id.as_str()
    );
    // The QE-ID policy admits both, before and after; so does the verified check.
    for extra in [&[][..], &["--verify", "--allow-simulation"][..]] {
        let o = check(&qes, extra);
        assert_eq!(code(&o), 0, "{extra:?}: {}{}", stdout(&o), stderr(&o));
    }
    // A simulated QE ID admits nothing where the policy does not tolerate simulation.
    let strict = tmp.path().join("strict.yaml");
    std::fs::write(
        &strict,
        std::fs::read_to_string(&qes)
            .unwrap()
            .replace("tolerate: [simulation]", "tolerate: []"),
    )
    .unwrap();
    let o = check(&strict, &[]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("(simulated)"), "{}", stdout(&o));
    drop(a2);
}

/// `las tcb-state --las ADDR` prints what `scone las show-tcb-state` prints, as text and as
/// one JSON object; with collateral a simulated platform says so instead of a status.
#[test]
fn tcb_state_of_a_running_las() {
    let a = start_las(None, &[]);
    let addr = a.d.addr.to_string();
    let o = las(&["tcb-state", "--las", &addr]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "SIMULATED platform".to_string(),
        "Platform FMSPC: 53494d000000".into(),
        format!("Intel QE ID: {}", a.qe),
        "PPID: ".into(),
        "CPU SVN: ".into(),
        "PCE SVN: 0".into(),
    ] {
        assert!(text.contains(&want), "{want}: {text}");
    }
    let o = las(&["tcb-state", "--las", &addr, "--json"]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["state"], "simulated");
    assert_eq!(j["qe_id"], a.qe.as_str());
    assert_eq!(j["source"], "las");
    let coll = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors/dcap/sgx_quote_collateral.json");
    let o = las(&[
        "tcb-state",
        "--las",
        &addr,
        "--json",
        "--collateral",
        coll.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["tcb_status"], "simulated");
    // Neither source, or an unreachable LAS: an error.
    assert_eq!(code(&las(&["tcb-state"])), 2);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    assert_eq!(
        code(&las(&["tcb-state", "--las", &dead_addr, "--timeout", "2s"])),
        2
    );
}

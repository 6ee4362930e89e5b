//! `las platform-ids` and `las policy set-platforms` end to end: real LAS processes on two
//! simulated platforms (two state folders), a fake Kubernetes API server on loopback that
//! proxies to them, direct mode, and `--verify` against a man in the middle that swaps a
//! key or replays an old answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;

use las_testkit::daemon::*;
use las_testkit::fakes::*;
use las_testkit::http::*;

struct Las {
    _dir: tempfile::TempDir,
    d: Daemon,
    id: String,
    mrenclave: String,
}

fn start_las(extra: &[&str]) -> Las {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), extra);
    let j = get(d.addr, "/v1/platform").json();
    Las {
        id: j["platform_id"].as_str().unwrap().to_string(),
        mrenclave: j["las_mrenclave"].as_str().unwrap().to_string(),
        d,
        _dir: dir,
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v.dedup();
    v
}

fn line(ids: &[&str]) -> String {
    format!("platforms: [ {}]", sorted(ids).join(", "))
}

fn addr(a: SocketAddr) -> String {
    a.to_string()
}

#[test]
fn kubernetes_default_output_wide_and_json() {
    let (a, b) = (start_las(&[]), start_las(&[]));
    assert_ne!(a.id, b.id, "two state folders are two platforms");
    let kube = fake_kube(
        "attest",
        "las-prod",
        vec![
            FakePod::running("las-prod-x7k2p", "node-1", a.d.addr, a.d.log()),
            FakePod::running("las-prod-9qzcm", "node-2", b.d.addr, b.d.log()),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let kc = write_kubeconfig(tmp.path(), kube.addr);
    let kc = kc.to_str().unwrap();
    // The variables of the bash function.
    let env = [("NAMESPACE", "attest"), ("INSTANCE", "las-prod")];

    let o = las_outside_cluster(&["platform-ids", "--kubeconfig", kc], &env);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Exactly the bash function's line: sorted IDs, `[ ` then `, ` separators.
    assert_eq!(
        String::from_utf8(o.stdout.clone()).unwrap(),
        format!("{}\n", line(&[&a.id, &b.id]))
    );
    assert_eq!(stderr(&o), "");

    let seen = kube.seen();
    assert!(
        seen.contains(&"/api/v1/namespaces/attest/pods?&labelSelector=app.kubernetes.io%2Fcomponent%3Dlas%2Capp.kubernetes.io%2Finstance%3Dlas-prod".to_string()),
        "{seen:?}"
    );
    assert!(seen.contains(&format!(
        "/api/v1/namespaces/attest/pods/las-prod-x7k2p:{}/proxy/v1/platform",
        a.d.addr.port()
    )));
    assert!(
        !seen
            .iter()
            .any(|s| s.ends_with("/log") || s.contains("/log?")),
        "{seen:?}"
    );

    let o = las_outside_cluster(&["platform-ids", "--kubeconfig", kc, "-o", "wide"], &env);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want = format!(
        "NODE     POD              PLATFORM-ID{pad}   SOURCE\nnode-1   las-prod-x7k2p   {}   api-proxy\nnode-2   las-prod-9qzcm   {}   api-proxy\n",
        a.id,
        b.id,
        pad = " ".repeat(64 - "PLATFORM-ID".len())
    );
    assert_eq!(String::from_utf8(o.stdout).unwrap(), want);

    let o = las_outside_cluster(
        &["platform-ids", "--kubeconfig", kc, "--output", "json"],
        &env,
    );
    assert_eq!(code(&o), 0);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["platforms"], serde_json::json!(sorted(&[&a.id, &b.id])));
    assert_eq!(j["complete"], true);
    assert_eq!(j["las"][0]["node"], "node-1");
    assert_eq!(j["las"][0]["platform_id"], a.id.as_str());

    // Flags instead of variables; a namespace without LAS pods is an incomplete (empty) list.
    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--kubeconfig",
            kc,
            "-n",
            "attest",
            "--instance",
            "las-prod",
        ],
        &[],
    );
    assert_eq!(stdout(&o), line(&[&a.id, &b.id]));
    let o = las_outside_cluster(&["platform-ids", "--kubeconfig", kc], &[]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "platforms: []");
    assert!(
        stderr(&o).contains("no pods in namespace `default`"),
        "{}",
        stderr(&o)
    );
    // --selector overrides the instance's.
    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--kubeconfig",
            kc,
            "-n",
            "attest",
            "--selector",
            "app.kubernetes.io/component=las,app.kubernetes.io/instance=las-prod",
        ],
        &[],
    );
    assert_eq!(stdout(&o), line(&[&a.id, &b.id]));
}

#[test]
fn kubernetes_log_fallback_and_pods_that_cannot_answer() {
    let (a, b) = (start_las(&[]), start_las(&[]));
    let mut broken = FakePod::running("las-b", "node-2", b.d.addr, b.d.log());
    broken.las = None; // the pod proxy fails: the ID must come from the log
    let mut pending = FakePod::running("las-c", "node-3", a.d.addr, String::new());
    pending.phase = "Pending".into();
    pending.ready = false;
    let mut unready = FakePod::running("las-d", "node-4", a.d.addr, String::new());
    unready.ready = false;
    let mut silent = FakePod::running("las-e", "node-5", a.d.addr, "starting\n".into());
    silent.las = None;
    let kube = fake_kube(
        "default",
        "las",
        vec![
            FakePod::running("las-a", "node-1", a.d.addr, a.d.log()),
            broken,
            pending,
            unready,
            silent,
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let kc = write_kubeconfig(tmp.path(), kube.addr);
    let kc = kc.to_str().unwrap();

    let o = las_outside_cluster(&["platform-ids", "--kubeconfig", kc, "-o", "wide"], &[]);
    assert_eq!(code(&o), 1, "incomplete: {}", stderr(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert_eq!(rows[1], vec!["node-1", "las-a", a.id.as_str(), "api-proxy"]);
    assert_eq!(rows[2], vec!["node-2", "las-b", b.id.as_str(), "pod-log"]);
    let err = stderr(&o);
    for want in [
        "MISSING: pod default/las-c (node node-3): not-running: phase Pending",
        "MISSING: pod default/las-d (node node-4): not-ready: Ready is False (ContainersNotReady)",
        "MISSING: pod default/las-e (node node-5): no-key-in-log",
        "note: pod default/las-b (node node-2): GET /v1/platform: HTTP 503",
        "the list is INCOMPLETE: 2 of 5 LAS answered",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("connection refused"), "{err}");
    let seen = kube.seen();
    assert!(
        seen.iter()
            .any(|s| s.starts_with("/api/v1/namespaces/default/pods/las-b/log?")),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|s| s.contains("las-c") || s.contains("las-d")),
        "not-ready pods are not asked: {seen:?}"
    );

    let o = las_outside_cluster(&["platform-ids", "--kubeconfig", kc], &[]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), line(&[&a.id, &b.id]));
}

#[test]
fn kubernetes_verified_mode_does_not_trust_the_cluster() {
    let (a, b, attacker) = (start_las(&[]), start_las(&[]), start_las(&[]));
    let mut lying = FakePod::running("las-b", "node-2", b.d.addr, b.d.log());
    lying.swap_platform_id = Some((b.id.clone(), attacker.id.clone()));
    let kube = fake_kube(
        "default",
        "las",
        vec![
            FakePod::running("las-a", "node-1", a.d.addr, a.d.log()),
            lying,
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let kc = write_kubeconfig(tmp.path(), kube.addr);
    let kc = kc.to_str().unwrap();

    // Plain mode believes the cluster.
    let o = las_outside_cluster(&["platform-ids", "--kubeconfig", kc], &[]);
    assert_eq!(code(&o), 0);
    assert_eq!(stdout(&o), line(&[&a.id, &attacker.id]));

    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--kubeconfig",
            kc,
            "--verify",
            "--allow-simulation",
            "--trusted-las-mrenclave",
            &a.mrenclave,
            "-o",
            "wide",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("node-1   las-a   {}   verified", a.id)),
        "{out}"
    );
    assert!(!out.contains(&attacker.id) && !out.contains(&b.id), "{out}");
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "NOT VERIFIED: pod default/las-b (node node-2) platform ID {}: platform-id-mismatch",
            attacker.id
        )),
        "{err}"
    );
    // The identity request went through the pod proxy with a 32-byte nonce.
    let seen = kube.seen();
    assert!(
        seen.iter().any(|s| s.contains("/pods/las-a:")
            && s.contains("/proxy/v1/identity?nonce=")
            && s.len() - s.find("nonce=").unwrap() == 6 + 64),
        "{seen:?}"
    );
}

#[test]
fn direct_mode_by_address_and_by_dns_name() {
    let (a, b) = (start_las(&[]), start_las(&["--listen", "[::]:0"]));
    let b_port = b.d.addr.port().to_string();
    let b6 = format!("[::1]:{b_port}");
    let o = las_outside_cluster(
        &["platform-ids", "--las", &addr(a.d.addr), "--las", &b6],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), line(&[&a.id, &b.id]));

    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--las",
            &addr(a.d.addr),
            "--las",
            &b6,
            "-o",
            "wide",
        ],
        &[],
    );
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], vec!["LAS", "PLATFORM-ID", "SOURCE"]);
    assert!(
        rows.contains(&vec![b6.as_str(), b.id.as_str(), "direct"]),
        "{out}"
    );

    // Every address of a name: `localhost` with B's port (B listens on all addresses).
    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--dns",
            &format!("localhost:{b_port}"),
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["platforms"], serde_json::json!([b.id]));
    assert!(j["las"].as_array().unwrap().iter().all(|l| {
        l["address"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{b_port}"))
    }));

    // A LAS that is down is named, and the list is incomplete.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--las",
            &addr(a.d.addr),
            "--las",
            &addr(dead),
            "--timeout-secs",
            "5",
        ],
        &[],
    );
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), line(&[&a.id]));
    assert!(
        stderr(&o).contains(&format!("MISSING: LAS {dead}: unreachable")),
        "{}",
        stderr(&o)
    );

    // Usage and configuration errors: exit 2.
    for args in [
        vec!["platform-ids", "--las", "a b"],
        vec!["platform-ids", "--dns", "no-such-host.invalid"],
        vec!["platform-ids", "--las", "x", "--selector", "a=b"],
        vec!["platform-ids", "--allow-simulation"],
        vec!["platform-ids", "--kubeconfig", "/nonexistent/kubeconfig"],
        vec![
            "platform-ids",
            "--verify",
            "--trusted-las-mrenclave",
            "abc",
            "--las",
            "x",
        ],
    ] {
        let o = las_outside_cluster(&args, &[]);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
    // An API server that is down: the list cannot be had at all.
    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--kubeconfig",
            write_kubeconfig(tempfile::tempdir().unwrap().path(), dead)
                .to_str()
                .unwrap(),
            "--timeout-secs",
            "5",
        ],
        &[],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot list the pods"),
        "{}",
        stderr(&o)
    );
}

fn verify_args<'a>(las: &'a [String], mrenclave: &'a str) -> Vec<&'a str> {
    let mut v = vec![
        "platform-ids",
        "--verify",
        "--allow-simulation",
        "--trusted-las-mrenclave",
        mrenclave,
    ];
    for l in las {
        v.push("--las");
        v.push(l);
    }
    v
}

#[test]
fn verify_catches_a_man_in_the_middle_that_swaps_the_key() {
    let (a, b, attacker) = (start_las(&[]), start_las(&[]), start_las(&[]));
    let key = |id: &str| <[u8; 32]>::try_from(hex::decode(id).unwrap()).unwrap();

    // Both LAS straight: verified, complete.
    let both = [addr(a.d.addr), addr(b.d.addr)];
    let o = las_outside_cluster(&verify_args(&both, &a.mrenclave), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), line(&[&a.id, &b.id]));
    assert!(stderr(&o).contains("all 2 LAS verified"), "{}", stderr(&o));

    for (what, tamper, reason) in [
        (
            "swaps the ID in /v1/platform",
            Tamper::SwapPlatformId {
                real: b.id.clone(),
                fake: attacker.id.clone(),
            },
            "platform-id-mismatch",
        ),
        (
            "swaps the key everywhere, evidence bytes included",
            Tamper::SwapKey {
                real: key(&b.id),
                fake: key(&attacker.id),
            },
            "untrusted-las",
        ),
    ] {
        let (mitm, changed) = tampering_proxy(b.d.addr, tamper);
        let las = [addr(a.d.addr), addr(mitm.addr)];
        // Plain mode is fooled: that is what --verify is for.
        let o = las_outside_cluster(&["platform-ids", "--las", &las[0], "--las", &las[1]], &[]);
        assert_eq!(stdout(&o), line(&[&a.id, &attacker.id]), "{what}");

        let o = las_outside_cluster(&verify_args(&las, &a.mrenclave), &[]);
        assert!(
            *changed.lock().unwrap() > 0,
            "{what}: the proxy changed nothing"
        );
        assert_eq!(code(&o), 1, "{what}: {}", stderr(&o));
        assert_eq!(stdout(&o), line(&[&a.id]), "{what}");
        let err = stderr(&o);
        let want = format!(
            "NOT VERIFIED: LAS {} platform ID {}: {reason}: ",
            mitm.addr, attacker.id
        );
        assert!(err.contains(&want), "{what}: want {want:?} in:\n{err}");
        assert!(err.contains("INCOMPLETE: 1 of 2 LAS verified"), "{err}");
    }
}

#[test]
fn verify_catches_a_replayed_answer_for_an_old_nonce() {
    let (a, b) = (start_las(&[]), start_las(&[]));
    let old_nonce = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let old = get(b.d.addr, &format!("/v1/identity?nonce={old_nonce}"));
    assert_eq!(old.status, 200);
    let (mitm, changed) = tampering_proxy(b.d.addr, Tamper::Replay { evidence: old.body });
    let las = [addr(a.d.addr), addr(mitm.addr)];
    let o = las_outside_cluster(&verify_args(&las, &a.mrenclave), &[]);
    assert_eq!(*changed.lock().unwrap(), 1);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(stdout(&o), line(&[&a.id]));
    let err = stderr(&o);
    let want = format!(
        "NOT VERIFIED: LAS {} platform ID {}: untrusted-las: identity evidence answers nonce {old_nonce}, not the one sent",
        mitm.addr, b.id
    );
    assert!(err.contains(&want), "want {want:?} in:\n{err}");
    assert!(err.contains("a replayed answer"), "{err}");
}

#[test]
fn verify_trusts_only_tolerated_simulation_and_trusted_builds() {
    let a = start_las(&[]);
    let las = [addr(a.d.addr)];
    // Simulation evidence without --allow-simulation.
    let o = las_outside_cluster(&["platform-ids", "--verify", "--las", &las[0]], &[]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "platforms: []");
    assert!(
        stderr(&o).contains(&format!(
            "NOT VERIFIED: LAS {} platform ID {}: simulation-not-tolerated",
            las[0], a.id
        )),
        "{}",
        stderr(&o)
    );
    // A LAS build that is not trusted.
    let o = las_outside_cluster(&verify_args(&las, &"ab".repeat(32)), &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("untrusted-las") && stderr(&o).contains("not in trusted_las"),
        "{}",
        stderr(&o)
    );
    // The same trust from a policy file.
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.yaml");
    std::fs::write(&p, format!("security:\n  attestation:\n    tolerate: [simulation]\n    trusted_las:\n      - mrenclave: [\"{}\"]\n", a.mrenclave)).unwrap();
    let o = las_outside_cluster(
        &[
            "platform-ids",
            "--verify",
            "--policy",
            p.to_str().unwrap(),
            "--las",
            &las[0],
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), line(&[&a.id]));
}

const POLICY: &str = "# Session of the payment service.\nname: payments\nversion: \"0.3\"\nsecurity:\n  attestation:\n    tolerate: [simulation]   # test cluster\nservices:\n  - name: db\n    platforms: [2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151]\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n  - name: app\n    command: ./serve --port 8443\n    # the nodes of cluster eu-1\n    platforms:\n      - 2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n";

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn set_platforms_edits_the_policy_in_place() {
    let (a, b) = (start_las(&[]), start_las(&[]));
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("session.yaml");
    std::fs::write(&p, POLICY).unwrap();
    let ps = p.to_str().unwrap();
    let ids = sorted(&[&a.id, &b.id]);
    let want = POLICY.replace(
        "    platforms:\n      - 2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151\n    attestation",
        &format!("    platforms: [{}, {}]\n    attestation", ids[0], ids[1]),
    );
    assert_ne!(want, POLICY);

    // The pipe of the docs: platform-ids | set-platforms.
    let ids_out = las_outside_cluster(
        &[
            "platform-ids",
            "--las",
            &addr(a.d.addr),
            "--las",
            &addr(b.d.addr),
        ],
        &[],
    );
    assert_eq!(code(&ids_out), 0);
    let o = las_with_stdin(
        &[
            "policy",
            "set-platforms",
            "--policy",
            ps,
            "--service",
            "app",
        ],
        &ids_out.stdout,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&p).unwrap(), want);
    assert!(
        stderr(&o).contains("services[app].platforms: 2 IDs (added 2, removed 1)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        files_in(tmp.path()),
        vec!["session.yaml"],
        "no temp file left"
    );

    // Again: nothing to do.
    let o = las_outside_cluster(
        &[
            "policy",
            "set-platforms",
            "--policy",
            ps,
            "--service",
            "app",
            "--ids",
            &line(&[&a.id, &b.id]),
        ],
        &[],
    );
    assert_eq!(code(&o), 0);
    assert!(stderr(&o).contains("file unchanged"), "{}", stderr(&o));

    // The edited policy works: a quote check against it reads the new list.
    let pol = las_verifier::Policy::from_yaml(std::fs::read(&p).unwrap().as_slice()).unwrap();
    assert_eq!(
        pol.service(Some("app"))
            .unwrap()
            .platforms
            .as_ref()
            .unwrap()
            .len(),
        2
    );

    // Errors change nothing: exit 2.
    for (args, msg) in [
        (
            vec!["--service", "web", "--ids", a.id.as_str()],
            "no service `web`",
        ),
        (
            vec!["--service", "app", "--ids", "platforms: []"],
            "no platform IDs",
        ),
        (
            vec!["--service", "app", "--ids", "platforms: [ XYZ]"],
            "`XYZ` is not a platform ID",
        ),
    ] {
        let mut full = vec!["policy", "set-platforms", "--policy", ps];
        full.extend(args);
        let o = las_outside_cluster(&full, &[]);
        assert_eq!(code(&o), 2, "{full:?}");
        assert!(stderr(&o).contains(msg), "{full:?}: {}", stderr(&o));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), want);
    }

    // --dry-run prints and writes nothing.
    let o = las_outside_cluster(
        &[
            "policy",
            "set-platforms",
            "--policy",
            ps,
            "--service",
            "db",
            "--ids",
            &a.id,
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(code(&o), 0);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        want.replace(
            "    platforms: [2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151]",
            &format!("    platforms: [{}]", a.id)
        )
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), want);
}

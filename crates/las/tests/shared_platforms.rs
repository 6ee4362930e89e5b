//! SCONE-7-style sessions (issue 22 item 4): a `platforms` entry `$$SCONE::platform_2$$`
//! backed by a secret imported from another session (`platform_policy.yaml` beside the
//! policy), holding an `INTEL_QE_ID:` entry. `las verify` and the verification service
//! resolve it; the service reloads when the imported session changes. Real LAS daemons and
//! a real `las verifier serve` on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::path::Path;
use std::time::{Duration, Instant};

use las_testkit::fixtures::{APP_MRSIGNER, app_quote_args};
use las_testkit::verifier::{las_attest, verifier_command};
use las_testkit::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn qe_of(p: &SimPlatform) -> String {
    get(p.las.addr, "/v1/platform").json()["tcb_state"]["qe_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn importing_session() -> String {
    format!(
        "version: \"0.3.10\"\nname: app_session\nsecrets:\n  - name: platform_2\n    import:\n      session: platform_policy\n      secret: authorized_platform\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [{MRENCLAVE}]\n      signer: {{mrsigner: {APP_MRSIGNER}, isvprodid: 3, isvsvn_min: 5}}\n    platforms: [$$SCONE::platform_2$$]\n"
    )
}

/// Written as an editor or a ConfigMap update would: a new file renamed over the old one.
fn write_exporting(dir: &Path, qe: &str) {
    let tmp = dir.join(".platform_policy.yaml.tmp");
    std::fs::write(
        &tmp,
        format!(
            "name: platform_policy\nsecrets:\n  - name: authorized_platform\n    kind: ascii\n    value: \"INTEL_QE_ID:{qe}\"\n    export:\n      session: app_session\n"
        ),
    )
    .unwrap();
    std::fs::rename(&tmp, dir.join("platform_policy.yaml")).unwrap();
}

fn verify(p: &SimPlatform, policy: &Path, work: &Path) -> std::process::Output {
    let q = work.join(format!("{}.cose", p.las.addr.port()));
    let las_addr = p.las.addr.to_string();
    let state = p.dir.path().to_str().unwrap();
    let mut args = vec!["quote"];
    args.extend(app_quote_args(&las_addr, state, "c0ffee", MRENCLAVE));
    args.extend(["-o", q.to_str().unwrap()]);
    let o = las(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    las_verify(policy, &q, &las_addr, &["--expect-report-data", "c0ffee"])
}

fn attest(verifier: &str, p: &SimPlatform) -> std::process::Output {
    las_attest(verifier, p, "0123456789abcdef", &[])
}

#[test]
fn an_imported_platform_list_is_resolved_and_reloaded() {
    let (a, b) = (SimPlatform::start(&[]), SimPlatform::start(&[]));
    let (qa, qb) = (qe_of(&a), qe_of(&b));
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, importing_session()).unwrap();
    write_exporting(dir.path(), &qa);

    let o = verify(&a, &policy, work.path());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = verify(&b, &policy, work.path());
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("platform-not-allowed"),
        "{}",
        stdout(&o)
    );
    // --explain shows what the reference resolved to.
    let q = work.path().join(format!("{}.cose", a.las.addr.port()));
    let o = las_verify(&policy, &q, &a.las.addr.to_string(), &["--explain"]);
    assert!(
        stdout(&o).contains(&format!("INTEL_QE_ID:{qa}")),
        "{}",
        stdout(&o)
    );

    // The verification service: the same, and it follows a change of the imported session.
    let state = tempfile::tempdir().unwrap();
    let cmd = verifier_command(&policy, state.path(), &[]);
    let v = Daemon::start_command(cmd);
    let url = format!("http://{}", v.addr);
    let o = attest(&url, &a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The EAR's facts name the LAS's platform by its QE ID.
    let checked = las(&["verify", "--ear", stdout(&o).trim(), "--jwks", &url]);
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    let claims: serde_json::Value = serde_json::from_str(&stdout(&checked)).unwrap();
    let facts = &claims["submods"]["app"]["las.facts"];
    assert_eq!(facts["las_platform"]["qe_id"], qa.as_str(), "{claims}");
    assert_eq!(facts["las_platform"]["simulated"], true);
    assert_eq!(facts["cet_attributes"], 0);
    assert_eq!(attest(&url, &b).status.code(), Some(1));
    let id0 = get(v.addr, "/readyz").json()["policy"]["id"].clone();
    write_exporting(dir.path(), &qb);
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(v.addr, "/readyz").json()["policy"]["id"] == id0 {
        assert!(Instant::now() < deadline, "no reload: {}", v.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(attest(&url, &b).status.code(), Some(0), "{}", v.log());
    assert_eq!(attest(&url, &a).status.code(), Some(1));

    // An imported session that breaks: the policy in force stays, and /readyz says why.
    std::fs::write(
        dir.path().join("platform_policy.yaml"),
        "name: platform_policy\nsecrets: []\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(v.addr, "/readyz").json()["policy"]["reload_error"].is_null() {
        assert!(Instant::now() < deadline, "no reload error: {}", v.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = get(v.addr, "/readyz").json()["policy"]["reload_error"].to_string();
    assert!(err.contains("authorized_platform"), "{err}");
    assert_eq!(attest(&url, &b).status.code(), Some(0));
}

/// A pinned LAS key with a QE-ID entry in the service's platforms: the service needs the
/// LAS's identity evidence to know the machine, and takes it as `las attest` posts it (no
/// outbound fetch: the service runs without --fetch-evidence-from). The pinned key alone
/// names no machine, so a pinned LAS on another machine is refused.
#[test]
fn a_pinned_key_with_a_qe_id_entry_uses_the_posted_evidence() {
    let (a, b) = (SimPlatform::start(&[]), SimPlatform::start(&[]));
    let qa = qe_of(&a);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "security:\n  attestation:\n    tolerate: [simulation]\n    trusted_scone_qe_pubkeys: [{}, {}]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [{MRENCLAVE}]\n      signer: {{mrsigner: {APP_MRSIGNER}, isvprodid: 3, isvsvn_min: 5}}\n    platforms: [INTEL_QE_ID:{qa}]\n",
            a.id, b.id
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let cmd = verifier_command(&policy, state.path(), &[]);
    let v = Daemon::start_command(cmd);
    let url = format!("http://{}", v.addr);
    let o = attest(&url, &a);
    assert_eq!(o.status.code(), Some(0), "{}{}", stderr(&o), v.log());
    let o = attest(&url, &b);
    assert_eq!(o.status.code(), Some(1), "{}{}", stderr(&o), v.log());
    let m = get(v.addr, "/metrics").text();
    // A's posted evidence verified for its pinned key and named its machine: cached.
    assert!(
        m.lines()
            .any(|l| l.starts_with("las_verifier_evidence_total{kind=\"cached\"}")),
        "{m}"
    );
    assert!(
        !m.lines()
            .any(|l| l.starts_with("las_verifier_evidence_fetches_total") && !l.ends_with(" 0")),
        "the service fetched evidence itself:\n{m}"
    );
}

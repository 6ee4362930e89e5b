//! `las platform-ids` finds a release's pods for any release name and nameOverride, and
//! takes its namespace as kubectl does. The fake API server serves exactly the pod labels the
//! chart renders (tests/fixtures/chart-pod-labels.json, checked against the chart by
//! tests/python/test_chart.py) and answers a pod list only for a labelSelector that matches
//! them; real LAS processes answer behind its pod proxy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use las_testkit::fakes::*;
use las_testkit::*;

#[test]
fn any_release_name_and_name_override_is_found() {
    let SimPlatform { las: d, id, .. } = SimPlatform::start(&[]);
    for (release, name_override) in [("las", None), ("prod", None), ("prod", Some("attest"))] {
        let labels = chart_pod_labels(release, name_override);
        let kube = fake_kube_labelled(
            "sgx",
            labels,
            vec![FakePod::running("pod-1", "node-1", d.addr, d.log())],
        );
        let tmp = tempfile::tempdir().unwrap();
        let kc = write_kubeconfig(tmp.path(), kube.addr);
        // The NOTES command of that release.
        let o = las_outside_cluster(
            &[
                "platform-ids",
                "--kubeconfig",
                kc.to_str().unwrap(),
                "--namespace",
                "sgx",
                "--instance",
                release,
            ],
            &[],
        );
        assert_eq!(
            stdout(&o),
            format!("platforms: [ {id}]"),
            "release {release} nameOverride {name_override:?}: {}",
            stderr(&o)
        );
        assert_eq!(o.status.code(), Some(0));
        // Another release's pods are not this one's.
        let o = las_outside_cluster(
            &[
                "platform-ids",
                "--kubeconfig",
                kc.to_str().unwrap(),
                "-n",
                "sgx",
                "--instance",
                "other",
            ],
            &[],
        );
        assert_eq!(stdout(&o), "platforms: []");
        assert_eq!(o.status.code(), Some(1));
    }
}

#[test]
fn the_seed_selector_matches_only_where_name_equals_instance() {
    // What docs/platform-ids.md says: get_platform_ids' name=instance=$INSTANCE selector
    // finds release `las`, and release `prod` only with nameOverride=prod.
    let seed = |i: &str| format!("app.kubernetes.io/name={i},app.kubernetes.io/instance={i}");
    assert!(selector_matches(
        &seed("las"),
        &chart_pod_labels("las", None)
    ));
    assert!(!selector_matches(
        &seed("prod"),
        &chart_pod_labels("prod", None)
    ));
    assert!(!selector_matches(
        &seed("prod"),
        &chart_pod_labels("prod", Some("attest"))
    ));
}

#[test]
fn namespace_flag_then_variable_then_kubeconfig_context_then_default() {
    let SimPlatform { las: d, id, .. } = SimPlatform::start(&[]);
    let kube = fake_kube(
        "sgx",
        "las",
        vec![FakePod::running("pod-1", "node-1", d.addr, d.log())],
    );
    let want = format!("platforms: [ {id}]");
    let tmp = tempfile::tempdir().unwrap();
    let kc = write_kubeconfig_ns(tmp.path(), kube.addr, Some("sgx"));
    let kc = kc.to_str().unwrap();

    // The context's namespace, as kubectl uses it.
    let o = las_outside_cluster(&["platform-ids", "--kubeconfig", kc], &[]);
    assert_eq!(stdout(&o), want, "{}", stderr(&o));
    assert!(
        kube.seen()
            .iter()
            .any(|s| s.starts_with("/api/v1/namespaces/sgx/pods?")),
        "{:?}",
        kube.seen()
    );
    // NAMESPACE wins over the context, the flag over NAMESPACE.
    let o = las_outside_cluster(
        &["platform-ids", "--kubeconfig", kc],
        &[("NAMESPACE", "elsewhere")],
    );
    assert_eq!(stdout(&o), "platforms: []");
    assert!(
        stderr(&o).contains("namespace `elsewhere`"),
        "{}",
        stderr(&o)
    );
    let o = las_outside_cluster(
        &["platform-ids", "--kubeconfig", kc, "-n", "sgx"],
        &[("NAMESPACE", "elsewhere")],
    );
    assert_eq!(stdout(&o), want);
    // INSTANCE is read too; a wrong one finds nothing.
    let o = las_outside_cluster(
        &["platform-ids", "--kubeconfig", kc],
        &[("INSTANCE", "prod")],
    );
    assert_eq!(stdout(&o), "platforms: []");

    // No namespace in the context: `default`.
    let tmp2 = tempfile::tempdir().unwrap();
    let kc2 = write_kubeconfig_ns(tmp2.path(), kube.addr, None);
    let o = las_outside_cluster(
        &["platform-ids", "--kubeconfig", kc2.to_str().unwrap()],
        &[],
    );
    assert!(
        stderr(&o).contains("no pods in namespace `default`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn yaml_output_is_the_json_object() {
    let SimPlatform { las: d, id, .. } = SimPlatform::start(&[]);
    let kube = fake_kube(
        "sgx",
        "las",
        vec![FakePod::running("pod-1", "node-1", d.addr, d.log())],
    );
    let tmp = tempfile::tempdir().unwrap();
    let kc = write_kubeconfig_ns(tmp.path(), kube.addr, Some("sgx"));
    let kc = kc.to_str().unwrap();
    let j = las_outside_cluster(&["platform-ids", "--kubeconfig", kc, "-o", "json"], &[]);
    let y = las_outside_cluster(
        &[
            "platform-ids",
            "--kubeconfig",
            kc,
            "-o",
            "yaml",
            "--timeout",
            "5s",
        ],
        &[],
    );
    assert_eq!(y.status.code(), Some(0), "{}", stderr(&y));
    let from_json: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    let text = String::from_utf8(y.stdout).unwrap();
    assert!(text.contains(&format!("- {id}")), "{text}");
    // The same object: every key and the ID, line by line.
    for key in [
        "platforms:",
        "complete: true",
        "verified: false",
        "las:",
        "failures: []",
    ] {
        assert!(text.contains(key), "{key} missing in\n{text}");
    }
    assert_eq!(from_json["platforms"][0], id.as_str());
    // The old seconds flag is an alias of --timeout.
    let o = las_outside_cluster(
        &["platform-ids", "--kubeconfig", kc, "--timeout-secs", "5"],
        &[],
    );
    assert_eq!(stdout(&o), format!("platforms: [ {id}]"));
}

#[test]
fn direct_mode_port_applies_to_addresses_without_one() {
    let SimPlatform { las: d, id, .. } = SimPlatform::start(&[]);
    let port = d.addr.port().to_string();
    // The helm test hook's form: a bare address and --port.
    for host in ["127.0.0.1", "localhost"] {
        let o = las_outside_cluster(&["platform-ids", "--las", host, "--port", &port], &[]);
        assert_eq!(stdout(&o), format!("platforms: [ {id}]"), "{}", stderr(&o));
    }
    // An address that names its port keeps it.
    let o = las_outside_cluster(
        &["platform-ids", "--las", &d.addr.to_string(), "--port", "1"],
        &[],
    );
    assert_eq!(stdout(&o), format!("platforms: [ {id}]"), "{}", stderr(&o));
}

//! Tests of the Kubernetes source against kube's tower-test mock transport.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::client::Body;
use las_core::PlatformIdentity;
use las_core::crypto::Key128;
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_verifier::Policy;
use serde_json::json;

use super::*;
use crate::collect::Verification;

const NS: &str = "attest";

fn las(seed: u8) -> PlatformIdentity {
    PlatformIdentity::from_seal_key(&Key128::from_bytes([seed; 16]))
}

fn pod(
    name: &str,
    node: &str,
    phase: &str,
    ready: Option<&str>,
    port: Option<i32>,
) -> serde_json::Value {
    let mut conditions = vec![];
    if let Some(r) = ready {
        conditions.push(json!({"type": "Ready", "status": r, "reason": "ContainersNotReady", "message": "containers with unready status: [las]"}));
    }
    let ports = port.map(|p| json!([{"name": "las", "containerPort": p, "protocol": "TCP"}]));
    json!({
        "metadata": {"name": name, "namespace": NS, "labels": {"app.kubernetes.io/name": "las"}},
        "spec": {"nodeName": node, "containers": [
            {"name": "sidecar", "image": "x"},
            {"name": "las", "image": "las", "ports": ports}
        ]},
        "status": {"phase": phase, "conditions": conditions,
            "containerStatuses": if phase == "Pending" {
                json!([{"name": "las", "ready": false, "restartCount": 0, "image": "las", "imageID": "",
                        "state": {"waiting": {"reason": "ContainerCreating"}}}])
            } else { json!([]) }}
    })
}

/// Answers the client's requests from `route` and records every URI.
fn mock(
    route: impl Fn(&str) -> (StatusCode, Vec<u8>) + Send + 'static,
) -> (kube::Client, tokio::task::JoinHandle<Vec<String>>) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            assert_eq!(req.method(), http::Method::GET);
            let uri = req.uri().to_string();
            let (status, body) = route(&uri);
            seen.push(uri);
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(body))
                    .unwrap(),
            );
        }
        seen
    });
    (kube::Client::new(svc, "default"), server)
}

fn list(items: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}),
    )
    .unwrap()
}

fn platform_json(id: &PlatformIdentity) -> Vec<u8> {
    // The whole answer of a LAS (las_core::api::PlatformInfo), as the server sends it.
    serde_json::to_vec(&las_core::api::PlatformInfo {
        platform_id: id.platform_id(),
        mode: las_core::Mode::Sim,
        secure: false,
        las_version: "0.1.0".into(),
        las_mrenclave: "00".repeat(32),
        las_mrsigner: "00".repeat(32),
        las_isvprodid: 0,
        las_isvsvn: 0,
        cpusvn: "00".repeat(16),
        tcb_state: las_core::api::TcbState::default(),
    })
    .unwrap()
}

fn status_503() -> (StatusCode, Vec<u8>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"error trying to reach service: dial tcp 10.1.2.3:18766: connect: connection refused","reason":"ServiceUnavailable","code":503}"#.to_vec(),
    )
}

fn sel(port: Option<u16>) -> PodSelection {
    PodSelection {
        namespace: NS.into(),
        selector: instance_selector("las"),
        port,
    }
}

async fn run(
    items: Vec<serde_json::Value>,
    answers: HashMap<String, (StatusCode, Vec<u8>)>,
    port: Option<u16>,
    opts: Options,
) -> (Collection, Vec<String>) {
    let list = list(items);
    let (client, server) = mock(move |uri| {
        if uri.starts_with(&format!("/api/v1/namespaces/{NS}/pods?")) {
            return (StatusCode::OK, list.clone());
        }
        let path = uri.split('?').next().unwrap();
        answers
            .get(path)
            .cloned()
            .unwrap_or((StatusCode::NOT_FOUND, b"{}".to_vec()))
    });
    let c = collect_pods(&client, &sel(port), &opts).await.unwrap();
    drop(client);
    (c, server.await.unwrap())
}

fn path(pod: &str, port: u16, rest: &str) -> String {
    format!("/api/v1/namespaces/{NS}/pods/{pod}:{port}/proxy/{rest}")
}

#[tokio::test]
async fn lists_by_label_asks_the_pod_proxy_and_falls_back_to_the_log() {
    let (a, b) = (las(1), las(2));
    let mut answers = HashMap::new();
    answers.insert(
        path("las-a", 18766, "v1/platform"),
        (StatusCode::OK, platform_json(&a)),
    );
    answers.insert(path("las-b", 9999, "v1/platform"), status_503());
    answers.insert(
        format!("/api/v1/namespaces/{NS}/pods/las-b/log"),
        (
            StatusCode::OK,
            format!(
                "2026-01-01T00:00:00Z  WARN las: SIMULATION MODE\n2026-01-01T00:00:00Z  INFO las: platform has public key {}\n2026-01-01T00:00:01Z  INFO las: platform has public key {}\n2026-01-01T00:00:01Z  INFO las: listening on http://0.0.0.0:9999\n",
                a.platform_id(),
                b.platform_id()
            )
            .into_bytes(),
        ),
    );
    answers.insert(path("las-e", 18766, "v1/platform"), status_503());
    answers.insert(
        format!("/api/v1/namespaces/{NS}/pods/las-e/log"),
        (StatusCode::OK, b"starting\n".to_vec()),
    );
    let items = vec![
        pod("las-a", "node-1", "Running", Some("True"), None),
        pod("las-b", "node-2", "Running", Some("True"), Some(9999)),
        pod("las-c", "node-3", "Pending", None, None),
        pod("las-d", "node-4", "Running", Some("False"), None),
        pod("las-e", "node-5", "Running", Some("True"), None),
    ];
    let (c, seen) = run(items, answers, None, Options::default()).await;

    // The pod list with the selector of the bash function.
    assert_eq!(
        seen[0],
        format!(
            "/api/v1/namespaces/{NS}/pods?&labelSelector=app.kubernetes.io%2Fcomponent%3Dlas%2Capp.kubernetes.io%2Finstance%3Dlas"
        )
    );
    let mut rest = seen[1..].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        vec![
            path("las-a", 18766, "v1/platform"),
            format!("/api/v1/namespaces/{NS}/pods/las-b/log?&container=las&limitBytes=1048576"),
            path("las-b", 9999, "v1/platform"),
            format!("/api/v1/namespaces/{NS}/pods/las-e/log?&container=las&limitBytes=1048576"),
            path("las-e", 18766, "v1/platform"),
        ],
        "no request for the pods that are not ready"
    );

    let found: Vec<(&str, String, &str)> = c
        .found
        .iter()
        .map(|f| match &f.target {
            Target::Pod { node, .. } => (
                node.as_deref().unwrap(),
                f.platform_id.to_string(),
                f.source.as_str(),
            ),
            Target::Las { .. } => unreachable!(),
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("node-1", a.platform_id().to_string(), "api-proxy"),
            ("node-2", b.platform_id().to_string(), "pod-log"),
        ]
    );
    assert!(
        c.found[1].notes[0].contains("connection refused"),
        "{:?}",
        c.found[1].notes
    );
    let failed: Vec<(String, &str)> = c
        .failures
        .iter()
        .map(|f| (f.target.to_string(), f.kind.as_str()))
        .collect();
    assert_eq!(
        failed,
        vec![
            (format!("pod {NS}/las-c (node node-3)"), "not-running"),
            (format!("pod {NS}/las-d (node node-4)"), "not-ready"),
            (format!("pod {NS}/las-e (node node-5)"), "no-key-in-log"),
        ]
    );
    assert!(
        c.failures[0].detail.contains("phase Pending")
            && c.failures[0].detail.contains("ContainerCreating")
    );
    assert!(
        c.failures[1].detail.contains("ContainersNotReady"),
        "{}",
        c.failures[1].detail
    );
    assert!(!c.complete());
    let mut want = vec![a.platform_id(), b.platform_id()];
    want.sort();
    assert_eq!(c.ids(), want);
}

#[tokio::test]
async fn port_override_and_an_empty_list() {
    let a = las(1);
    let mut answers = HashMap::new();
    answers.insert(
        path("las-a", 7000, "v1/platform"),
        (StatusCode::OK, platform_json(&a)),
    );
    let items = vec![pod("las-a", "n", "Running", Some("True"), Some(9999))];
    let (c, seen) = run(items, answers, Some(7000), Options::default()).await;
    assert!(c.complete(), "{:?}", c.failures);
    assert_eq!(seen[1], path("las-a", 7000, "v1/platform"));

    let (c, _) = run(vec![], HashMap::new(), None, Options::default()).await;
    assert!(c.found.is_empty() && c.failures.is_empty() && !c.complete());
}

#[tokio::test]
async fn a_failing_pod_list_is_an_error() {
    let (client, _server) = mock(|_| {
        (
            StatusCode::FORBIDDEN,
            br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden: User \"x\" cannot list resource \"pods\"","reason":"Forbidden","code":403}"#.to_vec(),
        )
    });
    let e = collect_pods(&client, &sel(None), &Options::default())
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("cannot list the pods in namespace `attest`") && m.contains("forbidden"),
        "{m}"
    );
}

fn evidence_for(id: &PlatformIdentity, nonce: &[u8], now: u64) -> Vec<u8> {
    encode_evidence(
        id,
        &EvidenceClaims {
            kind: EvidenceKind::Sim,
            mode: las_core::Mode::Sim,
            platform_id: id.platform_id(),
            nonce: nonce.to_vec(),
            las_version: "t".into(),
            las_mrenclave: [5; 32],
            las_mrsigner: [6; 32],
            las_isvprodid: 0,
            las_isvsvn: 0,
            cpusvn: [1; 16],
            issued_at: now,
            binding: binding(&id.platform_id(), nonce),
            qe_id: None,
        },
    )
    .unwrap()
}

const NOW: u64 = 1_800_000_000;

fn verified(trusted: &str) -> Options {
    let y = format!(
        "security:\n  attestation:\n    tolerate: [simulation]\n    trusted_las:\n      - mrenclave: [\"{trusted}\"]\n"
    );
    Options {
        verify: Some(Verification {
            policy: Policy::from_yaml(y.as_bytes()).unwrap(),
            clock: || NOW,
            dcap_collateral: None,
        }),
        ..Options::default()
    }
}

#[tokio::test]
async fn verified_mode_sends_a_nonce_through_the_proxy_and_never_reads_logs() {
    let ids = Arc::new([las(1), las(2), las(3)]);
    let old_nonce = [0x42u8; 32];
    let replayed = evidence_for(&ids[1], &old_nonce, NOW);
    let nonces = Arc::new(Mutex::new(Vec::new()));
    let items = vec![
        pod("las-a", "n1", "Running", Some("True"), None),
        pod("las-b", "n2", "Running", Some("True"), None),
        pod("las-c", "n3", "Running", Some("True"), None),
    ];
    let list = list(items);
    let (ids2, nonces2) = (ids.clone(), nonces.clone());
    let (client, server) = mock(move |uri| {
        if uri.contains("/pods?") {
            return (StatusCode::OK, list.clone());
        }
        let i = ["las-a", "las-b", "las-c"]
            .iter()
            .position(|p| uri.contains(&format!("/pods/{p}:18766/proxy/")))
            .unwrap();
        if uri.ends_with("/proxy/v1/platform") {
            // las-c claims las-a's key.
            let claim = if i == 2 { &ids2[0] } else { &ids2[i] };
            return (StatusCode::OK, platform_json(claim));
        }
        let nonce = hex::decode(uri.split("?nonce=").nth(1).unwrap()).unwrap();
        nonces2.lock().unwrap().push(nonce.clone());
        match i {
            0 | 2 => (StatusCode::OK, evidence_for(&ids2[i], &nonce, NOW)),
            _ => (StatusCode::OK, replayed.clone()),
        }
    });
    let c = collect_pods(&client, &sel(None), &verified(&"05".repeat(32)))
        .await
        .unwrap();
    drop(client);
    let seen = server.await.unwrap();
    assert!(!seen.iter().any(|u| u.contains("/log")), "{seen:?}");
    assert_eq!(c.found.len(), 1, "{:?}", c.failures);
    assert_eq!(c.found[0].platform_id, ids[0].platform_id());
    assert_eq!(c.found[0].source, Source::Verified);
    let kinds: Vec<&str> = c.failures.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, vec!["untrusted-las", "platform-id-mismatch"]);
    assert!(
        c.failures[0].detail.contains("replayed"),
        "{}",
        c.failures[0].detail
    );
    assert_eq!(c.failures[0].platform_id, Some(ids[1].platform_id()));
    // A fresh 32-byte random nonce per LAS.
    let n = nonces.lock().unwrap().clone();
    assert_eq!(n.len(), 3);
    assert!(n.iter().all(|x| x.len() == 32 && x.as_slice() != old_nonce));
    assert!(n[0] != n[1] && n[1] != n[2] && n[0] != n[2]);

    // An LAS build that is not trusted.
    let (client, _s) = mock({
        let ids = ids.clone();
        let list = super::tests::list(vec![pod("las-a", "n1", "Running", Some("True"), None)]);
        move |uri| {
            if uri.contains("/pods?") {
                (StatusCode::OK, list.clone())
            } else if uri.ends_with("/v1/platform") {
                (StatusCode::OK, platform_json(&ids[0]))
            } else {
                let nonce = hex::decode(uri.split("?nonce=").nth(1).unwrap()).unwrap();
                (StatusCode::OK, evidence_for(&ids[0], &nonce, NOW))
            }
        }
    });
    let c = collect_pods(&client, &sel(None), &verified(&"07".repeat(32)))
        .await
        .unwrap();
    assert_eq!(c.failures.len(), 1);
    assert!(
        c.failures[0].detail.contains("not in trusted_las"),
        "{}",
        c.failures[0].detail
    );
}

#[test]
fn readiness() {
    let p = |v: serde_json::Value| serde_json::from_value::<Pod>(v).unwrap();
    assert!(pod_readiness(&p(pod("a", "n", "Running", Some("True"), None))).is_ok());
    let (k, d) = pod_readiness(&p(pod("a", "n", "Running", None, None))).unwrap_err();
    assert_eq!(
        (k, d.as_str()),
        (FailureKind::NotReady, "no Ready condition yet")
    );
    let (k, _) = pod_readiness(&p(pod("a", "n", "Succeeded", Some("False"), None))).unwrap_err();
    assert_eq!(k, FailureKind::NotRunning);
    let mut t = pod("a", "n", "Running", Some("True"), None);
    t["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    assert_eq!(pod_readiness(&p(t)).unwrap_err().1, "terminating");
    assert_eq!(
        las_port(&p(pod("a", "n", "Running", None, Some(1234)))),
        1234
    );
    assert_eq!(las_port(&p(pod("a", "n", "Running", None, None))), 18766);
}

#[test]
fn the_id_in_every_log_format() {
    let a = "2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151";
    let b = "126C8098408FEB2002F5EB8B9E6C2AE26197E3617875633C5BD4EB4454278C34";
    let id = |s: &str| Some(PlatformId::parse(s).unwrap());
    // The original LAS.
    let scone = format!("[10000:INFO@25.03.2021/10:53:17] STARTER: SCONE QE has public key {a}\n");
    assert_eq!(platform_id_from_log(&scone), id(a));
    // Ours, text: the 8th field; the last line wins.
    let ours = format!(
        "2026-01-01T00:00:00.000000Z  INFO las: platform has public key {b}\n{scone}2026-01-01T00:00:00.000000Z  INFO las: platform has public key {}\nlater\n",
        b.to_lowercase()
    );
    assert_eq!(platform_id_from_log(&ours), id(b));
    // Ours, JSON (flattened and not).
    let j = format!(
        "{{\"timestamp\":\"x\",\"level\":\"INFO\",\"message\":\"platform has public key {a}\",\"platform_id\":\"{a}\",\"target\":\"las\"}}\n"
    );
    assert_eq!(platform_id_from_log(&j), id(a));
    let j = format!(
        "{{\"level\":\"INFO\",\"fields\":{{\"message\":\"platform has public key {b}\"}}}}"
    );
    assert_eq!(platform_id_from_log(&j), id(b));
    assert_eq!(
        platform_id_from_log("no key here\npublic key unknown\n"),
        None
    );
}

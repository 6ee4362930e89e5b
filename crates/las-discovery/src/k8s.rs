//! Kubernetes as the source: list the LAS pods by label, ask each running pod's LAS through
//! the API server's pod proxy, fall back to the pod's log.
//!
//! Requests (what RBAC must allow: `list pods`, `get pods/proxy`, `get pods/log`):
//! - `GET /api/v1/namespaces/NS/pods?labelSelector=SELECTOR`
//! - `GET /api/v1/namespaces/NS/pods/NAME:PORT/proxy/v1/platform`
//!   (verified mode: `.../proxy/v1/identity?nonce=HEX` too)
//! - `GET /api/v1/namespaces/NS/pods/NAME/log?container=las&limitBytes=N` (plain mode, when
//!   the proxy fails)

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use las_core::PlatformId;

use crate::DiscoveryError;
use crate::addr::DEFAULT_PORT;
use crate::collect::{
    Collection, Failure, FailureKind, Found, Options, ProbeError, Source, Target, probe_one,
};
use crate::fetch::Transport;

/// Name of the LAS container and of its port in the chart.
pub const LAS_CONTAINER: &str = "las";
/// Most log bytes read from the start of a pod's log (the key line comes first).
pub const MAX_LOG_BYTES: i64 = 1024 * 1024;

/// Which pods, where.
#[derive(Debug, Clone)]
pub struct PodSelection {
    /// Namespace of the LAS pods.
    pub namespace: String,
    /// Label selector.
    pub selector: String,
    /// The LAS port in the pods; `None`: the container port named `las`, else 18766.
    pub port: Option<u16>,
}

/// The selector of the chart's pods (and of the bash function it replaces):
/// `app.kubernetes.io/name=INSTANCE,app.kubernetes.io/instance=INSTANCE`.
pub fn instance_selector(instance: &str) -> String {
    format!("app.kubernetes.io/name={instance},app.kubernetes.io/instance={instance}")
}

/// Where the Kubernetes client configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings<'a> {
    /// A kubeconfig file; `None`: `$KUBECONFIG`, `~/.kube/config`, else in-cluster.
    pub kubeconfig: Option<&'a Path>,
    /// A context of the kubeconfig; `None`: its current context.
    pub context: Option<&'a str>,
    /// Connect/read/write timeout of API requests.
    pub timeout: Duration,
}

/// A Kubernetes client from a kubeconfig file or the in-cluster service account.
pub async fn client(s: &ClientSettings<'_>) -> Result<kube::Client, DiscoveryError> {
    let opts = KubeConfigOptions {
        context: s.context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let kc = |e: String| DiscoveryError::KubeConfig(e);
    let config = match (s.kubeconfig, s.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| kc(format!("reading {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &opts)
                .await
                .map_err(|e| kc(format!("{}: {e}", path.display())))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&opts)
            .await
            .map_err(|e| kc(e.to_string()))?,
        (None, None) => kube::Config::infer().await.map_err(|e| kc(e.to_string()))?,
    };
    build_client(config, s.timeout)
}

/// The client stack of `kube::Client::try_from` minus two things a one-shot CLI does not
/// want: retries of 503 answers (a pod proxy that cannot reach its LAS answers 503 and
/// should fail fast), and the ERROR log line kube's trace layer writes for every 5xx
/// (each failure is reported once, by the caller). Deadlines are the caller's.
fn build_client(config: kube::Config, timeout: Duration) -> Result<kube::Client, DiscoveryError> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use kube::client::ConfigExt;
    use tower::ServiceBuilder;

    let kc = |e: kube::Error| DiscoveryError::KubeConfig(format!("cannot build the client: {e}"));
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    http.set_nodelay(true);
    let https = config
        .rustls_https_connector_with_connector(http)
        .map_err(kc)?;
    let hyper_client: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(kc)?)
        .layer(config.extra_headers_layer().map_err(kc)?)
        .map_err(tower::BoxError::from)
        .service(hyper_client);
    Ok(kube::Client::new(service, config.default_namespace))
}

/// Whether a pod can answer: running, not terminating, ready.
pub fn pod_readiness(pod: &Pod) -> Result<(), (FailureKind, String)> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Err((FailureKind::NotRunning, "terminating".into()));
    }
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    let waiting: Vec<String> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            Some(format!(
                "container {} waiting: {}",
                c.name,
                w.reason.as_deref().unwrap_or("unknown reason")
            ))
        })
        .collect();
    let why = |head: String| {
        let mut parts = vec![head];
        if let Some(m) = status.and_then(|s| s.message.as_deref()) {
            parts.push(m.to_owned());
        }
        parts.extend(waiting.iter().cloned());
        parts.join("; ")
    };
    if phase != "Running" {
        return Err((FailureKind::NotRunning, why(format!("phase {phase}"))));
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == "True" => Ok(()),
        Some(c) => {
            let mut head = format!("Ready is {}", c.status);
            if let Some(r) = &c.reason {
                head.push_str(&format!(" ({r})"));
            }
            if let Some(m) = &c.message {
                head.push_str(&format!(": {m}"));
            }
            Err((FailureKind::NotReady, why(head)))
        }
        None => Err((FailureKind::NotReady, why("no Ready condition yet".into()))),
    }
}

/// The LAS container of a pod: the one named `las`, else the first.
fn las_container(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::Container> {
    let cs = &pod.spec.as_ref()?.containers;
    cs.iter().find(|c| c.name == LAS_CONTAINER).or(cs.first())
}

/// The LAS port of a pod: the container port named `las`, else 18766.
pub fn las_port(pod: &Pod) -> u16 {
    pod.spec
        .as_ref()
        .into_iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(LAS_CONTAINER))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(DEFAULT_PORT)
}

/// The platform ID in a LAS log: the last line with `public key` that carries one. Text
/// logs (ours and the original LAS's) have it as the 8th whitespace-separated field; JSON
/// logs carry a `platform_id` field.
pub fn platform_id_from_log(log: &str) -> Option<PlatformId> {
    log.lines()
        .rev()
        .filter(|l| l.contains("public key"))
        .find_map(id_in_line)
}

fn id_in_line(line: &str) -> Option<PlatformId> {
    let t = line.trim();
    if t.starts_with('{')
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(t)
    {
        let field = v
            .get("platform_id")
            .or_else(|| v.get("fields").and_then(|f| f.get("platform_id")))
            .and_then(|x| x.as_str())
            .and_then(|s| PlatformId::parse(s).ok());
        if field.is_some() {
            return field;
        }
        let msg = v
            .get("message")
            .or_else(|| v.get("fields").and_then(|f| f.get("message")))
            .and_then(|x| x.as_str())?;
        return msg
            .split_whitespace()
            .find_map(|w| PlatformId::parse(w).ok());
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    words
        .get(7)
        .and_then(|w| PlatformId::parse(w).ok())
        .or_else(|| words.iter().find_map(|w| PlatformId::parse(w).ok()))
}

/// Lists the LAS pods and collects their IDs. Fails as a whole only when the pods cannot be
/// listed; every pod that gives no ID is a [`Failure`].
pub async fn collect_pods(
    client: &kube::Client,
    sel: &PodSelection,
    opts: &Options,
) -> Result<Collection, DiscoveryError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &sel.namespace);
    let list = tokio::time::timeout(
        opts.timeout,
        api.list(&ListParams::default().labels(&sel.selector)),
    )
    .await
    .map_err(|_| format!("no answer within {} s", opts.timeout.as_secs()))
    .and_then(|r| r.map_err(|e| e.to_string()))
    .map_err(|message| DiscoveryError::ListPods {
        namespace: sel.namespace.clone(),
        selector: sel.selector.clone(),
        message,
    })?;
    let results: Vec<Result<Found, Failure>> = futures::stream::iter(list.items)
        .map(|pod| probe_pod(client, &api, sel, opts, pod))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut c = Collection::default();
    for r in results {
        c.push(r);
    }
    c.sort();
    Ok(c)
}

async fn probe_pod(
    client: &kube::Client,
    api: &Api<Pod>,
    sel: &PodSelection,
    opts: &Options,
    pod: Pod,
) -> Result<Found, Failure> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let target = Target::Pod {
        namespace: sel.namespace.clone(),
        name: name.clone(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
    };
    let fail = |kind, detail| Failure {
        target: target.clone(),
        kind,
        platform_id: None,
        detail,
    };
    if let Err((kind, detail)) = pod_readiness(&pod) {
        return Err(fail(kind, detail));
    }
    let t = Transport::PodProxy {
        client: client.clone(),
        namespace: sel.namespace.clone(),
        pod: name.clone(),
        port: sel.port.unwrap_or_else(|| las_port(&pod)),
    };
    let proxied = probe_one(&t, opts).await;
    let err = match proxied {
        Ok((platform_id, source, notes)) => {
            return Ok(Found {
                target,
                platform_id,
                source,
                notes,
            });
        }
        Err(e) => e,
    };
    // A log line proves nothing: no fallback in verified mode.
    if opts.verify.is_some() {
        return Err(err.at(target));
    }
    let lp = LogParams {
        container: las_container(&pod).map(|c| c.name.clone()),
        limit_bytes: Some(MAX_LOG_BYTES),
        ..LogParams::default()
    };
    let log = match tokio::time::timeout(opts.timeout, api.logs(&name, &lp)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            return Err(ProbeError {
                detail: format!("{}; reading the pod log failed too: {e}", err.detail),
                ..err
            }
            .at(target));
        }
        Err(_) => {
            return Err(ProbeError {
                detail: format!(
                    "{}; reading the pod log failed too: no answer within {} s",
                    err.detail,
                    opts.timeout.as_secs()
                ),
                ..err
            }
            .at(target));
        }
    };
    match platform_id_from_log(&log) {
        Some(platform_id) => Ok(Found {
            target,
            platform_id,
            source: Source::PodLog,
            notes: vec![format!(
                "{}; the ID was read from the pod's log instead",
                err.detail
            )],
        }),
        None => Err(fail(
            FailureKind::NoKeyInLog,
            format!(
                "{}; the pod's log has no `public key` line with an ID",
                err.detail
            ),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
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
            platform_id: id.platform_id().to_string(),
            mode: "sim".into(),
            secure: false,
            las_version: "0.1.0".into(),
            las_mrenclave: "00".repeat(32),
            las_mrsigner: "00".repeat(32),
            las_isvprodid: 0,
            las_isvsvn: 0,
            cpusvn: "00".repeat(16),
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
                "/api/v1/namespaces/{NS}/pods?&labelSelector=app.kubernetes.io%2Fname%3Dlas%2Capp.kubernetes.io%2Finstance%3Dlas"
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
            },
        )
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
        let (k, _) =
            pod_readiness(&p(pod("a", "n", "Succeeded", Some("False"), None))).unwrap_err();
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
        let scone =
            format!("[10000:INFO@25.03.2021/10:53:17] STARTER: SCONE QE has public key {a}\n");
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
}

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

/// The label value the chart gives every LAS pod as `app.kubernetes.io/component`, for every
/// release name and `nameOverride` (charts/las/templates/_helpers.tpl, "las.podLabels").
pub const LAS_COMPONENT: &str = "las";

/// The selector of the chart's LAS pods of release `instance`:
/// `app.kubernetes.io/component=las,app.kubernetes.io/instance=INSTANCE`. Unlike the seed's
/// bash function (`app.kubernetes.io/name=INSTANCE,...`), it does not depend on the release
/// being named like the chart, nor on `nameOverride`.
pub fn instance_selector(instance: &str) -> String {
    format!("app.kubernetes.io/component={LAS_COMPONENT},app.kubernetes.io/instance={instance}")
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
    let config = match (s.kubeconfig, s.context) {
        (Some(path), _) => {
            let in_file = |source| DiscoveryError::KubeConfigFile {
                path: path.to_path_buf(),
                source,
            };
            // Read the file ourselves: kube's read error repeats the path in odd quotes.
            let text =
                std::fs::read_to_string(path).map_err(|source| DiscoveryError::KubeConfigRead {
                    path: path.to_path_buf(),
                    source,
                })?;
            let file = Kubeconfig::from_yaml(&text).map_err(in_file)?;
            kube::Config::from_custom_kubeconfig(file, &opts)
                .await
                .map_err(in_file)?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&opts)
            .await
            .map_err(DiscoveryError::KubeConfig)?,
        (None, None) => kube::Config::infer()
            .await
            .map_err(DiscoveryError::KubeInfer)?,
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

    let kc = DiscoveryError::KubeClient;
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

/// The QE ID in a LAS log: what follows `Intel QE ID: ` on the last such line (in text
/// logs the last word, SCONE's `grep 'Intel QE ID' | tail -n 1 | awk '{print $NF}'`; in
/// JSON logs inside the message), simulated when the LAS logged a simulated TCB state.
pub fn qe_id_from_log(log: &str) -> Option<crate::collect::PlatformQe> {
    let line = log.lines().rev().find(|l| l.contains("Intel QE ID: "))?;
    let after = line.split("Intel QE ID: ").nth(1)?;
    let word: String = after.chars().take_while(char::is_ascii_hexdigit).collect();
    let qe_id = las_core::tcb::QeId::parse_hex(&word).ok()?;
    Some(crate::collect::PlatformQe {
        qe_id,
        simulated: log.contains("TCB state (SIMULATED)"),
    })
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
    Ok(Collection::from_results(results))
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
        Ok((platform_id, qe_id, source, notes)) => {
            return Ok(Found {
                target,
                platform_id,
                source,
                notes,
                qe_id,
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
            qe_id: qe_id_from_log(&log),
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
mod tests;

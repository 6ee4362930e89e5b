//! Loopback stand-ins for what `las platform-ids` talks to besides real LAS processes: a
//! small fake Kubernetes API server (pod list, pod proxy to real LAS, pod log) and a
//! tampering HTTP proxy (the man in the middle). Each serves one request per connection
//! (`Connection: close`) on 127.0.0.1:0 and stops when dropped. A hand-written server (the
//! fake must answer exactly what a test scripts, tampering included); its upstream requests
//! go through [`mod@crate::http`].
#![allow(
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::http::{Resp, http};

/// A request as the fake server saw it.
pub struct Request {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
}

impl Request {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap()
    }
    /// The decoded value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else if b[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// An answer to write back.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(status: u16, v: serde_json::Value) -> Answer {
        Answer {
            status,
            content_type: "application/json".into(),
            body: serde_json::to_vec(&v).unwrap(),
        }
    }
    pub fn from_resp(r: &Resp) -> Answer {
        Answer {
            status: r.status,
            content_type: r.header("content-type").unwrap_or("").to_string(),
            body: r.body.clone(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Answer + Send + Sync;

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1:0.
pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, seen) = (handler.clone(), seen2.clone());
                std::thread::spawn(move || serve_one(conn, &*h, &seen));
            }
        });
        Server {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut conn: TcpStream, h: &Handler, seen: &Mutex<Vec<String>>) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if raw.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&raw).to_string();
    let mut first = head.lines().next().unwrap_or("").split(' ');
    let req = Request {
        method: first.next().unwrap_or("").to_string(),
        target: first.next().unwrap_or("").to_string(),
    };
    seen.lock().unwrap().push(req.target.clone());
    let a = h(&req);
    let reason = match a.status {
        200 => "OK",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "X",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        a.status,
        a.content_type,
        a.body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&a.body);
}

/// A pod of the fake cluster.
#[derive(Clone)]
pub struct FakePod {
    pub name: String,
    pub node: String,
    pub phase: String,
    pub ready: bool,
    /// The container port named `las`.
    pub port: u16,
    /// The real LAS the pod proxy forwards to; `None`: the proxy fails (connection refused).
    pub las: Option<SocketAddr>,
    /// What `kubectl logs` would print.
    pub log: String,
    /// Rewrites /v1/platform answers of this pod (a lying cluster): (real ID, fake ID).
    pub swap_platform_id: Option<(String, String)>,
}

impl FakePod {
    pub fn running(name: &str, node: &str, las: SocketAddr, log: String) -> FakePod {
        FakePod {
            name: name.into(),
            node: node.into(),
            phase: "Running".into(),
            ready: true,
            port: las.port(),
            las: Some(las),
            log,
            swap_platform_id: None,
        }
    }

    fn json(&self, ns: &str, labels: &serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "metadata": {"name": self.name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": self.node, "containers": [{"name": "las", "image": "las",
                "ports": [{"name": "las", "containerPort": self.port, "protocol": "TCP"}]}]},
            "status": {"phase": self.phase, "conditions": [
                {"type": "Ready", "status": if self.ready { "True" } else { "False" },
                 "reason": if self.ready { "" } else { "ContainersNotReady" }}]}
        })
    }
}

fn status(code: u16, reason: &str, message: &str) -> Answer {
    Answer::json(
        code,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}),
    )
}

/// The pod template labels the chart renders for a release (and nameOverride), from
/// tests/fixtures/chart-pod-labels.json. That file is written from the rendered chart, and
/// tests/python/test_chart.py fails when it no longer matches what the chart renders, so
/// these are never hand-written label sets.
pub fn chart_pod_labels(release: &str, name_override: Option<&str>) -> serde_json::Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../las/tests/fixtures/chart-pod-labels.json");
    let all: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    all["renderings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["release"] == release && r["values"]["nameOverride"].as_str() == name_override)
        .unwrap_or_else(|| {
            panic!(
                "{} has no rendering of release {release} with nameOverride {name_override:?}",
                path.display()
            )
        })["labels"]
        .clone()
}

/// Whether `labels` match a label selector as the API server reads it: comma-separated
/// `k=v`, `k==v`, `k!=v`, `k` (exists) and `!k` (does not exist).
pub fn selector_matches(selector: &str, labels: &serde_json::Value) -> bool {
    let get = |k: &str| labels.get(k.trim()).and_then(|v| v.as_str());
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            get(k) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            get(k) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            get(k).is_none()
        } else {
            get(term).is_some()
        }
    })
}

/// The fake API server: namespace `ns`, pods labelled as the chart labels the pods of
/// `release` (see [`chart_pod_labels`]). A pod list answers with the pods whose labels
/// match the request's labelSelector, as the API server does.
pub fn fake_kube(ns: &str, release: &str, pods: Vec<FakePod>) -> Server {
    fake_kube_labelled(ns, chart_pod_labels(release, None), pods)
}

/// [`fake_kube`] with the given pod labels.
pub fn fake_kube_labelled(ns: &str, labels: serde_json::Value, pods: Vec<FakePod>) -> Server {
    let ns = ns.to_string();
    Server::start(move |r| {
        if r.method != "GET" {
            return status(405, "MethodNotAllowed", "GET only");
        }
        let pods_prefix = format!("/api/v1/namespaces/{ns}/pods");
        let path = r.path();
        let is_list = path
            .strip_prefix("/api/v1/namespaces/")
            .and_then(|p| p.strip_suffix("/pods"))
            .is_some_and(|n| !n.contains('/'));
        if is_list {
            // Only this namespace and the chart's selector find the pods; any other
            // namespace has none, as on a real cluster.
            let items: Vec<serde_json::Value> = if path == pods_prefix
                && selector_matches(&r.query("labelSelector").unwrap_or_default(), &labels)
            {
                pods.iter().map(|p| p.json(&ns, &labels)).collect()
            } else {
                vec![]
            };
            return Answer::json(
                200,
                serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}),
            );
        }
        let Some(rest) = path.strip_prefix(&format!("{pods_prefix}/")) else {
            return status(404, "NotFound", "no such resource");
        };
        let (pod_part, sub) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some(proxied) = sub.strip_prefix("proxy/") {
            // pods/NAME:PORT/proxy/PATH
            let Some((name, port)) = pod_part.split_once(':') else {
                return status(400, "BadRequest", "pod proxy without a port");
            };
            let Some(p) = pods.iter().find(|p| p.name == name) else {
                return status(404, "NotFound", &format!("pods \"{name}\" not found"));
            };
            if port != p.port.to_string() {
                return status(503, "ServiceUnavailable", "no such port");
            }
            let Some(las) = p.las else {
                return status(
                    503,
                    "ServiceUnavailable",
                    "error trying to reach service: dial tcp 10.1.2.3:18766: connect: connection refused",
                );
            };
            let mut target = format!("/{proxied}");
            if let Some((_, q)) = r.target.split_once('?') {
                target.push('?');
                target.push_str(q);
            }
            let resp = http(las, "GET", &target, &[], b"");
            let mut a = Answer::from_resp(&resp);
            if let Some((real, fake)) = &p.swap_platform_id
                && proxied == "v1/platform"
            {
                a.body = String::from_utf8(a.body)
                    .unwrap()
                    .replace(real, fake)
                    .into_bytes();
            }
            return a;
        }
        if sub == "log" {
            let Some(p) = pods.iter().find(|p| p.name == pod_part) else {
                return status(404, "NotFound", "no such pod");
            };
            return Answer {
                status: 200,
                content_type: "text/plain".into(),
                body: p.log.clone().into_bytes(),
            };
        }
        status(404, "NotFound", "no such resource")
    })
}

/// A kubeconfig for the fake server (plain HTTP, no credentials).
pub fn write_kubeconfig(dir: &Path, server: SocketAddr) -> std::path::PathBuf {
    write_kubeconfig_ns(dir, server, None)
}

/// A kubeconfig for the fake server whose context names `namespace` (as
/// `kubectl config set-context --current --namespace NS` writes it).
pub fn write_kubeconfig_ns(
    dir: &Path,
    server: SocketAddr,
    namespace: Option<&str>,
) -> std::path::PathBuf {
    let p = dir.join("kubeconfig");
    let ns = namespace
        .map(|n| format!("    namespace: {n}\n"))
        .unwrap_or_default();
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{server}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n{ns}    user: nobody\ncurrent-context: fake\nusers:\n- name: nobody\n  user: {{}}\n"
        ),
    )
    .unwrap();
    p
}

/// What the man in the middle does to the answers of one LAS.
pub enum Tamper {
    /// Replace the LAS's ID by another in `GET /v1/platform` only.
    SwapPlatformId { real: String, fake: String },
    /// Replace the LAS's key by another everywhere: in `/v1/platform` and in the bytes of
    /// the identity evidence.
    SwapKey { real: [u8; 32], fake: [u8; 32] },
    /// Answer every `/v1/identity` with this evidence, recorded earlier for another nonce.
    Replay { evidence: Vec<u8> },
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(hay.len());
    let (mut i, mut n) = (0, 0);
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
            n += 1;
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    (out, n)
}

/// A man in the middle in front of the LAS at `upstream`. Records how many answers it
/// changed, so a test can prove the tampering happened.
pub fn tampering_proxy(upstream: SocketAddr, tamper: Tamper) -> (Server, Arc<Mutex<usize>>) {
    let changed = Arc::new(Mutex::new(0usize));
    let c2 = changed.clone();
    let s = Server::start(move |r| {
        let path = r.path().to_string();
        if let Tamper::Replay { evidence } = &tamper
            && path == "/v1/identity"
        {
            *c2.lock().unwrap() += 1;
            return Answer {
                status: 200,
                content_type: "application/cose; cose-type=\"cose-sign1\"".into(),
                body: evidence.clone(),
            };
        }
        let resp = http(upstream, "GET", &r.target, &[], b"");
        let mut a = Answer::from_resp(&resp);
        match &tamper {
            Tamper::SwapPlatformId { real, fake } if path == "/v1/platform" => {
                a.body = String::from_utf8(a.body)
                    .unwrap()
                    .replace(real, fake)
                    .into_bytes();
                *c2.lock().unwrap() += 1;
            }
            Tamper::SwapKey { real, fake } => {
                let (body, n) = if path == "/v1/platform" {
                    replace_all(
                        &a.body,
                        hex::encode_upper(real).as_bytes(),
                        hex::encode_upper(fake).as_bytes(),
                    )
                } else {
                    replace_all(&a.body, real, fake)
                };
                assert!(n > 0, "the key is not in the answer to {path}");
                a.body = body;
                *c2.lock().unwrap() += 1;
            }
            _ => {}
        }
        a
    });
    (s, changed)
}

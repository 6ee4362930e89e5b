//! GET requests to one LAS, either directly over TCP or through the Kubernetes API server's
//! pod proxy, with a deadline and a cap on the answer's size.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use las_core::PlatformId;

use crate::addr::LasAddr;

/// Largest answer read from a LAS (bytes); identity evidence of a hardware LAS carries a
/// DCAP quote and stays far below this.
pub const MAX_ANSWER: usize = 256 * 1024;

/// Why a request to a LAS failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No connection or a reset (hyper's error; the message is its whole cause chain on
    /// one line, so it is not also returned by `source()`). Shared: failures are cloned
    /// into reports.
    #[error("{}", error_chain(.0.as_ref()))]
    Unreachable(std::sync::Arc<hyper_util::client::legacy::Error>),
    /// The Kubernetes API server (pod proxy) could not be asked.
    #[error("API server: {0}")]
    ApiServer(#[source] std::sync::Arc<kube::Error>),
    /// The answer broke off while being read.
    #[error("reading the answer: {0}")]
    Read(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync>),
    /// No complete answer within the deadline.
    #[error("no answer within {0} s")]
    Timeout(u64),
    /// An HTTP error status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body (for the operator).
        body: String,
    },
    /// The request could not be built (a host that is no URI authority).
    #[error("bad request: {0}")]
    Request(#[source] std::sync::Arc<http::Error>),
    /// The answer is larger than [`MAX_ANSWER`].
    #[error("answer larger than {MAX_ANSWER} bytes")]
    TooLarge,
    /// The answer is not the JSON a LAS sends (`what`: the request).
    #[error("{what}: not the JSON of a LAS: {source}")]
    NotJson {
        /// The request, e.g. `GET /v1/platform`.
        what: &'static str,
        /// The JSON error (it names the field: an unknown mode, a malformed platform ID).
        source: std::sync::Arc<serde_json::Error>,
    },
    /// Identity evidence larger than a token can be (its size).
    #[error("identity evidence of {0} bytes is larger than {max}", max = las_core::MAX_TOKEN_SIZE)]
    EvidenceTooLarge(usize),
}

impl FetchError {
    /// Whether the LAS answered, but not as a LAS answers (as opposed to not answering).
    pub fn is_bad_answer(&self) -> bool {
        matches!(
            self,
            FetchError::Request(_)
                | FetchError::TooLarge
                | FetchError::NotJson { .. }
                | FetchError::EvidenceTooLarge(_)
        )
    }
}

/// How to reach one LAS.
#[derive(Clone)]
pub enum Transport {
    /// Straight to the LAS over TCP.
    Direct {
        /// Shared HTTP client.
        client: HttpClient<HttpConnector, Empty<Bytes>>,
        /// The LAS.
        addr: LasAddr,
    },
    /// Through the API server: `/api/v1/namespaces/NS/pods/NAME:PORT/proxy/PATH`.
    PodProxy {
        /// Kubernetes client.
        client: kube::Client,
        /// The pod's namespace.
        namespace: String,
        /// The pod's name.
        pod: String,
        /// The LAS's container port.
        port: u16,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Direct { addr, .. } => write!(f, "Direct({addr})"),
            Transport::PodProxy {
                namespace,
                pod,
                port,
                ..
            } => write!(f, "PodProxy({namespace}/{pod}:{port})"),
        }
    }
}

/// An HTTP client for direct requests to LAS instances.
pub fn http_client(connect_timeout: Duration) -> HttpClient<HttpConnector, Empty<Bytes>> {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(connect_timeout));
    c.set_nodelay(true);
    HttpClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(c)
}

/// The API server path of `path_and_query` on the LAS in pod `pod` (port `port`).
pub fn pod_proxy_path(namespace: &str, pod: &str, port: u16, path_and_query: &str) -> String {
    let rest = path_and_query.trim_start_matches('/');
    format!("/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{rest}")
}

impl Transport {
    /// GET `path_and_query` (starting with `/`) and return the body of a 2xx answer.
    pub async fn get(&self, path_and_query: &str, timeout: Duration) -> Result<Bytes, FetchError> {
        match tokio::time::timeout(timeout, self.get_inner(path_and_query)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(timeout.as_secs())),
        }
    }

    async fn get_inner(&self, path_and_query: &str) -> Result<Bytes, FetchError> {
        match self {
            Transport::Direct { client, addr } => {
                let uri: http::Uri = format!("http://{}{path_and_query}", addr.authority())
                    .parse()
                    .map_err(|e| FetchError::Request(std::sync::Arc::new(http::Error::from(e))))?;
                let req = http::Request::get(uri)
                    .header(
                        http::header::USER_AGENT,
                        concat!("las/", env!("CARGO_PKG_VERSION")),
                    )
                    .body(Empty::new())
                    .map_err(|e| FetchError::Request(std::sync::Arc::new(e)))?;
                let resp = client
                    .request(req)
                    .await
                    .map_err(|e| FetchError::Unreachable(std::sync::Arc::new(e)))?;
                read_answer(resp).await
            }
            Transport::PodProxy {
                client,
                namespace,
                pod,
                port,
            } => {
                let req = http::Request::get(pod_proxy_path(namespace, pod, *port, path_and_query))
                    .body(kube::client::Body::empty())
                    .map_err(|e| FetchError::Request(std::sync::Arc::new(e)))?;
                let resp = client
                    .send(req)
                    .await
                    .map_err(|e| FetchError::ApiServer(std::sync::Arc::new(e)))?;
                read_answer(resp).await
            }
        }
    }
}

async fn read_answer<B>(resp: http::Response<B>) -> Result<Bytes, FetchError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                FetchError::TooLarge
            } else {
                FetchError::Read(std::sync::Arc::from(e))
            }
        })?
        .to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let text: String = text.trim().chars().take(300).collect();
        return Err(FetchError::Status {
            status: status.as_u16(),
            body: text,
        });
    }
    Ok(body)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// What a LAS says about itself at `GET /v1/platform`: the API contract's type.
pub use las_core::api::PlatformInfo;

/// `GET /v1/platform`: the platform ID the LAS claims (nothing proves it).
pub async fn fetch_platform(
    t: &Transport,
    timeout: Duration,
) -> Result<(PlatformId, PlatformInfo), FetchError> {
    let body = t.get(las_core::api::PLATFORM, timeout).await?;
    let info: PlatformInfo = serde_json::from_slice(&body).map_err(|e| FetchError::NotJson {
        what: "GET /v1/platform",
        source: std::sync::Arc::new(e),
    })?;
    let id = info.platform_id;
    Ok((id, info))
}

/// `GET /v1/identity?nonce=HEX`: the identity evidence (COSE bytes) answering `nonce`.
pub async fn fetch_identity(
    t: &Transport,
    nonce: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    let path = format!("{}?nonce={}", las_core::api::IDENTITY, hex::encode(nonce));
    let body = t.get(&path, timeout).await?;
    if body.len() > las_core::MAX_TOKEN_SIZE {
        return Err(FetchError::EvidenceTooLarge(body.len()));
    }
    Ok(body.to_vec())
}

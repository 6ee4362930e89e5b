//! A client of the verification service, for `las attest`, relying parties and tests:
//! get a nonce, post an attestation, fetch the JWKS. Plain HTTP only (put a TLS proxy in
//! front of the service, or use another client, for HTTPS).

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, header};
use las_client::http::{ExchangeError, HttpClient};
use serde_json::{Value, json};

/// Largest answer read.
const MAX_ANSWER: usize = 256 * 1024;

/// A request to the service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://host[:port][/prefix]`.
    #[error("verifier URL {0:?}: {1}")]
    Url(String, String),
    /// Connection or transfer failed.
    #[error("{url}: {detail}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// No answer in time.
    #[error("{0}: no answer within {1:?}")]
    Timeout(String, Duration),
    /// The service refused the request.
    #[error("{url}: HTTP {status} {kind}: {message}")]
    Refused {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The stable error kind.
        kind: String,
        /// The message.
        message: String,
    },
    /// The answer is not what the API promises.
    #[error("{url}: unexpected answer: {detail}")]
    Protocol {
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
}

/// Talks to one verification service.
#[derive(Debug, Clone)]
pub struct VerifierClient {
    base: String,
    http: HttpClient,
    timeout: Duration,
}

/// A nonce from `POST /v1/nonce`.
#[derive(Debug, Clone)]
pub struct NonceAnswer {
    /// The wire form (base64url).
    pub nonce: String,
    /// The 56 decoded bytes (what [`crate::bound_report_data`] hashes).
    pub bytes: Vec<u8>,
    /// Expiry (Unix seconds).
    pub expires: u64,
}

/// The answer of `POST /v1/attest`.
#[derive(Debug, Clone)]
pub struct AttestAnswer {
    /// The EAR (compact JWS).
    pub ear: String,
    /// Its status (`affirming`, `warning`, `contraindicated`).
    pub status: String,
    /// The workload certificate chain (PEM: leaf, issuing CA), when a CSR was sent and
    /// the verdict was affirming or warning.
    pub certificate_chain: Option<String>,
}

impl VerifierClient {
    /// A client for the service at `url` (`http://host:port`, optionally with a path
    /// prefix); every request times out after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ClientError> {
        let base = url.trim_end_matches('/');
        let rest = base.strip_prefix("http://").ok_or_else(|| {
            ClientError::Url(
                url.into(),
                "only http:// URLs are supported (terminate TLS in front of the service)".into(),
            )
        })?;
        if rest.is_empty() {
            return Err(ClientError::Url(url.into(), "no host".into()));
        }
        base.parse::<hyper::Uri>()
            .map_err(|e| ClientError::Url(url.into(), e.to_string()))?;
        Ok(Self {
            base: base.to_owned(),
            http: las_client::http::client(timeout),
            timeout,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder().method(method).uri(&url);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .map_err(|e| ClientError::Url(url.clone(), e.to_string()))?;
        let (status, body) = las_client::http::exchange(&self.http, req, self.timeout, MAX_ANSWER)
            .await
            .map_err(|e| match e {
                ExchangeError::Timeout(t) => ClientError::Timeout(url.clone(), t),
                other => ClientError::Transport {
                    url: url.clone(),
                    detail: other.to_string(),
                },
            })?;
        let j: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let j = j.unwrap_or_default();
            return Err(ClientError::Refused {
                url,
                status: status.as_u16(),
                kind: j
                    .get("error")
                    .unwrap_or(&Value::Null)
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned(),
                message: j
                    .get("message")
                    .unwrap_or(&Value::Null)
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
            });
        }
        j.ok_or_else(|| ClientError::Protocol {
            url,
            detail: "the body is not JSON".into(),
        })
    }

    fn protocol(&self, detail: &str) -> ClientError {
        ClientError::Protocol {
            url: self.base.clone(),
            detail: detail.into(),
        }
    }

    /// `POST /v1/nonce`.
    pub async fn nonce(&self) -> Result<NonceAnswer, ClientError> {
        use base64::Engine;
        let j = self.call(Method::POST, "/v1/nonce", None).await?;
        let nonce = j
            .get("nonce")
            .unwrap_or(&Value::Null)
            .as_str()
            .ok_or_else(|| self.protocol("no nonce"))?
            .to_owned();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&nonce)
            .map_err(|_| self.protocol("the nonce is not base64url"))?;
        Ok(NonceAnswer {
            nonce,
            bytes,
            expires: j
                .get("expires")
                .unwrap_or(&Value::Null)
                .as_u64()
                .unwrap_or(0),
        })
    }

    /// `POST /v1/attest`.
    pub async fn attest(
        &self,
        service: &str,
        nonce: &str,
        quote: &[u8],
        app_report_data: &[u8],
        las: Option<&str>,
    ) -> Result<AttestAnswer, ClientError> {
        self.attest_with_csr(service, nonce, quote, app_report_data, las, None)
            .await
    }

    /// `POST /v1/attest` with a CSR whose key `app_report_data` binds
    /// (docs/workload-certificates.md), in its wire form: PEM text, or base64 DER.
    pub async fn attest_with_csr(
        &self,
        service: &str,
        nonce: &str,
        quote: &[u8],
        app_report_data: &[u8],
        las: Option<&str>,
        csr: Option<&str>,
    ) -> Result<AttestAnswer, ClientError> {
        use base64::Engine;
        let mut body = serde_json::Map::new();
        body.insert("service".into(), json!(service));
        body.insert("nonce".into(), json!(nonce));
        body.insert(
            "quote".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(quote)),
        );
        body.insert("report_data".into(), json!(hex::encode(app_report_data)));
        body.insert("las".into(), json!(las));
        if let Some(csr) = csr {
            body.insert("csr".into(), json!(csr));
        }
        let body = Value::Object(body);
        let j = self.call(Method::POST, "/v1/attest", Some(body)).await?;
        let ear = j
            .get("ear")
            .unwrap_or(&Value::Null)
            .as_str()
            .ok_or_else(|| self.protocol("no ear"))?;
        let status = j
            .get("status")
            .unwrap_or(&Value::Null)
            .as_str()
            .ok_or_else(|| self.protocol("no status"))?;
        Ok(AttestAnswer {
            ear: ear.to_owned(),
            status: status.to_owned(),
            certificate_chain: j
                .get("certificate_chain")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// `GET /.well-known/jwks.json`.
    pub async fn jwks(&self) -> Result<Value, ClientError> {
        self.call(Method::GET, "/.well-known/jwks.json", None).await
    }
}

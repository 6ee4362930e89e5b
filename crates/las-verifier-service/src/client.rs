//! A client of the verification service, for `las attest`, relying parties and tests:
//! get a nonce, post an attestation, fetch the JWKS. Plain HTTP only (put a TLS proxy in
//! front of the service, or use another client, for HTTPS).

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, header};
use las_client::http::{ExchangeError, HttpClient};
use las_client::{LasClient, ReportSource};
use las_core::api::verifier::{self as api, AttestRequest, Jwks};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use las_core::api::verifier::AttestAnswer;

/// Largest answer read.
const MAX_ANSWER: usize = 256 * 1024;

/// A request to the service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://host[:port][/prefix]`.
    #[error("verifier URL {url:?}: {problem}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The URL (or one built from it) does not parse as a URI.
    #[error("verifier URL {url:?}: {source}")]
    UrlSyntax {
        /// The URL.
        url: String,
        /// The URI parser's error.
        #[source]
        source: hyper::http::uri::InvalidUri,
    },
    /// The request could not be built (a URL or header the HTTP library refuses).
    #[error("{url}: cannot build the request: {source}")]
    Request {
        /// The URL.
        url: String,
        /// The HTTP library's error.
        #[source]
        source: hyper::http::Error,
    },
    /// The request body could not be encoded as JSON.
    #[error("{url}: cannot encode the request: {source}")]
    Encode {
        /// The URL.
        url: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Connection or transfer failed.
    #[error("{url}: {source}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        #[source]
        source: ExchangeError,
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
    /// The application's LAS failed (quote or identity evidence).
    #[error("the LAS: {0}")]
    Las(#[from] las_client::ClientError),
    /// The answer is not the JSON the API promises.
    #[error("{url}: unexpected answer: {source}")]
    Protocol {
        /// The URL.
        url: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The nonce answered is not base64url.
    #[error("{url}: unexpected answer: the nonce is not base64url: {source}")]
    NonceEncoding {
        /// The URL.
        url: String,
        /// The decoder's error.
        #[source]
        source: base64::DecodeError,
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
    /// The 56 decoded bytes (what [`crate::bound_report_data`] hashes, and the nonce of
    /// the LAS identity evidence posted with the quote).
    pub bytes: Vec<u8>,
    /// Expiry (Unix seconds).
    pub expires: u64,
}

impl VerifierClient {
    /// A client for the service at `url` (`http://host:port`, optionally with a path
    /// prefix); every request times out after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ClientError> {
        let base = url.trim_end_matches('/');
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Url {
                url: url.into(),
                problem: "only http:// URLs are supported (terminate TLS in front of the service)",
            })?;
        if rest.is_empty() {
            return Err(ClientError::Url {
                url: url.into(),
                problem: "no host",
            });
        }
        base.parse::<hyper::Uri>()
            .map_err(|source| ClientError::UrlSyntax {
                url: url.into(),
                source,
            })?;
        Ok(Self {
            base: base.to_owned(),
            http: las_client::http::client(timeout),
            timeout,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder().method(method).uri(&url);
        let bytes = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                serde_json::to_vec(b).map_err(|source| ClientError::Encode {
                    url: url.clone(),
                    source,
                })?
            }
            None => Vec::new(),
        };
        let req =
            req.body(Full::new(Bytes::from(bytes)))
                .map_err(|source| ClientError::Request {
                    url: url.clone(),
                    source,
                })?;
        let (status, body) = las_client::http::exchange(&self.http, req, self.timeout, MAX_ANSWER)
            .await
            .map_err(|e| match e {
                ExchangeError::Timeout(t) => ClientError::Timeout(url.clone(), t),
                source => ClientError::Transport {
                    url: url.clone(),
                    source,
                },
            })?;
        if !status.is_success() {
            let (kind, message) = match serde_json::from_slice::<las_core::api::ErrorAnswer>(&body)
            {
                Ok(e) => (e.error, e.message),
                Err(_) => (
                    "unknown".to_owned(),
                    String::from_utf8_lossy(&body).into_owned(),
                ),
            };
            return Err(ClientError::Refused {
                url,
                status: status.as_u16(),
                kind,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|source| ClientError::Protocol { url, source })
    }

    /// `POST /v1/nonce`.
    pub async fn nonce(&self) -> Result<NonceAnswer, ClientError> {
        use base64::Engine;
        let a: api::NonceAnswer = self.call(Method::POST, api::NONCE, None::<&()>).await?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&a.nonce)
            .map_err(|source| ClientError::NonceEncoding {
                url: format!("{}{}", self.base, api::NONCE),
                source,
            })?;
        Ok(NonceAnswer {
            nonce: a.nonce,
            bytes,
            expires: a.expires,
        })
    }

    /// `POST /v1/attest` with a request built by the caller.
    pub async fn attest(&self, req: &AttestRequest) -> Result<AttestAnswer, ClientError> {
        self.call(Method::POST, api::ATTEST, Some(req)).await
    }

    /// The whole exchange for an application enclave (`source`) on the platform of
    /// `las`: a nonce from the service, a quote binding `SHA-512(nonce ‖ app_data)`, the
    /// LAS's identity evidence for the same nonce (fetched here, so the service connects
    /// to no LAS), then `POST /v1/attest`.
    pub async fn attest_enclave(
        &self,
        service: &str,
        las: &LasClient,
        source: &dyn ReportSource,
        app_data: &[u8],
    ) -> Result<AttestAnswer, ClientError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let n = self.nonce().await?;
        let rd = crate::bound_report_data(&n.bytes, app_data);
        let q = las_client::attest(las, source, &rd).await?;
        let evidence = las.identity(&n.bytes).await?;
        self.attest(&AttestRequest {
            service: service.to_owned(),
            nonce: n.nonce,
            quote: b64.encode(&q.bytes),
            report_data: hex::encode(app_data),
            evidence: Some(b64.encode(evidence)),
            ..AttestRequest::default()
        })
        .await
    }

    /// `GET /.well-known/jwks.json`.
    pub async fn jwks(&self) -> Result<Jwks, ClientError> {
        self.call(Method::GET, api::JWKS, None::<&()>).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad URL names what is wrong, or carries the URI parser's error as its source.
    #[test]
    fn bad_urls_name_the_problem() {
        use std::error::Error as _;
        let t = Duration::from_secs(1);
        let e = VerifierClient::new("https://v:1", t).unwrap_err();
        assert!(
            matches!(&e, ClientError::Url { problem, .. } if problem.contains("only http://")),
            "{e}"
        );
        let e = VerifierClient::new("http://a b", t).unwrap_err();
        assert!(matches!(e, ClientError::UrlSyntax { .. }), "{e}");
        assert!(
            e.source()
                .is_some_and(|s| s.is::<hyper::http::uri::InvalidUri>())
        );
        assert!(VerifierClient::new("http://127.0.0.1:1/prefix/", t).is_ok());
    }
}

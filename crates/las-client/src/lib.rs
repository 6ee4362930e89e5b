//! # las-client: the enclave side of local attestation
//!
//! ```text
//!  attest(las, source, report_data)
//!    ├─ GET  /v1/target-info ─► TargetInfo of the LAS
//!    ├─ source.make_report(target, report_data) ─► REPORT (simulated EREPORT, or hardware)
//!    └─ POST /v1/quote (432 bytes) ─► quote (COSE_Sign1 signed with the platform key)
//! ```
//!
//! [`LasAddr`] parses the `SCONE_LAS_ADDR` syntax (`host` or `host:port`, port 18766 by
//! default). [`LasClient`] speaks the LAS HTTP API with the types of [`las_core::api`].
//! `SimEnclave` (feature `sim-enclave`) is an application enclave on the simulated
//! platform: it makes its REPORT with the platform's simulated CPU (the state folder of the
//! LAS on the same machine).
//!
//! ```
//! use las_client::{DEFAULT_PORT, LasAddr};
//!
//! // What SCONE_LAS_ADDR holds: a host alone gets the LAS's port.
//! assert_eq!(LasAddr::parse("10.0.0.5")?.authority(), format!("10.0.0.5:{DEFAULT_PORT}"));
//! assert_eq!(LasAddr::parse("[::1]:9000")?.authority(), "[::1]:9000");
//! assert!(LasAddr::parse("10.0.0.5:http").is_err());
//! # Ok::<(), las_client::AddrError>(())
//! ```

#![forbid(unsafe_code)]

pub mod http;

#[cfg(feature = "sim-enclave")]
use std::path::Path;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, header};
#[cfg(feature = "sim-enclave")]
use las_core::egetkey::EnclaveIdentity;
use las_core::sgx::{Report, TargetInfo};
use las_core::{MAX_TOKEN_SIZE, PlatformId, api};
#[cfg(feature = "sim-enclave")]
use las_platform::sim::{SimCpu, StateError};

pub use las_core::addr::{AddrError, DEFAULT_PORT, LasAddr};

/// A client-side failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The address does not parse.
    #[error(transparent)]
    Address(#[from] AddrError),
    /// Could not connect or the connection broke.
    #[error("cannot reach the LAS at {addr}: {source}")]
    Transport {
        /// The LAS.
        addr: String,
        /// What happened (its message carries the whole cause chain).
        #[source]
        source: http::ExchangeError,
    },
    /// No answer in time.
    #[error("the LAS at {0} did not answer within {1:?}")]
    Timeout(String, Duration),
    /// The LAS answered with an error.
    #[error("the LAS at {addr} refused: {status} {kind}: {message}")]
    Refused {
        /// The LAS.
        addr: String,
        /// HTTP status.
        status: u16,
        /// Stable error kind (`invalid-report-mac`, ...).
        kind: String,
        /// Message.
        message: String,
    },
    /// The answer is not what the API promises.
    #[error("unexpected answer from the LAS at {addr}: {detail}")]
    Protocol {
        /// The LAS.
        addr: String,
        /// What is wrong.
        detail: String,
    },
    /// The simulated platform could not be opened.
    #[cfg(feature = "sim-enclave")]
    #[error(transparent)]
    Platform(#[from] StateError),
}

/// Speaks the LAS HTTP API.
#[derive(Debug, Clone)]
pub struct LasClient {
    addr: LasAddr,
    http: http::HttpClient,
    timeout: Duration,
}

/// Largest answer body read from a LAS.
const MAX_ANSWER: usize = 2 * MAX_TOKEN_SIZE;

impl LasClient {
    /// A client for the LAS at `addr`; every request times out after `timeout`.
    pub fn new(addr: LasAddr, timeout: Duration) -> Self {
        Self {
            addr,
            http: http::client(timeout),
            timeout,
        }
    }

    /// The LAS address.
    pub fn addr(&self) -> &LasAddr {
        &self.addr
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let addr = self.addr.to_string();
        let uri = format!("http://{addr}{path}");
        let mut req = Request::builder().method(method).uri(&uri);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/octet-stream");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Protocol {
                addr: addr.clone(),
                detail: format!("cannot build the request: {e}"),
            })?;
        let (status, body) = http::exchange(&self.http, req, self.timeout, MAX_ANSWER)
            .await
            .map_err(|e| match e {
                http::ExchangeError::Timeout(t) => ClientError::Timeout(addr.clone(), t),
                source => ClientError::Transport {
                    addr: addr.clone(),
                    source,
                },
            })?;
        if !status.is_success() {
            let (kind, message) = match serde_json::from_slice::<api::ErrorAnswer>(&body) {
                Ok(e) => (e.error, e.message),
                Err(_) => (
                    "unknown".to_owned(),
                    String::from_utf8_lossy(&body).into_owned(),
                ),
            };
            return Err(ClientError::Refused {
                addr,
                status: status.as_u16(),
                kind,
                message,
            });
        }
        Ok((status, body))
    }

    fn protocol(&self, detail: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.to_string(),
            detail: detail.into(),
        }
    }

    /// `GET /v1/platform`.
    pub async fn platform(&self) -> Result<api::PlatformInfo, ClientError> {
        let (_, body) = self.call(Method::GET, api::PLATFORM, None).await?;
        serde_json::from_slice(&body).map_err(|e| self.protocol(format!("/v1/platform: {e}")))
    }

    /// `GET /readyz`: `Ok` once the LAS accepts quote requests (its platform key is loaded
    /// and it is not shutting down).
    pub async fn ready(&self) -> Result<(), ClientError> {
        self.call(Method::GET, "/readyz", None).await.map(|_| ())
    }

    /// `GET /v1/target-info`.
    pub async fn target_info(&self) -> Result<TargetInfo, ClientError> {
        let (_, body) = self.call(Method::GET, api::TARGET_INFO, None).await?;
        TargetInfo::try_from_slice(&body).map_err(|e| self.protocol(format!("target info: {e}")))
    }

    /// `POST /v1/quote` with a REPORT; returns the quote bytes.
    pub async fn quote(&self, report: &Report) -> Result<Vec<u8>, ClientError> {
        let (_, body) = self
            .call(Method::POST, api::QUOTE, Some(report.to_bytes().to_vec()))
            .await?;
        Ok(body.to_vec())
    }

    /// `GET /v1/identity?nonce=…`; returns the evidence bytes.
    pub async fn identity(&self, nonce: &[u8]) -> Result<Vec<u8>, ClientError> {
        let path = format!("{}?nonce={}", api::IDENTITY, hex::encode(nonce));
        let (_, body) = self.call(Method::GET, &path, None).await?;
        Ok(body.to_vec())
    }
}

/// Something that can make an SGX REPORT for a target: the application enclave.
pub trait ReportSource {
    /// Makes a REPORT for `target` carrying `report_data`.
    fn make_report(
        &self,
        target: &TargetInfo,
        report_data: &[u8; 64],
    ) -> Result<Report, ClientError>;
}

/// An application enclave on the simulated platform. NOT SECURE: it reads the platform's
/// root secret from the state folder to emulate EREPORT. Feature `sim-enclave` (it brings
/// in `las-platform`); `las quote` enables it.
#[cfg(feature = "sim-enclave")]
#[derive(Debug)]
pub struct SimEnclave {
    cpu: SimCpu,
    /// The enclave's identity (MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN, DEBUG flag).
    pub identity: EnclaveIdentity,
}

#[cfg(feature = "sim-enclave")]
impl SimEnclave {
    /// An enclave with `identity` on the simulated platform whose LAS state folder is
    /// `state_dir`. The platform secret must exist (the LAS creates it).
    pub fn open(
        state_dir: &Path,
        cpusvn: Option<[u8; 16]>,
        identity: EnclaveIdentity,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            cpu: SimCpu::open(state_dir, cpusvn, false)?,
            identity,
        })
    }
}

#[cfg(feature = "sim-enclave")]
impl ReportSource for SimEnclave {
    fn make_report(
        &self,
        target: &TargetInfo,
        report_data: &[u8; 64],
    ) -> Result<Report, ClientError> {
        Ok(self.cpu.ereport(&self.identity, target, report_data)?)
    }
}

/// A quote as returned by a LAS.
#[derive(Debug, Clone)]
pub struct Quote {
    /// The tagged COSE_Sign1 bytes.
    pub bytes: Vec<u8>,
    /// The platform that signed it (from the verified quote).
    pub platform_id: PlatformId,
}

/// Local attestation: target info → REPORT → quote. The returned quote's signature has
/// been checked against the key it names (trusting that key is the verifier's job).
pub async fn attest(
    las: &LasClient,
    source: &dyn ReportSource,
    report_data: &[u8; 64],
) -> Result<Quote, ClientError> {
    let target = las.target_info().await?;
    let report = source.make_report(&target, report_data)?;
    let bytes = las.quote(&report).await?;
    let q = las_core::quote::decode_and_verify_quote(&bytes)
        .map_err(|e| las.protocol(format!("the quote does not verify: {e}")))?;
    if q.claims.report_body != report.body {
        return Err(las.protocol("the quote does not carry our report"));
    }
    Ok(Quote {
        platform_id: q.claims.platform_id,
        bytes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A LAS that is not there: the error is the typed transport error with hyper's
    /// error inside, and its message still ends in the OS's reason.
    #[test]
    fn an_unreachable_las_is_a_typed_transport_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // A port that was just free: nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = LasAddr::parse(&format!("127.0.0.1:{port}")).unwrap();
        let c = LasClient::new(addr, Duration::from_secs(5));
        let e = rt.block_on(c.platform()).unwrap_err();
        assert!(
            matches!(
                &e,
                ClientError::Transport {
                    source: http::ExchangeError::Request(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("refused"), "{e}");
        let e: ClientError = LasAddr::parse("a b").unwrap_err().into();
        assert!(matches!(e, ClientError::Address(AddrError(_))), "{e:?}");
    }
}

//! Fetching DCAP collateral from a PCCS (or Intel's PCS) and caching it on disk until it
//! expires (feature `pccs`, the only part of this crate that does I/O).
//!
//! ```text
//!  CollateralKey { fmspc, ca } ─► cache file valid at `now`? ─► yes: use it
//!                                       │ no
//!                                       ▼
//!  GET {base}/sgx/certification/v4/pckcrl?ca=..&encoding=der  (+ SGX-PCK-CRL-Issuer-Chain)
//!  GET {base}/sgx/certification/v4/tcb?fmspc=..               (+ TCB-Info-Issuer-Chain)
//!  GET {base}/sgx/certification/v4/qe/identity                (+ SGX-Enclave-Identity-Issuer-Chain)
//!  GET {base}/sgx/certification/v4/rootcacrl                  (PCCS; Intel's PCS: ROOT_CA_CRL_URL)
//!       ─► Collateral ─► cache file (atomic rename) ─► caller
//! ```
//!
//! Integrity does not rest on the transport: every part is signed by Intel and checked
//! against Intel's root during verification, so plain `http://` to a local PCCS is fine,
//! and a PCCS with a self-signed TLS certificate is reached with [`PccsClient::extra_ca_file`].
//! A cache file is a valid `--collateral FILE`: copy it to an air-gapped verifier.

// It decodes headers and bodies a PCCS sends: no arithmetic that can overflow (dcap-qvl).
#![deny(clippy::arithmetic_side_effects)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{Collateral, CollateralError, CollateralKey, QuoteCollateralV3};

/// Intel's Root CA CRL, for Intel's PCS (which has no `rootcacrl` endpoint); it is the
/// CRL distribution point named in Intel's SGX root certificate.
pub const ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// Largest response body read.
pub const MAX_RESPONSE: usize = 1024 * 1024;
/// Default time limit of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Collateral could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PccsError {
    /// The URL is not `http://` or `https://`.
    #[error("PCCS URL `{url}` must start with http:// or https://")]
    Url {
        /// The URL refused.
        url: String,
    },
    /// The extra CA file (`--pccs-ca`) cannot be read or holds a bad certificate.
    #[error("TLS setup for the PCCS: {}: {source}", path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// The PEM reader's error.
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate of the extra CA file is not a usable trust anchor.
    #[error("TLS setup for the PCCS: {}: {source}", path.display())]
    CaCert {
        /// The file.
        path: std::path::PathBuf,
        /// rustls's error.
        source: rustls::Error,
    },
    /// The TLS configuration could not be built.
    #[error("TLS setup for the PCCS: {0}")]
    Tls(#[source] rustls::Error),
    /// A request failed or timed out.
    #[error("GET {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// The PCCS answered with an error status.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The answer is not what the PCCS API specifies.
    #[error("GET {url}: {message}")]
    Response {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The pieces do not make valid collateral.
    #[error(transparent)]
    Collateral(#[from] CollateralError),
    /// The cache folder could not be written.
    #[error("collateral cache {path}: {source}")]
    Cache {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A PCCS (or PCS) client with an optional on-disk cache.
#[derive(Debug, Clone)]
pub struct PccsClient {
    base: String,
    cache_dir: Option<PathBuf>,
    extra_ca: Option<PathBuf>,
    timeout: Duration,
    root_ca_crl_url: String,
}

/// The usual cache folder: `$XDG_CACHE_HOME/las/dcap-collateral`, else
/// `$HOME/.cache/las/dcap-collateral`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("las").join("dcap-collateral"))
}

struct Response {
    headers: hyper::HeaderMap,
    body: Bytes,
}

#[derive(Deserialize)]
struct TcbInfoResponse<'a> {
    #[serde(borrow, rename = "tcbInfo")]
    tcb_info: &'a RawValue,
    signature: String,
}

#[derive(Deserialize)]
struct QeIdentityResponse<'a> {
    #[serde(borrow, rename = "enclaveIdentity")]
    enclave_identity: &'a RawValue,
    signature: String,
}

/// Decodes `%XX` escapes (issuer chains come URL-encoded in headers).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut rest = b;
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'%' {
            let (hex, after) = tail.split_at_checked(2)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            rest = after;
        } else {
            out.push(c);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}

/// A CRL as a PCCS may send it: DER, PEM, or hex text of the DER.
fn crl_bytes(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).map(str::trim).unwrap_or("");
    if let Some(pem) = text
        .strip_prefix("-----BEGIN X509 CRL-----")
        .and_then(|r| r.split("-----END").next())
    {
        let b64: String = pem.chars().filter(|c| !c.is_whitespace()).collect();
        use base64::Engine as _;
        if let Ok(d) = base64::engine::general_purpose::STANDARD.decode(b64) {
            return d;
        }
    }
    if !text.is_empty()
        && text.len().is_multiple_of(2)
        && text.bytes().all(|c| c.is_ascii_hexdigit())
        && let Ok(d) = hex::decode(text)
    {
        return d;
    }
    body.to_vec()
}

impl PccsClient {
    /// A client for the PCCS at `base` (e.g. `https://pccs.example:8081`; a trailing
    /// `/sgx/certification/v4` is accepted).
    pub fn new(base: &str) -> Result<Self, PccsError> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(PccsError::Url {
                url: base.to_owned(),
            });
        }
        let base = base
            .trim_end_matches('/')
            .trim_end_matches("/sgx/certification/v4")
            .trim_end_matches('/')
            .to_owned();
        Ok(Self {
            base,
            cache_dir: None,
            extra_ca: None,
            timeout: DEFAULT_TIMEOUT,
            root_ca_crl_url: ROOT_CA_CRL_URL.to_owned(),
        })
    }

    /// Caches collateral in `dir` (created when missing) until it expires.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Also trusts the CA certificates in this PEM file for `https://` (a PCCS with its
    /// own, self-signed certificate). The system's roots are trusted as well.
    pub fn extra_ca_file(mut self, pem: impl Into<PathBuf>) -> Self {
        self.extra_ca = Some(pem.into());
        self
    }

    /// Where the Root CA CRL comes from when the PCCS has no `rootcacrl` endpoint
    /// (default [`ROOT_CA_CRL_URL`]; a mirror for verifiers that cannot reach Intel).
    pub fn root_ca_crl_url(mut self, url: &str) -> Self {
        url.clone_into(&mut self.root_ca_crl_url);
        self
    }

    /// Time limit of each request.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The cache file of `key` for this PCCS.
    pub fn cache_path(&self, key: &CollateralKey) -> Option<PathBuf> {
        let url_hash = hex::encode(Sha256::digest(self.base.as_bytes()));
        let short = url_hash.get(..16).unwrap_or(&url_hash);
        self.cache_dir
            .as_ref()
            .map(|d| d.join(format!("{}-{}-{short}.json", key.fmspc, key.ca)))
    }

    /// Collateral for `key`, valid at `now` when the PCCS has such: from the cache when a
    /// cached copy is valid at `now`, else fetched (and cached when valid at `now`).
    pub async fn collateral(&self, key: &CollateralKey, now: u64) -> Result<Collateral, PccsError> {
        let cache = self.cache_path(key);
        if let Some(path) = &cache
            && let Ok(bytes) = std::fs::read(path)
            && let Ok(c) = Collateral::from_json(&bytes)
            && c.valid_at(now)
            && c.fmspc().eq_ignore_ascii_case(&key.fmspc)
        {
            return Ok(c);
        }
        let c = self.fetch(key).await?;
        if let Some(path) = &cache
            && c.valid_at(now)
        {
            write_atomically(path, &c.to_json())?;
        }
        Ok(c)
    }

    /// [`PccsClient::collateral`] on a runtime of its own. Must not be called from inside
    /// an async runtime (it would block it).
    pub fn collateral_blocking(
        &self,
        key: &CollateralKey,
        now: u64,
    ) -> Result<Collateral, PccsError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PccsError::Http {
                url: self.base.clone(),
                message: format!("cannot start an I/O runtime: {e}"),
            })?
            .block_on(self.collateral(key, now))
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, PccsError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for c in native.certs {
            let _ = roots.add(c);
        }
        if let Some(path) = &self.extra_ca {
            use rustls::pki_types::pem::PemObject as _;
            let ca_file = |source| PccsError::CaFile {
                path: path.clone(),
                source,
            };
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(ca_file)?;
            for c in certs {
                let c = c.map_err(ca_file)?;
                roots.add(c).map_err(|source| PccsError::CaCert {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(PccsError::Tls)
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
    }

    /// Fetches the four pieces of collateral for `key` (no cache).
    pub async fn fetch(&self, key: &CollateralKey) -> Result<Collateral, PccsError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls_config()?)
            .https_or_http()
            .enable_http1()
            .build();
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
        let get = |url: String| {
            let client = client.clone();
            let timeout = self.timeout;
            async move {
                let uri: hyper::Uri = url.parse().map_err(|e| PccsError::Http {
                    url: url.clone(),
                    message: format!("bad URL: {e}"),
                })?;
                let fut = async {
                    let resp = client.get(uri).await.map_err(|e| PccsError::Http {
                        url: url.clone(),
                        message: format!("{e:#}"),
                    })?;
                    let status = resp.status();
                    if !status.is_success() {
                        return Err(PccsError::Status {
                            url: url.clone(),
                            status: status.as_u16(),
                        });
                    }
                    let (parts, body) = resp.into_parts();
                    let body = Limited::new(body, MAX_RESPONSE)
                        .collect()
                        .await
                        .map_err(|e| PccsError::Http {
                            url: url.clone(),
                            message: format!("reading the body: {e}"),
                        })?
                        .to_bytes();
                    Ok(Response {
                        headers: parts.headers,
                        body,
                    })
                };
                match tokio::time::timeout(timeout, fut).await {
                    Ok(r) => r.map(|r| (url, r)),
                    Err(_) => Err(PccsError::Http {
                        url: url.clone(),
                        message: format!("no answer within {} s", timeout.as_secs()),
                    }),
                }
            }
        };
        let header = |url: &str, r: &Response, names: &[&str]| {
            names
                .iter()
                .find_map(|n| r.headers.get(*n))
                .and_then(|v| v.to_str().ok())
                .and_then(percent_decode)
                .ok_or_else(|| PccsError::Response {
                    url: url.to_owned(),
                    message: format!("no {} header", names.join(" or ")),
                })
        };
        let v4 = format!("{}/sgx/certification/v4", self.base);

        let (url, r) = get(format!("{v4}/pckcrl?ca={}&encoding=der", key.ca)).await?;
        let pck_crl_issuer_chain = header(&url, &r, &["SGX-PCK-CRL-Issuer-Chain"])?;
        let pck_crl = crl_bytes(&r.body);

        let (url, r) = get(format!("{v4}/tcb?fmspc={}", key.fmspc)).await?;
        let tcb_info_issuer_chain = header(
            &url,
            &r,
            &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
        )?;
        let tcb: TcbInfoResponse<'_> =
            serde_json::from_slice(&r.body).map_err(|e| PccsError::Response {
                url: url.clone(),
                message: format!("not a TCB info answer: {e}"),
            })?;
        let tcb_info = tcb.tcb_info.get().to_owned();
        let tcb_info_signature = hex::decode(&tcb.signature).map_err(|e| PccsError::Response {
            url: url.clone(),
            message: format!("TCB info signature is not hex: {e}"),
        })?;

        let (url, r) = get(format!("{v4}/qe/identity")).await?;
        let qe_identity_issuer_chain = header(&url, &r, &["SGX-Enclave-Identity-Issuer-Chain"])?;
        let qe: QeIdentityResponse<'_> =
            serde_json::from_slice(&r.body).map_err(|e| PccsError::Response {
                url: url.clone(),
                message: format!("not a QE identity answer: {e}"),
            })?;
        let qe_identity = qe.enclave_identity.get().to_owned();
        let qe_identity_signature =
            hex::decode(&qe.signature).map_err(|e| PccsError::Response {
                url: url.clone(),
                message: format!("QE identity signature is not hex: {e}"),
            })?;

        let root_ca_crl = match get(format!("{v4}/rootcacrl")).await {
            Ok((_, r)) => crl_bytes(&r.body),
            Err(PccsError::Status { status: 404, .. }) => {
                crl_bytes(&get(self.root_ca_crl_url.clone()).await?.1.body)
            }
            Err(e) => return Err(e),
        };

        Ok(Collateral::new(QuoteCollateralV3 {
            pck_crl_issuer_chain,
            root_ca_crl,
            pck_crl,
            tcb_info_issuer_chain,
            tcb_info,
            tcb_info_signature,
            qe_identity_issuer_chain,
            qe_identity,
            qe_identity_signature,
            pck_certificate_chain: None,
        })?)
    }
}

/// Writes a cache file: a `tempfile` in the cache folder (random name, O_EXCL, 0600) is
/// written, fsynced and renamed over `path`. Nothing planted in the folder (a link or a
/// file at a guessable temp name) is followed or written through; the rename replaces a
/// link at `path` rather than writing to its target. Folders are created 0700.
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), PccsError> {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    let err = |source| PccsError::Cache {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".collateral.")
        .suffix(".las-tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
mod tests;

//! Workload certificates: the verification service as a CA for attested enclaves
//! (docs/workload-certificates.md).
//!
//! ```text
//!  POST /v1/attest {..., csr} ─► parse_csr (PKCS#10, PEM or DER: signature, key type)
//!     ─► CsrKey::check_binding (SHA-256 of the CSR's SubjectPublicKeyInfo = the first 32
//!        bytes of the application's report data, which the quote binds)
//!     ─► verdict affirming|warning ─► Ca::issue ─► leaf ‖ issuing CA (PEM)
//!  relying party ── GET /v1/ca ─► Ca::bundle_pem (issuing CA, then older CAs)
//! ```
//!
//! Parsing is x509-parser's (its `verify` feature checks the CSR signature with ring);
//! issuing is rcgen's; the EAR extension's value is a DER UTF8String made by `der`.
//! Nothing here writes DER by hand.
//!
//! CA material: `ca-key.pem` (P-256, PKCS#8 or SEC1) and `ca-cert.pem` in the state folder,
//! created once under the state-folder rules of [`crate::keys`] (imported with the other
//! keys from a Secret by `--import-keys-from`), or the operator's files (`--ca-cert`,
//! `--ca-key`). The certificate file may hold more certificates after the issuing one: they
//! are served in the bundle too (the old CA during a rotation).

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::Encode;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    SubjectPublicKeyInfo,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

use crate::keys::KeyError;

/// File name of the CA key in the state folder.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// File name of the CA certificate(s) in the state folder: the issuing CA first, then any
/// older CA still trusted (rotation).
pub const CA_CERT_FILE: &str = "ca-cert.pem";
/// `id-pe-cmw` (RFC 9999, the RATS Conceptual Message Wrapper, IANA-assigned in the PKIX
/// extension arc): the non-critical extension that carries the EAR as a CMW record.
pub const ID_PE_CMW: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 35];
/// The CMW indicator of an attestation result (bit 3).
const CMW_ATTESTATION_RESULTS: u8 = 8;
/// Default lifetime of a workload certificate: one hour, SPIRE's default X.509 SVID
/// lifetime. Nothing revokes a workload certificate, so a short life is the revocation.
pub const DEFAULT_CERT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);
/// Default SPIFFE trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "las.local";
/// Lifetime of a CA the service creates itself (10 years; rotate by replacing the files).
const CA_LIFETIME: u64 = 10 * 365 * 86400;
/// Largest CSR accepted (bytes, PEM or DER).
pub const MAX_CSR: usize = 8 * 1024;
/// Largest CA certificate file read.
const MAX_CA_FILE: u64 = 64 * 1024;

/// A CSR is refused; each variant is a stable error kind at the HTTP edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// Larger than [`MAX_CSR`] (its size).
    #[error(
        "the CSR is not a PKCS#10 certification request in PEM or DER: {0} bytes; at most {MAX_CSR}"
    )]
    TooLarge(usize),
    /// Starts like PEM but is not PEM.
    #[error("the CSR is not a PKCS#10 certification request in PEM or DER: PEM: {0}")]
    Pem(#[source] x509_parser::nom::Err<x509_parser::error::PEMError>),
    /// The DER is not a PKCS#10 request.
    #[error("the CSR is not a PKCS#10 certification request in PEM or DER: {0}")]
    Der(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    /// The one catch-all: a PKCS#10 request in a form we do not take, with no parser
    /// error to carry (another PEM label, bytes after the request, neither PEM nor
    /// base64), described for the client.
    #[error("the CSR is not a PKCS#10 certification request in PEM or DER: {0}")]
    Malformed(String),
    /// The request's self-signature does not verify with its own key.
    #[error("the CSR's signature does not verify with the key it carries")]
    BadSignature,
    /// The key is not ECDSA on P-256 or P-384.
    #[error("the CSR's key is {0}; only ECDSA keys on P-256 or P-384 are certified")]
    UnsupportedKeyType(KeyType),
    /// The quote does not bind the CSR's key: report_data starts with other bytes.
    #[error(
        "the CSR's key is not bound by the quote: the first 32 bytes of report_data must be SHA-256 of the CSR's SubjectPublicKeyInfo (expected {})",
        hex::encode(.expected)
    )]
    Unbound {
        /// SHA-256 of the CSR's SubjectPublicKeyInfo.
        expected: [u8; 32],
    },
    /// The quote cannot bind the CSR's key: report_data is shorter than 32 bytes.
    #[error(
        "the CSR's key is not bound by the quote: the first 32 bytes of report_data must be SHA-256 of the CSR's SubjectPublicKeyInfo (report_data is {len} bytes)"
    )]
    ReportDataTooShort {
        /// The length of the application's report data.
        len: usize,
    },
    /// The service name cannot be a SPIFFE ID path segment.
    #[error(
        "service name {name:?} cannot be a SPIFFE ID path segment (letters, digits, '.', '-', '_')"
    )]
    ServiceName {
        /// The name refused.
        name: String,
    },
    /// A new workload key or its CSR could not be made (`las attest --key-out`).
    #[error("cannot make a workload key and CSR: {0}")]
    Generate(#[source] rcgen::Error),
}

/// The key type of a refused CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA.
    Rsa,
    /// Ed25519.
    Ed25519,
    /// ECDSA on a curve other than P-256 and P-384 (its OID).
    EcdsaCurve(x509_parser::der_parser::oid::Oid<'static>),
    /// ECDSA without a named curve.
    EcdsaUnnamed,
    /// Another algorithm (its OID).
    Other(x509_parser::der_parser::oid::Oid<'static>),
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyType::Rsa => f.write_str("RSA"),
            KeyType::Ed25519 => f.write_str("Ed25519"),
            KeyType::EcdsaCurve(c) => write!(f, "ECDSA on curve {c}"),
            KeyType::EcdsaUnnamed => f.write_str("ECDSA without a named curve"),
            KeyType::Other(a) => write!(f, "algorithm {a}"),
        }
    }
}

impl CsrError {
    /// The stable error kind (`{"error": KIND}`).
    pub fn kind(&self) -> las_core::api::ErrorKind {
        use las_core::api::ErrorKind as K;
        match self {
            Self::TooLarge(_) | Self::Pem(_) | Self::Der(_) | Self::Malformed(_) => K::MalformedCsr,
            Self::BadSignature => K::BadCsrSignature,
            Self::UnsupportedKeyType(_) => K::UnsupportedKeyType,
            Self::Unbound { .. } | Self::ReportDataTooShort { .. } => K::UnboundKey,
            Self::ServiceName { .. } => K::UnsupportedServiceName,
            Self::Generate(_) => K::IssueFailed,
        }
    }
}

/// The CA material is unusable, or issuing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A key file (state-folder rules).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA key or certificate is not what it must be.
    #[error("{path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The trust domain is not a SPIFFE trust domain name.
    #[error(
        "trust domain {name:?}: lowercase letters, digits, '.', '-' and '_' only, at most 255 characters"
    )]
    TrustDomain {
        /// The name refused.
        name: String,
    },
    /// rcgen refused to build a certificate.
    #[error("cannot issue: {0}")]
    Issue(#[source] rcgen::Error),
    /// A validity time is not representable (Unix seconds).
    #[error("cannot issue: time {secs}: {source}")]
    Time {
        /// The time.
        secs: u64,
        /// The `time` crate's error.
        source: time::error::ComponentRange,
    },
    /// No random bytes for a serial number (getrandom's error code; not a `source`, since
    /// getrandom implements `std::error::Error` only with its `std` feature).
    #[error("cannot issue: no randomness: {0}")]
    Random(getrandom::Error),
    /// The EAR extension could not be encoded.
    #[error("cannot issue: EAR extension: {0}")]
    EarExtension(#[source] der::Error),
    /// The service name cannot be a SPIFFE ID path segment.
    #[error("cannot issue: {0}")]
    Csr(#[source] CsrError),
}

/// A parsed CSR whose signature verified: its key, certified as is.
#[derive(Debug, Clone)]
pub struct CsrKey {
    spki_der: Vec<u8>,
}

impl CsrKey {
    /// SHA-256 of the DER SubjectPublicKeyInfo: what the application binds.
    pub fn spki_sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.spki_der).into()
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The key is bound when the application's report data starts with its SHA-256.
    pub fn check_binding(&self, app_data: &[u8]) -> Result<(), CsrError> {
        use subtle::ConstantTimeEq;
        let want = self.spki_sha256();
        match app_data.get(..32) {
            Some(have) if bool::from(have.ct_eq(&want)) => Ok(()),
            Some(_) => Err(CsrError::Unbound { expected: want }),
            None => Err(CsrError::ReportDataTooShort {
                len: app_data.len(),
            }),
        }
    }
}

/// A new P-256 workload key and a CSR for it (for `las attest --key-out`): the key as
/// PKCS#8 PEM (zeroized on drop), the CSR as DER, and the CSR's key (what to bind).
pub fn new_workload_key() -> Result<(Zeroizing<String>, Vec<u8>, CsrKey), CsrError> {
    let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CsrError::Generate)?;
    let csr = CertificateParams::default()
        .serialize_request(&kp)
        .map_err(CsrError::Generate)?
        .der()
        .to_vec();
    let key = parse_csr(&csr)?;
    Ok((Zeroizing::new(kp.serialize_pem()), csr, key))
}

/// Parses a PKCS#10 CSR (PEM `CERTIFICATE REQUEST`, or DER), checks that its key is ECDSA
/// P-256 or P-384 and that its signature verifies. Subject, requested extensions and SANs
/// are ignored: the service decides every field of the certificate.
pub fn parse_csr(input: &[u8]) -> Result<CsrKey, CsrError> {
    use x509_parser::certification_request::X509CertificationRequest;
    if input.len() > MAX_CSR {
        return Err(CsrError::TooLarge(input.len()));
    }
    let trimmed = input.trim_ascii_start();
    let pem;
    let der: &[u8] = if trimmed.starts_with(b"-----BEGIN") {
        pem = x509_parser::pem::parse_x509_pem(trimmed)
            .map_err(CsrError::Pem)?
            .1;
        if pem.label != "CERTIFICATE REQUEST" && pem.label != "NEW CERTIFICATE REQUEST" {
            return Err(CsrError::Malformed(format!(
                "PEM label {:?}, expected CERTIFICATE REQUEST",
                pem.label
            )));
        }
        &pem.contents
    } else {
        input
    };
    let (rest, csr) = X509CertificationRequest::from_der(der).map_err(CsrError::Der)?;
    if !rest.is_empty() {
        return Err(CsrError::Malformed(format!(
            "{} bytes after the request",
            rest.len()
        )));
    }
    let spki = &csr.certification_request_info.subject_pki;
    key_type(spki)?;
    csr.verify_signature().map_err(|_| CsrError::BadSignature)?;
    Ok(CsrKey {
        spki_der: spki.raw.to_vec(),
    })
}

/// Accepts ECDSA keys on P-256 and P-384; names anything else.
fn key_type(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<(), CsrError> {
    use x509_parser::oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
        OID_SIG_ED25519,
    };
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 || c == OID_NIST_EC_P384 => Ok(()),
            Some(c) => Err(CsrError::UnsupportedKeyType(KeyType::EcdsaCurve(
                c.to_owned(),
            ))),
            None => Err(CsrError::UnsupportedKeyType(KeyType::EcdsaUnnamed)),
        };
    }
    let key = if *alg == OID_PKCS1_RSAENCRYPTION {
        KeyType::Rsa
    } else if *alg == OID_SIG_ED25519 {
        KeyType::Ed25519
    } else {
        KeyType::Other(alg.to_owned())
    };
    Err(CsrError::UnsupportedKeyType(key))
}

/// Checks a SPIFFE trust domain name (SPIFFE ID spec §2.1).
pub fn check_trust_domain(td: &str) -> Result<(), CaError> {
    let ok = !td.is_empty()
        && td.len() <= 255
        && td.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(CaError::TrustDomain {
            name: td.to_owned(),
        })
    }
}

/// The SPIFFE ID of `service` in `trust_domain`, if the name is a valid path segment.
pub fn spiffe_id(trust_domain: &str, service: &str) -> Result<String, CsrError> {
    let ok = !service.is_empty()
        && service != "."
        && service != ".."
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(format!("spiffe://{trust_domain}/{service}"))
    } else {
        Err(CsrError::ServiceName {
            name: service.to_owned(),
        })
    }
}

/// Where the CA material comes from.
#[derive(Debug, Clone, Default)]
pub struct CaSource {
    /// The operator's CA certificate file (`--ca-cert`); with `key`.
    pub cert: Option<PathBuf>,
    /// The operator's CA key file (`--ca-key`); with `cert`.
    pub key: Option<PathBuf>,
}

/// What a certificate says besides the key.
#[derive(Debug)]
pub struct Subject<'a> {
    /// The policy's service.
    pub service: &'a str,
    /// DNS SANs (the service's `las_dns_names`).
    pub dns_names: &'a [String],
    /// The EAR token, carried in the `id-pe-cmw` extension.
    pub ear: &'a str,
    /// Its `eat_profile` (the CMW's media type parameter).
    pub ear_profile: &'a str,
    /// Start of validity: when the quote was made (Unix seconds).
    pub not_before: u64,
    /// End of validity (Unix seconds; capped at the CA's own end).
    pub not_after: u64,
}

/// The issuing CA.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    issuer_pem: String,
    bundle_pem: String,
    not_after: u64,
    trust_domain: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

fn unix(t: u64) -> Result<OffsetDateTime, CaError> {
    OffsetDateTime::from_unix_timestamp(i64::try_from(t).unwrap_or(i64::MAX))
        .map_err(|source| CaError::Time { secs: t, source })
}

/// A P-256 key (PKCS#8 or SEC1 PEM) as rcgen's signing key.
fn signing_key(pem: &[u8], path: &Path) -> Result<(KeyPair, p256::PublicKey), CaError> {
    let invalid = |detail: String| CaError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let text = std::str::from_utf8(pem).map_err(|_| invalid("not PEM text".into()))?;
    let secret = match p256::SecretKey::from_pkcs8_pem(text) {
        Ok(k) => k,
        Err(e) => p256::SecretKey::from_sec1_pem(text).map_err(|_| {
            invalid(format!(
                "not a P-256 private key in PKCS#8 or SEC1 PEM ({e})"
            ))
        })?,
    };
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| invalid(format!("cannot encode the key: {e}")))?;
    let kp = KeyPair::try_from(der.as_bytes())
        .map_err(|e| invalid(format!("rcgen refuses the key: {e}")))?;
    Ok((kp, secret.public_key()))
}

fn new_ca_key() -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
        KeyError::Generate {
            path: PathBuf::from(CA_KEY_FILE),
            source,
        }
    })?;
    Ok(Zeroizing::new(kp.serialize_pem().into_bytes()))
}

fn ca_params(now: u64) -> Result<CertificateParams, CaError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "las");
    dn.push(DnType::CommonName, "las verification service CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = unix(now)?;
    p.not_after = unix(now.saturating_add(CA_LIFETIME))?;
    p.serial_number = Some(random_serial()?);
    Ok(p)
}

/// 16 random bytes, top bit clear: a positive serial number (RFC 5280 §4.1.2.2).
fn random_serial() -> Result<SerialNumber, CaError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(CaError::Random)?;
    b[0] = (b[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from(b.to_vec()))
}

/// Every certificate of a PEM file, as DER.
fn pem_certs(text: &[u8], path: &Path) -> Result<Vec<Vec<u8>>, CaError> {
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(text) {
        let pem = pem.map_err(|e| CaError::Invalid {
            path: path.to_path_buf(),
            detail: format!("PEM: {e}"),
        })?;
        if pem.label == "CERTIFICATE" {
            out.push(pem.contents);
        }
    }
    if out.is_empty() {
        return Err(CaError::Invalid {
            path: path.to_path_buf(),
            detail: "no CERTIFICATE in the file".into(),
        });
    }
    Ok(out)
}

fn to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap_or_default());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

impl Ca {
    /// The CA from the operator's files, or from the state folder (created there once).
    pub fn load_or_create(
        state_dir: &Path,
        source: &CaSource,
        trust_domain: &str,
        now: u64,
    ) -> Result<Self, CaError> {
        check_trust_domain(trust_domain)?;
        let (key_pem, key_path, cert_pem, cert_path) = match (&source.cert, &source.key) {
            (Some(c), Some(k)) => (
                crate::keys::read_operator_secret(k)?,
                k.clone(),
                read_small(c)?,
                c.clone(),
            ),
            (None, None) => {
                las_state::ensure_dir(state_dir).map_err(KeyError::from)?;
                let key_path = state_dir.join(CA_KEY_FILE);
                let key_pem = crate::keys::load_or_create(&key_path, new_ca_key)?;
                let cert_path = state_dir.join(CA_CERT_FILE);
                // Created from the key that won (two replicas starting at once: the
                // certificate written first is the one both read back).
                let (kp, _) = signing_key(&key_pem, &key_path)?;
                let mut made = None;
                let cert_pem = crate::keys::load_or_create(&cert_path, || {
                    let pem = ca_params(now)
                        .and_then(|p| p.self_signed(&kp).map_err(CaError::Issue))
                        .map(|c| c.pem());
                    match pem {
                        Ok(p) => Ok(Zeroizing::new(p.into_bytes())),
                        Err(e) => {
                            made = Some(e);
                            Err(KeyError::Malformed {
                                path: cert_path.clone(),
                                detail: "cannot create the CA certificate".into(),
                            })
                        }
                    }
                });
                if let Some(e) = made {
                    return Err(e);
                }
                (key_pem, key_path, cert_pem?.to_vec(), cert_path)
            }
            _ => {
                return Err(CaError::Invalid {
                    path: source
                        .cert
                        .clone()
                        .or_else(|| source.key.clone())
                        .unwrap_or_default(),
                    detail: "--ca-cert and --ca-key go together".into(),
                });
            }
        };
        let (kp, public) = signing_key(&key_pem, &key_path)?;
        let certs = pem_certs(&cert_pem, &cert_path)?;
        let invalid = |detail: String| CaError::Invalid {
            path: cert_path.clone(),
            detail,
        };
        let first = certs
            .first()
            .ok_or_else(|| invalid("no certificate".into()))?;
        let (_, x509) = X509Certificate::from_der(first)
            .map_err(|e| invalid(format!("the first certificate does not parse: {e}")))?;
        if !x509.is_ca() {
            return Err(invalid(
                "the first certificate is not a CA (basicConstraints cA)".into(),
            ));
        }
        let spki_key = p256::PublicKey::from_public_key_der(x509.public_key().raw).ok();
        if spki_key.as_ref() != Some(&public) {
            return Err(invalid(format!(
                "the first certificate is not for the CA key {}",
                key_path.display()
            )));
        }
        let not_after = u64::try_from(x509.validity().not_after.timestamp()).unwrap_or(0);
        if not_after <= now {
            return Err(invalid("the issuing CA certificate has expired".into()));
        }
        let issuer = Issuer::from_ca_cert_der(&first.clone().into(), kp)
            .map_err(|e| invalid(format!("rcgen cannot issue under it: {e}")))?;
        let mut bundle_pem = String::new();
        for der in &certs {
            X509Certificate::from_der(der)
                .map_err(|e| invalid(format!("a certificate does not parse: {e}")))?;
            bundle_pem.push_str(&to_pem(der));
        }
        Ok(Self {
            issuer,
            issuer_pem: to_pem(first),
            bundle_pem,
            not_after,
            trust_domain: trust_domain.to_owned(),
        })
    }

    /// The trust bundle (`GET /v1/ca`): the issuing CA first, then older CAs.
    pub fn bundle_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// The SPIFFE trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// Issues a certificate for `key`; the chain (leaf, then the issuing CA) as PEM.
    pub fn issue(&self, key: &CsrKey, s: &Subject<'_>) -> Result<String, CaError> {
        let spiffe = spiffe_id(&self.trust_domain, s.service).map_err(CaError::Csr)?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "las");
        dn.push(DnType::CommonName, s.service);
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let issue = CaError::Issue;
        p.subject_alt_names = vec![SanType::URI(spiffe.try_into().map_err(issue)?)];
        for d in s.dns_names {
            p.subject_alt_names
                .push(SanType::DnsName(d.clone().try_into().map_err(issue)?));
        }
        p.use_authority_key_identifier_extension = true;
        p.not_before = unix(s.not_before)?;
        p.not_after = unix(s.not_after.min(self.not_after))?;
        p.serial_number = Some(random_serial()?);
        p.custom_extensions = vec![ear_extension(s.ear, s.ear_profile)?];
        let spki = SubjectPublicKeyInfo::from_der(&key.spki_der).map_err(issue)?;
        let cert = p.signed_by(&spki, &self.issuer).map_err(issue)?;
        Ok(format!("{}{}", cert.pem(), self.issuer_pem))
    }
}

/// The EAR as a CMW JSON record in an `id-pe-cmw` extension (RFC 9999): the extension's
/// value is `CMW ::= CHOICE { json UTF8String, cbor OCTET STRING }`, here the UTF8String
/// `["application/eat+jwt; eat_profile=\"PROFILE\"", base64url(EAR), 8]` (8: attestation
/// results). Not critical: a TLS peer that does not read it still checks the chain.
fn ear_extension(ear: &str, profile: &str) -> Result<CustomExtension, CaError> {
    let record = serde_json::json!([
        format!("application/eat+jwt; eat_profile=\"{profile}\""),
        URL_SAFE_NO_PAD.encode(ear.as_bytes()),
        CMW_ATTESTATION_RESULTS,
    ])
    .to_string();
    let value = der::asn1::Utf8StringRef::new(&record)
        .and_then(|s| s.to_der())
        .map_err(CaError::EarExtension)?;
    let mut ext = CustomExtension::from_oid_content(ID_PE_CMW, value);
    ext.set_criticality(false);
    Ok(ext)
}

fn read_small(path: &Path) -> Result<Vec<u8>, CaError> {
    let io = |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_CA_FILE {
        return Err(CaError::Invalid {
            path: path.to_path_buf(),
            detail: format!("larger than {MAX_CA_FILE} bytes"),
        });
    }
    std::fs::read(path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData;
    use x509_parser::extensions::{GeneralName, ParsedExtension};

    fn csr_for(kp: &KeyPair) -> Vec<u8> {
        CertificateParams::default()
            .serialize_request(kp)
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn issues_a_bound_p256_key_with_spiffe_id_dns_ekus_and_the_ear() {
        let d = tempfile::tempdir().unwrap();
        let now = 1_800_000_000;
        let ca = Ca::load_or_create(d.path(), &CaSource::default(), "example.org", now).unwrap();
        // Created once: a second load reads the same CA.
        let again = Ca::load_or_create(d.path(), &CaSource::default(), "example.org", now).unwrap();
        assert_eq!(ca.bundle_pem(), again.bundle_pem());

        let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = parse_csr(&csr_for(&kp)).unwrap();
        assert_eq!(key.spki_der(), kp.subject_public_key_info().as_slice());
        let mut app = key.spki_sha256().to_vec();
        app.extend_from_slice(b"more");
        key.check_binding(&app).unwrap();
        let dns = vec!["app.example.org".to_owned()];
        let chain = ca
            .issue(
                &key,
                &Subject {
                    service: "app",
                    dns_names: &dns,
                    ear: "h.p.s",
                    ear_profile: crate::EAR_PROFILE,
                    not_before: now - 5,
                    not_after: now + 3600,
                },
            )
            .unwrap();
        let ders = pem_certs(chain.as_bytes(), Path::new("chain")).unwrap();
        assert_eq!(ders.len(), 2);
        let (_, leaf) = X509Certificate::from_der(&ders[0]).unwrap();
        assert_eq!(leaf.validity().not_before.timestamp(), (now - 5) as i64);
        assert_eq!(leaf.validity().not_after.timestamp(), (now + 3600) as i64);
        assert!(!leaf.is_ca());
        let mut seen = 0;
        for ext in leaf.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    let names: Vec<String> = san
                        .general_names
                        .iter()
                        .map(|g| match g {
                            GeneralName::URI(u) => format!("uri:{u}"),
                            GeneralName::DNSName(n) => format!("dns:{n}"),
                            other => format!("{other:?}"),
                        })
                        .collect();
                    assert_eq!(
                        names,
                        ["uri:spiffe://example.org/app", "dns:app.example.org"]
                    );
                    seen += 1;
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    assert!(eku.server_auth && eku.client_auth && !eku.any);
                    seen += 1;
                }
                _ if ext.oid.to_id_string() == "1.3.6.1.5.5.7.1.35" => {
                    assert!(!ext.critical);
                    let s = <der::asn1::Utf8StringRef<'_> as der::Decode>::from_der(ext.value)
                        .unwrap()
                        .to_string();
                    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
                    assert_eq!(v[1], URL_SAFE_NO_PAD.encode("h.p.s"));
                    assert_eq!(v[2], 8);
                    assert!(v[0].as_str().unwrap().starts_with("application/eat+jwt"));
                    seen += 1;
                }
                _ => {}
            }
        }
        assert_eq!(seen, 3);
    }

    #[test]
    fn named_refusals_for_unbound_keys_bad_signatures_and_other_key_types() {
        let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der = csr_for(&kp);
        let key = parse_csr(&der).unwrap();
        // Unbound: another key's hash, or no 32 bytes.
        let e = key.check_binding(&[0u8; 32]).unwrap_err();
        assert_eq!(e.kind().as_str(), "unbound-key");
        assert_eq!(
            key.check_binding(b"short").unwrap_err().kind().as_str(),
            "unbound-key"
        );
        // One changed bit in the signature (the last byte of the DER).
        let mut bad = der.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            parse_csr(&bad).unwrap_err().kind().as_str(),
            "bad-csr-signature"
        );
        // Ed25519: a valid CSR of a key type not certified.
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let e = parse_csr(&csr_for(&ed)).unwrap_err();
        assert_eq!(e.kind().as_str(), "unsupported-key-type");
        assert!(e.to_string().contains("Ed25519"), "{e}");
        // Not a CSR at all; trailing bytes; a certificate in PEM.
        assert_eq!(
            parse_csr(b"nonsense").unwrap_err().kind().as_str(),
            "malformed-csr"
        );
        let mut long = der.clone();
        long.push(0);
        assert_eq!(
            parse_csr(&long).unwrap_err().kind().as_str(),
            "malformed-csr"
        );
        let pem = CertificateParams::default()
            .serialize_request(&kp)
            .unwrap()
            .pem()
            .unwrap();
        parse_csr(pem.as_bytes()).unwrap();
        let cert_pem = pem.replace("CERTIFICATE REQUEST", "CERTIFICATE");
        assert_eq!(
            parse_csr(cert_pem.as_bytes()).unwrap_err().kind().as_str(),
            "malformed-csr"
        );
        // Service names that cannot be SPIFFE path segments.
        assert_eq!(
            spiffe_id("td", "a/b").unwrap_err().kind().as_str(),
            "unsupported-service-name"
        );
        assert!(check_trust_domain("Upper.Case").is_err());
    }

    /// Each refusal is its own variant, and a parser's error is kept as the `source`
    /// rather than flattened into text.
    #[test]
    fn csr_refusals_are_typed_and_keep_their_sources() {
        use std::error::Error as _;
        let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = parse_csr(&csr_for(&kp)).unwrap();
        let e = parse_csr(b"nonsense").unwrap_err();
        assert!(
            matches!(e, CsrError::Der(_)) && e.source().is_some(),
            "{e:?}"
        );
        let e = parse_csr(b"-----BEGIN CERTIFICATE REQUEST-----\n!!!\n").unwrap_err();
        assert!(
            matches!(e, CsrError::Pem(_)) && e.source().is_some(),
            "{e:?}"
        );
        let e = parse_csr(&vec![0u8; MAX_CSR + 1]).unwrap_err();
        assert!(
            matches!(e, CsrError::TooLarge(n) if n == MAX_CSR + 1),
            "{e:?}"
        );
        let e = key.check_binding(&[0u8; 32]).unwrap_err();
        assert!(
            matches!(e, CsrError::Unbound { expected } if expected == key.spki_sha256()),
            "{e:?}"
        );
        assert!(e.to_string().contains(&hex::encode(key.spki_sha256())));
        let e = key.check_binding(b"short").unwrap_err();
        assert!(
            matches!(e, CsrError::ReportDataTooShort { len: 5 }),
            "{e:?}"
        );
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let e = parse_csr(&csr_for(&ed)).unwrap_err();
        assert!(
            matches!(e, CsrError::UnsupportedKeyType(KeyType::Ed25519)),
            "{e:?}"
        );
        let e = spiffe_id("td", "a/b").unwrap_err();
        assert!(
            matches!(&e, CsrError::ServiceName { name } if name == "a/b"),
            "{e:?}"
        );
        let e = check_trust_domain("Upper.Case").unwrap_err();
        assert!(
            matches!(&e, CaError::TrustDomain { name } if name == "Upper.Case"),
            "{e:?}"
        );
        let e = unix(u64::MAX).unwrap_err();
        assert!(matches!(e, CaError::Time { secs: u64::MAX, .. }) && e.source().is_some());
    }

    #[test]
    fn operator_ca_must_match_its_key_and_be_a_ca() {
        let d = tempfile::tempdir().unwrap();
        let now = 1_800_000_000;
        let own = Ca::load_or_create(d.path(), &CaSource::default(), "td", now).unwrap();
        let ops = tempfile::tempdir().unwrap();
        let other_key = ops.path().join("key.pem");
        std::fs::write(&other_key, new_ca_key().unwrap().as_slice()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let src = CaSource {
            cert: Some(d.path().join(CA_CERT_FILE)),
            key: Some(other_key),
        };
        let e = Ca::load_or_create(d.path(), &src, "td", now).unwrap_err();
        assert!(e.to_string().contains("not for the CA key"), "{e}");
        // The state folder's own pair given as operator files: accepted, same bundle.
        let src = CaSource {
            cert: Some(d.path().join(CA_CERT_FILE)),
            key: Some(d.path().join(CA_KEY_FILE)),
        };
        let same = Ca::load_or_create(ops.path(), &src, "td", now).unwrap();
        assert_eq!(same.bundle_pem(), own.bundle_pem());
        let half = CaSource {
            cert: Some(d.path().join(CA_CERT_FILE)),
            key: None,
        };
        assert!(Ca::load_or_create(ops.path(), &half, "td", now).is_err());
    }

    #[test]
    fn state_folder_ca_files_follow_the_key_file_rules() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        Ca::load_or_create(d.path(), &CaSource::default(), "td", 1_800_000_000).unwrap();
        for f in [CA_KEY_FILE, CA_CERT_FILE] {
            let m = std::fs::metadata(d.path().join(f)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        }
        // A symlinked CA key in another state folder: refused, not followed.
        let d2 = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(d.path().join(CA_KEY_FILE), d2.path().join(CA_KEY_FILE))
            .unwrap();
        let e =
            Ca::load_or_create(d2.path(), &CaSource::default(), "td", 1_800_000_000).unwrap_err();
        assert!(
            matches!(
                e,
                CaError::Key(KeyError::State(las_state::Refusal::Symlink { .. }))
            ),
            "{e}"
        );
        // A group-readable CA key: refused (las-state's rule, as for the EAR keys).
        let key = d.path().join(CA_KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e =
            Ca::load_or_create(d.path(), &CaSource::default(), "td", 1_800_000_000).unwrap_err();
        assert!(
            matches!(
                e,
                CaError::Key(KeyError::State(las_state::Refusal::FileMode { .. }))
            ),
            "{e}"
        );
        // An expired CA certificate: refused.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let later = 1_800_000_000 + CA_LIFETIME + 1;
        let e = Ca::load_or_create(d.path(), &CaSource::default(), "td", later).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
    }
}

//! DCAP collateral: what a quote needs (FMSPC, PCK CA), the collateral bundles a
//! verification may use, and the window in which each is valid.

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::quote::Quote;

/// Largest collateral file read (bytes). Real collateral is about 15 KiB per FMSPC.
pub const MAX_COLLATERAL_SIZE: usize = 4 * 1024 * 1024;

/// Collateral could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollateralError {
    /// More than [`MAX_COLLATERAL_SIZE`] bytes.
    #[error("collateral is {0} bytes, more than the {MAX_COLLATERAL_SIZE} accepted")]
    TooLarge(usize),
    /// Not dcap-qvl's collateral JSON (an object, or a list of them).
    #[error("collateral is not valid collateral JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A field decodes but its content does not.
    #[error("collateral field `{field}`: {message}")]
    Field {
        /// The JSON field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An empty list.
    #[error("the collateral file holds no collateral")]
    Empty,
}

/// A DCAP quote whose collateral cannot even be looked up. The source is dcap-qvl's
/// error (dcap-qvl reports `anyhow` errors; their cause chain says what is wrong).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuoteError {
    /// The bytes do not parse as a DCAP quote.
    #[error("not a usable DCAP quote: it does not parse")]
    Parse(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No FMSPC in the PCK certificate of the quote's certification data.
    #[error("not a usable DCAP quote: no FMSPC in its PCK certificate")]
    Fmspc(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The PCK certificate names no known issuing CA (`processor` or `platform`).
    #[error("not a usable DCAP quote: no PCK CA in its PCK certificate")]
    Ca(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What collateral a quote needs: Intel serves it per FMSPC (platform model and
/// configuration) and per PCK CA (`processor` or `platform`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollateralKey {
    /// FMSPC, 12 upper-case hex characters.
    pub fmspc: String,
    /// `processor` or `platform`.
    pub ca: &'static str,
}

/// Reads the FMSPC and PCK CA from the PCK certificate inside a quote (certification data
/// type 5, what a DCAP quoting enclave with a PCCS produces).
pub fn collateral_key(quote: &[u8]) -> Result<CollateralKey, QuoteError> {
    let q = Quote::parse(quote).map_err(|e| QuoteError::Parse(e.into()))?;
    let fmspc = dcap_qvl::intel::quote_fmspc(&q).map_err(|e| QuoteError::Fmspc(e.into()))?;
    let ca = dcap_qvl::intel::quote_ca(&q).map_err(|e| QuoteError::Ca(e.into()))?;
    Ok(CollateralKey {
        fmspc: hex::encode_upper(fmspc),
        ca: ca.as_id_str(),
    })
}

/// The DCAP quote inside `sgx-dcap` identity evidence (signature checked), or `None` for
/// other or undecodable evidence. Callers use it to find the collateral to fetch
/// ([`collateral_key`]) before verifying.
pub fn evidence_dcap_quote(evidence: &[u8]) -> Option<Vec<u8>> {
    match las_core::evidence::decode_and_verify_evidence(evidence)
        .ok()?
        .kind
    {
        las_core::evidence::EvidenceKind::SgxDcap { quote } => Some(quote),
        las_core::evidence::EvidenceKind::Sim => None,
    }
}

/// One collateral bundle (PCK CRL, root CA CRL, TCB info, QE identity and their issuer
/// chains) with the FMSPC it is for and the window in which all of its parts are valid.
#[derive(Debug, Clone)]
pub struct Collateral {
    raw: QuoteCollateralV3,
    fmspc: String,
    not_before: u64,
    not_after: u64,
}

fn rfc3339(field: &'static str, v: &serde_json::Value, key: &str) -> Result<u64, CollateralError> {
    let s = v
        .get(key)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| CollateralError::Field {
            field,
            message: format!("no `{key}` date"),
        })?;
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| CollateralError::Field {
        field,
        message: format!("`{key}` is not an RFC 3339 date: {e}"),
    })?;
    u64::try_from(t.timestamp()).map_err(|_| CollateralError::Field {
        field,
        message: format!("`{key}` lies before 1970"),
    })
}

fn crl_window(field: &'static str, der_bytes: &[u8]) -> Result<(u64, u64), CollateralError> {
    use der::Decode as _;
    let crl =
        x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der_bytes)
            .map_err(|e| CollateralError::Field {
                field,
                message: format!("not a DER CRL: {e}"),
            })?;
    let tbs = &crl.tbs_cert_list;
    let next = tbs.next_update.ok_or(CollateralError::Field {
        field,
        message: "the CRL has no nextUpdate".into(),
    })?;
    Ok((
        tbs.this_update.to_unix_duration().as_secs(),
        next.to_unix_duration().as_secs(),
    ))
}

impl Collateral {
    /// Wraps dcap-qvl's collateral, reading its FMSPC and validity window.
    pub fn new(raw: QuoteCollateralV3) -> Result<Self, CollateralError> {
        let json = |field: &'static str, s: &str| {
            serde_json::from_str::<serde_json::Value>(s).map_err(|e| CollateralError::Field {
                field,
                message: e.to_string(),
            })
        };
        let tcb = json("tcb_info", &raw.tcb_info)?;
        let qe = json("qe_identity", &raw.qe_identity)?;
        let fmspc = tcb
            .get("fmspc")
            .and_then(serde_json::Value::as_str)
            .filter(|f| f.len() == 12 && f.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(CollateralError::Field {
                field: "tcb_info",
                message: "no 12-hex-digit `fmspc`".into(),
            })?
            .to_ascii_uppercase();
        let mut not_before =
            rfc3339("tcb_info", &tcb, "issueDate")?.max(rfc3339("qe_identity", &qe, "issueDate")?);
        let mut not_after = rfc3339("tcb_info", &tcb, "nextUpdate")?.min(rfc3339(
            "qe_identity",
            &qe,
            "nextUpdate",
        )?);
        for (field, crl) in [("root_ca_crl", &raw.root_ca_crl), ("pck_crl", &raw.pck_crl)] {
            let (this, next) = crl_window(field, crl)?;
            not_before = not_before.max(this);
            not_after = not_after.min(next);
        }
        Ok(Self {
            raw,
            fmspc,
            not_before,
            not_after,
        })
    }

    /// Parses one collateral object in dcap-qvl's JSON form (byte fields as hex).
    pub fn from_json(bytes: &[u8]) -> Result<Self, CollateralError> {
        if bytes.len() > MAX_COLLATERAL_SIZE {
            return Err(CollateralError::TooLarge(bytes.len()));
        }
        let raw: QuoteCollateralV3 =
            serde_json::from_slice(bytes).map_err(CollateralError::Json)?;
        Self::new(raw)
    }

    /// The JSON form that [`Collateral::from_json`] and `--collateral FILE` read.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.raw).unwrap_or_default()
    }

    /// The FMSPC this collateral is for (upper-case hex).
    pub fn fmspc(&self) -> &str {
        &self.fmspc
    }

    /// Start of the window in which every part is valid (seconds since the epoch).
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// End of that window: the earliest `nextUpdate` of TCB info, QE identity and CRLs.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// Whether every part is valid at `now`.
    pub fn valid_at(&self, now: u64) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// dcap-qvl's form.
    pub fn raw(&self) -> &QuoteCollateralV3 {
        &self.raw
    }
}

/// The collateral a verification may use: one bundle per FMSPC (and PCK CA) of the
/// platforms whose LAS evidence is checked. A `--collateral FILE` holds one object or a
/// list of objects.
#[derive(Debug, Clone, Default)]
pub struct CollateralSet {
    items: Vec<Collateral>,
}

impl CollateralSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a collateral file: one collateral object or a JSON list of them.
    pub fn from_json(bytes: &[u8]) -> Result<Self, CollateralError> {
        if bytes.len() > MAX_COLLATERAL_SIZE {
            return Err(CollateralError::TooLarge(bytes.len()));
        }
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(CollateralError::Json)?;
        let objects = match v {
            serde_json::Value::Array(a) => a,
            other => vec![other],
        };
        if objects.is_empty() {
            return Err(CollateralError::Empty);
        }
        let items = objects
            .into_iter()
            .map(|o| {
                serde_json::from_value::<QuoteCollateralV3>(o)
                    .map_err(CollateralError::Json)
                    .and_then(Collateral::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { items })
    }

    /// Adds a bundle.
    pub fn push(&mut self, c: Collateral) {
        self.items.push(c);
    }

    /// Adds every bundle of `other`.
    pub fn extend(&mut self, other: CollateralSet) {
        self.items.extend(other.items);
    }

    /// Whether a bundle for `key`'s FMSPC is valid at `now` (no need to fetch one).
    pub fn covers(&self, key: &CollateralKey, now: u64) -> bool {
        self.items
            .iter()
            .any(|c| c.fmspc.eq_ignore_ascii_case(&key.fmspc) && c.valid_at(now))
    }

    /// The bundles.
    pub fn iter(&self) -> impl Iterator<Item = &Collateral> {
        self.items.iter()
    }

    /// Number of bundles.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl From<Collateral> for CollateralSet {
    fn from(c: Collateral) -> Self {
        Self { items: vec![c] }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::dcap::tests::{SAMPLE_NOW, sample};

    #[test]
    fn sample_collateral_window_and_key() {
        let (quote, coll) = sample();
        let c = Collateral::from_json(&coll).unwrap();
        assert_eq!(c.fmspc(), "00A067110000");
        assert!(
            c.valid_at(SAMPLE_NOW),
            "{}..{}",
            c.not_before(),
            c.not_after()
        );
        assert!(!c.valid_at(c.not_after() + 1));
        assert!(!c.valid_at(c.not_before() - 1));
        let k = collateral_key(&quote).unwrap();
        assert_eq!(k.fmspc, "00A067110000");
        assert_eq!(k.ca, "processor");
        // The JSON form round-trips.
        let again = Collateral::from_json(&c.to_json()).unwrap();
        assert_eq!(again.raw(), c.raw());
        // A file may hold a list.
        let list = format!("[{}]", String::from_utf8(coll.clone()).unwrap());
        assert_eq!(CollateralSet::from_json(list.as_bytes()).unwrap().len(), 1);
        assert!(matches!(
            CollateralSet::from_json(b"[]"),
            Err(CollateralError::Empty)
        ));
        assert!(CollateralSet::from_json(b"{}").is_err());
    }
}

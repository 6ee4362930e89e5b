//! DCAP verification of `sgx-dcap` identity evidence: is this platform key held by a
//! genuine LAS enclave on an SGX platform Intel vouches for?
//!
//! ```text
//!  evidence.dcap_quote ─► collateral_key ─► CollateralSet (file, or PCCS via `pccs`)
//!                              │
//!                              ▼
//!  appraise(policy, quote, binding, collateral, now)
//!    ├─ collateral for the quote's FMSPC, valid at `now`     dcap-collateral-missing / -expired
//!    ├─ dcap-qvl: PCK chain to Intel's root, CRLs, QE        dcap-quote-invalid
//!    │  identity, quote signature, TCB level
//!    ├─ TCB status  ─► tolerate names                        tcb-out-of-date, tcb-configuration-needed,
//!    │                                                       tcb-software-hardening-needed
//!    ├─ advisories  ─► ignore_advisories / tolerate names    advisory-not-ignored
//!    ├─ PCK SMT flag ─► tolerate hyperthreading               hyperthreading-enabled
//!    ├─ DEBUG attribute ─► tolerate debug-mode               debug-las
//!    └─ REPORTDATA == binding(platform key, nonce)           report-data-mismatch
//! ```
//!
//! The LAS's measurement (MRENCLAVE, MRSIGNER) from the verified quote is then checked
//! against `trusted_las` by the caller (`verify::verify_las_evidence_with`).
//!
//! Everything here is a function of its inputs (quote, collateral, policy, `now`); fetching
//! collateral from a PCCS is the job of [`pccs`] (feature `pccs`, on by default).

#[cfg(feature = "pccs")]
pub mod pccs;

use dcap_qvl::quote::Quote;
use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::{PckCertFlag, QuoteCollateralV3, QuotePolicy, TcbStatus};
use las_core::sgx::Attributes;

use crate::policy::{Policy, Tolerance};
use crate::verify::{Reason, Rejection};

/// Largest collateral file read (bytes). Real collateral is about 15 KiB per FMSPC.
pub const MAX_COLLATERAL_SIZE: usize = 4 * 1024 * 1024;

/// Advisories that a named tolerance covers: a platform that needs them tolerates them
/// only through that name (or by listing the advisory in `ignore_advisories`).
pub const ADVISORY_TOLERANCES: [(&str, Tolerance); 4] = [
    // L1 Terminal Fault: SGX secrets are safe only with hyper-threading off.
    ("INTEL-SA-00161", Tolerance::Hyperthreading),
    // Microarchitectural Data Sampling: likewise needs hyper-threading off.
    ("INTEL-SA-00233", Tolerance::Hyperthreading),
    // SGX with Intel Processor Graphics: needs the integrated GPU off.
    ("INTEL-SA-00219", Tolerance::InsecureIgpu),
    // ÆPIC Leak.
    ("INTEL-SA-00657", Tolerance::AepicLeak),
];

/// Collateral could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CollateralError {
    /// More than [`MAX_COLLATERAL_SIZE`] bytes.
    #[error("collateral is {0} bytes, more than the {MAX_COLLATERAL_SIZE} accepted")]
    TooLarge(usize),
    /// Not dcap-qvl's collateral JSON (an object, or a list of them).
    #[error("collateral is not valid collateral JSON: {0}")]
    Json(String),
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

/// A DCAP quote whose collateral cannot even be looked up.
#[derive(Debug, thiserror::Error)]
#[error("not a usable DCAP quote: {0}")]
pub struct QuoteError(pub String);

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
    let q = Quote::parse(quote).map_err(|e| QuoteError(format!("{e:#}")))?;
    let fmspc = dcap_qvl::intel::quote_fmspc(&q).map_err(|e| QuoteError(format!("{e:#}")))?;
    let ca = dcap_qvl::intel::quote_ca(&q).map_err(|e| QuoteError(format!("{e:#}")))?;
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
            serde_json::from_slice(bytes).map_err(|e| CollateralError::Json(e.to_string()))?;
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
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| CollateralError::Json(e.to_string()))?;
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
                    .map_err(|e| CollateralError::Json(e.to_string()))
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

/// What a verified DCAP quote says about the enclave and its platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcapReport {
    /// MRENCLAVE of the quoted enclave.
    pub mrenclave: [u8; 32],
    /// MRSIGNER of the quoted enclave.
    pub mrsigner: [u8; 32],
    /// ISVPRODID.
    pub isvprodid: u16,
    /// ISVSVN.
    pub isvsvn: u16,
    /// The platform's CPUSVN.
    pub cpusvn: [u8; 16],
    /// ATTRIBUTES (DEBUG bit).
    pub attributes: Attributes,
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// Intel's TCB status of the platform and QE (e.g. `UpToDate`, `SWHardeningNeeded`).
    pub tcb_status: String,
    /// Intel security advisories that apply to this platform.
    pub advisory_ids: Vec<String>,
    /// The platform's FMSPC.
    pub fmspc: String,
}

/// The outcome of [`appraise`]: the verified report (when the quote verified) and every
/// policy check that failed.
#[derive(Debug, Clone, Default)]
pub struct DcapAppraisal {
    /// Present when the quote's signature chain verified.
    pub report: Option<DcapReport>,
    /// Failed checks; empty means accepted.
    pub rejections: Vec<Rejection>,
    /// What was tolerated or ignored.
    pub notes: Vec<String>,
}

impl DcapAppraisal {
    fn reject(&mut self, reason: Reason, detail: String) {
        self.rejections.push(Rejection { reason, detail });
    }
}

/// Which tolerances a TCB status needs, each with the reason used when it is missing.
/// `None`: a status that no tolerance accepts (revoked, or TDX-only).
fn tolerances_for(status: TcbStatus) -> Option<&'static [(Tolerance, Reason)]> {
    const OUT: (Tolerance, Reason) = (Tolerance::OutdatedTcb, Reason::TcbOutOfDate);
    const CONF: (Tolerance, Reason) = (
        Tolerance::InsecureConfiguration,
        Reason::TcbConfigurationNeeded,
    );
    const SW: (Tolerance, Reason) = (
        Tolerance::SoftwareHardeningNeeded,
        Reason::TcbSoftwareHardeningNeeded,
    );
    match status {
        TcbStatus::UpToDate => Some(&[]),
        TcbStatus::SWHardeningNeeded => Some(&[SW]),
        TcbStatus::ConfigurationNeeded => Some(&[CONF]),
        TcbStatus::ConfigurationAndSWHardeningNeeded => Some(&[CONF, SW]),
        TcbStatus::OutOfDate => Some(&[OUT]),
        TcbStatus::OutOfDateConfigurationNeeded => Some(&[OUT, CONF]),
        TcbStatus::Revoked
        | TcbStatus::TDRelaunchAdvised
        | TcbStatus::TDRelaunchAdvisedConfigurationNeeded => None,
    }
}

fn advisory_ignored(policy: &Policy, id: &str) -> bool {
    policy
        .attestation
        .ignore_advisories
        .iter()
        .any(|a| a.eq_ignore_ascii_case(id))
}

fn advisory_tolerance(id: &str) -> Option<Tolerance> {
    ADVISORY_TOLERANCES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(id))
        .map(|(_, t)| *t)
}

/// Verifies a DCAP quote of a LAS and appraises it against `policy`: see the module docs
/// for the order of checks. `expected_report_data` is the evidence binding
/// (`las_core::evidence::binding`). Checks after the signature chain all run, so that
/// every failure is reported at once.
pub fn appraise(
    policy: &Policy,
    quote: &[u8],
    expected_report_data: &[u8; 64],
    collateral: &CollateralSet,
    now: u64,
) -> DcapAppraisal {
    let mut a = DcapAppraisal::default();
    let key = match collateral_key(quote) {
        Ok(k) => k,
        Err(e) => {
            a.reject(Reason::DcapQuoteInvalid, e.to_string());
            return a;
        }
    };
    let candidates: Vec<&Collateral> = collateral
        .iter()
        .filter(|c| c.fmspc.eq_ignore_ascii_case(&key.fmspc))
        .collect();
    if candidates.is_empty() {
        a.reject(
            Reason::DcapCollateralMissing,
            format!(
                "no DCAP collateral for FMSPC {} ({} CA); fetch it from a PCCS (--pccs-url) or pass it as a file (--collateral)",
                key.fmspc, key.ca
            ),
        );
        return a;
    }
    let current: Vec<&Collateral> = candidates
        .iter()
        .copied()
        .filter(|c| c.valid_at(now))
        .collect();
    if current.is_empty() {
        let windows: Vec<String> = candidates
            .iter()
            .map(|c| format!("{}..{}", c.not_before, c.not_after))
            .collect();
        a.reject(
            Reason::DcapCollateralExpired,
            format!(
                "the DCAP collateral for FMSPC {} is valid in {} (seconds since the epoch), not now ({now}); fetch fresh collateral",
                key.fmspc,
                windows.join(", ")
            ),
        );
        return a;
    }

    // Debug enclaves are judged below with their own reason, so dcap-qvl lets them through.
    let verifier = QuoteVerifier::new_prod().allow_debug(true);
    let mut failure = String::new();
    let mut claims = None;
    for c in current {
        match verifier.verify_with_policy(
            quote,
            c.raw().clone(),
            now,
            &QuotePolicy::claims_only(now),
        ) {
            Ok(cl) => {
                claims = Some(cl);
                break;
            }
            Err(e) => failure = format!("{e:#}"),
        }
    }
    let Some(claims) = claims else {
        a.reject(
            Reason::DcapQuoteInvalid,
            format!("the DCAP quote does not verify: {failure}"),
        );
        return a;
    };
    let Some(r) = claims.report.as_sgx() else {
        a.reject(
            Reason::DcapQuoteInvalid,
            "the DCAP quote is not an SGX enclave quote".into(),
        );
        return a;
    };
    let (flags, xfrm) = r.attributes.split_at(8);
    let attributes = Attributes {
        flags: u64::from_le_bytes(flags.try_into().unwrap_or([0; 8])),
        xfrm: u64::from_le_bytes(xfrm.try_into().unwrap_or([0; 8])),
    };
    let report = DcapReport {
        mrenclave: r.mr_enclave,
        mrsigner: r.mr_signer,
        isvprodid: r.isv_prod_id,
        isvsvn: r.isv_svn,
        cpusvn: r.cpu_svn,
        attributes,
        report_data: r.report_data,
        tcb_status: claims.tcb.status.to_string(),
        advisory_ids: claims.tcb.advisory_ids.clone(),
        fmspc: key.fmspc.clone(),
    };

    judge(
        policy,
        claims.tcb.status,
        &claims.tcb.advisory_ids,
        claims.platform.pck.smt_enabled,
        &report,
        expected_report_data,
        &mut a,
    );
    a.report = Some(report);
    a
}

/// The policy checks on a verified quote's facts (everything after the signature chain).
fn judge(
    policy: &Policy,
    status: TcbStatus,
    advisories: &[String],
    smt: PckCertFlag,
    report: &DcapReport,
    expected_report_data: &[u8; 64],
    a: &mut DcapAppraisal,
) {
    // TCB status.
    match tolerances_for(status) {
        None => a.reject(
            Reason::DcapQuoteInvalid,
            format!("TCB status {} is not acceptable for an SGX LAS", status),
        ),
        Some(needed) => {
            let mut tolerated = Vec::new();
            for (t, reason) in needed {
                if policy.tolerates(*t) {
                    tolerated.push(t.as_str());
                } else {
                    a.reject(
                        *reason,
                        format!(
                            "the platform's TCB status is {}; tolerate `{}` to accept it",
                            status,
                            t.as_str()
                        ),
                    );
                }
            }
            if !tolerated.is_empty() {
                a.notes.push(format!(
                    "TCB status {} of platform FMSPC {} tolerated ({})",
                    status,
                    report.fmspc,
                    tolerated.join(", ")
                ));
            }
        }
    }

    // Advisories.
    let mut open = Vec::new();
    for id in advisories {
        if advisory_ignored(policy, id) {
            a.notes.push(format!("advisory {id} ignored by the policy"));
            continue;
        }
        match advisory_tolerance(id) {
            Some(t) if policy.tolerates(t) => a
                .notes
                .push(format!("advisory {id} tolerated (`{}`)", t.as_str())),
            Some(t) => open.push(format!("{id} (or tolerate `{}`)", t.as_str())),
            None => open.push(id.clone()),
        }
    }
    if !open.is_empty() {
        a.reject(
            Reason::AdvisoryNotIgnored,
            format!(
                "the platform is affected by Intel security advisories that the policy does not ignore: {}; list them in ignore_advisories only after assessing them",
                open.join(", ")
            ),
        );
    }

    // Hyper-threading, where the PCK certificate says (Platform CA certificates only).
    if smt == PckCertFlag::True {
        if policy.tolerates(Tolerance::Hyperthreading) {
            a.notes
                .push("hyper-threading enabled on the LAS's platform, tolerated".into());
        } else {
            a.reject(
                Reason::HyperthreadingEnabled,
                "the platform's PCK certificate says hyper-threading (SMT) is enabled; tolerate `hyperthreading` to accept it".into(),
            );
        }
    }

    // DEBUG LAS.
    if report.attributes.debug() {
        if policy.tolerates(Tolerance::DebugMode) {
            a.notes.push(
                "the LAS is a DEBUG enclave (tolerated): its memory and platform key are readable by the host".into(),
            );
        } else {
            a.reject(
                Reason::DebugLas,
                "the LAS enclave has the DEBUG attribute: the host can read its platform key; tolerate `debug-mode` to accept it".into(),
            );
        }
    }

    // The binding of platform key and nonce.
    if &report.report_data != expected_report_data {
        a.reject(
            Reason::ReportDataMismatch,
            format!(
                "the DCAP quote's report data is {}, not the binding of this platform key and nonce ({}): the quote does not vouch for this key",
                hex::encode(report.report_data),
                hex::encode(expected_report_data)
            ),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;

    /// The real DCAP sample of dcap-qvl 0.7.1, committed under tests/vectors/dcap.
    pub(crate) fn sample() -> (Vec<u8>, Vec<u8>) {
        (
            las_testkit::vectors::DCAP_QUOTE.to_vec(),
            las_testkit::vectors::DCAP_COLLATERAL_JSON.to_vec(),
        )
    }

    /// 2025-07-01T00:00:00Z: inside the sample collateral's validity (TCB info and QE
    /// identity from 2025-06-19 to 2025-07-19, CRLs likewise; asserted below).
    pub(crate) const SAMPLE_NOW: u64 = las_testkit::vectors::DCAP_SAMPLE_NOW;

    fn policy(att: &str) -> Policy {
        let y = format!("security:\n  attestation:\n{att}services:\n  - name: app\n");
        Policy::from_yaml(y.as_bytes()).unwrap()
    }

    fn reasons(a: &DcapAppraisal) -> Vec<&'static str> {
        a.rejections.iter().map(|r| r.reason.as_str()).collect()
    }

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

    #[test]
    fn real_quote_verifies_and_reports_intels_tcb_status() {
        let (quote, coll) = sample();
        let set = CollateralSet::from_json(&coll).unwrap();
        // Everything tolerated: the chain verifies, the status and advisories are Intel's,
        // and only the binding fails (this quote binds no LAS key).
        let p = policy(
            "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode, hyperthreading]\n    ignore_advisories: [INTEL-SA-00289, intel-sa-00615]\n",
        );
        let a = appraise(&p, &quote, &[0; 64], &set, SAMPLE_NOW);
        let r = a.report.as_ref().expect("the chain verifies");
        assert_eq!(r.tcb_status, "ConfigurationAndSWHardeningNeeded");
        assert_eq!(r.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
        assert_eq!(r.fmspc, "00A067110000");
        assert_eq!(reasons(&a), ["report-data-mismatch"], "{:?}", a.rejections);
        // The quote's own report data passes the binding check.
        let own = r.report_data;
        let ok = appraise(&p, &quote, &own, &set, SAMPLE_NOW);
        assert!(ok.rejections.is_empty(), "{:?}", ok.rejections);
        assert!(ok.notes.iter().any(|n| n.contains("INTEL-SA-00289")));
    }

    #[test]
    fn real_quote_without_tolerations_names_each_reason() {
        let (quote, coll) = sample();
        let set = CollateralSet::from_json(&coll).unwrap();
        let a = appraise(
            &policy("    tolerate: []\n"),
            &quote,
            &[0; 64],
            &set,
            SAMPLE_NOW,
        );
        let got = reasons(&a);
        for want in [
            "tcb-configuration-needed",
            "tcb-software-hardening-needed",
            "advisory-not-ignored",
            "report-data-mismatch",
        ] {
            assert!(got.contains(&want), "{want} missing from {got:?}");
        }
        let adv = a
            .rejections
            .iter()
            .find(|r| r.reason == Reason::AdvisoryNotIgnored)
            .unwrap();
        assert!(adv.detail.contains("INTEL-SA-00289") && adv.detail.contains("INTEL-SA-00615"));
        // One advisory ignored: the other is still named.
        let a = appraise(
            &policy(
                "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode]\n    ignore_advisories: [INTEL-SA-00289]\n",
            ),
            &quote,
            &[0; 64],
            &set,
            SAMPLE_NOW,
        );
        let adv = a
            .rejections
            .iter()
            .find(|r| r.reason == Reason::AdvisoryNotIgnored)
            .unwrap();
        assert!(adv.detail.contains("INTEL-SA-00615") && !adv.detail.contains("00289"));
    }

    #[test]
    fn collateral_missing_expired_or_for_another_platform() {
        let (quote, coll) = sample();
        let p = policy("    tolerate: []\n");
        let empty = CollateralSet::new();
        assert_eq!(
            reasons(&appraise(&p, &quote, &[0; 64], &empty, SAMPLE_NOW)),
            ["dcap-collateral-missing"]
        );
        let set = CollateralSet::from_json(&coll).unwrap();
        let c = set.iter().next().unwrap().clone();
        for now in [c.not_after() + 1, c.not_before() - 1] {
            assert_eq!(
                reasons(&appraise(&p, &quote, &[0; 64], &set, now)),
                ["dcap-collateral-expired"]
            );
        }
        // Collateral of another FMSPC does not count.
        let mut v: serde_json::Value = serde_json::from_slice(&coll).unwrap();
        let tcb = v["tcb_info"]
            .as_str()
            .unwrap()
            .replace("00A067110000", "00906ED50000");
        v["tcb_info"] = serde_json::Value::String(tcb);
        let other = CollateralSet::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(
            reasons(&appraise(&p, &quote, &[0; 64], &other, SAMPLE_NOW)),
            ["dcap-collateral-missing"]
        );
    }

    #[test]
    fn tampered_collateral_is_rejected() {
        let (quote, coll) = sample();
        let p = policy(
            "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode]\n    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n",
        );
        // Intel's TCB info signed the status: claiming UpToDate breaks the signature.
        let mut v: serde_json::Value = serde_json::from_slice(&coll).unwrap();
        let tcb = v["tcb_info"]
            .as_str()
            .unwrap()
            .replace("ConfigurationAndSWHardeningNeeded", "UpToDate");
        v["tcb_info"] = serde_json::Value::String(tcb);
        let set = CollateralSet::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(
            reasons(&appraise(&p, &quote, &[0; 64], &set, SAMPLE_NOW)),
            ["dcap-quote-invalid"]
        );
    }

    #[test]
    fn truncated_and_flipped_quotes_are_rejected() {
        let (quote, coll) = sample();
        let set = CollateralSet::from_json(&coll).unwrap();
        let p = policy(
            "    tolerate: [insecure-configuration, software-hardening-needed, debug-mode]\n    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n",
        );
        let own = appraise(&p, &quote, &[0; 64], &set, SAMPLE_NOW)
            .report
            .unwrap()
            .report_data;
        for len in [0, 47, 48, 432, 436, quote.len() / 2, quote.len() - 1] {
            let a = appraise(&p, &quote[..len], &own, &set, SAMPLE_NOW);
            assert!(!a.rejections.is_empty(), "truncated to {len} accepted");
            assert!(a.report.is_none(), "truncated to {len}");
        }
        // Flip one bit at a spread of positions: header, report body (MRENCLAVE, report
        // data, attributes), signature, QE report, certification data.
        // Not content: PEM line breaks (whitespace to the PEM reader; a flipped `\n` is a
        // vertical tab) and the quote's own copy of Intel's root certificate, the last in
        // its chain (the chain is anchored at the verifier's built-in root, not at it).
        let root_copy = quote
            .windows(27)
            .rposition(|w| w == b"-----BEGIN CERTIFICATE-----")
            .unwrap();
        assert!(root_copy > 3000);
        let step = (quote.len() / 97).max(1);
        let mut checked = 0;
        for i in (0..root_copy)
            .step_by(step)
            .chain([48, 64, 96, 112, 144, 304, 368, 380, 440])
            .filter(|&i| quote[i] != b'\n')
        {
            let mut bad = quote.clone();
            bad[i] ^= 0x01;
            let a = appraise(&p, &bad, &own, &set, SAMPLE_NOW);
            assert!(!a.rejections.is_empty(), "flip at {i} accepted");
            checked += 1;
        }
        assert!(checked > 80);
    }

    /// The checks after the chain, on facts no genuine sample quote has (a DEBUG LAS,
    /// SMT on, an out-of-date TCB, advisories a tolerance covers).
    #[test]
    fn judge_names_each_weakness() {
        let report = DcapReport {
            mrenclave: [1; 32],
            mrsigner: [2; 32],
            isvprodid: 1,
            isvsvn: 1,
            cpusvn: [3; 16],
            attributes: Attributes {
                flags: las_core::sgx::flags::INIT | las_core::sgx::flags::DEBUG,
                xfrm: 3,
            },
            report_data: [9; 64],
            tcb_status: "OutOfDate".into(),
            advisory_ids: vec![],
            fmspc: "00906ED50000".into(),
        };
        let adv = vec!["INTEL-SA-00161".to_string(), "INTEL-SA-00657".to_string()];
        let run = |att: &str| {
            let mut a = DcapAppraisal::default();
            judge(
                &policy(att),
                TcbStatus::OutOfDate,
                &adv,
                PckCertFlag::True,
                &report,
                &[9; 64],
                &mut a,
            );
            a
        };
        let strict = run("    tolerate: []\n");
        assert_eq!(
            reasons(&strict),
            [
                "tcb-out-of-date",
                "advisory-not-ignored",
                "hyperthreading-enabled",
                "debug-las"
            ]
        );
        assert!(
            strict.rejections[1]
                .detail
                .contains("tolerate `hyperthreading`")
        );
        let all = run("    tolerate: [outdated-tcb, hyperthreading, aepic-leak, debug-mode]\n");
        assert!(all.rejections.is_empty(), "{:?}", all.rejections);
        assert!(all.notes.iter().any(|n| n.contains("DEBUG")));
        // Ignoring an advisory by ID works too; the other still needs its tolerance.
        let by_id = run(
            "    tolerate: [outdated-tcb, hyperthreading, debug-mode]\n    ignore_advisories: [INTEL-SA-00657]\n",
        );
        assert!(by_id.rejections.is_empty(), "{:?}", by_id.rejections);
        let missing = run("    tolerate: [outdated-tcb, hyperthreading, debug-mode]\n");
        assert_eq!(reasons(&missing), ["advisory-not-ignored"]);
        assert!(
            missing.rejections[0]
                .detail
                .contains("INTEL-SA-00657 (or tolerate `aepic-leak`)")
        );
    }

    #[test]
    fn tcb_status_mapping_is_total() {
        use TcbStatus::*;
        for s in [
            UpToDate,
            SWHardeningNeeded,
            ConfigurationNeeded,
            ConfigurationAndSWHardeningNeeded,
            OutOfDate,
            OutOfDateConfigurationNeeded,
        ] {
            assert!(tolerances_for(s).is_some(), "{s}");
        }
        assert_eq!(
            tolerances_for(OutOfDate).unwrap(),
            &[(Tolerance::OutdatedTcb, Reason::TcbOutOfDate)]
        );
        for s in [
            Revoked,
            TDRelaunchAdvised,
            TDRelaunchAdvisedConfigurationNeeded,
        ] {
            assert!(tolerances_for(s).is_none(), "{s}");
        }
        assert_eq!(
            advisory_tolerance("intel-sa-00657"),
            Some(Tolerance::AepicLeak)
        );
        assert_eq!(advisory_tolerance("INTEL-SA-00289"), None);
    }
}

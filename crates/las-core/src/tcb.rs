//! The platform below the LAS: Intel's QE ID and the PCK certificate's facts (PPID, FMSPC,
//! PCE ID, CPU SVN, PCE SVN, platform instance ID), as SCONE 7 names platforms.
//!
//! ```text
//!  DCAP quote ─► header.user_data[0..16] ─────────────────────────► QE ID
//!            └─► certification data (type 5, or type 6 ⊃ 5 in v4) ─► PEM chain
//!                 ─► leaf (PCK) certificate ─► extension 1.2.840.113741.1.13.1
//!                      .1 PPID  .2 TCB (.17 PCESVN, .18 CPUSVN)  .3 PCEID  .4 FMSPC  .6 instance
//! ```
//!
//! One reader serves the LAS (its start-up quote), the verifier (after dcap-qvl has verified
//! the quote's signatures, so the bytes read here are authentic) and `las tcb-state`. It is
//! a small DER walker rather than an X.509 crate because it runs inside `lasd`, whose
//! measured dependency tree holds no X.509 or DCAP crate (crates/lasd/tests/tree.rs).
//! `tests/python/test_dcap_facts.py` checks it against an independent parser.
//!
//! In simulation the QE ID and PPID are derived from the platform root secret alone
//! ([`crate::egetkey::sim_qe_id`], [`crate::egetkey::sim_ppid`]) and the FMSPC is
//! [`SIM_FMSPC`].

// A parser of untrusted bytes (the DCAP quote header and the PCK certificate's DER): no
// arithmetic that can overflow (as dcap-qvl's parsers).
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;

use base64::Engine as _;

/// The policy prefix of a QE ID entry, as SCONE 7 writes it.
pub const QE_ID_PREFIX: &str = "INTEL_QE_ID:";
/// The FMSPC of every simulated platform (`"SIM"` and zeros: no Intel FMSPC looks like it).
pub const SIM_FMSPC: [u8; 6] = [0x53, 0x49, 0x4d, 0, 0, 0];

/// Intel's QE ID: 16 bytes, the first 16 bytes of a DCAP quote header's user data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QeId(pub [u8; 16]);

impl fmt::Display for QeId {
    /// 32 lower-case hex digits, as the LAS logs it (`Intel QE ID: …`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for QeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QeId({self})")
    }
}

/// Why a QE ID entry does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QeIdError {
    /// `INTEL_QE_ID:` with nothing after it.
    #[error("`{QE_ID_PREFIX}` has no QE ID after it: write 32 hex digits")]
    Empty,
    /// Not 32 characters after the prefix.
    #[error("a QE ID is 32 hex digits, got {0} characters")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("a QE ID is 32 hex digits, and `{0}` is not a hex digit")]
    NotHex(char),
}

impl QeId {
    /// Parses 32 hex digits (either case).
    pub fn parse_hex(s: &str) -> Result<Self, QeIdError> {
        if s.is_empty() {
            return Err(QeIdError::Empty);
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(QeIdError::NotHex(c));
        }
        if s.len() != 32 {
            return Err(QeIdError::Length(s.chars().count()));
        }
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b).map_err(|_| QeIdError::Length(s.len()))?;
        Ok(Self(b))
    }

    /// The policy entry `INTEL_QE_ID:<32 lower-case hex>`.
    pub fn entry(&self) -> String {
        format!("{QE_ID_PREFIX}{self}")
    }
}

/// The QE ID of a DCAP quote (v3 or v4): bytes 28..44 of its header.
pub fn quote_qe_id(quote: &[u8]) -> Result<QeId, DcapFactsError> {
    let mut c = Cursor::new(quote);
    let version = c.u16("header.version")?;
    if !(3..=4).contains(&version) {
        return Err(DcapFactsError::Version(version));
    }
    c.take(26, "header")?;
    Ok(QeId(c.array("header.user_data")?))
}

/// What the PCK certificate and the header of a DCAP quote say about its platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcapFacts {
    /// The QE ID (header user data).
    pub qe_id: QeId,
    /// The PPID (16 bytes; Intel encrypts it in the PCK request, the certificate holds it).
    pub ppid: Vec<u8>,
    /// The FMSPC (6 bytes).
    pub fmspc: [u8; 6],
    /// The PCE ID (2 bytes).
    pub pce_id: Vec<u8>,
    /// The CPU SVN of the PCK certificate's TCB.
    pub cpusvn: [u8; 16],
    /// The PCE SVN of the PCK certificate's TCB.
    pub pcesvn: u16,
    /// The platform instance ID (multi-package platforms only).
    pub platform_instance_id: Option<Vec<u8>>,
}

/// A DCAP quote whose facts cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DcapFactsError {
    /// The bytes end before a field.
    #[error("the DCAP quote ends inside {0}")]
    Truncated(&'static str),
    /// A quote version other than 3 and 4.
    #[error("unsupported DCAP quote: quote version {0} (3 and 4 are read)")]
    Version(u16),
    /// A TEE other than SGX (0).
    #[error("unsupported DCAP quote: TEE type {0:#x} (0 = SGX is read)")]
    TeeType(u32),
    /// A certification data type this reader does not handle.
    #[error("unsupported DCAP quote: {what} {found} ({expected_note})")]
    CertDataType {
        /// Which certification data (`v4 certification data type`, `certification data type`).
        what: &'static str,
        /// The type found.
        found: u16,
        /// The type read, and what it is.
        expected_note: &'static str,
    },
    /// The one catch-all: the PCK certificate or its SGX extension is malformed or lacks
    /// a field (what, as this hand-written DER reader found it; there is no source error).
    #[error("PCK certificate: {0}")]
    Pck(String),
}

/// Reads the QE ID and the PCK certificate facts of a DCAP quote (v3, or v4 with an SGX
/// body). It checks no signature: callers read facts of a quote that was verified, or say
/// that they are unverified (`las tcb-state --dcap-quote`).
pub fn dcap_facts(quote: &[u8]) -> Result<DcapFacts, DcapFactsError> {
    let qe_id = quote_qe_id(quote)?;
    let mut c = Cursor::new(quote);
    let version = c.u16("header.version")?;
    c.take(2, "header.attestation_key_type")?;
    let tee = c.u32("header.tee_type")?;
    if tee != 0 {
        return Err(DcapFactsError::TeeType(tee));
    }
    c.take(48 - 8, "header")?;
    c.take(crate::sgx::REPORT_BODY_SIZE, "report body")?;
    let len = c.u32("signature data length")?;
    let mut s = Cursor::new(c.take(usize_of(len), "signature data")?);
    s.take(64 + 64, "signature and attestation key")?;
    let mut cert = if version == 3 {
        s.take(crate::sgx::REPORT_BODY_SIZE + 64, "QE report")?;
        let auth = s.u16("QE auth data length")?;
        s.take(usize::from(auth), "QE auth data")?;
        s
    } else {
        let (kind, inner) = cert_data(&mut s)?;
        if kind != 6 {
            return Err(DcapFactsError::CertDataType {
                what: "v4 certification data type",
                found: kind,
                expected_note: "6 is read",
            });
        }
        let mut i = Cursor::new(inner);
        i.take(crate::sgx::REPORT_BODY_SIZE + 64, "QE report")?;
        let auth = i.u16("QE auth data length")?;
        i.take(usize::from(auth), "QE auth data")?;
        i
    };
    let (kind, pem) = cert_data(&mut cert)?;
    if kind != 5 {
        return Err(DcapFactsError::CertDataType {
            what: "certification data type",
            found: kind,
            expected_note: "5, a PEM PCK chain, is read",
        });
    }
    let der = first_pem_cert(pem)?;
    let sgx = sgx_extension(&der)?;
    let mut facts = DcapFacts {
        qe_id,
        ppid: Vec::new(),
        fmspc: [0; 6],
        pce_id: Vec::new(),
        cpusvn: [0; 16],
        pcesvn: 0,
        platform_instance_id: None,
    };
    let (mut ppid, mut fmspc, mut pce_id, mut tcb) = (false, false, false, false);
    let mut items = Der::new(sgx);
    while !items.is_empty() {
        let mut item = Der::new(items.expect(SEQUENCE, "SGX extension item")?);
        let oid = item.expect(OID, "SGX extension item OID")?;
        let Some(n) = sgx_suffix(oid) else {
            continue;
        };
        match n {
            [1] => {
                facts.ppid = item.expect(OCTET_STRING, "PPID")?.to_vec();
                ppid = true;
            }
            [2] => {
                let (cpusvn, pcesvn) = tcb_components(item.expect(SEQUENCE, "TCB")?)?;
                facts.cpusvn = cpusvn;
                facts.pcesvn = pcesvn;
                tcb = true;
            }
            [3] => {
                facts.pce_id = item.expect(OCTET_STRING, "PCEID")?.to_vec();
                pce_id = true;
            }
            [4] => {
                let v = item.expect(OCTET_STRING, "FMSPC")?;
                facts.fmspc = v
                    .try_into()
                    .map_err(|_| pck(format!("FMSPC is {} bytes, not 6", v.len())))?;
                fmspc = true;
            }
            [6] => {
                facts.platform_instance_id =
                    Some(item.expect(OCTET_STRING, "platform instance ID")?.to_vec());
            }
            _ => {}
        }
    }
    for (have, what) in [
        (ppid, "PPID"),
        (tcb, "TCB"),
        (pce_id, "PCEID"),
        (fmspc, "FMSPC"),
    ] {
        if !have {
            return Err(pck(format!("the SGX extension has no {what}")));
        }
    }
    Ok(facts)
}

fn pck(m: String) -> DcapFactsError {
    DcapFactsError::Pck(m)
}

fn usize_of(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// One certification data block: type and body.
fn cert_data<'a>(c: &mut Cursor<'a>) -> Result<(u16, &'a [u8]), DcapFactsError> {
    let kind = c.u16("certification data type")?;
    let len = c.u32("certification data size")?;
    Ok((kind, c.take(usize_of(len), "certification data")?))
}

/// The first certificate of a PEM chain, DER.
fn first_pem_cert(pem: &[u8]) -> Result<Vec<u8>, DcapFactsError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::str::from_utf8(pem.split(|b| *b == 0).next().unwrap_or_default())
        .map_err(|_| pck("the PEM chain is not text".into()))?;
    let body = text
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(b, _)| b)
        .ok_or_else(|| pck("no PEM certificate in the certification data".into()))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| pck(format!("the PCK certificate is not base64: {e}")))
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
/// `[3] EXPLICIT`: the extensions of a TBSCertificate.
const EXTENSIONS: u8 = 0xa3;
/// 1.2.840.113741.1.13.1, DER content octets.
const SGX_EXTENSION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01];

/// `Some(rest)` when `oid` is the SGX extension OID followed by `rest` (single-byte arcs).
fn sgx_suffix(oid: &[u8]) -> Option<&[u8]> {
    oid.strip_prefix(SGX_EXTENSION_OID)
}

/// The content of the SGX extension (a SEQUENCE of SEQUENCE { OID, value }).
fn sgx_extension(cert: &[u8]) -> Result<&[u8], DcapFactsError> {
    let mut top = Der::new(cert);
    let mut certificate = Der::new(top.expect(SEQUENCE, "Certificate")?);
    let mut tbs = Der::new(certificate.expect(SEQUENCE, "TBSCertificate")?);
    while !tbs.is_empty() {
        let (tag, v) = tbs.any("TBSCertificate field")?;
        if tag != EXTENSIONS {
            continue;
        }
        let mut list = Der::new(Der::new(v).expect(SEQUENCE, "Extensions")?);
        while !list.is_empty() {
            let mut ext = Der::new(list.expect(SEQUENCE, "Extension")?);
            let oid = ext.expect(OID, "extension OID")?;
            let (mut tag, mut value) = ext.any("extension value")?;
            if tag == BOOLEAN {
                (tag, value) = ext.any("extension value")?;
            }
            if oid == SGX_EXTENSION_OID {
                if tag != OCTET_STRING {
                    return Err(pck("the SGX extension is not an OCTET STRING".into()));
                }
                return Der::new(value).expect(SEQUENCE, "SGX extension");
            }
        }
    }
    Err(pck(
        "no SGX extension (1.2.840.113741.1.13.1): not a PCK certificate".into(),
    ))
}

/// CPUSVN (component .18) and PCESVN (.17) of the TCB item.
fn tcb_components(tcb: &[u8]) -> Result<([u8; 16], u16), DcapFactsError> {
    let mut comps = Der::new(tcb);
    let (mut cpusvn, mut pcesvn) = (None, None);
    while !comps.is_empty() {
        let mut c = Der::new(comps.expect(SEQUENCE, "TCB component")?);
        let oid = c.expect(OID, "TCB component OID")?;
        match sgx_suffix(oid) {
            Some([2, 17]) => {
                let v = c.expect(INTEGER, "PCESVN")?;
                let v = match v {
                    [0, rest @ ..] => rest,
                    _ => v,
                };
                let n = match v {
                    [] => 0,
                    [a] => u16::from(*a),
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    _ => return Err(pck("PCESVN does not fit 16 bits".into())),
                };
                pcesvn = Some(n);
            }
            Some([2, 18]) => {
                let v = c.expect(OCTET_STRING, "CPUSVN")?;
                cpusvn = Some(
                    v.try_into()
                        .map_err(|_| pck(format!("CPUSVN is {} bytes, not 16", v.len())))?,
                );
            }
            _ => {}
        }
    }
    match (cpusvn, pcesvn) {
        (Some(c), Some(p)) => Ok((c, p)),
        _ => Err(pck("the TCB item lacks CPUSVN or PCESVN".into())),
    }
}

/// A byte cursor that never reads out of range.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self(b)
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DcapFactsError> {
        let (a, b) = self
            .0
            .split_at_checked(n)
            .ok_or(DcapFactsError::Truncated(what))?;
        self.0 = b;
        Ok(a)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DcapFactsError> {
        self.take(N, what)?
            .try_into()
            .map_err(|_| DcapFactsError::Truncated(what))
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DcapFactsError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DcapFactsError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
}

/// A DER TLV reader (definite lengths, one-byte tags) that never reads out of range.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self(b)
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn any(&mut self, what: &str) -> Result<(u8, &'a [u8]), DcapFactsError> {
        let bad = || pck(format!("{what}: malformed DER"));
        let (&tag, rest) = self.0.split_first().ok_or_else(bad)?;
        let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(bad());
            }
            let (bytes, r) = rest.split_at_checked(n).ok_or_else(bad)?;
            rest = r;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        let (value, r) = rest.split_at_checked(len).ok_or_else(bad)?;
        self.0 = r;
        Ok((tag, value))
    }
    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], DcapFactsError> {
        let (t, v) = self.any(what)?;
        if t == tag {
            Ok(v)
        } else {
            Err(pck(format!(
                "{what}: DER tag {t:#04x}, expected {tag:#04x}"
            )))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Forms this reader does not handle are typed: the caller can tell a newer quote
    /// version from another TEE without reading the message.
    #[test]
    fn unsupported_forms_are_typed() {
        let mut q = vec![0u8; 64];
        q[0] = 5;
        assert_eq!(dcap_facts(&q).unwrap_err(), DcapFactsError::Version(5));
        q[0] = 3;
        q[4] = 0x81;
        let e = dcap_facts(&q).unwrap_err();
        assert_eq!(e, DcapFactsError::TeeType(0x81));
        assert_eq!(
            e.to_string(),
            "unsupported DCAP quote: TEE type 0x81 (0 = SGX is read)"
        );
    }

    #[test]
    fn qe_id_entries_parse_in_either_case_and_fail_by_name() {
        let q = QeId::parse_hex("85FFC69266C833546E5DCA1C676A6151").unwrap();
        assert_eq!(q.to_string(), "85ffc69266c833546e5dca1c676a6151");
        assert_eq!(q.entry(), "INTEL_QE_ID:85ffc69266c833546e5dca1c676a6151");
        assert_eq!(QeId::parse_hex(""), Err(QeIdError::Empty));
        assert_eq!(QeId::parse_hex("85ff"), Err(QeIdError::Length(4)));
        assert_eq!(
            QeId::parse_hex("85ffc69266c833546e5dca1c676a615g"),
            Err(QeIdError::NotHex('g'))
        );
    }

    #[test]
    fn truncated_quotes_are_errors_never_panics() {
        for n in [0, 1, 27, 43, 44, 48, 432, 436] {
            let q = vec![3u8; n];
            assert!(dcap_facts(&q).is_err(), "{n}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod sample_quote {
    /// The real sample quote (tests/vectors/dcap) reads without error; its values are
    /// checked against dcap-qvl in las-verifier and against an independent Python parser
    /// in tests/python/test_dcap_facts.py, never against our own output.
    #[test]
    fn the_real_sample_quote_reads() {
        let q = include_bytes!("../../../tests/vectors/dcap/sgx_quote");
        let f = super::dcap_facts(q).unwrap();
        assert_eq!(f.ppid.len(), 16);
        assert_eq!(f.pce_id.len(), 2);
        eprintln!("{f:?}");
    }
}

//! SGX architectural structures with the Intel SDM (vol. 3D, ch. 38) layouts:
//! REPORT (432 bytes), its MACed REPORTBODY (384), TARGETINFO (512) and KEYREQUEST (512).
//!
//! Each structure has size constants, a compile-time size check, ONE checked constructor
//! from bytes that rejects a wrong length and non-zero reserved fields, and `to_bytes`.
//! All integers are little-endian, as on the CPU.

// A parser of untrusted bytes: no arithmetic that can overflow (as dcap-qvl's parsers).
#![deny(clippy::arithmetic_side_effects)]

use crate::error::FormatError;

/// Size of an SGX REPORT: body, KEYID and MAC.
pub const REPORT_SIZE: usize = 432;
/// Size of the REPORTBODY, the part the MAC covers (sgx-isa's `TRUNCATED_SIZE`).
pub const REPORT_BODY_SIZE: usize = 384;
/// Size of TARGETINFO.
pub const TARGET_INFO_SIZE: usize = 512;
/// Size of KEYREQUEST.
pub const KEY_REQUEST_SIZE: usize = 512;
/// Size of REPORTDATA inside the body.
pub const REPORT_DATA_SIZE: usize = 64;

/// Byte offsets of the REPORT/REPORTBODY fields (pinned by tests against the SDM).
pub mod report_offsets {
    pub const CPUSVN: usize = 0;
    pub const MISCSELECT: usize = 16;
    /// CET_ATTRIBUTES (current SDM layouts, sgx-isa 0.6): one byte; zero where CET is off.
    pub const CET_ATTRIBUTES: usize = 20;
    pub const RESERVED1: usize = 21;
    pub const ISV_EXT_PROD_ID: usize = 32;
    pub const ATTRIBUTES: usize = 48;
    pub const MRENCLAVE: usize = 64;
    pub const RESERVED2: usize = 96;
    pub const MRSIGNER: usize = 128;
    pub const RESERVED3: usize = 160;
    pub const CONFIG_ID: usize = 192;
    pub const ISVPRODID: usize = 256;
    pub const ISVSVN: usize = 258;
    pub const CONFIG_SVN: usize = 260;
    pub const RESERVED4: usize = 262;
    pub const ISV_FAMILY_ID: usize = 304;
    pub const REPORT_DATA: usize = 320;
    pub const KEY_ID: usize = 384;
    pub const MAC: usize = 416;
}

/// Byte offsets of the TARGETINFO fields.
pub mod target_info_offsets {
    pub const MEASUREMENT: usize = 0;
    pub const ATTRIBUTES: usize = 32;
    pub const RESERVED1: usize = 48;
    pub const CONFIG_SVN: usize = 50;
    pub const MISCSELECT: usize = 52;
    pub const RESERVED2: usize = 56;
    pub const CONFIG_ID: usize = 64;
    pub const RESERVED3: usize = 128;
}

/// Byte offsets of the KEYREQUEST fields.
pub mod key_request_offsets {
    pub const KEYNAME: usize = 0;
    pub const KEYPOLICY: usize = 2;
    pub const ISVSVN: usize = 4;
    pub const RESERVED1: usize = 6;
    pub const CPUSVN: usize = 8;
    pub const ATTRIBUTE_MASK: usize = 24;
    pub const KEY_ID: usize = 40;
    pub const MISC_MASK: usize = 72;
    pub const CONFIG_SVN: usize = 76;
    pub const RESERVED2: usize = 78;
}

/// ATTRIBUTES.FLAGS bits.
pub mod flags {
    /// The enclave was initialised (EINIT).
    pub const INIT: u64 = 1 << 0;
    /// Debug enclave: its memory can be read by a debugger. Never trust its secrets.
    pub const DEBUG: u64 = 1 << 1;
    /// 64-bit enclave.
    pub const MODE64BIT: u64 = 1 << 2;
    /// Access to the provisioning key.
    pub const PROVISION_KEY: u64 = 1 << 4;
    /// Access to the EINITTOKEN key.
    pub const EINITTOKEN_KEY: u64 = 1 << 5;
    /// Key separation and sharing.
    pub const KSS: u64 = 1 << 7;
}

/// KEYREQUEST.KEYNAME values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum KeyName {
    /// EINITTOKEN key.
    EinitToken = 0,
    /// Provisioning key.
    Provision = 1,
    /// Provisioning seal key.
    ProvisionSeal = 2,
    /// Report key: the key of the REPORT MAC.
    Report = 3,
    /// Seal key.
    Seal = 4,
}

/// KEYREQUEST.KEYPOLICY bits.
pub mod key_policy {
    /// Derive from the enclave's MRENCLAVE.
    pub const MRENCLAVE: u16 = 0x0001;
    /// Derive from the enclave's MRSIGNER.
    pub const MRSIGNER: u16 = 0x0002;
    /// Do not derive from ISVPRODID.
    pub const NOISVPRODID: u16 = 0x0004;
    /// Derive from CONFIGID.
    pub const CONFIGID: u16 = 0x0008;
    /// Derive from ISVFAMILYID.
    pub const ISVFAMILYID: u16 = 0x0010;
    /// Derive from ISVEXTPRODID.
    pub const ISVEXTPRODID: u16 = 0x0020;
}

/// SGX ATTRIBUTES: FLAGS and XFRM, 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attributes {
    /// ATTRIBUTES.FLAGS (see [`flags`]).
    pub flags: u64,
    /// ATTRIBUTES.XFRM: the XSAVE feature request mask.
    pub xfrm: u64,
}

impl Attributes {
    /// Whether the DEBUG bit is set.
    pub fn debug(&self) -> bool {
        self.flags & flags::DEBUG != 0
    }

    fn read(b: &[u8; 16]) -> Self {
        Self {
            flags: u64::from_le_bytes(get::<0, _, _>(b)),
            xfrm: u64::from_le_bytes(get::<8, _, _>(b)),
        }
    }

    /// The 16-byte encoding.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        put::<0, _, _>(&mut out, &self.flags.to_le_bytes());
        put::<8, _, _>(&mut out, &self.xfrm.to_le_bytes());
        out
    }
}

/// REPORTBODY: what EREPORT says about an enclave. MACed by the target's report key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBody {
    /// Security version of the CPU (microcode, firmware).
    pub cpusvn: [u8; 16],
    /// SSA frame extended feature set.
    pub miscselect: u32,
    /// CET attributes of the enclave (byte 20; CET-enabled enclaves set it, older SDM
    /// layouts called it reserved).
    pub cet_attributes: u8,
    /// ISV-assigned extended product ID (KSS).
    pub isv_ext_prod_id: [u8; 16],
    /// Enclave attributes (the DEBUG bit lives here).
    pub attributes: Attributes,
    /// Measurement of the enclave's code and initial data.
    pub mrenclave: [u8; 32],
    /// Hash of the key that signed the enclave.
    pub mrsigner: [u8; 32],
    /// Config ID (KSS).
    pub config_id: [u8; 64],
    /// ISV-assigned product ID.
    pub isvprodid: u16,
    /// ISV-assigned security version.
    pub isvsvn: u16,
    /// Config security version (KSS).
    pub config_svn: u16,
    /// ISV-assigned family ID (KSS).
    pub isv_family_id: [u8; 16],
    /// Data the enclave chose to bind (e.g. the hash of its TLS key).
    pub report_data: [u8; 64],
}

impl ReportBody {
    /// Parses exactly [`REPORT_BODY_SIZE`] bytes; reserved fields must be zero.
    pub fn try_from_slice(b: &[u8]) -> Result<Self, FormatError> {
        let b: &[u8; REPORT_BODY_SIZE] = b.try_into().map_err(|_| FormatError::Length {
            what: "REPORTBODY",
            expected: REPORT_BODY_SIZE,
            actual: b.len(),
        })?;
        use report_offsets as o;
        check_zero(b, o::RESERVED1, 11, "REPORTBODY.RESERVED1")?;
        check_zero(b, o::RESERVED2, 32, "REPORTBODY.RESERVED2")?;
        check_zero(b, o::RESERVED3, 32, "REPORTBODY.RESERVED3")?;
        check_zero(b, o::RESERVED4, 42, "REPORTBODY.RESERVED4")?;
        let [cet_attributes] = get::<{ o::CET_ATTRIBUTES }, 1, _>(b);
        Ok(Self {
            cpusvn: get::<{ o::CPUSVN }, _, _>(b),
            miscselect: u32::from_le_bytes(get::<{ o::MISCSELECT }, _, _>(b)),
            cet_attributes,
            isv_ext_prod_id: get::<{ o::ISV_EXT_PROD_ID }, _, _>(b),
            attributes: Attributes::read(&get::<{ o::ATTRIBUTES }, _, _>(b)),
            mrenclave: get::<{ o::MRENCLAVE }, _, _>(b),
            mrsigner: get::<{ o::MRSIGNER }, _, _>(b),
            config_id: get::<{ o::CONFIG_ID }, _, _>(b),
            isvprodid: u16::from_le_bytes(get::<{ o::ISVPRODID }, _, _>(b)),
            isvsvn: u16::from_le_bytes(get::<{ o::ISVSVN }, _, _>(b)),
            config_svn: u16::from_le_bytes(get::<{ o::CONFIG_SVN }, _, _>(b)),
            isv_family_id: get::<{ o::ISV_FAMILY_ID }, _, _>(b),
            report_data: get::<{ o::REPORT_DATA }, _, _>(b),
        })
    }

    /// The 384-byte encoding (reserved fields zero).
    pub fn to_bytes(&self) -> [u8; REPORT_BODY_SIZE] {
        use report_offsets as o;
        let mut b = [0u8; REPORT_BODY_SIZE];
        put::<{ o::CPUSVN }, _, _>(&mut b, &self.cpusvn);
        put::<{ o::MISCSELECT }, _, _>(&mut b, &self.miscselect.to_le_bytes());
        put::<{ o::CET_ATTRIBUTES }, _, _>(&mut b, &[self.cet_attributes]);
        put::<{ o::ISV_EXT_PROD_ID }, _, _>(&mut b, &self.isv_ext_prod_id);
        put::<{ o::ATTRIBUTES }, _, _>(&mut b, &self.attributes.to_bytes());
        put::<{ o::MRENCLAVE }, _, _>(&mut b, &self.mrenclave);
        put::<{ o::MRSIGNER }, _, _>(&mut b, &self.mrsigner);
        put::<{ o::CONFIG_ID }, _, _>(&mut b, &self.config_id);
        put::<{ o::ISVPRODID }, _, _>(&mut b, &self.isvprodid.to_le_bytes());
        put::<{ o::ISVSVN }, _, _>(&mut b, &self.isvsvn.to_le_bytes());
        put::<{ o::CONFIG_SVN }, _, _>(&mut b, &self.config_svn.to_le_bytes());
        put::<{ o::ISV_FAMILY_ID }, _, _>(&mut b, &self.isv_family_id);
        put::<{ o::REPORT_DATA }, _, _>(&mut b, &self.report_data);
        b
    }
}

/// A complete SGX REPORT: body, KEYID and the AES-128-CMAC over the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The parsed body.
    pub body: ReportBody,
    /// Key wear-out value that went into the report key derivation.
    pub key_id: [u8; 32],
    /// AES-128-CMAC of the 384-byte body with the target enclave's report key.
    pub mac: [u8; 16],
}

impl Report {
    /// Parses exactly [`REPORT_SIZE`] bytes (sgx-isa's `Report::try_copy_from`).
    pub fn try_from_slice(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() != REPORT_SIZE {
            return Err(FormatError::Length {
                what: "REPORT",
                expected: REPORT_SIZE,
                actual: b.len(),
            });
        }
        let whole: &[u8; REPORT_SIZE] = b.try_into().map_err(|_| FormatError::Length {
            what: "REPORT",
            expected: REPORT_SIZE,
            actual: b.len(),
        })?;
        Ok(Self {
            body: ReportBody::try_from_slice(&get::<0, REPORT_BODY_SIZE, _>(whole))?,
            key_id: get::<{ report_offsets::KEY_ID }, _, _>(whole),
            mac: get::<{ report_offsets::MAC }, _, _>(whole),
        })
    }

    /// The 432-byte encoding.
    pub fn to_bytes(&self) -> [u8; REPORT_SIZE] {
        let mut b = [0u8; REPORT_SIZE];
        put::<0, _, _>(&mut b, &self.body.to_bytes());
        put::<{ report_offsets::KEY_ID }, _, _>(&mut b, &self.key_id);
        put::<{ report_offsets::MAC }, _, _>(&mut b, &self.mac);
        b
    }
}

/// TARGETINFO: names the enclave a REPORT is for (EREPORT derives that enclave's report key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    /// MRENCLAVE of the target enclave.
    pub mrenclave: [u8; 32],
    /// ATTRIBUTES of the target enclave.
    pub attributes: Attributes,
    /// CONFIGSVN of the target enclave.
    pub config_svn: u16,
    /// MISCSELECT of the target enclave.
    pub miscselect: u32,
    /// CONFIGID of the target enclave.
    pub config_id: [u8; 64],
}

impl TargetInfo {
    /// Parses exactly [`TARGET_INFO_SIZE`] bytes; reserved fields must be zero.
    pub fn try_from_slice(b: &[u8]) -> Result<Self, FormatError> {
        let b: &[u8; TARGET_INFO_SIZE] = b.try_into().map_err(|_| FormatError::Length {
            what: "TARGETINFO",
            expected: TARGET_INFO_SIZE,
            actual: b.len(),
        })?;
        use target_info_offsets as o;
        check_zero(b, o::RESERVED1, 2, "TARGETINFO.RESERVED1")?;
        check_zero(b, o::RESERVED2, 8, "TARGETINFO.RESERVED2")?;
        check_zero(b, o::RESERVED3, 384, "TARGETINFO.RESERVED3")?;
        Ok(Self {
            mrenclave: get::<{ o::MEASUREMENT }, _, _>(b),
            attributes: Attributes::read(&get::<{ o::ATTRIBUTES }, _, _>(b)),
            config_svn: u16::from_le_bytes(get::<{ o::CONFIG_SVN }, _, _>(b)),
            miscselect: u32::from_le_bytes(get::<{ o::MISCSELECT }, _, _>(b)),
            config_id: get::<{ o::CONFIG_ID }, _, _>(b),
        })
    }

    /// The 512-byte encoding.
    pub fn to_bytes(&self) -> [u8; TARGET_INFO_SIZE] {
        use target_info_offsets as o;
        let mut b = [0u8; TARGET_INFO_SIZE];
        put::<{ o::MEASUREMENT }, _, _>(&mut b, &self.mrenclave);
        put::<{ o::ATTRIBUTES }, _, _>(&mut b, &self.attributes.to_bytes());
        put::<{ o::CONFIG_SVN }, _, _>(&mut b, &self.config_svn.to_le_bytes());
        put::<{ o::MISCSELECT }, _, _>(&mut b, &self.miscselect.to_le_bytes());
        put::<{ o::CONFIG_ID }, _, _>(&mut b, &self.config_id);
        b
    }
}

/// KEYREQUEST: the input of EGETKEY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest {
    /// Which key (see [`KeyName`]); kept raw so that any value round-trips.
    pub keyname: u16,
    /// Which identity goes into the derivation (see [`key_policy`]).
    pub keypolicy: u16,
    /// The ISVSVN to derive for.
    pub isvsvn: u16,
    /// The CPUSVN to derive for.
    pub cpusvn: [u8; 16],
    /// Which ATTRIBUTES bits go into the derivation.
    pub attribute_mask: Attributes,
    /// Key wear-out value (for REPORT keys: the REPORT's KEYID).
    pub key_id: [u8; 32],
    /// Which MISCSELECT bits go into the derivation.
    pub misc_mask: u32,
    /// The CONFIGSVN to derive for.
    pub config_svn: u16,
}

impl KeyRequest {
    /// Parses exactly [`KEY_REQUEST_SIZE`] bytes; reserved fields must be zero.
    pub fn try_from_slice(b: &[u8]) -> Result<Self, FormatError> {
        let b: &[u8; KEY_REQUEST_SIZE] = b.try_into().map_err(|_| FormatError::Length {
            what: "KEYREQUEST",
            expected: KEY_REQUEST_SIZE,
            actual: b.len(),
        })?;
        use key_request_offsets as o;
        check_zero(b, o::RESERVED1, 2, "KEYREQUEST.RESERVED1")?;
        check_zero(b, o::RESERVED2, 434, "KEYREQUEST.RESERVED2")?;
        Ok(Self {
            keyname: u16::from_le_bytes(get::<{ o::KEYNAME }, _, _>(b)),
            keypolicy: u16::from_le_bytes(get::<{ o::KEYPOLICY }, _, _>(b)),
            isvsvn: u16::from_le_bytes(get::<{ o::ISVSVN }, _, _>(b)),
            cpusvn: get::<{ o::CPUSVN }, _, _>(b),
            attribute_mask: Attributes::read(&get::<{ o::ATTRIBUTE_MASK }, _, _>(b)),
            key_id: get::<{ o::KEY_ID }, _, _>(b),
            misc_mask: u32::from_le_bytes(get::<{ o::MISC_MASK }, _, _>(b)),
            config_svn: u16::from_le_bytes(get::<{ o::CONFIG_SVN }, _, _>(b)),
        })
    }

    /// The 512-byte encoding.
    pub fn to_bytes(&self) -> [u8; KEY_REQUEST_SIZE] {
        use key_request_offsets as o;
        let mut b = [0u8; KEY_REQUEST_SIZE];
        put::<{ o::KEYNAME }, _, _>(&mut b, &self.keyname.to_le_bytes());
        put::<{ o::KEYPOLICY }, _, _>(&mut b, &self.keypolicy.to_le_bytes());
        put::<{ o::ISVSVN }, _, _>(&mut b, &self.isvsvn.to_le_bytes());
        put::<{ o::CPUSVN }, _, _>(&mut b, &self.cpusvn);
        put::<{ o::ATTRIBUTE_MASK }, _, _>(&mut b, &self.attribute_mask.to_bytes());
        put::<{ o::KEY_ID }, _, _>(&mut b, &self.key_id);
        put::<{ o::MISC_MASK }, _, _>(&mut b, &self.misc_mask.to_le_bytes());
        put::<{ o::CONFIG_SVN }, _, _>(&mut b, &self.config_svn.to_le_bytes());
        b
    }
}

const _: () = assert!(report_offsets::MAC + 16 == REPORT_SIZE);
const _: () = assert!(report_offsets::REPORT_DATA + REPORT_DATA_SIZE == REPORT_BODY_SIZE);
const _: () = assert!(target_info_offsets::RESERVED3 + 384 == TARGET_INFO_SIZE);
const _: () = assert!(key_request_offsets::RESERVED2 + 434 == KEY_REQUEST_SIZE);

/// The `N` bytes at `OFF` of a fixed-size structure. The range is checked when the code is
/// compiled (an inline `const` assertion per use), so no read can fall outside it: there is
/// no fallback value to return.
fn get<const OFF: usize, const N: usize, const M: usize>(b: &[u8; M]) -> [u8; N] {
    const { assert!(OFF + N <= M, "a field past the end of its structure") };
    let mut out = [0u8; N];
    if let Some(src) = b.get(OFF..).and_then(|rest| rest.get(..N)) {
        out.copy_from_slice(src);
    }
    out
}

/// Writes `v` at `OFF`; the range is checked when the code is compiled, as for [`get`].
fn put<const OFF: usize, const N: usize, const M: usize>(b: &mut [u8; M], v: &[u8; N]) {
    const { assert!(OFF + N <= M, "a field past the end of its structure") };
    if let Some(dst) = b.get_mut(OFF..).and_then(|rest| rest.get_mut(..N)) {
        dst.copy_from_slice(v);
    }
}

fn check_zero<const M: usize>(
    b: &[u8; M],
    off: usize,
    len: usize,
    field: &'static str,
) -> Result<(), FormatError> {
    match b.get(off..).and_then(|rest| rest.get(..len)) {
        Some(r) if r.iter().all(|&x| x == 0) => Ok(()),
        _ => Err(FormatError::Reserved(field)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample_body() -> ReportBody {
        ReportBody {
            cpusvn: [0x11; 16],
            miscselect: 0x2233_4455,
            cet_attributes: 0,
            isv_ext_prod_id: [0x66; 16],
            attributes: Attributes {
                flags: flags::INIT | flags::DEBUG | flags::MODE64BIT,
                xfrm: 0x3,
            },
            mrenclave: [0x77; 32],
            mrsigner: [0x88; 32],
            config_id: [0x99; 64],
            isvprodid: 0x0102,
            isvsvn: 0x0304,
            config_svn: 0x0506,
            isv_family_id: [0xaa; 16],
            report_data: [0xbb; 64],
        }
    }

    #[test]
    fn report_body_field_offsets_match_the_sdm() {
        let b = sample_body().to_bytes();
        assert_eq!(&b[0..16], &[0x11; 16]); // CPUSVN
        assert_eq!(&b[16..20], &0x2233_4455u32.to_le_bytes()); // MISCSELECT
        assert_eq!(b[20], 0); // CET_ATTRIBUTES
        assert_eq!(&b[21..32], &[0; 11]); // reserved
        assert_eq!(&b[32..48], &[0x66; 16]); // ISVEXTPRODID
        assert_eq!(&b[48..56], &7u64.to_le_bytes()); // ATTRIBUTES.FLAGS
        assert_eq!(&b[56..64], &3u64.to_le_bytes()); // ATTRIBUTES.XFRM
        assert_eq!(&b[64..96], &[0x77; 32]); // MRENCLAVE
        assert_eq!(&b[96..128], &[0; 32]);
        assert_eq!(&b[128..160], &[0x88; 32]); // MRSIGNER
        assert_eq!(&b[160..192], &[0; 32]);
        assert_eq!(&b[192..256], &[0x99; 64]); // CONFIGID
        assert_eq!(&b[256..258], &[0x02, 0x01]); // ISVPRODID
        assert_eq!(&b[258..260], &[0x04, 0x03]); // ISVSVN
        assert_eq!(&b[260..262], &[0x06, 0x05]); // CONFIGSVN
        assert_eq!(&b[262..304], &[0; 42]);
        assert_eq!(&b[304..320], &[0xaa; 16]); // ISVFAMILYID
        assert_eq!(&b[320..384], &[0xbb; 64]); // REPORTDATA
        assert_eq!(ReportBody::try_from_slice(&b).unwrap(), sample_body());
    }

    #[test]
    fn report_layout_and_length_check() {
        let r = Report {
            body: sample_body(),
            key_id: [0xcc; 32],
            mac: [0xdd; 16],
        };
        let b = r.to_bytes();
        assert_eq!(b.len(), 432);
        assert_eq!(&b[384..416], &[0xcc; 32]);
        assert_eq!(&b[416..432], &[0xdd; 16]);
        assert_eq!(Report::try_from_slice(&b).unwrap(), r);
        for len in [0, 383, 384, 431, 433, 512] {
            let v = vec![0u8; len];
            assert!(matches!(
                Report::try_from_slice(&v),
                Err(FormatError::Length { expected: 432, .. })
            ));
        }
    }

    /// A CET-enabled enclave's REPORT (sgx-isa 0.6 layout: byte 20 is CET_ATTRIBUTES) is
    /// accepted with its value; bytes 21..32 stay reserved.
    #[test]
    fn cet_attributes_are_read_and_the_rest_stays_reserved() {
        let mut b = sample_body().to_bytes();
        b[20] = 0x03; // SH_STK_EN | WR_SHSTK_EN
        let body = ReportBody::try_from_slice(&b).unwrap();
        assert_eq!(body.cet_attributes, 0x03);
        assert_eq!(body.to_bytes(), b);
        for i in 21..32 {
            let mut bad = b;
            bad[i] = 1;
            assert_eq!(
                ReportBody::try_from_slice(&bad),
                Err(FormatError::Reserved("REPORTBODY.RESERVED1")),
                "byte {i}"
            );
        }
        // The same offset in sgx-isa 0.6's layout.
        let isa = sgx_isa::Report::try_copy_from(&[&b[..], &[0u8; 48][..]].concat()).unwrap();
        assert_eq!(isa.cet_attributes, 0x03);
    }

    #[test]
    fn reserved_bytes_are_rejected() {
        let mut b = sample_body().to_bytes();
        b[100] = 1;
        assert_eq!(
            ReportBody::try_from_slice(&b),
            Err(FormatError::Reserved("REPORTBODY.RESERVED2"))
        );
        let mut t = [0u8; 512];
        t[511] = 1;
        assert_eq!(
            TargetInfo::try_from_slice(&t),
            Err(FormatError::Reserved("TARGETINFO.RESERVED3"))
        );
    }

    #[test]
    fn target_info_field_offsets_match_the_sdm() {
        let t = TargetInfo {
            mrenclave: [0x12; 32],
            attributes: Attributes {
                flags: 0x5,
                xfrm: 0x7,
            },
            config_svn: 0x0a0b,
            miscselect: 0x0c0d_0e0f,
            config_id: [0x34; 64],
        };
        let b = t.to_bytes();
        assert_eq!(b.len(), 512);
        assert_eq!(&b[0..32], &[0x12; 32]);
        assert_eq!(&b[32..40], &5u64.to_le_bytes());
        assert_eq!(&b[40..48], &7u64.to_le_bytes());
        assert_eq!(&b[48..50], &[0, 0]);
        assert_eq!(&b[50..52], &[0x0b, 0x0a]);
        assert_eq!(&b[52..56], &[0x0f, 0x0e, 0x0d, 0x0c]);
        assert_eq!(&b[56..64], &[0; 8]);
        assert_eq!(&b[64..128], &[0x34; 64]);
        assert!(b[128..].iter().all(|&x| x == 0));
        assert_eq!(TargetInfo::try_from_slice(&b).unwrap(), t);
        assert!(TargetInfo::try_from_slice(&b[..511]).is_err());
    }

    #[test]
    fn key_request_field_offsets_match_the_sdm() {
        let k = KeyRequest {
            keyname: KeyName::Report as u16,
            keypolicy: key_policy::MRENCLAVE,
            isvsvn: 0x0201,
            cpusvn: [0x31; 16],
            attribute_mask: Attributes {
                flags: 0xff,
                xfrm: 0xee,
            },
            key_id: [0x42; 32],
            misc_mask: 0xdead_beef,
            config_svn: 0x0403,
        };
        let b = k.to_bytes();
        assert_eq!(&b[0..2], &[3, 0]);
        assert_eq!(&b[2..4], &[1, 0]);
        assert_eq!(&b[4..6], &[0x01, 0x02]);
        assert_eq!(&b[6..8], &[0, 0]);
        assert_eq!(&b[8..24], &[0x31; 16]);
        assert_eq!(&b[24..32], &0xffu64.to_le_bytes());
        assert_eq!(&b[32..40], &0xeeu64.to_le_bytes());
        assert_eq!(&b[40..72], &[0x42; 32]);
        assert_eq!(&b[72..76], &0xdead_beefu32.to_le_bytes());
        assert_eq!(&b[76..78], &[0x03, 0x04]);
        assert!(b[78..].iter().all(|&x| x == 0));
        assert_eq!(KeyRequest::try_from_slice(&b).unwrap(), k);
    }
}

//! A software model of the SGX key hierarchy: EGETKEY and EREPORT over a platform root
//! secret (the stand-in for the CPU's fused keys).
//!
//! Every key is `HKDF-SHA256(salt = "las-sim-egetkey-v1", ikm = root secret,
//! info = derivation buffer)` truncated to 16 bytes. The derivation buffer holds what SGX
//! puts into its own derivation for that key name: for a REPORT key the target's
//! MRENCLAVE, ATTRIBUTES, MISCSELECT, CONFIGID/CONFIGSVN, the current CPUSVN and the KEYID;
//! for a SEAL key the identity selected by KEYPOLICY, the requested CPUSVN and ISVSVN and
//! the masked attributes. So EREPORT for target T and EGETKEY(REPORT) inside T agree,
//! exactly as on the CPU, and nothing else can produce that key without the root secret.
//!
//! This module is pure: the caller supplies the root secret and the current CPUSVN.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::Key128;
use crate::error::KeyError;
use crate::sgx::{
    Attributes, KeyName, KeyRequest, Report, ReportBody, TargetInfo, flags, key_policy,
};

/// Length of the platform root secret.
pub const ROOT_SECRET_SIZE: usize = 32;

/// The platform root secret: stands in for the CPU's fused keys. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootSecret([u8; ROOT_SECRET_SIZE]);

impl RootSecret {
    /// Wraps secret bytes (read from the state folder, or fresh randomness).
    pub fn from_bytes(b: [u8; ROOT_SECRET_SIZE]) -> Self {
        Self(b)
    }

    /// The raw bytes, to be written to the secret file.
    pub fn expose(&self) -> &[u8; ROOT_SECRET_SIZE] {
        &self.0
    }

    fn derive(&self, info: &[u8]) -> Key128 {
        let mut okm = [0u8; 16];
        crate::crypto::hkdf_sha256(Some(b"las-sim-egetkey-v1"), &self.0, info, &mut okm);
        let k = Key128::from_bytes(okm);
        okm.zeroize();
        k
    }
}

/// HKDF label of the simulated Intel QE ID. Changing it changes every simulated QE ID.
pub const SIM_QE_ID_LABEL: &[u8] = b"las sim intel qe id v1";
/// HKDF label of the simulated PPID.
pub const SIM_PPID_LABEL: &[u8] = b"las sim ppid v1";

fn from_root(root: &RootSecret, label: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    crate::crypto::hkdf_sha256(None, &root.0, label, &mut out);
    out
}

/// The simulated platform's QE ID: `HKDF-SHA256(salt = none, ikm = root secret,
/// info = SIM_QE_ID_LABEL)`, 16 bytes. A function of the root secret alone, so that it
/// survives a new LAS build and a CPUSVN change, as a real QE ID survives a LAS or
/// microcode update, and another platform (another secret) has another one.
pub fn sim_qe_id(root: &RootSecret) -> crate::tcb::QeId {
    crate::tcb::QeId(from_root(root, SIM_QE_ID_LABEL))
}

/// The simulated platform's PPID, derived like [`sim_qe_id`] with [`SIM_PPID_LABEL`].
pub fn sim_ppid(root: &RootSecret) -> [u8; 16] {
    from_root(root, SIM_PPID_LABEL)
}

impl std::fmt::Debug for RootSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootSecret(<redacted>)")
    }
}

/// What the CPU knows about an enclave once it is initialised (its SECS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveIdentity {
    /// Measurement of code and initial data.
    pub mrenclave: [u8; 32],
    /// Hash of the signer's key.
    pub mrsigner: [u8; 32],
    /// Attributes (DEBUG bit, XFRM).
    pub attributes: Attributes,
    /// MISCSELECT.
    pub miscselect: u32,
    /// ISV product ID.
    pub isvprodid: u16,
    /// ISV security version.
    pub isvsvn: u16,
    /// CONFIGID (KSS).
    pub config_id: [u8; 64],
    /// CONFIGSVN (KSS).
    pub config_svn: u16,
    /// ISVFAMILYID (KSS).
    pub isv_family_id: [u8; 16],
    /// ISVEXTPRODID (KSS).
    pub isv_ext_prod_id: [u8; 16],
}

impl Default for EnclaveIdentity {
    fn default() -> Self {
        Self {
            mrenclave: [0; 32],
            mrsigner: [0; 32],
            attributes: Attributes::default(),
            miscselect: 0,
            isvprodid: 0,
            isvsvn: 0,
            config_id: [0; 64],
            config_svn: 0,
            isv_family_id: [0; 16],
            isv_ext_prod_id: [0; 16],
        }
    }
}

impl EnclaveIdentity {
    /// The TARGETINFO other enclaves use to make reports for this one.
    pub fn target_info(&self) -> TargetInfo {
        TargetInfo {
            mrenclave: self.mrenclave,
            attributes: self.attributes,
            config_svn: self.config_svn,
            miscselect: self.miscselect,
            config_id: self.config_id,
        }
    }
}

/// Attribute bits that EGETKEY always includes in a derivation, whatever the mask says.
const MANDATORY_ATTRIBUTES: u64 = flags::INIT | flags::DEBUG;

fn report_key_info(
    cpusvn: &[u8; 16],
    key_id: &[u8; 32],
    mrenclave: &[u8; 32],
    attributes: &Attributes,
    miscselect: u32,
    config_id: &[u8; 64],
    config_svn: u16,
) -> Vec<u8> {
    let mut info = Vec::with_capacity(200);
    info.extend_from_slice(&(KeyName::Report as u16).to_le_bytes());
    info.extend_from_slice(cpusvn);
    info.extend_from_slice(key_id);
    info.extend_from_slice(mrenclave);
    info.extend_from_slice(&attributes.to_bytes());
    info.extend_from_slice(&miscselect.to_le_bytes());
    info.extend_from_slice(config_id);
    info.extend_from_slice(&config_svn.to_le_bytes());
    info
}

/// The report key of the enclave described by `target`, as EREPORT derives it on a
/// platform with `root` at `cpusvn`, for the given KEYID.
pub fn report_key(
    root: &RootSecret,
    cpusvn: &[u8; 16],
    target: &TargetInfo,
    key_id: &[u8; 32],
) -> Key128 {
    root.derive(&report_key_info(
        cpusvn,
        key_id,
        &target.mrenclave,
        &target.attributes,
        target.miscselect,
        &target.config_id,
        target.config_svn,
    ))
}

/// EGETKEY executed by enclave `me` on a platform with `root` at CPUSVN `current_cpusvn`.
pub fn egetkey(
    root: &RootSecret,
    current_cpusvn: &[u8; 16],
    me: &EnclaveIdentity,
    req: &KeyRequest,
) -> Result<Key128, KeyError> {
    match req.keyname {
        n if n == KeyName::Report as u16 => Ok(report_key(
            root,
            current_cpusvn,
            &me.target_info(),
            &req.key_id,
        )),
        n if n == KeyName::Seal as u16 => {
            // SGX compares CPUSVN component-wise; a byte-wise comparison models "newer".
            if req.cpusvn.iter().zip(current_cpusvn).any(|(r, c)| r > c) {
                return Err(KeyError::Svn("CPUSVN"));
            }
            if req.isvsvn > me.isvsvn {
                return Err(KeyError::Svn("ISVSVN"));
            }
            Ok(root.derive(&seal_derivation(me, req)))
        }
        other => Err(KeyError::KeyName(other)),
    }
}

/// The derivation buffer of a SEAL key request whose SVNs were checked (SGX derives from
/// what KEYPOLICY selects of `me`, the requested CPUSVN and ISVSVN and the masked
/// attributes).
fn seal_derivation(me: &EnclaveIdentity, req: &KeyRequest) -> Vec<u8> {
    let p = req.keypolicy;
    let pick = |bit: u16, v: &[u8], info: &mut Vec<u8>| {
        if p & bit != 0 {
            info.extend_from_slice(v);
        } else {
            info.extend(std::iter::repeat_n(0u8, v.len()));
        }
    };
    let mut info = Vec::with_capacity(256);
    info.extend_from_slice(&(KeyName::Seal as u16).to_le_bytes());
    info.extend_from_slice(&p.to_le_bytes());
    info.extend_from_slice(&req.cpusvn);
    info.extend_from_slice(&req.key_id);
    pick(key_policy::MRENCLAVE, &me.mrenclave, &mut info);
    pick(key_policy::MRSIGNER, &me.mrsigner, &mut info);
    if p & key_policy::NOISVPRODID == 0 {
        info.extend_from_slice(&me.isvprodid.to_le_bytes());
    } else {
        info.extend_from_slice(&[0, 0]);
    }
    info.extend_from_slice(&req.isvsvn.to_le_bytes());
    let masked = Attributes {
        flags: me.attributes.flags & (req.attribute_mask.flags | MANDATORY_ATTRIBUTES),
        xfrm: me.attributes.xfrm & req.attribute_mask.xfrm,
    };
    info.extend_from_slice(&masked.to_bytes());
    info.extend_from_slice(&(me.miscselect & req.misc_mask).to_le_bytes());
    pick(key_policy::CONFIGID, &me.config_id, &mut info);
    info.extend_from_slice(&req.config_svn.to_le_bytes());
    pick(key_policy::ISVFAMILYID, &me.isv_family_id, &mut info);
    pick(key_policy::ISVEXTPRODID, &me.isv_ext_prod_id, &mut info);
    info
}

/// The seal key with the MRENCLAVE policy at the current CPUSVN and the enclave's own
/// ISVSVN: what Gramine exposes as `/dev/attestation/keys/_sgx_mrenclave`. Stable across
/// restarts; new after a CPUSVN change or for another MRENCLAVE.
pub fn mrenclave_seal_key(root: &RootSecret, cpusvn: &[u8; 16], me: &EnclaveIdentity) -> Key128 {
    let req = KeyRequest {
        keyname: KeyName::Seal as u16,
        keypolicy: key_policy::MRENCLAVE,
        isvsvn: me.isvsvn,
        cpusvn: *cpusvn,
        attribute_mask: Attributes {
            flags: MANDATORY_ATTRIBUTES,
            xfrm: 0,
        },
        key_id: [0; 32],
        misc_mask: 0,
        config_svn: me.config_svn,
    };
    // The request asks for the current SVNs, which never exceed them, so the checks of
    // `egetkey` cannot refuse it: derive directly, with no fallback key to fall back on
    // (before, an impossible error gave a key derived from b"unreachable").
    root.derive(&seal_derivation(me, &req))
}

/// EREPORT executed by enclave `me` for `target`: the body describes `me`, the MAC uses the
/// target's report key at the current CPUSVN and the given KEYID.
pub fn ereport(
    root: &RootSecret,
    cpusvn: &[u8; 16],
    me: &EnclaveIdentity,
    target: &TargetInfo,
    report_data: &[u8; 64],
    key_id: &[u8; 32],
) -> Report {
    let body = ReportBody {
        cpusvn: *cpusvn,
        miscselect: me.miscselect,
        cet_attributes: 0,
        isv_ext_prod_id: me.isv_ext_prod_id,
        attributes: me.attributes,
        mrenclave: me.mrenclave,
        mrsigner: me.mrsigner,
        config_id: me.config_id,
        isvprodid: me.isvprodid,
        isvsvn: me.isvsvn,
        config_svn: me.config_svn,
        isv_family_id: me.isv_family_id,
        report_data: *report_data,
    };
    let mac = report_key(root, cpusvn, target, key_id).cmac(&body.to_bytes());
    Report {
        body,
        key_id: *key_id,
        mac,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn enclave(m: u8) -> EnclaveIdentity {
        EnclaveIdentity {
            mrenclave: [m; 32],
            mrsigner: [2; 32],
            attributes: Attributes {
                flags: flags::INIT | flags::MODE64BIT,
                xfrm: 3,
            },
            isvsvn: 5,
            ..Default::default()
        }
    }

    #[test]
    fn ereport_mac_checks_with_the_targets_egetkey() {
        let root = RootSecret::from_bytes([7; 32]);
        let cpusvn = [1; 16];
        let app = enclave(1);
        let las = enclave(9);
        let r = ereport(&root, &cpusvn, &app, &las.target_info(), &[4; 64], &[5; 32]);
        let req = KeyRequest {
            keyname: KeyName::Report as u16,
            keypolicy: 0,
            isvsvn: 0,
            cpusvn: [0; 16],
            attribute_mask: Attributes::default(),
            key_id: r.key_id,
            misc_mask: 0,
            config_svn: 0,
        };
        let k = egetkey(&root, &cpusvn, &las, &req).unwrap();
        assert!(k.verify_cmac(&r.body.to_bytes(), &r.mac));
        // Another target, another CPUSVN or another root secret: the MAC does not check.
        let other = egetkey(&root, &cpusvn, &enclave(8), &req).unwrap();
        assert!(!other.verify_cmac(&r.body.to_bytes(), &r.mac));
        let other = egetkey(&root, &[2; 16], &las, &req).unwrap();
        assert!(!other.verify_cmac(&r.body.to_bytes(), &r.mac));
        let other = egetkey(&RootSecret::from_bytes([8; 32]), &cpusvn, &las, &req).unwrap();
        assert!(!other.verify_cmac(&r.body.to_bytes(), &r.mac));
    }

    #[test]
    fn seal_key_depends_on_measurement_cpusvn_and_root() {
        let root = RootSecret::from_bytes([7; 32]);
        let k = |r: &RootSecret, c: [u8; 16], e: &EnclaveIdentity| {
            *mrenclave_seal_key(r, &c, e).expose()
        };
        let base = k(&root, [1; 16], &enclave(1));
        assert_eq!(base, k(&root, [1; 16], &enclave(1)));
        assert_ne!(base, k(&root, [2; 16], &enclave(1)));
        assert_ne!(base, k(&root, [1; 16], &enclave(2)));
        assert_ne!(
            base,
            k(&RootSecret::from_bytes([6; 32]), [1; 16], &enclave(1))
        );
    }

    #[test]
    fn seal_key_for_a_future_svn_is_refused() {
        let root = RootSecret::from_bytes([7; 32]);
        let me = enclave(1);
        let mut req = KeyRequest::try_from_slice(&[0u8; 512]).unwrap();
        req.keyname = KeyName::Seal as u16;
        req.cpusvn = [2; 16];
        assert_eq!(
            egetkey(&root, &[1; 16], &me, &req).unwrap_err(),
            KeyError::Svn("CPUSVN")
        );
        req.cpusvn = [1; 16];
        req.isvsvn = 6;
        assert_eq!(
            egetkey(&root, &[1; 16], &me, &req).unwrap_err(),
            KeyError::Svn("ISVSVN")
        );
        req.keyname = 9;
        assert_eq!(
            egetkey(&root, &[1; 16], &me, &req).unwrap_err(),
            KeyError::KeyName(9)
        );
    }
}

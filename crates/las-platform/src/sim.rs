//! The simulated SGX platform. NOT SECURE: it models SGX semantics, it protects nothing.
//!
//! - The root secret (the CPU's fused keys) is 32 random bytes in
//!   `<state-dir>/platform-secret`, mode 0600, created once, atomically, and never
//!   regenerated: a missing file is created, a broken one stops the daemon.
//! - Whoever can read or replace the secret knows the platform's keys, so the state folder
//!   must be a real folder (not a symlink) owned by the user the LAS runs as and writable by
//!   it alone, and the secret a regular file (opened with O_NOFOLLOW and checked on the
//!   opened descriptor) owned by that user, with no group or other permission bits. The
//!   folder is created 0700. Anything else is refused with an error saying how to fix it.
//! - CPUSVN comes from the host's microcode revision (or `--sim-cpusvn`).
//! - The LAS's MRENCLAVE is the SHA-256 of its executable; its MRSIGNER is [`LAS_MRSIGNER`].
//! - Keys follow `las_core::egetkey`: the platform identity is derived from the LAS's
//!   MRENCLAVE-bound seal key, so it changes with the root secret (another server), the
//!   CPUSVN (microcode update) and the executable (LAS update), and with nothing else.

use std::fs;
use std::path::{Path, PathBuf};

use las_core::api::{TcbState, TcbStateKind};
use las_core::egetkey::{self, EnclaveIdentity, RootSecret};
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_core::sgx::{Attributes, Report, TargetInfo, flags};
use las_core::tcb::QeId;
use las_core::{Mode, PlatformIdentity};

use crate::{Platform, PlatformConfig, PlatformError, ReportError, measure};

mod state;
pub use state::{
    SECRET_FILE, StateError, check_dir, current_uid, ensure_dir, load_or_create_secret, read_secret,
};

/// MRSIGNER of the LAS in simulation: SHA-256 of "las project simulated signing identity v1".
pub const LAS_MRSIGNER: [u8; 32] = [
    0x36, 0x96, 0x6a, 0x6b, 0x63, 0x1b, 0x30, 0x2d, 0x65, 0x1c, 0xef, 0xd2, 0xd3, 0x33, 0x94, 0x7b,
    0xd0, 0x56, 0xbd, 0x5f, 0x30, 0x7a, 0x1a, 0x88, 0x64, 0xa6, 0xe4, 0x85, 0xe7, 0x09, 0xea, 0x22,
];
/// ISVPRODID of the LAS.
pub const LAS_ISVPRODID: u16 = 1;
/// ISVSVN of the LAS.
pub const LAS_ISVSVN: u16 = 1;
/// CPUSVN used when the host reports no microcode revision.
pub const FALLBACK_CPUSVN: [u8; 16] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// The simulated CPU: root secret and CPUSVN. Applications on the platform use it to make
/// REPORTs (simulated EREPORT); the LAS uses it to derive its keys.
pub struct SimCpu {
    root: RootSecret,
    cpusvn: [u8; 16],
    /// Whether this open created the root secret.
    pub created: bool,
    /// Where the secret lives.
    pub secret_path: PathBuf,
}

impl std::fmt::Debug for SimCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCpu")
            .field("cpusvn", &hex::encode(self.cpusvn))
            .field("secret_path", &self.secret_path)
            .finish_non_exhaustive()
    }
}

impl SimCpu {
    /// Opens the simulated CPU of the platform whose state folder is `dir`.
    pub fn open(
        dir: &Path,
        cpusvn: Option<[u8; 16]>,
        create_secret: bool,
    ) -> Result<Self, StateError> {
        let (root, created) = if create_secret {
            load_or_create_secret(dir)?
        } else {
            check_dir(dir)?;
            let path = dir.join(SECRET_FILE);
            if fs::symlink_metadata(&path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            {
                return Err(StateError::Missing {
                    path,
                    dir: dir.to_path_buf(),
                });
            }
            (read_secret(&path)?, false)
        };
        Ok(Self {
            root,
            cpusvn: cpusvn.unwrap_or_else(host_cpusvn),
            created,
            secret_path: dir.join(SECRET_FILE),
        })
    }

    /// The current CPUSVN.
    pub fn cpusvn(&self) -> [u8; 16] {
        self.cpusvn
    }

    /// Simulated EREPORT by enclave `me` for `target`, with a fresh random KEYID.
    pub fn ereport(
        &self,
        me: &EnclaveIdentity,
        target: &TargetInfo,
        report_data: &[u8; 64],
    ) -> Result<Report, StateError> {
        let mut key_id = [0u8; 32];
        getrandom::getrandom(&mut key_id).map_err(StateError::Random)?;
        Ok(egetkey::ereport(
            &self.root,
            &self.cpusvn,
            me,
            target,
            report_data,
            &key_id,
        ))
    }
}

/// The simulated platform as the LAS sees it.
#[derive(Debug)]
pub struct SimPlatform {
    cpu: SimCpu,
    las: EnclaveIdentity,
    identity: PlatformIdentity,
    qe_id: QeId,
    tcb_state: TcbState,
}

impl SimPlatform {
    /// Opens the state folder (creating folder and secret when allowed) and derives the
    /// platform identity.
    pub fn open(cfg: &PlatformConfig) -> Result<Self, PlatformError> {
        let cpu = SimCpu::open(&cfg.state_dir, cfg.sim_cpusvn, cfg.create_secret)?;
        let mrenclave = match cfg.sim_las_mrenclave {
            Some(m) => m,
            None => measure::sha256_of_running_executable().map_err(|source| {
                PlatformError::Measure {
                    path: "/proc/self/exe".into(),
                    source,
                }
            })?,
        };
        let las = las_enclave(mrenclave);
        let seal = egetkey::mrenclave_seal_key(&cpu.root, &cpu.cpusvn, &las);
        let identity = PlatformIdentity::from_seal_key(&seal);
        let qe_id = egetkey::sim_qe_id(&cpu.root);
        let tcb_state = sim_tcb_state(&cpu, qe_id);
        Ok(Self {
            cpu,
            las,
            identity,
            qe_id,
            tcb_state,
        })
    }

    /// The simulated CPU.
    pub fn cpu(&self) -> &SimCpu {
        &self.cpu
    }
}

/// The simulated TCB state: QE ID and PPID from the root secret alone (each with its own
/// HKDF label), the fixed simulated FMSPC, the platform's CPUSVN, PCE ID and PCE SVN 0.
fn sim_tcb_state(cpu: &SimCpu, qe_id: QeId) -> TcbState {
    TcbState {
        state: TcbStateKind::Simulated,
        qe_id: Some(qe_id.to_string()),
        ppid: Some(hex::encode(egetkey::sim_ppid(&cpu.root))),
        fmspc: Some(hex::encode(las_core::tcb::SIM_FMSPC)),
        pce_id: Some("0000".into()),
        cpusvn: Some(hex::encode(cpu.cpusvn)),
        pcesvn: Some(0),
        platform_instance_id: None,
        reason: None,
    }
}

/// The LAS's enclave identity in simulation.
pub fn las_enclave(mrenclave: [u8; 32]) -> EnclaveIdentity {
    EnclaveIdentity {
        mrenclave,
        mrsigner: LAS_MRSIGNER,
        attributes: Attributes {
            flags: flags::INIT | flags::MODE64BIT,
            xfrm: 0x3,
        },
        isvprodid: LAS_ISVPRODID,
        isvsvn: LAS_ISVSVN,
        ..EnclaveIdentity::default()
    }
}

impl Platform for SimPlatform {
    fn mode(&self) -> Mode {
        Mode::Sim
    }

    fn identity(&self) -> &PlatformIdentity {
        &self.identity
    }

    fn las_enclave(&self) -> &EnclaveIdentity {
        &self.las
    }

    fn cpusvn(&self) -> [u8; 16] {
        self.cpu.cpusvn
    }

    fn tcb_state(&self) -> TcbState {
        self.tcb_state.clone()
    }

    fn startup_notes(&self) -> Vec<String> {
        if self.cpu.created {
            vec![format!(
                "created a new platform secret at {}: this is a NEW platform identity; keep the file (back it up) to keep this platform ID",
                self.cpu.secret_path.display()
            )]
        } else {
            Vec::new()
        }
    }

    fn check_report(&self, bytes: &[u8]) -> Result<Report, ReportError> {
        let report = crate::check_report_mac(bytes, |key_id| {
            Some(egetkey::report_key(
                &self.cpu.root,
                &self.cpu.cpusvn,
                &self.las.target_info(),
                key_id,
            ))
        })?;
        // A CPU writes its current CPUSVN into every REPORT it makes. The MAC only shows the
        // REPORT was made with the platform's keys (which in simulation a holder of the
        // secret file can use for any body): refuse what hardware could never produce.
        if report.body.cpusvn != self.cpu.cpusvn {
            return Err(ReportError::Cpusvn {
                report: report.body.cpusvn,
                platform: self.cpu.cpusvn,
            });
        }
        Ok(report)
    }

    fn identity_evidence(&self, nonce: &[u8], now: u64) -> Result<Vec<u8>, PlatformError> {
        crate::check_nonce(nonce)?;
        let id = self.identity.platform_id();
        let claims = EvidenceClaims {
            kind: EvidenceKind::Sim,
            mode: Mode::Sim,
            platform_id: id,
            nonce: nonce.to_vec(),
            las_version: env!("CARGO_PKG_VERSION").to_owned(),
            las_mrenclave: self.las.mrenclave,
            las_mrsigner: self.las.mrsigner,
            las_isvprodid: self.las.isvprodid,
            las_isvsvn: self.las.isvsvn,
            cpusvn: self.cpu.cpusvn,
            issued_at: now,
            binding: binding(&id, nonce),
            qe_id: Some(self.qe_id),
        };
        Ok(encode_evidence(&self.identity, &claims)?)
    }
}

/// CPUSVN of this host: the microcode revision (first `microcode` line of /proc/cpuinfo)
/// as a little-endian u64 in bytes 0..8, zeros after; [`FALLBACK_CPUSVN`] where there is
/// none (containers without /proc/cpuinfo microcode, non-x86 hosts).
pub fn host_cpusvn() -> [u8; 16] {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| cpusvn_from_cpuinfo(&s))
        .unwrap_or(FALLBACK_CPUSVN)
}

fn cpusvn_from_cpuinfo(cpuinfo: &str) -> Option<[u8; 16]> {
    let line = cpuinfo.lines().find(|l| l.starts_with("microcode"))?;
    let v = line.split(':').nth(1)?.trim();
    let rev = u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()?;
    let mut svn = [0u8; 16];
    for (d, s) in svn.iter_mut().zip(rev.to_le_bytes()) {
        *d = s;
    }
    Some(svn)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

//! # las-platform: where the LAS's keys come from
//!
//! One small trait, [`Platform`], stands between the daemon and the CPU. The daemon asks it
//! for the LAS's TARGETINFO, to check the MAC of an application's REPORT, for the platform
//! identity and for evidence of that identity. [`sim::SimPlatform`] implements it in
//! software (a root secret in the state folder stands in for the CPU's fused keys);
//! `hw::GraminePlatform` (feature `sgx`) implements the same trait on real SGX under Gramine.
//!
//! [`open`] picks the backend for a [`ModeRequest`] (`sim`, `hw`, `auto`): `auto` is
//! hardware only when this build has the `sgx` feature and runs inside a Gramine-SGX
//! enclave with DCAP attestation; it refuses to start where an SGX device is visible but
//! the LAS is not in an enclave (simulating there would silently waste the hardware); and
//! it is the simulated platform everywhere else.
//!
//! A simulated platform in a fresh state folder (the secret is created there, 0600), and
//! the same ID again on the next start:
//!
//! ```
//! use las_platform::{ModeRequest, PlatformConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let cfg = PlatformConfig {
//!     mode: ModeRequest::Sim,
//!     state_dir: dir.path().join("state"),
//!     sim_cpusvn: Some([1; 16]),
//!     sim_las_mrenclave: Some([2; 32]), // instead of measuring this test binary
//!     create_secret: true,
//! };
//! let first = las_platform::open(&cfg)?.platform_id();
//! assert_eq!(las_platform::open(&cfg)?.platform_id(), first);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "sgx")]
pub mod hw;
pub mod measure;
pub mod sim;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::path::{Path, PathBuf};

use las_core::egetkey::EnclaveIdentity;
use las_core::sgx::{Report, TargetInfo};
use las_core::{FormatError, Mode, PlatformId, PlatformIdentity};

/// What the daemon needs from a platform.
pub trait Platform: Send + Sync + std::fmt::Debug {
    /// `sim` or `hw`.
    fn mode(&self) -> Mode;
    /// The platform identity (signing key; its public key is the platform ID).
    fn identity(&self) -> &PlatformIdentity;
    /// The LAS enclave's own identity (MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN, attributes).
    fn las_enclave(&self) -> &EnclaveIdentity;
    /// The platform's current CPUSVN.
    fn cpusvn(&self) -> [u8; 16];
    /// The LAS's TARGETINFO: applications make their REPORTs for it.
    fn target_info(&self) -> TargetInfo {
        self.las_enclave().target_info()
    }
    /// Parses a REPORT targeted at the LAS and checks its MAC with the LAS's report key
    /// (constant-time comparison).
    fn check_report(&self, bytes: &[u8]) -> Result<Report, ReportError>;
    /// Identity evidence for `nonce` (a signed token, see `las_core::evidence`).
    fn identity_evidence(&self, nonce: &[u8], now: u64) -> Result<Vec<u8>, PlatformError>;

    /// The platform below the LAS (QE ID, PCK facts), read once at start. `unknown` when
    /// it could not be read; the LAS serves quotes all the same.
    fn tcb_state(&self) -> las_core::api::TcbState;

    /// Things the operator should read at start (e.g. "a new platform secret was created").
    fn startup_notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The platform ID.
    fn platform_id(&self) -> PlatformId {
        self.identity().platform_id()
    }
}

/// Why a REPORT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Not 432 bytes.
    #[error("a REPORT is {expected} bytes, got {actual}")]
    Length {
        /// 432.
        expected: usize,
        /// What was sent.
        actual: usize,
    },
    /// A reserved field is not zero: no CPU writes that.
    #[error("malformed REPORT: {0}")]
    Malformed(FormatError),
    /// The MAC does not check with the LAS's report key: forged, made on another platform
    /// or at another CPUSVN, or targeted at another enclave (SGX cannot tell these apart).
    #[error(
        "the REPORT's MAC does not verify with this LAS's report key (forged, made on another platform, or targeted at another enclave)"
    )]
    Mac,
    /// The REPORT's MAC checks but its CPUSVN is not the platform's current one: a CPU
    /// writes its current CPUSVN into every REPORT, so no CPU made this one.
    #[error(
        "the REPORT's CPUSVN {} is not this platform's current CPUSVN {}: no CPU makes such a REPORT",
        hex::encode(report),
        hex::encode(platform)
    )]
    Cpusvn {
        /// The CPUSVN field of the REPORT.
        report: [u8; 16],
        /// The platform's current CPUSVN.
        platform: [u8; 16],
    },
}

impl From<FormatError> for ReportError {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::Length {
                expected, actual, ..
            } => ReportError::Length { expected, actual },
            other => ReportError::Malformed(other),
        }
    }
}

/// Which backend the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeRequest {
    /// The simulated platform.
    Sim,
    /// Hardware SGX; fails when not available.
    Hw,
    /// Hardware where available, else simulation.
    Auto,
}

/// Settings of the platform backends.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Which backend.
    pub mode: ModeRequest,
    /// The state folder (simulation: holds the root secret).
    pub state_dir: PathBuf,
    /// Simulation: CPUSVN override (models a microcode update).
    pub sim_cpusvn: Option<[u8; 16]>,
    /// Simulation: MRENCLAVE override of the LAS (default: SHA-256 of the running executable).
    pub sim_las_mrenclave: Option<[u8; 32]>,
    /// Simulation: create the root secret when it is missing.
    pub create_secret: bool,
}

/// A platform could not be opened or could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// `--mode hw` in a build or on a machine without hardware support. The one
    /// catch-all: why, as a description for the operator (no source error: a missing
    /// build feature, another architecture, not inside Gramine-SGX, a failed self-test).
    #[error("hardware mode is not available in this build: {0}")]
    HwUnavailable(String),
    /// `--mode hw`: a Gramine attestation file could not be used at start.
    #[cfg(feature = "sgx")]
    #[error("hardware mode is not available in this build: {0}")]
    HwAttestation(#[source] hw::GramineError),
    /// `--mode hw`: EGETKEY gave no REPORT key at start.
    #[cfg(feature = "sgx")]
    #[error("hardware mode is not available in this build: {0}")]
    HwReportKey(#[source] hw::ReportKeyError),
    /// The state folder or the secret in it is unusable.
    #[error(transparent)]
    State(#[from] sim::StateError),
    /// The LAS executable could not be measured.
    #[error("cannot measure the LAS executable {path}")]
    Measure {
        /// The executable.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The SGX hardware failed to answer: no DCAP quote from the host's AESM.
    #[cfg(feature = "sgx")]
    #[error("hardware SGX: cannot get a DCAP quote: {0}")]
    Quote(#[source] hw::GramineError),
    /// `--mode auto` where an SGX device is visible but the LAS runs outside an enclave.
    #[error(
        "--mode auto refuses to simulate SGX on this machine: {} shows SGX hardware, but this LAS does not run inside an SGX enclave (no /dev/attestation). Either run the hardware image (the LAS under Gramine-SGX; chart value mode=hw; see docs/hardware.md), or choose simulation explicitly with --mode sim (NOT SECURE)",
        device.display()
    )]
    SgxNotUsed {
        /// The SGX device file that was found.
        device: PathBuf,
    },
    /// The identity evidence could not be encoded.
    #[error("identity evidence: {0}")]
    Evidence(#[from] las_core::error::TokenError),
    /// The nonce is too short or too long.
    #[error("nonce must be {min} to {max} bytes, got {actual}")]
    Nonce {
        /// Minimum.
        min: usize,
        /// Maximum.
        max: usize,
        /// Given.
        actual: usize,
    },
}

/// Opens the backend the configuration asks for.
pub fn open(cfg: &PlatformConfig) -> Result<Box<dyn Platform>, PlatformError> {
    match cfg.mode {
        ModeRequest::Hw => open_hw(),
        ModeRequest::Auto if hw_detected() => open_hw(),
        ModeRequest::Auto => match visible_sgx_device() {
            Some(device) => Err(PlatformError::SgxNotUsed { device }),
            None => Ok(Box::new(sim::SimPlatform::open(cfg)?)),
        },
        ModeRequest::Sim => Ok(Box::new(sim::SimPlatform::open(cfg)?)),
    }
}

/// The device files through which a process reaches SGX: the in-kernel driver (Linux
/// 5.11+), its older path, and Intel's out-of-tree driver. A device plugin or a privileged
/// pod with the host's /dev exposes one of them.
pub const SGX_DEVICES: [&str; 3] = ["/dev/sgx_enclave", "/dev/sgx/enclave", "/dev/isgx"];

/// TESTS ONLY, and read only by debug builds (what the test command runs; a release build,
/// which is what ships, ignores it): a folder under which [`SGX_DEVICES`] are looked for
/// instead of `/`, so that the real binary can be shown a machine with SGX devices. It can only make `auto` see
/// devices that are not there or miss ones that are; whoever sets a daemon's environment
/// can choose `--mode` anyway. It never affects where `/dev/attestation` is read.
pub const TEST_DEVICE_ROOT_ENV: &str = "LAS_TEST_SGX_DEVICE_ROOT";

/// The first SGX device file visible to this process (under [`TEST_DEVICE_ROOT_ENV`] when
/// that is set), if any.
pub fn visible_sgx_device() -> Option<PathBuf> {
    #[cfg(debug_assertions)]
    let root = std::env::var_os(TEST_DEVICE_ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from);
    #[cfg(not(debug_assertions))]
    let root = PathBuf::from("/");
    sgx_device_under(&root)
}

/// The first of [`SGX_DEVICES`] that exists under `root` (a dangling symlink counts: the
/// name alone shows an SGX driver).
pub fn sgx_device_under(root: &Path) -> Option<PathBuf> {
    SGX_DEVICES
        .iter()
        .map(|d| root.join(d.trim_start_matches('/')))
        .find(|p| p.symlink_metadata().is_ok())
}

/// Whether `auto` should pick hardware: Gramine's attestation files exist (we run inside a
/// Gramine-SGX enclave). A Gramine enclave without DCAP is detected too, so that `auto`
/// fails there with a clear message instead of silently simulating inside an enclave.
#[cfg(feature = "sgx")]
fn hw_detected() -> bool {
    hw::AttestationFs::default().attestation_type().is_some()
}

#[cfg(not(feature = "sgx"))]
fn hw_detected() -> bool {
    false
}

#[cfg(feature = "sgx")]
fn open_hw() -> Result<Box<dyn Platform>, PlatformError> {
    Ok(Box::new(hw::GraminePlatform::open()?))
}

#[cfg(not(feature = "sgx"))]
fn open_hw() -> Result<Box<dyn Platform>, PlatformError> {
    Err(PlatformError::HwUnavailable(
        "this build has no SGX backend (build with `--features las-platform/sgx` and run it under Gramine-SGX, see docs/hardware.md); use --mode sim (not secure) or --mode auto".into(),
    ))
}

/// Refuses a nonce outside the length identity evidence accepts.
pub(crate) fn check_nonce(nonce: &[u8]) -> Result<(), PlatformError> {
    use las_core::evidence::{MAX_NONCE, MIN_NONCE};
    if (MIN_NONCE..=MAX_NONCE).contains(&nonce.len()) {
        Ok(())
    } else {
        Err(PlatformError::Nonce {
            min: MIN_NONCE,
            max: MAX_NONCE,
            actual: nonce.len(),
        })
    }
}

/// Parses a REPORT and checks its MAC over the raw 384-byte body with `key`, in constant
/// time: the part every backend shares once it has derived its report key.
pub(crate) fn check_report_mac(
    bytes: &[u8],
    key: impl FnOnce(&[u8; 32]) -> Option<las_core::crypto::Key128>,
) -> Result<Report, ReportError> {
    let report = Report::try_from_slice(bytes)?;
    let key = key(&report.key_id).ok_or(ReportError::Mac)?;
    let body = bytes
        .get(..las_core::sgx::REPORT_BODY_SIZE)
        .unwrap_or_default();
    if key.verify_cmac(body, &report.mac) {
        Ok(report)
    } else {
        Err(ReportError::Mac)
    }
}

/// Seconds since the Unix epoch: las-core's one clock reading, re-exported for the
/// platform's callers.
pub use las_core::unix_now;

/// The system-wide state folder.
pub const SYSTEM_STATE_DIR: &str = "/var/lib/las";

/// The default state folder of `lasd` (and of `las quote`, which must find the same
/// platform secret): /var/lib/las when this user can write there (or create it), else the
/// per-user state folder: $XDG_STATE_HOME/las, ~/.local/state/las, or ./las-state as a last
/// resort.
pub fn default_state_dir() -> std::path::PathBuf {
    choose_state_dir(true)
}

/// The folder [`default_state_dir`] would choose, for a reader of the platform secret
/// (`las quote`): it creates nothing, not even a probe file. A missing /var/lib/las is not
/// chosen (no secret can be there), so the reader then looks in the per-user folder.
pub fn default_state_dir_to_read() -> std::path::PathBuf {
    choose_state_dir(false)
}

fn choose_state_dir(create: bool) -> std::path::PathBuf {
    use std::path::{Path, PathBuf};
    let writable_dir = |dir: &Path| -> bool {
        if std::fs::symlink_metadata(dir).is_err() {
            // Created like every state folder: 0700 (the secret's folder is owner-only).
            return create && sim::ensure_dir(dir).is_ok();
        }
        if !create {
            use rustix::fs::{Access, AtFlags, CWD};
            return rustix::fs::accessat(
                CWD,
                dir,
                Access::WRITE_OK | Access::EXEC_OK,
                AtFlags::EACCESS,
            )
            .is_ok();
        }
        // A random-named O_EXCL probe: never follows or truncates a file planted there.
        tempfile::Builder::new()
            .prefix(".las-write-probe-")
            .tempfile_in(dir)
            .is_ok()
    };
    let sys = Path::new(SYSTEM_STATE_DIR);
    if writable_dir(sys) {
        return sys.to_path_buf();
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("las");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/state/las");
    }
    PathBuf::from("las-state")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod auto_tests {
    use super::*;

    #[test]
    fn each_sgx_device_path_is_found() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(sgx_device_under(d.path()), None);
        std::fs::create_dir_all(d.path().join("dev/sgx")).unwrap();
        assert_eq!(sgx_device_under(d.path()), None, "a folder is not a device");
        for dev in SGX_DEVICES {
            let e = tempfile::tempdir().unwrap();
            let p = e.path().join(dev.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"").unwrap();
            assert_eq!(sgx_device_under(e.path()), Some(p));
        }
    }

    #[test]
    fn the_refusal_names_the_device_and_both_fixes() {
        let e = PlatformError::SgxNotUsed {
            device: PathBuf::from("/dev/sgx_enclave"),
        }
        .to_string();
        for want in [
            "/dev/sgx_enclave",
            "hardware image",
            "--mode sim",
            "mode=hw",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}

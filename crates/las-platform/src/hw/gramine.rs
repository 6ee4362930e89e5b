//! Gramine's attestation pseudo-files (`/dev/attestation`), for the LAS and for
//! applications running under Gramine-SGX.
//!
//! | file | what |
//! |------|------|
//! | `attestation_type` | `dcap` when the manifest says `sgx.remote_attestation = "dcap"` |
//! | `my_target_info` | this enclave's TARGETINFO (512 bytes) |
//! | `target_info` | write: the TARGETINFO the next `report` is for |
//! | `user_report_data` | write: the 64-byte REPORTDATA of the next `report`/`quote` |
//! | `report` | read: EREPORT for `target_info` with `user_report_data` (432 bytes) |
//! | `quote` | read: a DCAP quote with `user_report_data`, made by the host's AESM |
//! | `keys/_sgx_mrenclave` | read: the MRENCLAVE-policy seal key (16 bytes) |
//!
//! A write followed by a read is one operation: [`AttestationFs`] holds a process-wide
//! lock across both, so concurrent requests cannot mix their report data.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use las_core::crypto::Key128;
use las_core::evidence::MAX_DCAP_QUOTE;
use las_core::sgx::{REPORT_DATA_SIZE, REPORT_SIZE, Report, TARGET_INFO_SIZE, TargetInfo};
use zeroize::Zeroizing;

/// Where Gramine mounts its attestation files.
pub const DEFAULT_ROOT: &str = "/dev/attestation";

/// Serialises write-then-read sequences on the pseudo-files within this process.
static SEQUENCE: Mutex<()> = Mutex::new(());

/// A Gramine attestation file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GramineError {
    /// Reading or writing a pseudo-file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A pseudo-file has an unexpected size.
    #[error("{path} is {actual} bytes, expected {expected}")]
    Size {
        /// The file.
        path: PathBuf,
        /// Expected size.
        expected: usize,
        /// Actual size.
        actual: usize,
    },
    /// A structure read from Gramine does not parse.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The attestation files under one root (`/dev/attestation`; tests use a folder).
#[derive(Debug, Clone)]
pub struct AttestationFs {
    root: PathBuf,
}

impl Default for AttestationFs {
    fn default() -> Self {
        Self::new(DEFAULT_ROOT)
    }
}

impl AttestationFs {
    /// The files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn read_exact_size(&self, name: &str, size: usize) -> Result<Vec<u8>, GramineError> {
        let path = self.path(name);
        let b = std::fs::read(&path).map_err(|source| GramineError::Io {
            path: path.clone(),
            source,
        })?;
        if b.len() != size {
            return Err(GramineError::Size {
                path,
                expected: size,
                actual: b.len(),
            });
        }
        Ok(b)
    }

    fn write(&self, name: &str, data: &[u8]) -> Result<(), GramineError> {
        let path = self.path(name);
        // The pseudo-files exist; no create or truncate flags, one write of the whole value.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(data))
            .map_err(|source| GramineError::Io { path, source })
    }

    /// `attestation_type` (trimmed), or `None` when the file does not exist (not under
    /// Gramine-SGX).
    pub fn attestation_type(&self) -> Option<String> {
        std::fs::read_to_string(self.path("attestation_type"))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    /// This enclave's TARGETINFO.
    pub fn my_target_info(&self) -> Result<TargetInfo, GramineError> {
        let b = self.read_exact_size("my_target_info", TARGET_INFO_SIZE)?;
        TargetInfo::try_from_slice(&b).map_err(|e| GramineError::Format {
            path: self.path("my_target_info"),
            message: e.to_string(),
        })
    }

    /// EREPORT through Gramine: a REPORT of this enclave for `target` with `report_data`.
    /// This is how an application under Gramine makes the REPORT it sends to the LAS
    /// (target = the LAS's TARGETINFO from `GET /v1/target-info`).
    pub fn report(
        &self,
        target: &TargetInfo,
        report_data: &[u8; REPORT_DATA_SIZE],
    ) -> Result<Report, GramineError> {
        let _seq = SEQUENCE.lock().unwrap_or_else(|p| p.into_inner());
        self.write("target_info", &target.to_bytes())?;
        self.write("user_report_data", report_data)?;
        let b = self.read_exact_size("report", REPORT_SIZE)?;
        Report::try_from_slice(&b).map_err(|e| GramineError::Format {
            path: self.path("report"),
            message: e.to_string(),
        })
    }

    /// A DCAP quote of this enclave with `report_data` (Gramine asks the host's AESM).
    pub fn quote(&self, report_data: &[u8; REPORT_DATA_SIZE]) -> Result<Vec<u8>, GramineError> {
        let _seq = SEQUENCE.lock().unwrap_or_else(|p| p.into_inner());
        self.write("user_report_data", report_data)?;
        let path = self.path("quote");
        let q = std::fs::read(&path).map_err(|source| GramineError::Io {
            path: path.clone(),
            source,
        })?;
        if q.is_empty() || q.len() > MAX_DCAP_QUOTE {
            return Err(GramineError::Format {
                path,
                message: format!(
                    "a DCAP quote of {} bytes (expected 1 to {MAX_DCAP_QUOTE})",
                    q.len()
                ),
            });
        }
        Ok(q)
    }

    /// The seal key with the MRENCLAVE policy at the current CPUSVN and ISVSVN: the same
    /// after a restart, new after a microcode update or with a new LAS build.
    pub fn mrenclave_seal_key(&self) -> Result<Key128, GramineError> {
        let path = self.path("keys/_sgx_mrenclave");
        let b = Zeroizing::new(std::fs::read(&path).map_err(|source| GramineError::Io {
            path: path.clone(),
            source,
        })?);
        let k: [u8; 16] = b.as_slice().try_into().map_err(|_| GramineError::Size {
            path,
            expected: 16,
            actual: b.len(),
        })?;
        Ok(Key128::from_bytes(k))
    }
}

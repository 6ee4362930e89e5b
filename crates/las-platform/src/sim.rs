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

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use las_core::egetkey::{self, EnclaveIdentity, ROOT_SECRET_SIZE, RootSecret};
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_core::sgx::{Attributes, Report, TargetInfo, flags};
use las_core::{Mode, PlatformIdentity};
use zeroize::Zeroizing;

use crate::{Platform, PlatformConfig, PlatformError, ReportError, measure};

/// File name of the root secret inside the state folder.
pub const SECRET_FILE: &str = "platform-secret";
const TMP_PREFIX: &str = ".platform-secret.tmp-";

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

/// The state folder or the secret in it cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The state folder could not be created or is not a folder.
    #[error("state folder {path}: {reason}")]
    Dir {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The secret file is readable by group or others.
    #[error(
        "platform secret {path} has mode {mode:04o}: it must be readable by its owner only. If nobody else could have read it, fix it with `chmod 600 {path}`; otherwise treat this platform identity as compromised and remove the file to create a new one (that changes the platform ID)"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The secret file has the wrong size.
    #[error(
        "platform secret {path} is {size} bytes, expected {ROOT_SECRET_SIZE}: the file is corrupt. Restore it from a backup; removing it creates a NEW platform identity (a new platform ID that policies must then list)"
    )]
    Size {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The secret file is not a regular file.
    #[error(
        "platform secret {path} is not a regular file: remove it (a new secret is then created, with a NEW platform ID) or restore the real file from a backup"
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The secret's name is a symbolic link: whoever controls the link's target knows or
    /// chooses the platform's keys.
    #[error(
        "platform secret {path} is a symbolic link: the LAS does not follow links to its secret. Replace the link by the file itself (`mv`, as the user that runs the LAS) if that file is yours and readable by you only; otherwise remove the link to create a new secret (a NEW platform ID)"
    )]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// The secret file is owned by another user, who can read or replace it.
    #[error(
        "platform secret {path} is owned by uid {owner}, not by uid {uid} that runs the LAS: that user may know the platform's keys. If nobody else could have read or written it, fix it with `chown {uid} {path}`; otherwise remove it to create a new secret (a NEW platform ID)"
    )]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        uid: u32,
    },
    /// The secret file could not be read.
    #[error("cannot read platform secret {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The secret file could not be created.
    #[error("cannot create platform secret {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// There is no secret and this command does not create one.
    #[error(
        "no platform secret at {path}: start `las serve --state-dir {dir}` on this platform first, or point --state-dir at the LAS's state folder"
    )]
    Missing {
        /// The file.
        path: PathBuf,
        /// Its folder.
        dir: PathBuf,
    },
    /// No randomness.
    #[error("no randomness from the OS: {0}")]
    Random(String),
}

/// The effective user ID of this process: the only user that may own the state.
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

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
        getrandom::getrandom(&mut key_id).map_err(|e| StateError::Random(e.to_string()))?;
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
}

impl SimPlatform {
    /// Opens the state folder (creating folder and secret when allowed) and derives the
    /// platform identity.
    pub fn open(cfg: &PlatformConfig) -> Result<Self, PlatformError> {
        let cpu = SimCpu::open(&cfg.state_dir, cfg.sim_cpusvn, cfg.create_secret)?;
        let mrenclave = match cfg.sim_las_mrenclave {
            Some(m) => m,
            None => {
                let exe = measure::current_exe().map_err(|source| PlatformError::Measure {
                    path: "/proc/self/exe".into(),
                    source,
                })?;
                measure::sha256_file(&exe)
                    .map_err(|source| PlatformError::Measure { path: exe, source })?
            }
        };
        let las = las_enclave(mrenclave);
        let seal = egetkey::mrenclave_seal_key(&cpu.root, &cpu.cpusvn, &las);
        let identity = PlatformIdentity::from_seal_key(&seal);
        Ok(Self { cpu, las, identity })
    }

    /// The simulated CPU.
    pub fn cpu(&self) -> &SimCpu {
        &self.cpu
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

fn dir_err(dir: &Path, reason: String) -> StateError {
    StateError::Dir {
        path: dir.to_path_buf(),
        reason,
    }
}

/// Creates the state folder (mode 0700, missing parents too) when there is none, then
/// checks it with [`check_dir`].
pub fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => {}
        // mkdir does not follow a link planted at the last component (EEXIST); a folder a
        // racing process created is fine and is checked below like any existing one.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| dir_err(dir, format!("cannot create it: {e}")))?,
        Err(e) => return Err(dir_err(dir, e.to_string())),
    }
    check_dir(dir)
}

/// Checks an existing state folder: a real folder (the last component is not followed
/// when it is a symlink), owned by the user the LAS runs as, writable by nobody else (or
/// another user could replace the secret in it).
pub fn check_dir(dir: &Path) -> Result<(), StateError> {
    let meta = fs::symlink_metadata(dir).map_err(|e| dir_err(dir, e.to_string()))?;
    let d = dir.display();
    if meta.file_type().is_symlink() {
        return Err(dir_err(
            dir,
            format!(
                "is a symbolic link: the LAS does not follow a link to its state folder; give the real folder as --state-dir (see `readlink -f {d}`)"
            ),
        ));
    }
    if !meta.is_dir() {
        return Err(dir_err(dir, "exists and is not a folder".into()));
    }
    let uid = current_uid();
    if meta.uid() != uid {
        return Err(dir_err(
            dir,
            format!(
                "is owned by uid {}, not by uid {uid} that runs the LAS; fix it with `chown {uid} {d} && chmod 700 {d}`, or run the LAS as its owner",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(dir_err(
            dir,
            format!(
                "has mode {mode:04o}: group or others may replace the platform secret in it; fix it with `chmod 700 {d}`"
            ),
        ));
    }
    Ok(())
}

/// Reads and checks an existing secret: a regular file reached without following a
/// symlink, owned by the user the LAS runs as, owner-only, exactly 32 bytes. The checks
/// run on the opened descriptor (fstat), so the file checked is the file read.
pub fn read_secret(path: &Path) -> Result<RootSecret, StateError> {
    use rustix::fs::{Mode as FileMode, OFlags};
    let read_err = |source| StateError::Read {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: a FIFO planted at the name must not hang the start (it is then refused
    // as not a regular file); it has no effect on reading a regular file.
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, FileMode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => {
            return Err(StateError::Symlink {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(read_err(e.into())),
    };
    let mut f = File::from(fd);
    let meta = f.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(StateError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let uid = current_uid();
    if meta.uid() != uid {
        return Err(StateError::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StateError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() != ROOT_SECRET_SIZE as u64 {
        return Err(StateError::Size {
            path: path.to_path_buf(),
            size: meta.len(),
        });
    }
    let mut buf = Zeroizing::new([0u8; ROOT_SECRET_SIZE]);
    f.read_exact(buf.as_mut()).map_err(read_err)?;
    // The file must not have grown between the size check and the read.
    let mut extra = [0u8; 1];
    if f.read(&mut extra).map_err(read_err)? != 0 {
        return Err(StateError::Size {
            path: path.to_path_buf(),
            size: meta.len() + 1,
        });
    }
    Ok(RootSecret::from_bytes(*buf))
}

/// Loads the secret, or creates it atomically when there is none. Returns whether it was
/// created.
///
/// Creation: a `tempfile` with a random name in the state folder (O_EXCL, 0600) is locked
/// (flock), written and fsynced, then moved to the final name without replacing anything
/// (`persist_noclobber`: renameat2 RENAME_NOREPLACE, or link + unlink), then the folder is
/// fsynced. When another process created the secret first, its secret is read and used:
/// two processes starting at once on an empty folder end with one secret. A crash leaves
/// either no secret or a complete one, plus at most a temp file that a later start removes
/// (its creator's lock died with it; a live creator's temp file is locked and kept).
pub fn load_or_create_secret(dir: &Path) -> Result<(RootSecret, bool), StateError> {
    ensure_dir(dir)?;
    let path = dir.join(SECRET_FILE);
    remove_stale_temp_files(dir);
    let create_err = |source| StateError::Create {
        path: path.clone(),
        source,
    };
    // A second round only when our temp file vanished before it was moved into place.
    let mut last = None;
    for _ in 0..3 {
        match fs::symlink_metadata(&path) {
            Ok(_) => return Ok((read_secret(&path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::Read { path, source }),
        }
        let mut secret = Zeroizing::new([0u8; ROOT_SECRET_SIZE]);
        getrandom::getrandom(secret.as_mut()).map_err(|e| StateError::Random(e.to_string()))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(create_err)?;
        // Held until the file is in place: it tells a concurrent start's clean-up that this
        // temp file is alive. (Removed between create and lock: persist says NotFound and
        // this loop tries again.)
        tmp.as_file().lock().map_err(create_err)?;
        tmp.write_all(secret.as_ref())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(create_err)?;
        // Test-only, absent from release builds: hold the written temp file before it is
        // moved into place, so the fault test's kill -9 provably lands between the two
        // (crates/las/tests/faults.rs).
        #[cfg(debug_assertions)]
        if let Some(ms) = std::env::var("LAS_TEST_PAUSE_BEFORE_SECRET_LINK_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        match tmp.persist_noclobber(&path) {
            Ok(_) => {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(create_err)?;
                return Ok((RootSecret::from_bytes(*secret), true));
            }
            // Another process created it first: theirs is the platform's secret.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                return Ok((read_secret(&path)?, false));
            }
            Err(e) if e.error.kind() == std::io::ErrorKind::NotFound => last = Some(e.error),
            Err(e) => return Err(create_err(e.error)),
        }
    }
    Err(create_err(last.unwrap_or_else(|| {
        std::io::Error::other("the temp file kept disappearing")
    })))
}

/// Removes temp files a crashed creation left behind: regular files with the temp prefix
/// that nobody holds locked. A live creator holds an exclusive flock on its temp file until
/// it is the secret, and the kernel drops the lock when a process dies, so another
/// process's secret on its way to the final name is never removed.
fn remove_stale_temp_files(dir: &Path) {
    use rustix::fs::{Mode as FileMode, OFlags};
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            continue;
        }
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let Ok(fd) = rustix::fs::open(e.path(), flags, FileMode::empty()) else {
            continue;
        };
        let f = File::from(fd);
        let regular = f.metadata().is_ok_and(|m| m.is_file());
        if regular && f.try_lock().is_ok() {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, cpusvn: [u8; 16], m: u8) -> PlatformConfig {
        PlatformConfig {
            mode: crate::ModeRequest::Sim,
            state_dir: dir.to_path_buf(),
            sim_cpusvn: Some(cpusvn),
            sim_las_mrenclave: Some([m; 32]),
            create_secret: true,
        }
    }

    #[test]
    fn identity_is_stable_and_changes_with_cpusvn_executable_and_secret() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let id = |d: &Path, c, m| SimPlatform::open(&cfg(d, c, m)).unwrap().platform_id();
        let base = id(a.path(), [1; 16], 1);
        assert_eq!(base, id(a.path(), [1; 16], 1), "restart: same ID");
        assert_ne!(base, id(a.path(), [2; 16], 1), "microcode update: new ID");
        assert_ne!(base, id(a.path(), [1; 16], 2), "new LAS build: new ID");
        assert_ne!(base, id(b.path(), [1; 16], 1), "another server: new ID");
    }

    #[test]
    fn secret_file_is_owner_only_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let p = SimPlatform::open(&cfg(d.path(), [1; 16], 1)).unwrap();
        assert!(p.cpu().created);
        let path = d.path().join(SECRET_FILE);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        assert!(
            !SimPlatform::open(&cfg(d.path(), [1; 16], 1))
                .unwrap()
                .cpu()
                .created
        );

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = SimPlatform::open(&cfg(d.path(), [1; 16], 1))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("platform-secret") && e.contains("chmod 600"),
            "{e}"
        );

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..31]).unwrap();
        let e = SimPlatform::open(&cfg(d.path(), [1; 16], 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("31 bytes"), "{e}");
        assert_eq!(fs::read(&path).unwrap().len(), 31, "left untouched");
    }

    #[test]
    fn reports_made_on_the_platform_check_and_others_do_not() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let las = SimPlatform::open(&cfg(a.path(), [1; 16], 1)).unwrap();
        let app = EnclaveIdentity {
            mrenclave: [9; 32],
            ..EnclaveIdentity::default()
        };
        let cpu_a = SimCpu::open(a.path(), Some([1; 16]), false).unwrap();
        let r = cpu_a.ereport(&app, &las.target_info(), &[1; 64]).unwrap();
        assert!(las.check_report(&r.to_bytes()).is_ok());

        let cpu_b = SimCpu::open(b.path(), Some([1; 16]), true).unwrap();
        let forged = cpu_b.ereport(&app, &las.target_info(), &[1; 64]).unwrap();
        assert_eq!(las.check_report(&forged.to_bytes()), Err(ReportError::Mac));

        let other_target = las_enclave([2; 32]).target_info();
        let wrong = cpu_a.ereport(&app, &other_target, &[1; 64]).unwrap();
        assert_eq!(las.check_report(&wrong.to_bytes()), Err(ReportError::Mac));

        assert!(matches!(
            las.check_report(&r.to_bytes()[..431]),
            Err(ReportError::Length { actual: 431, .. })
        ));
    }

    #[test]
    fn missing_secret_is_not_created_when_not_allowed() {
        let d = tempfile::tempdir().unwrap();
        let e = SimCpu::open(d.path(), None, false).unwrap_err().to_string();
        assert!(e.contains("las serve"), "{e}");
        assert!(!d.path().join(SECRET_FILE).exists());
    }

    #[test]
    fn cpusvn_from_microcode() {
        let s = "processor\t: 0\nmicrocode\t: 0xf0\n";
        let svn = cpusvn_from_cpuinfo(s).unwrap();
        assert_eq!(svn[0], 0xf0);
        assert!(cpusvn_from_cpuinfo("processor: 0\n").is_none());
    }

    #[test]
    fn stale_temp_files_are_removed_and_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(format!("{TMP_PREFIX}crashed"));
        fs::write(&stale, b"partial").unwrap();
        // Another process's secret on its way to the final name: locked by its creator.
        let live = d.path().join(format!("{TMP_PREFIX}live"));
        fs::write(&live, [7u8; 32]).unwrap();
        let holder = File::open(&live).unwrap();
        holder.lock().unwrap();
        load_or_create_secret(d.path()).unwrap();
        assert!(!stale.exists());
        assert!(live.exists(), "a locked temp file is not removed");
        drop(holder);
        load_or_create_secret(d.path()).unwrap();
        assert!(!live.exists(), "removed once its creator is gone");
    }

    #[test]
    fn created_folders_are_0700_and_existing_ones_checked() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("a/b/state");
        load_or_create_secret(&state).unwrap();
        for p in [d.path().join("a"), d.path().join("a/b"), state.clone()] {
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
        }

        fs::set_permissions(&state, fs::Permissions::from_mode(0o770)).unwrap();
        let e = load_or_create_secret(&state).unwrap_err().to_string();
        assert!(e.contains("chmod 700") && e.contains("0770"), "{e}");
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();

        let link = d.path().join("link");
        std::os::unix::fs::symlink(&state, &link).unwrap();
        let e = load_or_create_secret(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link") && e.contains("readlink"), "{e}");
        let e = SimCpu::open(&link, None, false).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");

        let file = d.path().join("file");
        fs::write(&file, b"x").unwrap();
        let e = load_or_create_secret(&file).unwrap_err().to_string();
        assert!(e.contains("not a folder"), "{e}");
    }

    #[test]
    fn folder_of_another_user_is_refused() {
        if current_uid() != 0 {
            // Making a folder owned by another user needs root; CI runs as root.
            eprintln!("SKIPPED: needs root (chown)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state");
        fs::DirBuilder::new().mode(0o700).create(&state).unwrap();
        std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
        let e = load_or_create_secret(&state).unwrap_err().to_string();
        assert!(
            e.contains("owned by uid 65534") && e.contains("chown 0"),
            "{e}"
        );
        assert_eq!(fs::read_dir(&state).unwrap().count(), 0, "nothing created");
    }

    #[test]
    fn secret_through_a_symlink_or_of_another_user_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let victim_dir = tempfile::tempdir().unwrap();
        // Another user's file of the right size and mode, reached through a link.
        let victim = victim_dir.path().join("their-secret");
        fs::write(&victim, [5u8; 32]).unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
        let path = d.path().join(SECRET_FILE);
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = load_or_create_secret(d.path()).unwrap_err();
        assert!(matches!(e, StateError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(
            fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&victim).unwrap(), [5u8; 32], "victim untouched");
        let e = SimCpu::open(d.path(), None, false).unwrap_err();
        assert!(matches!(e, StateError::Symlink { .. }), "{e}");

        // A dangling link is refused too, not followed to create a file elsewhere.
        fs::remove_file(&path).unwrap();
        let target = victim_dir.path().join("created-through-link");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = load_or_create_secret(d.path()).unwrap_err();
        assert!(matches!(e, StateError::Symlink { .. }), "{e}");
        assert!(!target.exists(), "nothing created through the link");
        fs::remove_file(&path).unwrap();

        // A FIFO does not hang the start.
        let fifo = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(fifo.success());
        let e = load_or_create_secret(d.path()).unwrap_err();
        assert!(matches!(e, StateError::NotAFile { .. }), "{e}");
        fs::remove_file(&path).unwrap();

        if current_uid() == 0 {
            fs::write(&path, [5u8; 32]).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
            let e = load_or_create_secret(d.path()).unwrap_err();
            assert!(
                matches!(
                    e,
                    StateError::Owner {
                        owner: 65534,
                        uid: 0,
                        ..
                    }
                ),
                "{e}"
            );
            assert!(e.to_string().contains("chown 0"), "{e}");
            let meta = fs::metadata(&path).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o600));
        } else {
            eprintln!("SKIPPED the other-owner case: needs root (chown)");
        }
    }

    #[test]
    fn threads_creating_at_once_share_one_secret() {
        for _ in 0..20 {
            let d = tempfile::tempdir().unwrap();
            let state = d.path().join("state");
            let ids: Vec<_> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| load_or_create_secret(&state).unwrap()))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let created = ids.iter().filter(|(_, c)| *c).count();
            assert_eq!(created, 1, "exactly one creator");
            let on_disk = read_secret(&state.join(SECRET_FILE)).unwrap();
            let id = |root: &RootSecret| {
                let seal = egetkey::mrenclave_seal_key(root, &[1; 16], &las_enclave([1; 32]));
                PlatformIdentity::from_seal_key(&seal).platform_id()
            };
            let want = id(&on_disk);
            for (root, _) in &ids {
                assert_eq!(id(root), want, "every opener uses the secret on disk");
            }
            let names: Vec<_> = fs::read_dir(&state)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, [SECRET_FILE], "no temp file left");
        }
    }

    #[test]
    fn report_with_another_cpusvn_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let las = SimPlatform::open(&cfg(a.path(), [1; 16], 1)).unwrap();
        let app = EnclaveIdentity {
            mrenclave: [9; 32],
            ..EnclaveIdentity::default()
        };
        let good = las
            .cpu()
            .ereport(&app, &las.target_info(), &[1; 64])
            .unwrap();
        assert!(las.check_report(&good.to_bytes()).is_ok());
        // The platform's own report key, a body claiming another CPUSVN: the MAC checks,
        // but no CPU at CPUSVN [1; 16] writes [2; 16] into a REPORT.
        let mut body = good.body.clone();
        body.cpusvn = [2; 16];
        let key = egetkey::report_key(&las.cpu().root, &[1; 16], &las.target_info(), &good.key_id);
        let forged = Report {
            mac: key.cmac(&body.to_bytes()),
            body,
            key_id: good.key_id,
        };
        assert_eq!(
            las.check_report(&forged.to_bytes()),
            Err(ReportError::Cpusvn {
                report: [2; 16],
                platform: [1; 16]
            })
        );
        let msg = las
            .check_report(&forged.to_bytes())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("CPUSVN 0202"), "{msg}");
    }
}

//! The state folder and the root secret in it: created 0700 and owner-only, checked on
//! the opened descriptor, created once and atomically (see [`load_or_create_secret`]).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use las_core::egetkey::{ROOT_SECRET_SIZE, RootSecret};
use zeroize::Zeroizing;

/// File name of the root secret inside the state folder.
pub const SECRET_FILE: &str = "platform-secret";
pub(super) const TMP_PREFIX: &str = ".platform-secret.tmp-";

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
    /// No randomness (getrandom's error code; not a `source`, since getrandom implements
    /// `std::error::Error` only with its `std` feature).
    #[error("no randomness from the OS: {0}")]
    Random(getrandom::Error),
}

pub use las_state::current_uid;

/// A refusal of the shared state checks (las-state) as this platform's error: the
/// secret's refusals keep their platform-specific advice (a removed secret is a NEW
/// platform ID), the folder's are `Dir`.
fn secret_refused(e: las_state::Refusal) -> StateError {
    use las_state::Refusal as R;
    match e {
        R::Symlink { path } => StateError::Symlink { path },
        R::NotRegular { path } | R::NotAFolder { path } => StateError::NotAFile { path },
        R::Owner { path, owner, uid } => StateError::Owner { path, owner, uid },
        R::FileMode { path, mode } | R::FolderMode { path, mode } => {
            StateError::Permissions { path, mode }
        }
        R::Io { path, source } => StateError::Read { path, source },
        other => StateError::Read {
            path: other.path().to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

fn dir_refused(e: las_state::Refusal) -> StateError {
    let path = e.path().to_path_buf();
    let reason = match &e {
        las_state::Refusal::Symlink { .. } => format!(
            "is a symbolic link: the LAS does not follow a link to its state folder; give the real folder as --state-dir (see `readlink -f {}`)",
            path.display()
        ),
        las_state::Refusal::Io { source, .. } => source.to_string(),
        las_state::Refusal::Create { source, .. } => format!("cannot create it: {source}"),
        other => other.to_string(),
    };
    StateError::Dir { path, reason }
}

/// Creates the state folder (mode 0700, missing parents too) when there is none, then
/// checks it with [`check_dir`].
pub fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    las_state::ensure_dir(dir).map_err(dir_refused)
}

/// Checks an existing state folder (las-state's rules, on the opened folder): a real
/// folder (the last component is not followed when it is a symlink), owned by the user
/// the LAS runs as, writable by nobody else (or another user could replace the secret).
pub fn check_dir(dir: &Path) -> Result<(), StateError> {
    las_state::check_dir(dir).map_err(dir_refused)
}

/// Reads and checks an existing secret: las-state's rules (a regular file reached without
/// following a symlink and without blocking, owned by the user the LAS runs as,
/// owner-only, checked on the opened descriptor), and exactly 32 bytes.
pub fn read_secret(path: &Path) -> Result<RootSecret, StateError> {
    let read_err = |source| StateError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = las_state::open_secret(path).map_err(secret_refused)?;
    let meta = f.metadata().map_err(read_err)?;
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
        getrandom::getrandom(secret.as_mut()).map_err(StateError::Random)?;
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

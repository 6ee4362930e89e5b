//! # las-state: the state folders and secret files of our servers
//!
//! The LAS daemon (its platform secret, `las-platform`) and the verification service (its
//! EAR signing key and nonce key, `las-verifier-service`) keep secrets in a state folder.
//! Whoever can replace such a file, or the folder it is in, chooses the server's keys. The
//! rules are here, once, for both:
//!
//! - a state folder is a real folder (a symlink as its last component is refused), owned
//!   by the effective uid of the process and writable by nobody else; created 0700;
//! - a secret file is opened with `O_NOFOLLOW` (a symlink is refused) and `O_NONBLOCK` (a
//!   FIFO or device planted at the name is refused at once instead of hanging the start),
//!   then checked on the opened descriptor (`fstat`, so the file checked is the file read):
//!   a regular file, owned by the effective uid, no group or other permission bits.
//!
//! ```text
//!  ensure_dir(dir) ─► mkdir 0700 (if missing) ─► open O_DIRECTORY|O_NOFOLLOW ─► fstat: owner, mode
//!  open_secret(path) ─► open O_NOFOLLOW|O_NONBLOCK ─► fstat: regular, owner, mode ─► File
//! ```
//!
//! Each refusal is a [`Refusal`] whose message says what to do about it.
//!
//! ```
//! use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
//! use las_state::{Refusal, ensure_dir, open_secret};
//!
//! let tmp = tempfile::tempdir()?;
//! let dir = tmp.path().join("state");
//! ensure_dir(&dir)?; // created 0700
//! assert_eq!(std::fs::metadata(&dir)?.permissions().mode() & 0o777, 0o700);
//! let secret = dir.join("secret");
//! std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&secret)?;
//! open_secret(&secret)?; // a 0600 regular file of ours: read
//! // Readable by the group: refused, with what to do about it.
//! std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640))?;
//! assert!(matches!(open_secret(&secret), Err(Refusal::FileMode { .. })));
//! // A symlink planted at the name: refused, never followed.
//! let link = dir.join("link");
//! std::os::unix::fs::symlink(&secret, &link)?;
//! assert!(matches!(open_secret(&link), Err(Refusal::Symlink { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

/// The effective user ID of this process: the only user that may own the state.
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Why a state folder or a secret file is refused. The messages name the path and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The name is a symbolic link: whoever controls its target chooses the contents.
    #[error(
        "{path} is a symbolic link, which is not followed: give the real path (see `readlink -f {}`), or replace the link by the file itself if that file is yours and owner-only",
        path.display()
    )]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// A secret that is not a regular file (a FIFO, a device, a folder, a socket).
    #[error("{} is not a regular file: remove it (a new one is created) or restore the real file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// A state path that is not a folder.
    #[error("{} exists and is not a folder", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// Owned by another user, who can read or replace it.
    #[error(
        "{path} is owned by uid {owner}, not by uid {uid} that runs this server: that user may know or choose its keys. If nobody else could have read or written it, fix it with `chown {uid} {path}`; otherwise remove it",
        path = path.display()
    )]
    Owner {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        uid: u32,
    },
    /// A secret readable or writable by group or others.
    #[error(
        "{path} has mode {mode:04o}: it must be accessible by its owner only. If nobody else could have read it, fix it with `chmod 600 {path}`; otherwise treat the key as compromised and remove the file",
        path = path.display()
    )]
    FileMode {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A state folder that group or others may write to (and so replace a secret in).
    #[error(
        "{path} has mode {mode:04o}: group or others may replace the secrets in it; fix it with `chmod 700 {path}`",
        path = path.display()
    )]
    FolderMode {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The state folder could not be created.
    #[error("{}: cannot create it: {source}", path.display())]
    Create {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The path could not be opened or examined.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Refusal {
    /// The path refused.
    pub fn path(&self) -> &Path {
        match self {
            Refusal::Symlink { path }
            | Refusal::NotRegular { path }
            | Refusal::NotAFolder { path }
            | Refusal::Owner { path, .. }
            | Refusal::FileMode { path, .. }
            | Refusal::FolderMode { path, .. }
            | Refusal::Create { path, .. }
            | Refusal::Io { path, .. } => path,
        }
    }

    /// Whether the file does not exist (so it may be created).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Refusal::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

fn io(path: &Path, source: std::io::Error) -> Refusal {
    Refusal::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens `path` without following a symlink at its last component and without blocking:
/// a file for reading, a folder (`DIRECTORY`) as a path only (`O_PATH`: enough for fstat,
/// and needs no read permission on the folder, as a stat would not).
fn open_nofollow(path: &Path, extra: OFlags) -> Result<File, Refusal> {
    let base = if extra.contains(OFlags::DIRECTORY) {
        OFlags::PATH
    } else {
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY
    };
    let flags = base | OFlags::NOFOLLOW | OFlags::CLOEXEC | extra;
    match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => Ok(File::from(fd)),
        Err(rustix::io::Errno::LOOP) => Err(Refusal::Symlink {
            path: path.to_path_buf(),
        }),
        Err(rustix::io::Errno::NOTDIR) if extra.contains(OFlags::DIRECTORY) => {
            // O_NOFOLLOW|O_DIRECTORY on a symlink gives ENOTDIR on some kernels.
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => Err(Refusal::Symlink {
                    path: path.to_path_buf(),
                }),
                _ => Err(Refusal::NotAFolder {
                    path: path.to_path_buf(),
                }),
            }
        }
        Err(e) => Err(io(path, e.into())),
    }
}

/// Opens the secret file `path` for reading and checks it on the opened descriptor: a
/// regular file reached without following a symlink, owned by the effective uid, without
/// group or other permission bits. A FIFO or device is refused at once (never blocks).
pub fn open_secret(path: &Path) -> Result<File, Refusal> {
    let f = open_nofollow(path, OFlags::empty())?;
    let meta = f.metadata().map_err(|e| io(path, e))?;
    if !meta.is_file() {
        return Err(Refusal::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let uid = current_uid();
    if meta.uid() != uid {
        return Err(Refusal::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Refusal::FileMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(f)
}

/// Checks an existing state folder on its opened descriptor: a real folder (the last
/// component is not followed), owned by the effective uid, writable by nobody else.
pub fn check_dir(dir: &Path) -> Result<(), Refusal> {
    let d = open_nofollow(dir, OFlags::DIRECTORY)?;
    let meta = d.metadata().map_err(|e| io(dir, e))?;
    if !meta.is_dir() {
        return Err(Refusal::NotAFolder {
            path: dir.to_path_buf(),
        });
    }
    let uid = current_uid();
    if meta.uid() != uid {
        return Err(Refusal::Owner {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Refusal::FolderMode {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Creates the state folder (mode 0700, missing parents too) when there is none, then
/// checks it with [`check_dir`].
pub fn ensure_dir(dir: &Path) -> Result<(), Refusal> {
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        // mkdir does not follow a link planted at the last component (EEXIST); a folder a
        // racing process created is fine and is checked below like any existing one.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| Refusal::Create {
                path: dir.to_path_buf(),
                source,
            })?,
        Err(e) => return Err(io(dir, e)),
    }
    check_dir(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn secrets_are_checked_on_the_descriptor_and_never_block() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, b"k").unwrap();
        chmod(&key, 0o600);
        open_secret(&key).unwrap();
        chmod(&key, 0o640);
        assert!(matches!(
            open_secret(&key),
            Err(Refusal::FileMode { mode: 0o640, .. })
        ));
        chmod(&key, 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        assert!(matches!(open_secret(&link), Err(Refusal::Symlink { .. })));
        // A FIFO: refused at once, not opened for a writer that never comes.
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let t = Instant::now();
        let e = open_secret(&fifo).unwrap_err();
        assert!(matches!(e, Refusal::NotRegular { .. }), "{e}");
        assert!(
            e.to_string().contains("not a regular file: remove it"),
            "{e}"
        );
        // A blocking open would never return: any bound shows it did not block, and a
        // generous one keeps a loaded CI machine from failing the test.
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(
            open_secret(&dir.path().join("absent"))
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn folders_are_owner_only_and_not_links() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b/state");
        ensure_dir(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        chmod(&state, 0o777);
        let e = check_dir(&state).unwrap_err();
        assert!(e.to_string().contains("chmod 700"), "{e}");
        chmod(&state, 0o755);
        check_dir(&state).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&state, &link).unwrap();
        assert!(matches!(check_dir(&link), Err(Refusal::Symlink { .. })));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(check_dir(&file), Err(Refusal::NotAFolder { .. })));
    }
}

//! The service's two secrets in its state folder, created once and never regenerated:
//!
//! - `ear-signing-key.pem`: the ES256 (P-256) key that signs EAR tokens, PKCS#8 PEM (so
//!   `openssl pkey` and a Kubernetes Secret can carry it);
//! - `nonce-key`: 32 random bytes (hex) keying the HMAC of the nonces, so replicas that
//!   share this file accept each other's nonces.
//!
//! Creation: a `tempfile` in the same folder (mode 0600), written and synced, then
//! hard-linked to its name without clobbering (`persist_noclobber`): two replicas starting
//! at once end up with the same key, never a torn or replaced one. Reading refuses a
//! symlink (`O_NOFOLLOW`), anything but a regular file, and a file the group or others
//! may read or write.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use zeroize::Zeroizing;

/// File name of the EAR signing key in the state folder.
pub const SIGNING_KEY_FILE: &str = "ear-signing-key.pem";
/// File name of the nonce HMAC key in the state folder.
pub const NONCE_KEY_FILE: &str = "nonce-key";

/// Largest key file read.
const MAX_KEY_FILE: u64 = 4096;

/// A key file could not be created or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// I/O on the state folder or a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file is a symlink (refused: it could point at another secret).
    #[error("{0}: is a symlink; the key must be a regular file in the state folder")]
    Symlink(PathBuf),
    /// The key file is not a regular file.
    #[error("{0}: is not a regular file")]
    NotRegular(PathBuf),
    /// The key file's group or other permission bits are set.
    #[error(
        "{path}: mode {mode:o} lets the group or others access the key; run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file's contents are not a key of the expected kind.
    #[error("{path}: {detail}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// No random bytes.
    #[error("no randomness from the OS: {0}")]
    Random(getrandom::Error),
}

/// The service's secrets.
pub struct StateKeys {
    /// Signs EAR tokens (ES256).
    pub signing: SigningKey,
    /// Keys the nonce MAC.
    pub nonce_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for StateKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKeys { .. }")
    }
}

impl StateKeys {
    /// Reads both keys from `dir`, creating each that does not exist yet (and `dir`).
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        std::fs::create_dir_all(dir).map_err(|source| KeyError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let sk_path = dir.join(SIGNING_KEY_FILE);
        let pem = load_or_create(&sk_path, || {
            let mut seed = Zeroizing::new([0u8; 32]);
            loop {
                getrandom::getrandom(seed.as_mut_slice()).map_err(KeyError::Random)?;
                if let Ok(k) = p256::SecretKey::from_slice(seed.as_slice()) {
                    let pem = k
                        .to_pkcs8_pem(LineEnding::LF)
                        .map_err(|e| KeyError::Malformed {
                            path: sk_path.clone(),
                            detail: format!("cannot encode the new key: {e}"),
                        })?;
                    return Ok(Zeroizing::new(pem.as_bytes().to_vec()));
                }
            }
        })?;
        let text = std::str::from_utf8(&pem).map_err(|_| KeyError::Malformed {
            path: sk_path.clone(),
            detail: "not PEM text".into(),
        })?;
        let signing = SigningKey::from_pkcs8_pem(text).map_err(|e| KeyError::Malformed {
            path: sk_path.clone(),
            detail: format!("not a PKCS#8 P-256 private key: {e}"),
        })?;

        let nk_path = dir.join(NONCE_KEY_FILE);
        let hexkey = load_or_create(&nk_path, || {
            let mut k = Zeroizing::new([0u8; 32]);
            getrandom::getrandom(k.as_mut_slice()).map_err(KeyError::Random)?;
            let mut s = Zeroizing::new(hex::encode(k.as_slice()).into_bytes());
            s.push(b'\n');
            Ok(s)
        })?;
        let mut nonce_key = Zeroizing::new([0u8; 32]);
        let trimmed = std::str::from_utf8(&hexkey).map(str::trim).unwrap_or("");
        hex::decode_to_slice(trimmed, nonce_key.as_mut_slice()).map_err(|_| {
            KeyError::Malformed {
                path: nk_path.clone(),
                detail: "not 64 hex characters (32 bytes)".into(),
            }
        })?;
        Ok(Self { signing, nonce_key })
    }
}

/// Reads `path`, or creates it with `make()` when it does not exist (no clobbering: if
/// another process created it meanwhile, its contents win).
fn load_or_create(
    path: &Path,
    make: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, KeyError>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match read_secret(path) {
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let contents = make()?;
    // tempfile creates the file with O_EXCL and mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".key-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(&contents).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            tracing::info!(target: "las", "created {}", path.display());
            read_secret(path)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => read_secret(path),
        Err(e) => Err(io(e.error)),
    }
}

/// Reads a secret file: no symlink, a regular file, mode without group/other bits.
fn read_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                KeyError::Symlink(path.to_path_buf())
            } else {
                KeyError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    let meta = f.metadata().map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(KeyError::NotRegular(path.to_path_buf()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut out = Zeroizing::new(Vec::new());
    f.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut out)
        .map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if out.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::Malformed {
            path: path.to_path_buf(),
            detail: format!("larger than {MAX_KEY_FILE} bytes"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_0600_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let a = StateKeys::load_or_create(d.path()).unwrap();
        for f in [SIGNING_KEY_FILE, NONCE_KEY_FILE] {
            let m = std::fs::metadata(d.path().join(f)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        }
        let b = StateKeys::load_or_create(d.path()).unwrap();
        assert_eq!(a.signing.verifying_key(), b.signing.verifying_key());
        assert_eq!(*a.nonce_key, *b.nonce_key);
    }

    #[test]
    fn refuses_readable_symlinked_and_malformed_keys() {
        let d = tempfile::tempdir().unwrap();
        StateKeys::load_or_create(d.path()).unwrap();
        let sk = d.path().join(SIGNING_KEY_FILE);
        std::fs::set_permissions(&sk, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = StateKeys::load_or_create(d.path()).unwrap_err();
        assert!(matches!(e, KeyError::Permissions { .. }), "{e}");
        std::fs::set_permissions(&sk, std::fs::Permissions::from_mode(0o600)).unwrap();

        let d2 = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&sk, d2.path().join(SIGNING_KEY_FILE)).unwrap();
        let e = StateKeys::load_or_create(d2.path()).unwrap_err();
        assert!(matches!(e, KeyError::Symlink(_)), "{e}");

        std::fs::write(d.path().join(NONCE_KEY_FILE), "zz\n").unwrap();
        let e = StateKeys::load_or_create(d.path()).unwrap_err();
        assert!(e.to_string().contains("64 hex"), "{e}");
    }
}

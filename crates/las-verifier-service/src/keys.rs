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
use std::os::unix::fs::MetadataExt;
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
    /// The state folder or a key file in it breaks the state rules (a symlink, not a
    /// regular file, another user's, group or others may access it).
    #[error("state: {0}")]
    State(#[from] las_state::Refusal),
    /// A file to import is not a regular file.
    #[error("{0}: is not a regular file")]
    NotRegular(PathBuf),
    /// A file to import lets the group write or others access it.
    #[error(
        "{path}: mode {mode:o} lets the group or others access the key; run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is larger than a key file can be.
    #[error("{path}: larger than {MAX_KEY_FILE} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not text.
    #[error("{path}: not PEM text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a P-256 private key in PKCS#8 or SEC1 PEM (the PKCS#8 reader's
    /// error is the source).
    #[error("{path}: not a P-256 private key in PKCS#8 or SEC1 PEM ({source})")]
    NotP256 {
        /// The file.
        path: PathBuf,
        /// Why the PKCS#8 reader refused it.
        source: p256::pkcs8::Error,
    },
    /// The nonce key file is not 64 hex characters.
    #[error("{path}: not 64 hex characters (32 bytes)")]
    NotHexKey {
        /// The file.
        path: PathBuf,
        /// The hex decoder's error.
        source: hex::FromHexError,
    },
    /// A new key could not be encoded as PEM.
    #[error("{path}: cannot encode the new key: {source}")]
    Encode {
        /// The file it was meant for.
        path: PathBuf,
        /// The encoder's error.
        source: p256::pkcs8::Error,
    },
    /// A new key could not be generated (rcgen).
    #[error("{path}: cannot generate a key: {source}")]
    Generate {
        /// The file it was meant for.
        path: PathBuf,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// The key already in the state folder differs from the one to import.
    #[error("{path}: differs from {}; remove it to import the new key", from.display())]
    Differs {
        /// The key file in the state folder.
        path: PathBuf,
        /// The file to import.
        from: PathBuf,
    },
    /// The one catch-all: a file that could not be created, for a reason the caller
    /// returns itself (the CA certificate, whose [`CaError`](crate::ca::CaError) is kept).
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
        las_state::ensure_dir(dir)?;
        let sk_path = dir.join(SIGNING_KEY_FILE);
        let pem = load_or_create(&sk_path, || {
            let mut seed = Zeroizing::new([0u8; 32]);
            loop {
                getrandom::getrandom(seed.as_mut_slice()).map_err(KeyError::Random)?;
                if let Ok(k) = p256::SecretKey::from_slice(seed.as_slice()) {
                    let pem =
                        k.to_pkcs8_pem(LineEnding::LF)
                            .map_err(|source| KeyError::Encode {
                                path: sk_path.clone(),
                                source,
                            })?;
                    return Ok(Zeroizing::new(pem.as_bytes().to_vec()));
                }
            }
        })?;
        let text = std::str::from_utf8(&pem).map_err(|_| KeyError::NotText {
            path: sk_path.clone(),
        })?;
        // PKCS#8 (what we write), or SEC1 `EC PRIVATE KEY` (what `openssl ecparam -genkey`
        // and Helm's `genPrivateKey "ecdsa"` write).
        let signing = match SigningKey::from_pkcs8_pem(text) {
            Ok(k) => k,
            Err(e) => p256::SecretKey::from_sec1_pem(text)
                .map(SigningKey::from)
                .map_err(|_| KeyError::NotP256 {
                    path: sk_path.clone(),
                    source: e,
                })?,
        };

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
        hex::decode_to_slice(trimmed, nonce_key.as_mut_slice()).map_err(|source| {
            KeyError::NotHexKey {
                path: nk_path.clone(),
                source,
            }
        })?;
        Ok(Self { signing, nonce_key })
    }
}

/// Copies the key files from `from` (e.g. a mounted Kubernetes Secret, whose files are
/// symlinks into `..data` and group-readable with `fsGroup`) into `dir`, where
/// [`StateKeys::load_or_create`] then reads them. Symlinks are followed in `from` only,
/// the operator's choice; its files must be regular files without write bits for group
/// or others and without any bit for others. A key already in `dir` must equal the one
/// in `from` (a mismatch is an error, never an overwrite).
pub fn import(from: &Path, dir: &Path) -> Result<(), KeyError> {
    las_state::ensure_dir(dir)?;
    // The CA files are imported when the Secret has them (the chart's `verifier.ca`):
    // replicas that share the Secret then issue under the same CA.
    let ca = [crate::ca::CA_KEY_FILE, crate::ca::CA_CERT_FILE];
    let with_ca = from.join(crate::ca::CA_KEY_FILE).exists();
    for name in [SIGNING_KEY_FILE, NONCE_KEY_FILE]
        .into_iter()
        .chain(ca.into_iter().filter(|_| with_ca))
    {
        let src = from.join(name);
        let io = |source| KeyError::Io {
            path: src.clone(),
            source,
        };
        let meta = std::fs::metadata(&src).map_err(io)?;
        if !meta.is_file() {
            return Err(KeyError::NotRegular(src));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o027 != 0 {
            return Err(KeyError::Permissions { path: src, mode });
        }
        if meta.len() > MAX_KEY_FILE {
            return Err(KeyError::TooLarge { path: src });
        }
        let contents = Zeroizing::new(std::fs::read(&src).map_err(io)?);
        let dest = dir.join(name);
        let have = load_or_create(&dest, || Ok(contents.clone()))?;
        if !subtle_eq(&have, &contents) {
            return Err(KeyError::Differs {
                path: dest,
                from: src,
            });
        }
    }
    Ok(())
}

/// Reads a secret the operator names (e.g. `--ca-key` on a mounted Secret): symlinks are
/// followed (the operator's choice, as for [`import`]); it must be a regular file without
/// write bits for group or others and without any bit for others.
pub(crate) fn read_operator_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(KeyError::NotRegular(path.to_path_buf()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o027 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(Zeroizing::new(std::fs::read(path).map_err(io)?))
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Reads `path`, or creates it with `make()` when it does not exist (no clobbering: if
/// another process created it meanwhile, its contents win).
pub(crate) fn load_or_create(
    path: &Path,
    make: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, KeyError>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match read_secret(path) {
        Err(KeyError::State(r)) if r.is_not_found() => {}
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

/// Reads a secret file (las-state's rules: no symlink, no blocking, a regular file of
/// ours without group/other bits, checked on the descriptor), at most `MAX_KEY_FILE`.
fn read_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let f = las_state::open_secret(path)?;
    let mut out = Zeroizing::new(Vec::new());
    f.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut out)
        .map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if out.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
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
    fn imports_from_a_secret_mount_and_reads_sec1() {
        let secret = tempfile::tempdir().unwrap();
        let data = secret.path().join("..data");
        std::fs::create_dir(&data).unwrap();
        // What Helm's genPrivateKey "ecdsa" writes: SEC1 PEM.
        let k = p256::SecretKey::from_slice(&[9u8; 32]).unwrap();
        std::fs::write(
            data.join(SIGNING_KEY_FILE),
            k.to_sec1_pem(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        std::fs::write(data.join(NONCE_KEY_FILE), "ab".repeat(32)).unwrap();
        for f in [SIGNING_KEY_FILE, NONCE_KEY_FILE] {
            std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o440)).unwrap();
            std::os::unix::fs::symlink(format!("..data/{f}"), secret.path().join(f)).unwrap();
        }
        let state = tempfile::tempdir().unwrap();
        import(secret.path(), state.path()).unwrap();
        import(secret.path(), state.path()).unwrap();
        let keys = StateKeys::load_or_create(state.path()).unwrap();
        assert_eq!(keys.signing, SigningKey::from(k));
        assert_eq!(*keys.nonce_key, [0xab; 32]);
        // World-readable source: refused. A changed source: refused, not overwritten.
        std::fs::set_permissions(
            data.join(NONCE_KEY_FILE),
            std::fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        assert!(matches!(
            import(secret.path(), state.path()),
            Err(KeyError::Permissions { .. })
        ));
        std::fs::set_permissions(
            data.join(NONCE_KEY_FILE),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(data.join(NONCE_KEY_FILE), "cd".repeat(32)).unwrap();
        let e = import(secret.path(), state.path()).unwrap_err();
        assert!(e.to_string().contains("differs"), "{e}");
    }

    #[test]
    fn refuses_readable_symlinked_and_malformed_keys() {
        let d = tempfile::tempdir().unwrap();
        StateKeys::load_or_create(d.path()).unwrap();
        let sk = d.path().join(SIGNING_KEY_FILE);
        std::fs::set_permissions(&sk, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = StateKeys::load_or_create(d.path()).unwrap_err();
        assert!(
            matches!(e, KeyError::State(las_state::Refusal::FileMode { .. })),
            "{e}"
        );
        std::fs::set_permissions(&sk, std::fs::Permissions::from_mode(0o600)).unwrap();

        let d2 = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&sk, d2.path().join(SIGNING_KEY_FILE)).unwrap();
        let e = StateKeys::load_or_create(d2.path()).unwrap_err();
        assert!(
            matches!(e, KeyError::State(las_state::Refusal::Symlink { .. })),
            "{e}"
        );

        std::fs::write(d.path().join(NONCE_KEY_FILE), "zz\n").unwrap();
        let e = StateKeys::load_or_create(d.path()).unwrap_err();
        assert!(e.to_string().contains("64 hex"), "{e}");
    }
}

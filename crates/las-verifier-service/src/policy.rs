//! The policy file: what a loaded policy is, what makes one usable, and when a changed file
//! may replace the policy in force ([`Settle`]). The reload itself (swap, metrics,
//! /readyz) is `state`'s; this module depends on no other of the crate.
//!
//! A reload must never widen what the service accepts because it read a file that was
//! still being written. A policy cut before its last line `platforms: [ID1]` is a valid
//! policy that lists every platform: swapped in mid-write, it let an unlisted platform's
//! quote get `warning` for 2.5 s (issue 23). So:
//!
//! - a new file at the path (another inode: an editor's or `mv`'s atomic rename, a
//!   Kubernetes ConfigMap update, which swaps a symlink) is complete when it appears, and
//!   is taken at once;
//! - the same file rewritten in place is taken only once its bytes stayed the same for
//!   the settle time (`--policy-settle`), measured from the first poll that saw them;
//! - a policy with no services (or `mode: none`) is refused at start and on reload.
//!
//! The sessions a policy imports (`$$SCONE::NAME$$` platform entries, `S.yaml` beside
//! it) are part of it: they are read with it, their bytes go into its digest and id, and
//! the same rules hold for them (an imported session replaced by a new file is taken at
//! once, one rewritten in place once settled).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use las_verifier::Policy;
use las_verifier::policy::ImportedFile;
use sha2::{Digest, Sha256};

/// Largest policy file read (las-verifier refuses larger ones anyway).
const MAX_POLICY_FILE: u64 = 8 * 1024 * 1024;

/// The policy file could not be read, or the policy in it is not usable: at start
/// ([`StartError::Policy`](crate::StartError::Policy)) and on a reload (then logged, and
/// the policy in force is kept).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyLoadError {
    /// The file cannot be opened or read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// The path is not a regular file (a folder, a device).
    #[error("cannot read: not a regular file")]
    NotAFile,
    /// The file is larger than the service reads (its size so far).
    #[error("larger than {MAX_POLICY_FILE} bytes")]
    TooLarge(u64),
    /// A session the policy imports could not be read.
    #[error("imported session {}: {source}", path.display())]
    Imported {
        /// The session file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<PolicyLoadError>,
    },
    /// The policy does not parse or is not valid (las-verifier's error names field and
    /// line).
    #[error("malformed: {0}")]
    Malformed(#[source] las_verifier::policy::PolicyError),
    /// `security.attestation.mode: none`.
    #[error("security.attestation.mode is `none`: there is nothing to verify quotes against")]
    ModeNone,
    /// No `services`.
    #[error(
        "no services: every attestation would be refused as unknown-service; a policy needs at least one entry under `services`"
    )]
    NoServices,
}

/// The policy in force.
#[derive(Debug)]
pub(crate) struct LoadedPolicy {
    pub(crate) policy: Policy,
    /// `policy:sha256:<hex of the file>` (and of the sessions it imports, when it does:
    /// [`digest_of`]).
    pub(crate) id: String,
    pub(crate) digest: [u8; 32],
    /// The files it was read from (device, inode): the policy file, then each imported
    /// session.
    pub(crate) file: Vec<(u64, u64)>,
    pub(crate) loaded_at: u64,
    /// The imported session files read with it: a reload reads them too.
    pub(crate) imports: Vec<PathBuf>,
}

/// The digest of a policy and the sessions it imports: SHA-256 of the policy file alone
/// when it imports nothing, else also of each imported file (path and bytes), so that a
/// change of an imported session is a change of the policy.
fn digest_of(policy: &[u8], imports: &[ImportedFile]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(policy);
    for (p, b) in imports {
        h.update(b"\0las-import\0");
        h.update(p.as_os_str().as_encoded_bytes());
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    }
    h.finalize().into()
}

/// The policy file as read once: its bytes and which file they came from, with the
/// sessions the policy in force imports.
#[derive(Debug)]
pub(crate) struct PolicyFile {
    pub(crate) bytes: Vec<u8>,
    /// [`digest_of`] the policy file and the imported sessions read with it.
    pub(crate) digest: [u8; 32],
    /// (device, inode) of the files read (through any symlinks of the path): the policy
    /// file, then each imported session.
    pub(crate) file: Vec<(u64, u64)>,
    /// The policy file's folder, where the sessions it imports are read.
    pub(crate) dir: PathBuf,
}

/// Reads one file once: its bytes and the identity of the file they were read from come
/// from the same open file.
fn read_one(path: &Path) -> Result<(Vec<u8>, (u64, u64)), PolicyLoadError> {
    let f = std::fs::File::open(path).map_err(PolicyLoadError::Read)?;
    let meta = f.metadata().map_err(PolicyLoadError::Read)?;
    if !meta.is_file() {
        return Err(PolicyLoadError::NotAFile);
    }
    let mut bytes = Vec::new();
    f.take(MAX_POLICY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(PolicyLoadError::Read)?;
    if bytes.len() as u64 > MAX_POLICY_FILE {
        return Err(PolicyLoadError::TooLarge(bytes.len() as u64));
    }
    Ok((bytes, (meta.dev(), meta.ino())))
}

/// Reads `path` once, and each session in `imports` (those the policy in force imports):
/// a change of an imported session is a change of the policy.
pub(crate) fn read_policy_file(
    path: &Path,
    imports: &[PathBuf],
) -> Result<PolicyFile, PolicyLoadError> {
    let (bytes, id) = read_one(path)?;
    let mut file = vec![id];
    let mut read = Vec::with_capacity(imports.len());
    for p in imports {
        let (b, id) = read_one(p).map_err(|e| PolicyLoadError::Imported {
            path: p.clone(),
            source: Box::new(e),
        })?;
        file.push(id);
        read.push((p.clone(), b));
    }
    Ok(PolicyFile {
        digest: digest_of(&bytes, &read),
        bytes,
        file,
        dir: policy_dir(path),
    })
}

/// The folder of a policy file (`.` for a bare name).
fn policy_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Parses and checks a policy file: it must parse, its imports resolve, and be usable
/// (something to verify against: not `mode: none`, at least one service).
pub(crate) fn load(file: PolicyFile, now: u64) -> Result<LoadedPolicy, PolicyLoadError> {
    let (policy, imported) = Policy::from_yaml_with_imports(&file.bytes, &file.dir)
        .map_err(PolicyLoadError::Malformed)?;
    if policy.attestation().mode == las_verifier::policy::AttestationMode::None {
        return Err(PolicyLoadError::ModeNone);
    }
    if policy.services().is_empty() {
        return Err(PolicyLoadError::NoServices);
    }
    // The digest and identities of what was parsed: the imports were read while parsing
    // (the next poll reads them again; a change after this read is a change then).
    let digest = digest_of(&file.bytes, &imported);
    let mut ids = file.file;
    ids.truncate(1);
    for (p, _) in &imported {
        let meta = std::fs::metadata(p).map_err(|e| PolicyLoadError::Imported {
            path: p.clone(),
            source: Box::new(PolicyLoadError::Read(e)),
        })?;
        ids.push((meta.dev(), meta.ino()));
    }
    Ok(LoadedPolicy {
        policy,
        id: format!("policy:sha256:{}", hex::encode(digest)),
        digest,
        file: ids,
        loaded_at: now,
        imports: imported.into_iter().map(|(p, _)| p).collect(),
    })
}

/// [`read_policy_file`] then [`load`] (at start: no imports known yet).
pub(crate) fn load_policy(path: &Path, now: u64) -> Result<LoadedPolicy, PolicyLoadError> {
    load(read_policy_file(path, &[])?, now)
}

/// When a changed policy file may be taken (module docs): the bytes seen last on the file
/// in force, and since when.
#[derive(Debug)]
pub(crate) struct Settle {
    settle: Duration,
    pending: Option<([u8; 32], Instant)>,
}

/// What to do with a policy file just read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The policy in force: nothing to do.
    Same,
    /// Take it (it may still fail to load).
    Take,
    /// Rewritten in place and not settled yet: keep the policy in force; `for` more at
    /// least.
    Wait(Duration),
}

impl Settle {
    pub(crate) fn new(settle: Duration) -> Self {
        Self {
            settle,
            pending: None,
        }
    }

    /// Decides about `file`, read at `now`, while `current` is in force.
    pub(crate) fn decide(
        &mut self,
        current: &LoadedPolicy,
        file: &PolicyFile,
        now: Instant,
    ) -> Decision {
        if file.digest == current.digest && file.file == current.file {
            self.pending = None;
            return Decision::Same;
        }
        if file.file != current.file {
            // A new file (the policy or an imported session): complete when it appeared
            // (an atomic rename or a symlink swap).
            self.pending = None;
            return Decision::Take;
        }
        match self.pending {
            Some((digest, since)) if digest == file.digest => {
                let stable = now.saturating_duration_since(since);
                if stable >= self.settle {
                    self.pending = None;
                    Decision::Take
                } else {
                    Decision::Wait(self.settle.saturating_sub(stable))
                }
            }
            _ => {
                self.pending = Some((file.digest, now));
                if self.settle.is_zero() {
                    self.pending = None;
                    Decision::Take
                } else {
                    Decision::Wait(self.settle)
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = "version: \"0.3\"\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n";

    fn file(text: &str, ino: u64) -> PolicyFile {
        PolicyFile {
            bytes: text.as_bytes().to_vec(),
            digest: Sha256::digest(text.as_bytes()).into(),
            file: vec![(1, ino)],
            dir: PathBuf::from("."),
        }
    }

    /// An imported session (`$$SCONE::NAME$$`) is part of the policy: in its digest and
    /// id, and held to the same rules as the policy file (rewritten in place: taken once
    /// settled; replaced by a new file: at once).
    #[test]
    fn an_imported_session_is_held_to_the_same_rules() {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "las-settle-import-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir(&dir).unwrap();
        let policy = dir.join("app.yaml");
        std::fs::write(
            &policy,
            "name: app_session\nsecrets:\n  - name: p\n    import: {session: plat, secret: x}\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n    platforms: [$$SCONE::p$$]\n",
        )
        .unwrap();
        let exporting = |qe: &str| {
            format!(
                "name: plat\nsecrets:\n  - name: x\n    value: \"INTEL_QE_ID:{qe}\"\n    export: {{session: app_session}}\n"
            )
        };
        let plat = dir.join("plat.yaml");
        std::fs::write(&plat, exporting(&"11".repeat(16))).unwrap();
        let entry = |p: &LoadedPolicy| format!("{:?}", p.policy.services()[0].platforms);

        let current = load_policy(&policy, 0).unwrap();
        assert_eq!(current.imports, std::slice::from_ref(&plat));
        let alone: [u8; 32] = Sha256::digest(std::fs::read(&policy).unwrap()).into();
        assert_ne!(current.digest, alone, "the import is in the digest");
        let mut s = Settle::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let read = || read_policy_file(&policy, &current.imports).unwrap();
        assert_eq!(s.decide(&current, &read(), t0), Decision::Same);

        // Rewritten in place (same inode): only once its bytes stayed for the settle time.
        std::fs::write(&plat, exporting(&"22".repeat(16))).unwrap();
        assert!(matches!(s.decide(&current, &read(), t0), Decision::Wait(_)));
        let later = t0 + Duration::from_secs(6);
        assert_eq!(s.decide(&current, &read(), later), Decision::Take);
        let next = load(read(), 0).unwrap();
        assert!(entry(&next).contains(&"22".repeat(16)), "{}", entry(&next));
        assert_ne!(next.id, current.id);

        // Replaced by a new file (an editor's or a ConfigMap's rename): at once.
        let tmp = dir.join(".plat.tmp");
        std::fs::write(&tmp, exporting(&"33".repeat(16))).unwrap();
        std::fs::rename(&tmp, &plat).unwrap();
        let f = read_policy_file(&policy, &next.imports).unwrap();
        assert_eq!(s.decide(&next, &f, later), Decision::Take);
        assert!(entry(&load(f, 0).unwrap()).contains(&"33".repeat(16)));

        // An imported session that is gone: the read fails, naming it.
        std::fs::remove_file(&plat).unwrap();
        let e = read_policy_file(&policy, &next.imports).unwrap_err();
        assert!(
            matches!(&e, PolicyLoadError::Imported { path, source }
                if path.ends_with("plat.yaml") && matches!(**source, PolicyLoadError::Read(_))),
            "{e:?}"
        );
        assert!(e.to_string().contains("plat.yaml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_policy_without_services_is_refused() {
        let e = load(file("version: \"0.3\"\n", 1), 0).unwrap_err();
        assert!(matches!(e, PolicyLoadError::NoServices), "{e:?}");
        assert!(e.to_string().contains("no services"), "{e}");
        let e = load(file("services: [\n", 1), 0).unwrap_err();
        assert!(matches!(e, PolicyLoadError::Malformed(_)), "{e:?}");
        let e = load(
            file(
                "security:\n  attestation:\n    mode: none\nservices:\n  - name: a\n    attestation: {mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}\n",
                1,
            ),
            0,
        )
        .unwrap_err();
        assert!(matches!(e, PolicyLoadError::ModeNone), "{e:?}");
        load(file(GOOD, 1), 0).unwrap();
    }

    #[test]
    fn a_new_file_is_taken_at_once_an_edit_in_place_once_settled() {
        let current = load(file(GOOD, 1), 0).unwrap();
        let mut s = Settle::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(s.decide(&current, &file(GOOD, 1), t0), Decision::Same);
        // Another inode: at once.
        assert_eq!(s.decide(&current, &file("x", 2), t0), Decision::Take);
        // Same inode, new bytes: after 5 s of the same bytes; a change restarts the clock.
        let half = &GOOD[..40];
        let sec = Duration::from_secs(1);
        assert!(matches!(
            s.decide(&current, &file(half, 1), t0),
            Decision::Wait(_)
        ));
        assert!(matches!(
            s.decide(&current, &file(half, 1), t0 + 4 * sec),
            Decision::Wait(_)
        ));
        let edited = format!("{GOOD}# edited\n");
        assert!(matches!(
            s.decide(&current, &file(&edited, 1), t0 + 6 * sec),
            Decision::Wait(_)
        ));
        assert!(matches!(
            s.decide(&current, &file(&edited, 1), t0 + 10 * sec),
            Decision::Wait(_)
        ));
        assert_eq!(
            s.decide(&current, &file(&edited, 1), t0 + 11 * sec),
            Decision::Take
        );
    }
}

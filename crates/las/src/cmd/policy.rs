//! `las policy`: edit policy files. `set-platforms` writes collected platform IDs into a
//! service's `platforms:` list in place.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use las_verifier::policy::MAX_POLICY_SIZE;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Set a service's `platforms:` list in a policy file to the given platform IDs.
    ///
    /// Reads the IDs from --ids or from stdin, in any form `las platform-ids` prints (the
    /// `platforms: [ ID1, ID2]` line or its --output json), so that
    ///
    ///   las platform-ids --verify ... | las policy set-platforms --policy p.yaml --service app
    ///
    /// updates the policy. Only the lines of that one list change (or one line is added to
    /// the service); comments and every other field stay as they were. The result is checked
    /// by parsing it back before the file is replaced atomically (temp file + rename).
    /// Use `set -o pipefail` in scripts: an incomplete `las platform-ids` exits 1.
    ///
    /// Exit codes: 0 written (or already up to date), 2 error (nothing written).
    #[command(verbatim_doc_comment)]
    SetPlatforms(SetPlatformsArgs),
}

#[derive(Debug, Args)]
pub struct SetPlatformsArgs {
    /// The policy file to edit.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The service whose `platforms:` is set.
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// The platform IDs, e.g. "platforms: [ ID1, ID2]". Default: read from stdin.
    #[arg(long, value_name = "IDS")]
    pub ids: Option<String>,
    /// Print the edited policy to stdout instead of writing the file.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::SetPlatforms(a) => set_platforms(a),
    }
}

fn set_platforms(a: SetPlatformsArgs) -> anyhow::Result<ExitCode> {
    let input = match &a.ids {
        Some(s) => s.clone(),
        None => {
            let stdin = std::io::stdin();
            anyhow::ensure!(
                !stdin.is_terminal(),
                "no IDs: give --ids \"platforms: [ ID1, ID2]\" or pipe `las platform-ids` into this command"
            );
            let mut s = String::new();
            stdin
                .lock()
                .take(1024 * 1024)
                .read_to_string(&mut s)
                .context("cannot read the platform IDs from stdin")?;
            s
        }
    };
    let ids = las_discovery::parse_ids(&input)?;
    anyhow::ensure!(
        !ids.is_empty(),
        "no platform IDs in the input: an empty `platforms:` list would allow no platform; nothing written"
    );
    let path = &a.policy;
    // The policy is opened once and this descriptor is what gets replaced: see
    // `OpenedPolicy` for why the path is never resolved a second time.
    let opened = OpenedPolicy::open(path)?;
    let text = opened.read(path)?;
    let edit = las_discovery::set_platforms(&text, &a.service, &ids)
        .with_context(|| format!("cannot update {}", path.display()))?;

    if a.dry_run {
        out!("{}", edit.text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let what = format!("{}: services[{}].platforms", path.display(), a.service);
    if edit.text == text {
        note!(
            "{what} already lists these {} IDs; file unchanged",
            ids.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    opened.replace(path, edit.text.as_bytes())?;
    match &edit.before {
        Some(before) => {
            let added = ids.iter().filter(|i| !before.contains(i)).count();
            let removed = before.iter().filter(|b| !ids.contains(b)).count();
            note!(
                "{what}: {} IDs (added {added}, removed {removed})",
                ids.len()
            );
        }
        None => note!("{what}: {} IDs (the list is new)", ids.len()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The policy file as it was opened: the descriptor, and its device and inode.
///
/// `set-platforms` may run as root on a policy in a folder another user controls. Resolving
/// the path again after the (slow) parse let that user swap a link in between and have root
/// replace a file of their choice, handed to them by `fchown` (issue 23, finding 2). So the
/// path is resolved exactly once, by `open`; the folder that holds the opened file is found
/// from the descriptor, the temp file is created there (O_EXCL, O_NOFOLLOW), and before the
/// rename both the given path and the folder's entry must still name the same device and
/// inode. Anything else is refused with nothing written.
struct OpenedPolicy {
    file: std::fs::File,
    dev: u64,
    ino: u64,
    uid: u32,
    gid: u32,
    mode: u32,
}

impl OpenedPolicy {
    fn open(path: &Path) -> anyhow::Result<OpenedPolicy> {
        use rustix::fs::{Mode, OFlags};
        // Links in the given path are followed (a policy may be a link to the real file);
        // O_NONBLOCK: a FIFO planted as the policy is refused below instead of hanging.
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())
            .with_context(|| format!("cannot read policy {}", path.display()))?;
        let st = rustix::fs::fstat(&fd)
            .with_context(|| format!("cannot read policy {}", path.display()))?;
        anyhow::ensure!(
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile,
            "policy {} is not a regular file: nothing written",
            path.display()
        );
        let len = u64::try_from(st.st_size).unwrap_or(u64::MAX);
        anyhow::ensure!(
            len <= MAX_POLICY_SIZE as u64,
            "policy {} is {len} bytes, more than the {MAX_POLICY_SIZE} allowed",
            path.display()
        );
        Ok(OpenedPolicy {
            file: std::fs::File::from(fd),
            dev: st.st_dev,
            ino: st.st_ino,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o777,
        })
    }

    fn read(&self, path: &Path) -> anyhow::Result<String> {
        let mut text = String::new();
        (&self.file)
            .take(MAX_POLICY_SIZE as u64 + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read policy {} (UTF-8 text)", path.display()))?;
        anyhow::ensure!(
            text.len() <= MAX_POLICY_SIZE,
            "policy {} grew past the {MAX_POLICY_SIZE} bytes allowed while it was read",
            path.display()
        );
        Ok(text)
    }

    /// Whether `st` is the file that was opened.
    fn is(&self, st: &rustix::fs::Stat) -> bool {
        st.st_dev == self.dev && st.st_ino == self.ino
    }

    fn changed(path: &Path) -> anyhow::Error {
        anyhow::anyhow!(
            "policy {} changed while it was edited (the path now names another file, e.g. a \
             swapped link): nothing written; check who can write its folder and run again",
            path.display()
        )
    }

    /// Replaces the opened file with `bytes`: a temp file beside it with its owner and
    /// permissions, synced, then renamed over it. Readers see the old file or the new one.
    ///
    /// The new file gets the old one's owner and group; when the owner cannot be kept (not
    /// root, someone else's file) nothing is written, so an edit never hands a file to a
    /// user who did not own the one it replaces. When only the group cannot be kept, the
    /// group bits are dropped: the edit never lets more users read the policy than before.
    fn replace(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        use rustix::fs::{AtFlags, CWD, Mode, OFlags};
        use std::os::fd::AsFd;
        use std::os::unix::ffi::OsStrExt;

        // Where the opened file lives, from the descriptor (not from the path again).
        let real = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&self.file)
        ))
        .with_context(|| format!("cannot locate the opened policy {}", path.display()))?;
        let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
            return Err(Self::changed(path));
        };
        let dir_fd = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("cannot open the folder {}", dir.display()))?;
        let same_entry = |what: &str| -> anyhow::Result<()> {
            let in_dir = rustix::fs::statat(&dir_fd, name, AtFlags::SYMLINK_NOFOLLOW);
            let given = rustix::fs::statat(CWD, path, AtFlags::empty());
            match (in_dir, given) {
                (Ok(a), Ok(b)) if self.is(&a) && self.is(&b) => Ok(()),
                _ => Err(Self::changed(path).context(what.to_owned())),
            }
        };
        same_entry("before the temp file was made")?;

        // A fresh name beside the file; O_EXCL|O_NOFOLLOW: nothing planted is followed.
        let mut tmp = None;
        for _ in 0..16 {
            let mut candidate = b".".to_vec();
            candidate.extend_from_slice(name.as_bytes());
            candidate.extend_from_slice(format!(".{:016x}.las-tmp", random_u64()).as_bytes());
            let candidate: std::ffi::OsString =
                std::os::unix::ffi::OsStringExt::from_vec(candidate);
            match rustix::fs::openat(
                &dir_fd,
                &candidate,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => {
                    tmp = Some((candidate, std::fs::File::from(fd)));
                    break;
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a temp file in {}", dir.display())
                    });
                }
            }
        }
        let Some((tmp_name, mut tmp_file)) = tmp else {
            anyhow::bail!(
                "cannot create a temp file in {}: every name was taken",
                dir.display()
            );
        };
        let shown = dir.join(&tmp_name).display().to_string();
        let written = (|| -> anyhow::Result<()> {
            tmp_file
                .write_all(bytes)
                .with_context(|| format!("cannot write {shown}"))?;
            if rustix::fs::fchown(&tmp_file, Some(uid(self.uid)), Some(gid(self.gid))).is_err() {
                let _ = rustix::fs::fchown(&tmp_file, None, Some(gid(self.gid)));
            }
            let now = rustix::fs::fstat(tmp_file.as_fd())
                .with_context(|| format!("cannot stat {shown}"))?;
            anyhow::ensure!(
                now.st_uid == self.uid,
                "policy {} belongs to uid {}, and this user cannot give the new file that owner \
                 (run as that user or as root): nothing written",
                path.display(),
                self.uid
            );
            let mut mode = self.mode;
            if now.st_gid != self.gid {
                mode &= !0o070;
            }
            rustix::fs::fchmod(&tmp_file, Mode::from_raw_mode(mode))
                .with_context(|| format!("cannot set the mode of {shown}"))?;
            tmp_file
                .sync_all()
                .with_context(|| format!("cannot write {shown}"))?;
            same_entry("before the rename")?;
            rustix::fs::renameat(&dir_fd, &tmp_name, &dir_fd, name)
                .with_context(|| format!("cannot replace {}", path.display()))?;
            Ok(())
        })();
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&dir_fd, &tmp_name, AtFlags::empty());
        }
        written?;
        let _ = rustix::fs::fsync(&dir_fd);
        Ok(())
    }
}

fn uid(raw: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(raw)
}

fn gid(raw: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(raw)
}

/// A random number for temp names (std's hasher keys come from the OS's random source).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

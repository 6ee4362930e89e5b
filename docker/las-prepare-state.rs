//! `las-prepare-state DIR UID GID`: hands the LAS state directory on a node to the LAS's user.
//!
//! The Helm chart keeps the platform secret in a hostPath directory so that a restarted pod
//! keeps its platform ID. The kubelet creates that directory as root, and `fsGroup` does not
//! apply to hostPath volumes, so a non-root LAS could not write it. The chart runs this program
//! first, in an init container, as root with only the CHOWN, FOWNER and DAC_READ_SEARCH
//! capabilities; the LAS itself then runs without any.
//!
//! What it does, and no more: create DIR (mode 0700) if it is missing, refuse it if it is a
//! symlink or not a directory, give its direct entries to UID:GID without following symlinks
//! (a secret written by an earlier root-run LAS stays readable), and give DIR itself to
//! UID:GID with mode 0700. It never recurses and never touches DIR's parent, so a mistaken
//! hostPath such as `/var` cannot hand a system directory to the LAS user.
//!
//! Standalone on purpose (std only): scripts/build-image compiles it with plain `rustc`, and
//! it is no part of the Cargo workspace. Exit codes: 0 done, 1 failed, 2 bad arguments.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt, lchown};
use std::path::Path;
use std::process::ExitCode;

const DIR_MODE: u32 = 0o700;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (dir, uid, gid) = match args.as_slice() {
        [_, dir, uid, gid] => match (uid.parse::<u32>(), gid.parse::<u32>()) {
            (Ok(uid), Ok(gid)) => (dir.clone(), uid, gid),
            _ => return usage("UID and GID must be numbers"),
        },
        _ => return usage("expected 3 arguments"),
    };
    match prepare(Path::new(&dir), uid, gid) {
        Ok(changed) => {
            println!(
                "las-prepare-state: {dir} belongs to {uid}:{gid}, mode 0700 ({changed} entries changed owner)"
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("las-prepare-state: {dir}: {err}");
            ExitCode::from(1)
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("las-prepare-state: {why}\nusage: las-prepare-state DIR UID GID");
    ExitCode::from(2)
}

/// Returns how many entries (DIR included) changed owner.
fn prepare(dir: &Path, uid: u32, gid: u32) -> io::Result<usize> {
    match fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new().mode(DIR_MODE).create(dir)?;
        }
        Err(err) => return Err(err),
    }
    let meta = fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::other("is a symlink; refusing to follow it"));
    }
    if !meta.is_dir() {
        return Err(io::Error::other("exists and is not a directory"));
    }

    // Entries first: once DIR is 0700 and no longer root's, listing it needs DAC_READ_SEARCH.
    let mut changed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let m = entry.metadata()?; // does not follow symlinks
        if m.uid() != uid || m.gid() != gid {
            lchown(entry.path(), Some(uid), Some(gid))?;
            changed += 1;
        }
    }
    if meta.mode() & 0o7777 != DIR_MODE {
        // Still root's here (or FOWNER covers it): chmod before the chown.
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
    }
    if meta.uid() != uid || meta.gid() != gid {
        lchown(dir, Some(uid), Some(gid))?;
        changed += 1;
    }
    Ok(changed)
}

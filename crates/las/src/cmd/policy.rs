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
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read policy {}", path.display()))?;
    anyhow::ensure!(
        meta.len() <= MAX_POLICY_SIZE as u64,
        "policy {} is {} bytes, more than the {MAX_POLICY_SIZE} allowed",
        path.display(),
        meta.len()
    );
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read policy {} (UTF-8 text)", path.display()))?;
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
    // Through a symlink, replace the file it points to, not the link.
    let real = std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    write_atomically(&real, edit.text.as_bytes(), &meta)?;
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

/// Writes `bytes` to a temp file beside `path` with `path`'s permissions, syncs it and
/// renames it over `path`: readers see the old file or the new one, never a mix.
///
/// The temp file is a `tempfile` (random name, O_EXCL, created 0600), so a link or file
/// planted in a shared folder is never followed, truncated or left with our text; the
/// rename replaces the directory entry `path` and never writes through a link there. The
/// new file gets the old one's owner and group where this user may set them (root), and
/// its permission bits, except group bits when the group could not be kept: the edit
/// never lets more users read the policy than before.
fn write_atomically(path: &Path, bytes: &[u8], meta: &std::fs::Metadata) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "policy".into());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".las-tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    let tmp_name = tmp.path().display().to_string();
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {tmp_name}"))?;
    let file = tmp.as_file();
    if std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())).is_err() {
        let _ = std::os::unix::fs::fchown(file, None, Some(meta.gid()));
    }
    let now = file
        .metadata()
        .with_context(|| format!("cannot stat {tmp_name}"))?;
    let mut mode = meta.mode() & 0o777;
    if now.gid() != meta.gid() {
        mode &= !0o070;
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {tmp_name}"))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

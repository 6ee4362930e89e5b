//! One module per subcommand, each with its own arguments where they are its alone.
//! Nothing here reads `crate::cli`: the CLI definition uses these modules, and `main`
//! dispatches, so the arrows run one way (main -> cli -> cmd).

pub mod attest;
mod collateral;
mod ear;
pub mod lasd;
pub mod platform_ids;
pub mod policy;
pub mod quote;
pub mod tcb_state;
pub mod verifier;
pub mod verify;
pub mod wait_ready;

/// `--las ADDR`: the LAS as SCONE applications find it (`SCONE_LAS_ADDR`), declared once
/// for every command that talks to the local LAS (`las quote`, `las attest`,
/// `las wait-ready`).
#[derive(Debug, clap::Args)]
pub struct LocalLas {
    /// The LAS: `host` or `host:port` (port 18766 by default).
    #[arg(
        id = "las",
        long = "las",
        env = "SCONE_LAS_ADDR",
        default_value = "localhost",
        value_name = "ADDR"
    )]
    pub addr: String,
}

impl LocalLas {
    /// The address, parsed.
    pub fn parse(&self) -> anyhow::Result<las_client::LasAddr> {
        Ok(las_client::LasAddr::parse(&self.addr)?)
    }
}

use std::process::ExitCode;

/// One man page per command and subcommand (`las.1`, `las-platform-ids.1`, ...). Each file
/// is written to a temporary file in DIR and renamed into place, so a symlink planted at a
/// page's name is replaced, never followed.
pub fn man(mut cmd: clap::Command, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    cmd.build();
    let mut pages = Vec::new();
    collect_pages(&cmd, "las", &mut pages);
    for (name, page) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(page)
            .title(name.to_uppercase())
            .render(&mut buf)
            .with_context(|| format!("cannot render {name}.1"))?;
        let path = dir.join(format!("{name}.1"));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        std::io::Write::write_all(&mut tmp, &buf)
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        tmp.persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", path.display()))?;
        outln!("{}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn collect_pages(cmd: &clap::Command, name: &str, out: &mut Vec<(String, clap::Command)>) {
    out.push((name.to_owned(), cmd.clone()));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        collect_pages(sub, &format!("{name}-{}", sub.get_name()), out);
    }
}

/// Writes an output file (`-o FILE` of `las quote` and `las attest`): a random-named temp
/// file in the same folder (O_EXCL), synced, then renamed over `path`. A symlink or file
/// planted at `path` is replaced, never followed or written through. Quotes and EARs are
/// public: the file is 0644.
pub(crate) fn write_output(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_output_mode(path, bytes, 0o644)
}

/// [`write_output`] for a private key: mode 0600 from creation (tempfile), renamed over
/// `path` (a link there is replaced, never followed).
pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_output_mode(path, bytes, 0o600)
}

fn write_output_mode(path: &std::path::Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".las-out.")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
        })
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

//! One module per subcommand.

pub mod attest;
mod ear;
pub mod lasd;
pub mod platform_ids;
pub mod policy;
mod quote;
pub mod tcb_state;
pub mod verifier;
mod verify;
pub mod wait_ready;

use std::process::ExitCode;

use crate::cli::Command;

/// Runs `cmd`; `global` are the global options to hand on to `lasd`.
pub fn run(cmd: Command, global: &[std::ffi::OsString]) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Serve(a) => lasd::exec(global, &a.args),
        Command::Id(a) => {
            // After `id`: lasd's serve options (and options before `id`) conflict with it.
            let mut args = vec![std::ffi::OsString::from("id")];
            args.extend(global.iter().cloned());
            args.extend(a.args);
            lasd::exec(&[], &args)
        }
        Command::Quote(a) => quote::run(a),
        Command::Verify(a) => verify::run(a),
        Command::PlatformIds(a) => platform_ids::run(a),
        Command::Policy(c) => policy::run(c),
        Command::TcbState(a) => tcb_state::run(a),
        Command::Completion { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics on a failed write (a closed pipe).
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "las", &mut buf);
            out!("{}", String::from_utf8_lossy(&buf))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => man(&dir),
        Command::WaitReady(a) => wait_ready::run(a),
        Command::Verifier(c) => verifier::run(c),
        Command::Attest(a) => attest::run(a),
    }
}

/// One man page per command and subcommand (`las.1`, `las-platform-ids.1`, ...). Each file
/// is written to a temporary file in DIR and renamed into place, so a symlink planted at a
/// page's name is replaced, never followed.
fn man(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
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
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

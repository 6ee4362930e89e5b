//! The daemon under test: a real `lasd serve` (or `las serve`) process (pinned to one
//! core with `taskset`), its readiness, its memory, and the machine it runs on.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use las_testkit::daemon::Process;
use las_testkit::http;
pub use las_testkit::procfs::{CpuTime, Memory};

/// A running daemon (`lasd serve`) (the test kit's launcher: stderr collected by a thread); killed
/// when dropped.
#[derive(Debug)]
pub struct Daemon {
    process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// How the daemon is started.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The daemon executable: `lasd`, or `las` (whose `serve` executes the `lasd` beside it).
    pub las: PathBuf,
    /// Its state folder (holds the simulated platform secret).
    pub state_dir: PathBuf,
    /// The core to pin it to (`taskset -c`), if any.
    pub cpu: Option<usize>,

    /// Extra `serve` arguments.
    pub extra: Vec<String>,
}

impl Launch {
    /// Starts the daemon and waits until `/readyz` answers 200; returns it and the time
    /// from spawn to that answer.
    pub fn start(&self) -> anyhow::Result<(Daemon, Duration)> {
        let addr = free_port()?;
        // taskset execs the daemon: it keeps the pid we spawn.
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(cpu) = self.cpu {
            argv.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
        }
        argv.push(self.las.clone().into_os_string());
        let (prog, args) = argv.split_first().context("no program to start")?;
        let mut cmd = Command::new(prog);
        cmd.args(args);
        cmd.args(["serve", "--mode", "sim", "--listen"])
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(&self.extra);
        // The daemon must see only the flags above, not the caller's LAS_* settings.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("LAS_") {
                cmd.env_remove(k);
            }
        }
        let started = Instant::now();
        let process =
            Process::spawn(cmd).with_context(|| format!("cannot start {}", self.las.display()))?;
        let mut d = Daemon { process, addr };
        let ready = d.wait_ready(started, Duration::from_secs(30))?;
        Ok((d, ready))
    }
}

impl Daemon {
    /// Polls `/readyz` (connect-retry every 100 µs) until it answers 200.
    fn wait_ready(&mut self, started: Instant, timeout: Duration) -> anyhow::Result<Duration> {
        loop {
            if let Ok(r) = http::try_http(self.addr, "GET", "/readyz", &[], b"")
                && r.status == 200
            {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.process.child.try_wait()? {
                bail!(
                    "the daemon exited ({status}) before it was ready; its log:\n{}",
                    self.log_tail()
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "the daemon was not ready after {timeout:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Current and peak resident memory.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        Ok(Memory::of(self.pid())?)
    }

    /// Puts all the daemon's threads under SCHED_FIFO at `prio`, or back to the normal
    /// policy with `None`.
    pub fn set_realtime(&self, prio: Option<u8>) -> anyhow::Result<()> {
        set_realtime(self.pid(), prio)
    }

    /// The end of the daemon's log.
    pub fn log_tail(&self) -> String {
        let s = self.process.log();
        let lines: Vec<&str> = s.lines().collect();
        lines
            .get(lines.len().saturating_sub(20)..)
            .unwrap_or_default()
            .join("\n")
    }

    /// Kills the daemon and reaps it (the kit's `Process` does both when dropped).
    pub fn stop(self) {}
}

/// A loopback address with a port that was free a moment ago.
fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(l.local_addr()?)
}

/// What the figures were measured on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPU model name.
    pub cpu_model: String,
    /// Online CPUs.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// 1-, 5- and 15-minute load averages.
    pub loadavg: String,
}

impl Machine {
    /// Reads /proc.
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let cores = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count()
            .max(1);
        Self {
            cpu_model,
            cores,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            loadavg: loadavg(),
        }
    }
}

/// The load averages (first three fields of /proc/loadavg).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Pins this process (all its threads so far; later ones inherit it) to `cpu`.
pub fn pin_self(cpu: usize) -> anyhow::Result<()> {
    let out = Command::new("taskset")
        .args([
            "-a",
            "-c",
            "-p",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .output()
        .context("cannot run taskset (util-linux)")?;
    if !out.status.success() {
        bail!(
            "taskset -p {cpu} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Puts all threads of `pid` under SCHED_FIFO at `prio`, or back to the normal policy
/// with `None` (`chrt -a -p`). Threads created later inherit the policy.
pub fn set_realtime(pid: u32, prio: Option<u8>) -> anyhow::Result<()> {
    let pid = pid.to_string();
    let args: Vec<String> = match prio {
        Some(p) => ["-a", "-f", "-p", &p.to_string(), &pid]
            .map(String::from)
            .to_vec(),
        None => ["-a", "-o", "-p", "0", &pid].map(String::from).to_vec(),
    };
    let out = Command::new("chrt")
        .args(&args)
        .output()
        .context("cannot run chrt (util-linux)")?;
    if !out.status.success() {
        bail!(
            "chrt {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether this process runs as root (may raise priorities).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Environment variable marking the re-executed benchmark in its own session.
const SESSION_MARK: &str = "LAS_BENCH_OWN_SESSION";

/// Runs this benchmark again in a session (and so a scheduler autogroup) of its own, and
/// returns its exit code; `None` when this already is that process.
///
/// With autogroups (the default on Linux desktops and on these VMs) every session is one
/// entity to the scheduler and nice values only count inside it, so a busy neighbour
/// session gets as much of a core as the benchmark whatever their nice values. A session
/// of our own whose autogroup has nice -20 ([`raise_own_autogroup`]) gets most of the core
/// whenever it wants it; the daemon, started from it, shares that autogroup.
pub fn reexec_in_own_session() -> anyhow::Result<Option<i32>> {
    if std::env::var_os(SESSION_MARK).is_some() {
        return Ok(None);
    }
    let me = std::env::current_exe()?;
    let status = Command::new("setsid")
        .arg("--wait")
        .arg(me)
        .args(std::env::args_os().skip(1))
        .env(SESSION_MARK, "1")
        .status()
        .context("cannot run setsid (util-linux)")?;
    Ok(Some(status.code().unwrap_or(2)))
}

/// Gives this process's autogroup (its session) nice -20. Fails where autogroups are off.
pub fn raise_own_autogroup() -> anyhow::Result<()> {
    std::fs::write("/proc/self/autogroup", "-20")
        .context("cannot set the nice value of this session's autogroup (/proc/self/autogroup)")
}

/// Raises this process's soft open-file limit to at least `want` (children, the daemon
/// among them, inherit it), up to the hard limit; fails naming both limits when the hard
/// one is too low (only root can raise it). Returns the soft limit now in force.
pub fn ensure_nofile(want: u64) -> anyhow::Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let soft = now.current.unwrap_or(u64::MAX);
    if soft >= want {
        return Ok(soft);
    }
    let hard = now.maximum.unwrap_or(u64::MAX);
    if hard < want {
        bail!(
            "{want} open files are needed but the hard limit is {hard} (soft {soft}): raise it \
             (`ulimit -Hn {want}` as root, or LimitNOFILE= in a systemd unit) or ask for fewer \
             connections (--connections, --idle-connections)"
        );
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: now.maximum,
        },
    )
    .with_context(|| format!("cannot raise the soft open-file limit from {soft} to {want}"))?;
    Ok(want)
}

/// The `las` next to this executable (same cargo profile), built first under cargo.
pub fn default_las() -> anyhow::Result<PathBuf> {
    sibling("las", "las")
}

/// The `lasd` next to this executable (same cargo profile), built first under cargo: the
/// daemon binary the load, start-up and memory figures are for.
pub fn default_lasd() -> anyhow::Result<PathBuf> {
    sibling("lasd", "lasd")
}

/// The executable `name` of package `package` next to this executable (same cargo
/// profile), building it first when this process runs under cargo, so that what is
/// measured is the current code.
fn sibling(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot locate the las-bench executable")?;
    let dir = me.parent().context("las-bench has no parent folder")?;
    let exe = dir.join(name);
    if let Some(cargo) = std::env::var_os("CARGO") {
        let profile = dir
            .file_name()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let profile = if profile == "debug" {
            "dev".to_owned()
        } else {
            profile
        };
        eprintln!("las-bench: cargo build --profile {profile} -p {package}");
        let st = Command::new(cargo)
            .args([
                "build",
                "--locked",
                "--quiet",
                "--profile",
                &profile,
                "-p",
                package,
            ])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            .status()
            .with_context(|| format!("cannot run cargo to build {package}"))?;
        if !st.success() {
            bail!("cargo build -p {package} failed");
        }
    }
    if !exe.exists() {
        bail!(
            "no {name} executable at {}: build it (`cargo build --release -p {package}`) or pass --las PATH",
            exe.display()
        );
    }
    Ok(exe)
}

/// The crates in `package`'s normal dependency tree, each package (name and version)
/// once, the package itself and build-time proc macros included: `cargo tree -p PACKAGE
/// -e normal --prefix none --no-dedupe | sort -u | wc -l` (the count
/// crates/lasd/tests/tree.rs bounds), in the workspace this benchmark was built from,
/// at the time of the run. An error says why it could not be counted (no cargo, no
/// source tree).
pub fn crate_count(package: &str) -> anyhow::Result<usize> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    anyhow::ensure!(
        manifest.exists(),
        "no workspace at {} (the source tree this benchmark was built from)",
        manifest.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--manifest-path"])
        .arg(&manifest)
        .args(["-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--no-dedupe", "--locked", "--offline"])
        .stdin(Stdio::null())
        .output()
        .context("cannot run cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree -p {package} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(unique_lines(&String::from_utf8_lossy(&out.stdout)))
}

/// `sort -u | wc -l` of non-empty lines.
fn unique_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_are_counted_once() {
        let tree = "lasd v0.1.0 (/w/crates/lasd)\nserde v1.0.1\n\nserde v1.0.1\nserde v1.0.2\n";
        assert_eq!(unique_lines(tree), 3);
    }

    #[test]
    fn lasd_crates_are_counted_from_the_workspace() {
        // The same bound as crates/lasd/tests/tree.rs: a count, not a failure.
        let n = crate_count("lasd").unwrap();
        assert!((20..=120).contains(&n), "{n}");
        assert!(crate_count("no-such-package").is_err());
    }

    #[test]
    fn the_soft_limit_is_raised_up_to_the_hard_one() {
        use rustix::process::{Resource, getrlimit};
        let before = getrlimit(Resource::Nofile);
        let hard = before.maximum.unwrap_or(u64::MAX);
        let soft = before.current.unwrap_or(u64::MAX);
        // What is already allowed is kept.
        assert_eq!(ensure_nofile(soft.min(16)).unwrap(), soft);
        if hard != u64::MAX {
            let e = ensure_nofile(hard + 1).unwrap_err().to_string();
            assert!(e.contains("hard limit"), "{e}");
        }
        let want = hard.min(soft.saturating_add(1));
        assert!(ensure_nofile(want).unwrap() >= want);
        assert!(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX) >= want);
    }
}

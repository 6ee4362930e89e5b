//! The one daemon launcher: start the real `las serve` (or any command line that execs the
//! daemon: `taskset -c 1 las serve ...`, a `lasd` binary) with its stderr captured by a
//! thread (never a blocking read in the test), wait for its listening line or `/readyz`
//! with a deadline, terminate it and get its exit status.
//!
//! The `las` binary is found by [`las_bin`]: `$LAS_BIN`, else the `las` next to the
//! running test executable's `deps/` folder (where cargo and nextest put it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long [`Daemon::start`] waits for the listening line.
pub const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long [`Daemon::terminate`] waits for the exit after SIGTERM.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(15);

/// The `las` executable: `$LAS_BIN`, else `las` in the folder above the test executable's
/// (`target/<profile>/deps/<test>` -> `target/<profile>/las`).
pub fn las_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LAS_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe folder").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let las = dir.join("las");
    assert!(
        las.exists(),
        "no las binary at {} (build it, or set LAS_BIN)",
        las.display()
    );
    ensure_lasd(&dir);
    las
}

/// `las serve` and `las id` execute the `lasd` next to `las`; cargo builds only the tested
/// package's binaries, so build lasd into the same target folder and profile (once per test
/// binary).
fn ensure_lasd(profile_dir: &Path) {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let target_dir = profile_dir.parent().expect("target folder");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--locked",
            "--quiet",
            "-p",
            "lasd",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build -p lasd");
        assert!(st.success(), "cargo build -p lasd failed");
    });
}

/// `las serve [--mode sim] --state-dir DIR [--listen 127.0.0.1:0] EXTRA` with the caller's
/// settings that would change it (LAS_SIM_CPUSVN, LAS_LOG_FORMAT) removed. `--mode sim`
/// and `--listen 127.0.0.1:0` are added only where EXTRA does not give its own.
pub fn serve_command(bin: &Path, state_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("serve");
    if !extra.contains(&"--mode") {
        cmd.args(["--mode", "sim"]);
    }
    cmd.arg("--state-dir").arg(state_dir);
    if !extra.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.args(extra)
        .env_remove("LAS_SIM_CPUSVN")
        .env_remove("LAS_LOG_FORMAT");
    cmd
}

/// A spawned process whose stderr a thread collects (so the child never blocks on a full
/// pipe and the test never blocks on a read). Killed when dropped.
#[derive(Debug)]
pub struct Process {
    /// The child (its pid, `try_wait`).
    pub child: Child,
    log: Arc<Mutex<String>>,
    listening: Receiver<SocketAddr>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Spawns `cmd` (stdin and stdout null, stderr captured).
    pub fn spawn(mut cmd: Command) -> std::io::Result<Process> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, listening) = std::sync::mpsc::channel();
        let log2 = log.clone();
        let reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                {
                    let mut l = log2.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
                // After the line is in the log: a test that reads the log once the
                // listener is announced sees the announcement too.
                if let Some(a) = listening_addr(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(a);
                }
            }
        });
        Ok(Process {
            child,
            log,
            listening,
            reader: Some(reader),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most `limit`) for the "listening on http://ADDR" line; `None` if it did not
    /// come (the process exited or is slow).
    pub fn wait_listening(&self, limit: Duration) -> Option<SocketAddr> {
        self.listening.recv_timeout(limit).ok()
    }

    /// Waits (at most `limit`) until its stderr contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most `limit`) for it to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends signal `sig` (`TERM`, `KILL`, `INT`, ...) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {} failed", self.pid());
    }

    /// SIGTERM, then the exit status within [`EXIT_DEADLINE`] (panics with the log if none).
    pub fn terminate(self) -> ExitStatus {
        self.terminate_with_log().0
    }

    /// SIGTERM, then the exit status within [`EXIT_DEADLINE`] and the whole stderr (read to
    /// its end, at most 5 s after the exit).
    pub fn terminate_with_log(mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        let Some(status) = self.wait_exit(EXIT_DEADLINE) else {
            panic!(
                "pid {} did not exit within {EXIT_DEADLINE:?} of SIGTERM; log:\n{}",
                self.pid(),
                self.log()
            )
        };
        (status, self.log_to_end(Duration::from_secs(5)))
    }

    /// Its stderr, once the reader has seen the end of it (or `limit` passed); call after
    /// the exit.
    pub fn log_to_end(&mut self, limit: Duration) -> String {
        let end = Instant::now() + limit;
        while let Some(r) = &self.reader {
            if r.is_finished() || Instant::now() >= end {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.reader.as_ref().is_some_and(|r| r.is_finished()) {
            let _ = self.reader.take().map(|r| r.join());
        }
        self.log()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in a "listening on http://ADDR" log line (text or JSON log format).
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let i = line.find("listening on http://")?;
    let rest = line.get(i + 20..)?;
    let end = rest
        .find(|c: char| c == '"' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}

/// A running daemon that announced where it listens. Derefs to its [`Process`].
#[derive(Debug)]
pub struct Daemon {
    /// Where it listens.
    pub addr: SocketAddr,
    process: Process,
}

impl std::ops::Deref for Daemon {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

impl Daemon {
    /// Starts `las serve --mode sim --state-dir DIR --listen 127.0.0.1:0 EXTRA` (the
    /// [`las_bin`] binary) and waits for its listening line.
    pub fn start(state_dir: &Path, extra: &[&str]) -> Daemon {
        Self::start_bin(&las_bin(), state_dir, extra)
    }

    /// [`Daemon::start`] with another binary.
    pub fn start_bin(bin: &Path, state_dir: &Path, extra: &[&str]) -> Daemon {
        Self::start_command(serve_command(bin, state_dir, extra))
    }

    /// Spawns any command line that runs the daemon and waits (at most [`START_DEADLINE`])
    /// for its listening line; panics with its log if it does not come.
    pub fn start_command(cmd: Command) -> Daemon {
        let program = cmd.get_program().to_owned();
        let process = Process::spawn(cmd)
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", Path::new(&program).display()));
        Self::announced(process, START_DEADLINE).unwrap_or_else(|p| {
            panic!(
                "{} did not announce a listener within {START_DEADLINE:?}; log:\n{}",
                Path::new(OsStr::new(&program)).display(),
                p.log()
            )
        })
    }

    /// The daemon of `process` once it announces its listener within `limit`; the process
    /// back (to read its log) if it does not.
    pub fn announced(process: Process, limit: Duration) -> Result<Daemon, Box<Process>> {
        match process.wait_listening(limit) {
            Some(addr) => Ok(Daemon { addr, process }),
            None => Err(Box::new(process)),
        }
    }

    /// A daemon started with an address known in advance (`--listen ADDR`), not waited for.
    pub fn at(process: Process, addr: SocketAddr) -> Daemon {
        Daemon { addr, process }
    }

    /// Polls `GET /readyz` (every `every`) until it answers 200, at most `limit`.
    pub fn wait_ready(&self, every: Duration, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if let Ok(r) = crate::http::try_http(self.addr, "GET", "/readyz", &[], b"")
                && r.status == 200
            {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(every);
        }
    }

    /// SIGTERM and the exit status (see [`Process::terminate`]).
    pub fn terminate(self) -> ExitStatus {
        self.process.terminate()
    }

    /// SIGTERM, the exit status and the whole log (see [`Process::terminate_with_log`]).
    pub fn terminate_with_log(self) -> (ExitStatus, String) {
        self.process.terminate_with_log()
    }

    /// The process, to keep watching it after the daemon part is done.
    pub fn into_process(self) -> Process {
        self.process
    }
}

/// Runs `las ARGS` ([`las_bin`]) without the caller's LAS_SIM_CPUSVN / SCONE_LAS_ADDR.
pub fn las(args: &[&str]) -> Output {
    Command::new(las_bin())
        .args(args)
        .env_remove("LAS_SIM_CPUSVN")
        .env_remove("SCONE_LAS_ADDR")
        .output()
        .unwrap()
}

/// `las id --mode sim --state-dir DIR` ([`las`]).
pub fn las_id(state_dir: &Path) -> Output {
    las(&[
        "id",
        "--mode",
        "sim",
        "--state-dir",
        state_dir.to_str().unwrap(),
    ])
}

/// `las verify --policy POLICY --quote QUOTE --las LAS EXTRA` ([`las`]).
pub fn las_verify(policy: &Path, quote: &Path, las_addr: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "verify",
        "--policy",
        policy.to_str().unwrap(),
        "--quote",
        quote.to_str().unwrap(),
        "--las",
        las_addr,
    ];
    args.extend_from_slice(extra);
    las(&args)
}

/// [`las`] with `input` on its stdin (then closed); stdout and stderr captured.
pub fn las_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut cmd = Command::new(las_bin());
    cmd.args(args)
        .env_remove("LAS_SIM_CPUSVN")
        .env_remove("SCONE_LAS_ADDR")
        .stderr(Stdio::piped());
    feed(cmd, input)
}

/// `las ARGS` outside any cluster: none of the variables the Kubernetes discovery reads
/// (NAMESPACE, INSTANCE, KUBECONFIG) nor LAS_LOG_FORMAT set, HOME pointing nowhere (no
/// `~/.kube/config` of the machine can leak in), then `env` set.
pub fn las_outside_cluster(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(las_bin());
    c.args(args);
    for v in ["NAMESPACE", "INSTANCE", "KUBECONFIG", "LAS_LOG_FORMAT"] {
        c.env_remove(v);
    }
    c.env("HOME", "/nonexistent");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `las serve --mode sim --listen ADDR --state-dir DIR` where ADDR is a loopback port
/// another socket holds for the whole run: the daemon's output, and ADDR.
pub fn serve_on_busy_port(state_dir: &Path) -> (Output, String) {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = las(&[
        "serve",
        "--mode",
        "sim",
        "--listen",
        &addr,
        "--state-dir",
        state_dir.to_str().unwrap(),
    ]);
    drop(busy);
    (out, addr)
}

/// `las quote --las ADDR --state-dir DIR --report-data RD --mrenclave MR -o OUT`; panics
/// with its stderr unless it succeeds.
pub fn quote_to_file(
    addr: SocketAddr,
    state_dir: &Path,
    report_data: &str,
    mrenclave: &str,
    out: &Path,
) {
    let o = las(&[
        "quote",
        "--las",
        &addr.to_string(),
        "--state-dir",
        state_dir.to_str().unwrap(),
        "--report-data",
        report_data,
        "--mrenclave",
        mrenclave,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "las quote: {}", stderr(&o));
}

/// One simulated platform: its own state folder and `las serve` on loopback, and the
/// platform ID it serves (`GET /v1/platform`).
#[derive(Debug)]
pub struct SimPlatform {
    /// The state folder (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The running daemon.
    pub las: Daemon,
    /// Its platform ID (hex).
    pub id: String,
}

impl SimPlatform {
    /// A fresh state folder, `las serve EXTRA` on it, and the ID it serves.
    pub fn start(extra: &[&str]) -> SimPlatform {
        let dir = tempfile::tempdir().unwrap();
        let las = Daemon::start(dir.path(), extra);
        let platform = crate::http::get(las.addr, "/v1/platform").json();
        let id = platform
            .get("platform_id")
            .and_then(|v| v.as_str())
            .expect("GET /v1/platform: platform_id")
            .to_string();
        SimPlatform { dir, las, id }
    }
}

/// Runs a shell pipeline (the operators' documented one) on `input`; its stdout.
pub fn sh_pipeline(pipeline: &str, input: &str) -> String {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", pipeline]);
    let out = feed(cmd, input.as_bytes());
    String::from_utf8(out.stdout).unwrap()
}

/// Spawns `cmd` with a piped stdin and stdout, writes `input`, closes stdin, waits.
fn feed(mut cmd: Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// For each `(old, new)` pair (`"--x-secs"`, `"--x 3s"`), `log` holds the warning a
/// deprecated `--*-secs` option logs (`las_http::duration::or_deprecated_secs`).
pub fn assert_deprecated_said(log: &str, pairs: &[(&str, &str)]) {
    for (old, new) in pairs {
        let want = format!("{old} is deprecated and will be removed: use {new}");
        assert!(log.contains(&want), "`{want}` missing: {log}");
    }
}

/// Its stdout, trimmed.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Its stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines_of_both_formats() {
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            listening_addr("INFO las: listening on http://127.0.0.1:4000 (sim)"),
            Some(a)
        );
        assert_eq!(
            listening_addr(r#"{"message":"listening on http://127.0.0.1:4000"}"#),
            Some(a)
        );
        assert_eq!(listening_addr("listening on http://nonsense"), None);
    }

    #[test]
    fn stderr_is_collected_without_blocking_and_exit_is_seen() {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "echo 'x listening on http://127.0.0.1:5 y' >&2; sleep 30",
        ]);
        let d = Daemon::announced(Process::spawn(c).unwrap(), Duration::from_secs(10)).unwrap();
        assert_eq!(d.addr.port(), 5);
        // The announcement is in the log by the time it is announced.
        assert!(d.log().contains("listening on"), "{}", d.log());
        assert!(d.wait_log("listening", Duration::from_secs(5)));
        let s = d.terminate();
        assert!(!s.success());
        let mut quiet = Command::new("sh");
        quiet.args(["-c", "sleep 30"]);
        let p = Process::spawn(quiet).unwrap();
        let t = Instant::now();
        assert!(p.wait_listening(Duration::from_millis(200)).is_none());
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

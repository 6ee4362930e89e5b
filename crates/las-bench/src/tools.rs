//! The standard load generators beside las-bench's own: wrk (closed loop) and oha (open
//! loop with latency correction). Finding them, running them against the daemon and
//! parsing what they print.
//!
//! ```text
//!  tempdir (0700): report.bin (one valid REPORT), post.lua (wrk: method, header, body)
//!  taskset -c 1 wrk -t1 -c64 -dDs --latency -s post.lua http://ADDR/v1/quote     → Wrk
//!  taskset -c 1 oha -q RATE --latency-correction -z Ds -c 64 -m POST -D report.bin
//!               -H content-type:... -w --worker-threads 1 --no-tui
//!               --output-format json http://ADDR/v1/quote                        → Oha
//! ```
//!
//! Both tools are well kept and widely used, so their figures are the ones the targets are
//! judged on; the parsers are checked against captured real outputs
//! (tests/fixtures, with the tool versions in the file names).

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// The versions scripts/bench-tools installs, and the parsers were checked against.
pub const WRK_VERSION: &str = "4.1.0";
/// See [`WRK_VERSION`].
pub const OHA_VERSION: &str = "1.16.0";

/// How to install each tool (printed when it is missing).
pub const WRK_INSTALL: &str = "apt-get update && apt-get install -y wrk";
/// See [`WRK_INSTALL`]. Debian's `nginx-light` (the small build; Debian 12 has nginx
/// 1.22); any nginx that knows `-e` (1.19.5 and later) will do.
pub const NGINX_INSTALL: &str = "apt-get update && apt-get install -y nginx-light";
/// See [`WRK_INSTALL`].
pub const OHA_INSTALL: &str =
    "cargo install --locked --no-default-features --features native-tls --version 1.16.0 oha";

/// A located tool.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Its executable.
    pub path: PathBuf,
    /// What `--version` printed (first line).
    pub version: String,
}

/// The standard generators and the HTTP floor's server.
#[derive(Debug, Clone)]
pub struct StandardTools {
    /// wrk (closed loop).
    pub wrk: Tool,
    /// oha (open loop with latency correction).
    pub oha: Tool,
    /// nginx: the HTTP floor ([`crate::floor`]).
    pub nginx: Tool,
}

/// Looks for `name` on PATH, then in the cargo home's bin (`$CARGO_HOME/bin`, default
/// `~/.cargo/bin`: where `cargo install` puts oha, often not on PATH).
pub fn find(name: &str) -> Option<PathBuf> {
    find_in(name, search_dirs())
}

/// The folders [`find`] looks in, in order.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(h).join("bin"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cargo/bin"));
    }
    dirs
}

/// The first executable `name` in `dirs`.
fn find_in(name: &str, dirs: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Where Debian puts nginx: not on a normal user's PATH. Looked in after [`search_dirs`].
const SBIN: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];

/// nginx on PATH (or in the cargo home), else in `/usr/sbin` or `/usr/local/sbin`.
pub fn find_nginx() -> Option<PathBuf> {
    let mut dirs = search_dirs();
    dirs.extend(SBIN.iter().map(PathBuf::from));
    find_in("nginx", dirs)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The name and version `path --version` prints first ("wrk debian/4.1.0-3+b2",
/// "oha 1.16.0"; wrk prints it and exits 1).
fn version_of(path: &Path) -> String {
    Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            let first = s.lines().next().unwrap_or_default();
            first
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// What `nginx -v` prints ("nginx version: nginx/1.22.1", on stderr): "nginx/1.22.1".
fn nginx_version(path: &Path) -> String {
    Command::new(path)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stderr).into_owned();
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().last())
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default()
}

impl StandardTools {
    /// Finds wrk, oha and nginx, or says exactly which are missing and how to install
    /// them.
    pub fn locate() -> anyhow::Result<Self> {
        Self::from_found(find("wrk"), find("oha"), find_nginx())
    }

    fn from_found(
        wrk: Option<PathBuf>,
        oha: Option<PathBuf>,
        nginx: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let mut missing = Vec::new();
        if wrk.is_none() {
            missing.push(format!("wrk {WRK_VERSION} (install: {WRK_INSTALL})"));
        }
        if oha.is_none() {
            missing.push(format!(
                "oha {OHA_VERSION} (install: {OHA_INSTALL}; 7 to 15 minutes)"
            ));
        }
        if nginx.is_none() {
            missing.push(format!("nginx, the HTTP floor (install: {NGINX_INSTALL})"));
        }
        match (wrk, oha, nginx) {
            (Some(w), Some(o), Some(n)) => Ok(Self {
                wrk: Tool {
                    version: version_of(&w),
                    path: w,
                },
                oha: Tool {
                    version: version_of(&o),
                    path: o,
                },
                nginx: Tool {
                    version: nginx_version(&n),
                    path: n,
                },
            }),
            _ => bail!(
                "the standard load generators are missing: {}. scripts/bench-tools installs them; \
                 --no-standard-tools skips them (the report then says so)",
                missing.join("; ")
            ),
        }
    }
}

/// The request the standard generators send: one valid REPORT in a private temporary
/// folder, and the wrk script that posts it.
#[derive(Debug)]
pub struct Request {
    /// Removes the folder when dropped.
    _dir: tempfile::TempDir,
    /// The REPORT (the POST body).
    pub body: PathBuf,
    /// The wrk Lua script.
    pub script: PathBuf,
}

/// The content type of a binary REPORT (`POST /v1/quote`).
pub const CONTENT_TYPE: &str = "application/octet-stream";

impl Request {
    /// Writes `report` and the wrk script into a fresh temporary folder (mode 0700, random
    /// name; the files are created with O_EXCL, so nothing planted is followed).
    pub fn new(report: &[u8]) -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("las-bench-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()?;
        let body = dir.path().join("report.bin");
        let script = dir.path().join("post.lua");
        create_new(&body, report)?;
        create_new(&script, wrk_script(&body)?.as_bytes())?;
        Ok(Self {
            _dir: dir,
            body,
            script,
        })
    }
}

pub(crate) fn create_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// A wrk script that POSTs the file at `body` (read once, at start, by each wrk thread).
fn wrk_script(body: &Path) -> anyhow::Result<String> {
    let p = body
        .to_str()
        .filter(|p| !p.contains(['"', '\\', '\n', '\r']))
        .with_context(|| format!("{}: not a path a Lua string can hold", body.display()))?;
    Ok(format!(
        "-- las-bench: POST one valid REPORT to /v1/quote on every request.\n\
         wrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"{CONTENT_TYPE}\"\n\
         local f = assert(io.open(\"{p}\", \"rb\"))\n\
         wrk.body = f:read(\"*a\")\n\
         f:close()\n"
    ))
}

/// `[taskset -c CPU] prog`: the generator on its own core (the daemon has the other).
fn command(prog: &Path, cpu: Option<usize>) -> Command {
    match cpu {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(prog);
            cmd
        }
        None => Command::new(prog),
    }
}

/// The command line as printed in the report.
pub fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a: &std::ffi::OsStr| {
            let s = a.to_string_lossy();
            if s.contains(' ') {
                format!("'{s}'")
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to the end; its stdout, or an error with its stderr.
fn output(mut cmd: Command, what: &str) -> anyhow::Result<String> {
    let line = shown(&cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}: {line}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {line}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{what} printed non-UTF-8"))
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/v1/quote")
}

/// wrk's duration argument: whole seconds (its units are s, m, h), at least 1.
fn wrk_secs(d: Duration) -> u64 {
    d.as_secs_f64().round().max(1.0) as u64
}

/// The closed loop: `wrk -t1 -cN -dDs --latency -s post.lua URL` (one thread: it has one
/// core).
pub fn wrk_command(
    tool: &Tool,
    req: &Request,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    cpu: Option<usize>,
) -> Command {
    let mut cmd = command(&tool.path, cpu);
    cmd.arg("-t1")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", wrk_secs(duration)))
        .arg("--latency")
        .arg("-s")
        .arg(&req.script)
        .arg(url(addr));
    cmd
}

/// Writes a tool's raw output into `dir` as `name` (a new file: nothing is overwritten
/// and no planted link followed), so that it can be kept
/// (a parser fixture, a CI artifact).
fn keep(dir: Option<&Path>, name: &str, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = dir {
        create_new(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

/// Runs wrk and parses its output; with `keep_in` (a folder and a file name), keeps the
/// raw output there.
pub fn run_wrk(cmd: Command, keep_in: Option<(&Path, &str)>) -> anyhow::Result<Wrk> {
    let line = shown(&cmd);
    let text = output(cmd, "wrk")?;
    if let Some((dir, name)) = keep_in {
        keep(Some(dir), name, &text)?;
    }
    let mut w = parse_wrk(&text).with_context(|| format!("wrk's output:\n{text}"))?;
    w.command = line;
    Ok(w)
}

/// The open loop: `oha -q RATE --latency-correction -z Ds -c N -m POST -D report.bin
/// -H content-type:... -w --worker-threads 1 --no-tui --output-format json URL`. Latency counts from each request's scheduled
/// send time (`--latency-correction`), so a stall is not hidden (no coordinated omission).
pub fn oha_command(
    tool: &Tool,
    req: &Request,
    addr: SocketAddr,
    connections: usize,
    rate: f64,
    duration: Duration,
    cpu: Option<usize>,
) -> Command {
    let mut cmd = command(&tool.path, cpu);
    let ms = duration.as_millis().max(1);
    cmd.arg("-q")
        .arg(format!("{}", rate.round().max(1.0) as u64))
        .arg("--latency-correction")
        .arg("-z")
        .arg(format!("{ms}ms"))
        .arg("-c")
        .arg(connections.to_string())
        .arg("-m")
        .arg("POST")
        .arg("-D")
        .arg(&req.body)
        .arg("-H")
        .arg(OsString::from(format!("content-type: {CONTENT_TYPE}")))
        // Requests still in flight at the end are awaited, not counted as aborted errors.
        .arg("-w")
        // One runtime thread: it has one core.
        .arg("--worker-threads")
        .arg("1")
        .arg("--no-tui")
        .arg("--output-format")
        .arg("json")
        .arg(url(addr));
    cmd
}

/// Runs oha and parses its JSON; with `keep_in`, keeps the raw output there as
/// `oha.json`.
pub fn run_oha(cmd: Command, keep_in: Option<&Path>) -> anyhow::Result<Oha> {
    let line = shown(&cmd);
    let text = output(cmd, "oha")?;
    keep(keep_in, "oha.json", &text)?;
    let mut o = parse_oha(&text).with_context(|| format!("oha's output:\n{text}"))?;
    o.command = line;
    Ok(o)
}

/// The value for `pct` in a tool's (percent, ms) list.
fn percentile(list: &[(f64, f64)], pct: f64) -> Option<f64> {
    list.iter()
        .find(|(p, _)| (p - pct).abs() < 1e-9)
        .map(|&(_, v)| v)
}

/// What wrk measured.
#[derive(Debug, Clone, Default)]
pub struct Wrk {
    /// The command line.
    pub command: String,
    /// Requests completed (any status).
    pub requests: u64,
    /// Wall time wrk reports, seconds.
    pub seconds: f64,
    /// `Requests/sec`.
    pub per_s: f64,
    /// Latency percentiles from `--latency`: (percent, ms), 50/75/90/99.
    pub percentiles: Vec<(f64, f64)>,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// `Non-2xx or 3xx responses`.
    pub non_2xx: u64,
    /// `Socket errors`: connect + read + write + timeout.
    pub socket_errors: u64,
}

impl Wrk {
    /// A latency percentile (50, 75, 90 or 99), ms.
    pub fn ms(&self, pct: f64) -> Option<f64> {
        percentile(&self.percentiles, pct)
    }

    /// Every failed exchange.
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }

    /// Answers with status 2xx (quotes).
    pub fn quotes(&self) -> u64 {
        self.requests.saturating_sub(self.non_2xx)
    }

    /// Quotes per second: wrk's rate (from its exact run time; the `in 2.00s` it prints
    /// is rounded) times the share of 2xx answers.
    pub fn quotes_per_s(&self) -> f64 {
        if self.requests > 0 {
            self.per_s * self.quotes() as f64 / self.requests as f64
        } else {
            0.0
        }
    }
}

/// wrk prints times as `123.45us`, `1.23ms`, `2.00s` or `1.00m`.
fn wrk_ms(s: &str) -> anyhow::Result<f64> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .with_context(|| format!("`{s}`: a time without a unit"))?;
    let v: f64 = num
        .parse()
        .with_context(|| format!("`{s}`: not a number"))?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => bail!("`{s}`: unknown time unit `{unit}`"),
    };
    Ok(v * scale)
}

/// Parses wrk 4.1's report (with `--latency`).
pub fn parse_wrk(text: &str) -> anyhow::Result<Wrk> {
    let mut w = Wrk::default();
    let mut in_dist = false;
    let mut have_done = false;
    let mut have_rate = false;
    for line in text.lines() {
        let t = line.trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        if t.starts_with("Latency Distribution") {
            in_dist = true;
            continue;
        }
        if in_dist {
            match words.as_slice() {
                [p, v] if p.ends_with('%') => {
                    let pct: f64 = p
                        .trim_end_matches('%')
                        .parse()
                        .with_context(|| format!("latency distribution line `{t}`"))?;
                    w.percentiles.push((pct, wrk_ms(v)?));
                    continue;
                }
                _ => in_dist = false,
            }
        }
        match words.as_slice() {
            ["Latency", _avg, _stdev, max, ..] => w.max_ms = wrk_ms(max)?,
            [n, "requests", "in", secs, ..] => {
                w.requests = n.parse().with_context(|| format!("`{t}`"))?;
                w.seconds = wrk_ms(secs.trim_end_matches(','))? / 1e3;
                have_done = true;
            }
            ["Requests/sec:", v] => {
                w.per_s = v.parse().with_context(|| format!("`{t}`"))?;
                have_rate = true;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                w.non_2xx = n.parse().with_context(|| format!("`{t}`"))?;
            }
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                for pair in rest.chunks(2) {
                    if let [_, n] = pair {
                        w.socket_errors += n
                            .trim_end_matches(',')
                            .parse::<u64>()
                            .with_context(|| format!("`{t}`"))?;
                    }
                }
            }
            _ => {}
        }
    }
    if !have_done || !have_rate {
        bail!("not wrk's report: no `N requests in T` or no `Requests/sec:` line");
    }
    if w.ms(99.0).is_none() {
        bail!("wrk's report has no 99% latency (was --latency passed?)");
    }
    Ok(w)
}

/// What oha measured.
#[derive(Debug, Clone, Default)]
pub struct Oha {
    /// The command line.
    pub command: String,
    /// Requests per second over the run (every answer).
    pub per_s: f64,
    /// Answers with status 200.
    pub ok: u64,
    /// Other statuses and transport errors (oha's `errorDistribution`).
    pub errors: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Latency percentiles, ms: (percent, ms) for 50, 90, 99, 99.9.
    pub percentiles: Vec<(f64, f64)>,
    /// Slowest answer, ms.
    pub max_ms: f64,
}

impl Oha {
    /// A latency percentile (50, 90, 99 or 99.9), ms.
    pub fn ms(&self, pct: f64) -> Option<f64> {
        percentile(&self.percentiles, pct)
    }

    /// Quotes (200 answers) per second.
    pub fn quotes_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ok as f64 / self.seconds
        } else {
            0.0
        }
    }
}

fn num(v: &serde_json::Value, path: &[&str]) -> anyhow::Result<f64> {
    let mut cur = v;
    for k in path {
        cur = cur
            .get(k)
            .with_context(|| format!("oha's JSON has no `{}`", path.join(".")))?;
    }
    cur.as_f64()
        .with_context(|| format!("oha's JSON: `{}` is not a number", path.join(".")))
}

/// Parses oha's JSON output (`--output-format json`; times in seconds).
pub fn parse_oha(text: &str) -> anyhow::Result<Oha> {
    let v: serde_json::Value = serde_json::from_str(text).context("oha's output is not JSON")?;
    let mut o = Oha {
        per_s: num(&v, &["summary", "requestsPerSec"])?,
        seconds: num(&v, &["summary", "total"])?,
        max_ms: num(&v, &["summary", "slowest"])? * 1e3,
        ..Oha::default()
    };
    for (key, pct) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)] {
        o.percentiles
            .push((pct, num(&v, &["latencyPercentiles", key])? * 1e3));
    }
    let statuses = v
        .get("statusCodeDistribution")
        .and_then(|s| s.as_object())
        .context("oha's JSON has no `statusCodeDistribution` object")?;
    for (status, n) in statuses {
        let n = n
            .as_u64()
            .with_context(|| format!("oha's JSON: status {status} count is not a number"))?;
        if status == "200" {
            o.ok += n;
        } else {
            o.errors += n;
        }
    }
    let errors = v
        .get("errorDistribution")
        .and_then(|s| s.as_object())
        .context("oha's JSON has no `errorDistribution` object")?;
    for (e, n) in errors {
        o.errors += n
            .as_u64()
            .with_context(|| format!("oha's JSON: error `{e}` count is not a number"))?;
    }
    Ok(o)
}

#[cfg(test)]
mod tests;

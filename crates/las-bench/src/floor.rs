//! The HTTP floor: what one keep-alive HTTP/1.1 exchange costs on the daemon's core, with
//! no handler behind it. nginx (one process: `master_process off`, one worker, pinned to
//! the daemon's core) answers the same POST wrk sends the daemon with a static body the
//! size of the daemon's quote; wrk measures it exactly as it measures the daemon.
//!
//! ```text
//!  tempdir (0700): nginx.conf, pid, temp folders (no root-owned path is used)
//!  taskset -c 0 nginx -p DIR -c DIR/nginx.conf -e stderr     location / { return 200 "x…x"; }
//!  taskset -c 1 wrk -t1 -c64 -dDs --latency -s post.lua http://127.0.0.1:PORT/v1/quote
//! ```
//!
//! One core can then serve at most `1 / (1/issue + 1/floor)` quotes per second: the
//! in-process issue time plus the exchange time ([`http_limit`]).

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use las_testkit::daemon::Process;

use crate::tools::{CONTENT_TYPE, Tool};

/// The quotes per second one core can serve at most when issuing one costs `1/issue_per_s`
/// and the HTTP exchange around it `1/floor_per_s` (both measured on that core).
pub fn http_limit(issue_per_s: f64, floor_per_s: f64) -> f64 {
    if issue_per_s <= 0.0 || floor_per_s <= 0.0 {
        return 0.0;
    }
    1.0 / (1.0 / issue_per_s + 1.0 / floor_per_s)
}

/// The nginx configuration: one process, no daemon, everything under `prefix`, listening
/// on `addr` only, answering every request with `body_len` bytes of `x`. Connections stay
/// open for as many requests as wrk sends (nginx closes a keep-alive connection after
/// 1,000 requests by default, which would add connection set-ups to the floor).
pub fn config(prefix: &Path, addr: SocketAddr, body_len: usize) -> anyhow::Result<String> {
    let p = prefix
        .to_str()
        .filter(|p| !p.contains(['"', '\\', '\n', '\r', ';', '$', '{', '}']))
        .with_context(|| {
            format!(
                "{}: not a path nginx's configuration can hold",
                prefix.display()
            )
        })?;
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "nginx listens on loopback only, not {addr}"
    );
    anyhow::ensure!(
        (1..=64 * 1024).contains(&body_len),
        "a static body of {body_len} bytes"
    );
    let body = "x".repeat(body_len);
    let listen = match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    Ok(format!(
        "# las-bench: the HTTP floor (docs/performance.md).\n\
         daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         pid \"{p}/nginx.pid\";\n\
         error_log stderr warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path \"{p}/body\";\n\
         \x20   proxy_temp_path \"{p}/proxy\";\n\
         \x20   fastcgi_temp_path \"{p}/fastcgi\";\n\
         \x20   uwsgi_temp_path \"{p}/uwsgi\";\n\
         \x20   scgi_temp_path \"{p}/scgi\";\n\
         \x20   keepalive_requests 1000000000;\n\
         \x20   keepalive_timeout 300s;\n\
         \x20   default_type {CONTENT_TYPE};\n\
         \x20   server {{\n\
         \x20       listen {listen};\n\
         \x20       location / {{ return 200 \"{body}\"; }}\n\
         \x20   }}\n\
         }}\n"
    ))
}

/// A running nginx in its own temporary folder; killed (and the folder removed) when
/// dropped.
#[derive(Debug)]
pub struct Nginx {
    // Dropped first: the process goes before its folder.
    process: Process,
    _dir: tempfile::TempDir,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The command line (for the report).
    pub command: String,
}

impl Nginx {
    /// Starts nginx (pinned to `cpu`) answering `body_len` bytes, and waits until it
    /// answers a POST like wrk's with exactly that many bytes.
    pub fn start(
        tool: &Tool,
        cpu: Option<usize>,
        body_len: usize,
        probe: &[u8],
    ) -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("las-bench-nginx-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()?;
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot find a free loopback port")?;
        let conf = dir.path().join("nginx.conf");
        crate::tools::create_new(&conf, config(dir.path(), addr, body_len)?.as_bytes())?;
        let mut cmd = match cpu {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(c.to_string()).arg(&tool.path);
                cmd
            }
            None => Command::new(&tool.path),
        };
        // -e: the error log before the configuration is read (the compiled-in one may be
        // a root-owned file).
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr"]);
        let command = crate::tools::shown(&cmd);
        let mut process = Process::spawn(cmd).with_context(|| format!("cannot run {command}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match las_testkit::http::try_http(
                addr,
                "POST",
                "/v1/quote",
                &[("content-type", CONTENT_TYPE)],
                probe,
            ) {
                Ok(r) if r.status == 200 && r.body.len() == body_len => break,
                Ok(r) => bail!(
                    "nginx answered {} with {} bytes, not 200 with {body_len}: {command}",
                    r.status,
                    r.body.len()
                ),
                Err(_) => {}
            }
            if let Some(st) = process.child.try_wait()? {
                bail!("nginx exited ({st}): {command}\n{}", process.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not answer within 10 s: {command}\n{}",
                    process.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Self {
            process,
            _dir: dir,
            addr,
            command,
        })
    }

    /// The process ID (taskset executes nginx in the process it was started as).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_adds_the_times() {
        // 27.8 µs to issue, 7.9 µs per exchange: 28,000/s (issue 27's figures).
        let l = http_limit(36_000.0, 125_800.0);
        assert!((l - 27_990.0).abs() < 10.0, "{l}");
        assert_eq!(http_limit(0.0, 1.0), 0.0);
        assert_eq!(http_limit(1.0, 0.0), 0.0);
    }

    #[test]
    fn the_config_keeps_everything_in_its_folder() {
        let addr: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let c = config(Path::new("/tmp/las-bench-nginx-x"), addr, 5).unwrap();
        assert!(c.contains("master_process off;"), "{c}");
        assert!(c.contains("worker_processes 1;"), "{c}");
        assert!(c.contains("daemon off;"), "{c}");
        assert!(c.contains("listen 127.0.0.1:4321;"), "{c}");
        assert!(c.contains("return 200 \"xxxxx\";"), "{c}");
        assert!(
            c.contains("pid \"/tmp/las-bench-nginx-x/nginx.pid\";"),
            "{c}"
        );
        // Every path nginx would write is in the folder: none of the compiled-in ones.
        for line in c
            .lines()
            .filter(|l| l.contains("path ") || l.starts_with("pid"))
        {
            assert!(line.contains("/tmp/las-bench-nginx-x/"), "{line}");
        }
        for dir in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            assert!(
                c.contains(&format!("/tmp/las-bench-nginx-x/{dir}\"")),
                "{dir}"
            );
        }
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert!(
            config(Path::new("/t"), v6, 1)
                .unwrap()
                .contains("listen [::1]:80;")
        );
    }

    #[test]
    fn the_config_refuses_what_it_cannot_hold() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(config(Path::new("/tmp/a;b"), addr, 5).is_err());
        assert!(config(Path::new("/tmp/a\"b"), addr, 5).is_err());
        assert!(config(Path::new("/tmp/x"), addr, 0).is_err());
        let public: SocketAddr = "0.0.0.0:80".parse().unwrap();
        let e = config(Path::new("/tmp/x"), public, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("loopback"), "{e}");
    }

    #[test]
    #[ignore = "needs nginx (scripts/bench-tools installs it); run with: \
                cargo test -p las-bench --bins -- --ignored"]
    fn nginx_answers_the_post_with_a_body_of_the_asked_size() {
        let path = crate::tools::find_nginx().expect("nginx: scripts/bench-tools");
        let tool = Tool {
            path,
            version: String::new(),
        };
        let n = Nginx::start(&tool, None, 678, &[7; 432]).unwrap();
        let dir = n._dir.path().to_path_buf();
        for _ in 0..3 {
            let r =
                las_testkit::http::try_http(n.addr, "POST", "/v1/quote", &[], &[1; 432]).unwrap();
            assert_eq!((r.status, r.body.len()), (200, 678));
        }
        assert!(n.addr.ip().is_loopback());
        assert!(
            dir.join("nginx.pid").exists(),
            "its pid file is in its folder"
        );
        let pid = n.pid();
        drop(n);
        assert!(!dir.exists(), "the folder goes with it");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "nginx is stopped"
        );
    }
}

//! The one test kit of the workspace, used by the integration tests of `las` (and of the
//! other crates) and by `las-bench`. Not shipped (`publish = false`).
//!
//! ```text
//!  test ──Daemon::start──> `las serve` (real binary, 127.0.0.1:0, temp state dir)
//!    │                        │ stderr ──thread──> Process::log / wait_log / wait_listening
//!    ├──http::{get,http,Client}──(hyper, deadline)──> the daemon's API
//!    ├──raw::Conn──(hand-written bytes)──> broken HTTP on purpose only
//!    ├──procfs::{Memory,CpuTime,fd_count,..}──> /proc/PID of the daemon
//!    └──fixtures / vectors──> REPORTs, quote claims, committed DCAP sample
//! ```
//!
//! - [`mod@http`]: the one HTTP client (hyper 1's HTTP/1.1 connection API). [`http::get`] and
//!   [`http::http`] send one request over a fresh connection; [`http::Client`] is a blocking
//!   keep-alive connection; [`http::AsyncConn`] the same for async code (the benchmark's
//!   closed loop). Every blocking exchange has a deadline: a silent daemon fails the test.
//! - [`raw`]: hand-written HTTP/1.1 over a `TcpStream`, ONLY for what must be malformed or
//!   watched at the byte level (bad request lines, slow headers, oversized bodies,
//!   pipelining, waiting for the daemon to close).
//! - [`daemon`]: the one daemon launcher. [`daemon::Daemon::start`] runs
//!   `las serve --mode sim --state-dir DIR --listen 127.0.0.1:0 EXTRA` and waits for its
//!   listening line; [`daemon::Daemon::start_command`] takes any command line (another
//!   binary such as `lasd`, a `taskset` wrapper). The binary is `$LAS_BIN`, else the `las`
//!   beside the test executable ([`daemon::las_bin`]). Stderr is collected by a thread;
//!   [`daemon::Process::wait_log`], `wait_listening`, `wait_exit` and `terminate` all take
//!   deadlines. [`daemon::las`] runs the CLI.
//! - [`procfs`]: RSS/peak RSS, open descriptors, threads, CPU time of a process.
//! - [`fixtures`]: the application enclave, valid REPORTs from the simulated platform, the
//!   standard quote claims, `/metrics` readers, a small PRNG.
//! - [`fakes`]: a fake Kubernetes API server and a tampering proxy on loopback.
//! - [`mod@verifier`]: the verification service's command line and a raw client's requests
//!   (nonce, bound quote, identity evidence, the `POST /v1/attest` body).
//! - [`vectors`]: the committed test vectors (`tests/vectors/`), compiled in.
//! - [`gate`]: [`gate::not_tested`] for a test this machine cannot run: a visible
//!   `NOT TESTED` line, and a failure when `CI` is set.
//!
//! Everything here panics with a message naming what failed: it is test code.
//!
//! A fake server on loopback and the one HTTP client, as a test uses them (starting the
//! real daemon, [`daemon::Daemon::start`], needs the built `las` binary):
//!
//! ```
//! use las_testkit::fakes::{Answer, Server};
//!
//! let fake = Server::start(|req| match req.path() {
//!     "/v1/platform" => Answer::json(200, serde_json::json!({"mode": "sim"})),
//!     _ => Answer::json(404, serde_json::json!({"error": "not-found", "message": "no"})),
//! });
//! let r = las_testkit::get(fake.addr, "/v1/platform");
//! assert_eq!((r.status, r.json()["mode"].as_str()), (200, Some("sim")));
//! assert_eq!(las_testkit::get(fake.addr, "/nowhere").status, 404);
//! assert_eq!(fake.seen().len(), 2); // every request line, in order
//! ```
#![forbid(unsafe_code)]

pub mod daemon;
pub mod fakes;
pub mod fixtures;
pub mod gate;
pub mod http;
pub mod procfs;
pub mod raw;
pub mod vectors;
pub mod verifier;

pub use daemon::{
    Daemon, Process, SimPlatform, assert_deprecated_said, las, las_bin, las_id,
    las_outside_cluster, las_verify, las_with_stdin, quote_to_file, serve_on_busy_port,
    sh_pipeline, stderr, stdout,
};
pub use http::{Client, Resp, get, http};

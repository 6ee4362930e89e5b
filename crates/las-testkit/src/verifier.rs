//! The verification service (`las verifier serve`) as the suites drive it: its command line,
//! `las attest` against it, and the requests of a client speaking raw HTTP (a nonce, a
//! quote of the application enclave bound to it, the LAS's identity evidence, the
//! `POST /v1/attest` body that `las attest` sends).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: panics name what failed

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;

use crate::daemon::{SimPlatform, las, las_bin, stderr, stdout};
use crate::fixtures::{APP_MRENCLAVE, app_quote_args};
use crate::http::{Resp, get, http};

/// `las verifier serve --listen 127.0.0.1:0 --policy POLICY --state-dir STATE EXTRA`, with
/// the caller's settings that would change it (LAS_LOG_FORMAT, every `LAS_VERIFIER_...`
/// variable) removed. Start it with [`Daemon::start_command`](crate::Daemon::start_command).
pub fn verifier_command(policy: &Path, state_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(las_bin());
    cmd.args(["verifier", "serve", "--listen", "127.0.0.1:0", "--policy"])
        .arg(policy)
        .arg("--state-dir")
        .arg(state_dir)
        .args(extra)
        .env_remove("LAS_LOG_FORMAT");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LAS_VERIFIER_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// `las attest --verifier URL --service app EXTRA` for the application enclave
/// ([`app_quote_args`]) on platform `p`, binding `app_data` (hex): what an enclave runs.
pub fn las_attest(verifier: &str, p: &SimPlatform, app_data: &str, extra: &[&str]) -> Output {
    let las_addr = p.las.addr.to_string();
    let state = p.dir.path().to_str().unwrap();
    let mut args = vec!["attest", "--verifier", verifier, "--service", "app"];
    args.extend(app_quote_args(&las_addr, state, app_data, APP_MRENCLAVE));
    args.extend(extra);
    las(&args)
}

/// `POST path` with a JSON body.
pub fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Resp {
    http(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
}

/// A nonce of the service at `addr` (`POST /v1/nonce`): as sent back in a request
/// (base64url), and its bytes.
pub fn nonce(addr: SocketAddr) -> (String, Vec<u8>) {
    let r = post_json(addr, "/v1/nonce", &serde_json::json!({}));
    assert_eq!(r.status, 200, "POST /v1/nonce");
    let n = r.json()["nonce"].as_str().unwrap().to_string();
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&n)
        .unwrap();
    (n, b)
}

/// `las quote` (base64) of the application enclave ([`app_quote_args`]) on platform `p`,
/// over `report_data`.
pub fn app_quote(p: &SimPlatform, report_data: &[u8]) -> String {
    let (addr, rd) = (p.las.addr.to_string(), hex::encode(report_data));
    let state = p.dir.path().to_str().unwrap();
    let mut args = vec!["quote"];
    args.extend(app_quote_args(&addr, state, &rd, APP_MRENCLAVE));
    let o = las(&args);
    assert!(o.status.success(), "las quote: {}", stderr(&o));
    stdout(&o)
}

/// The identity evidence of the LAS at `las` for `nonce` (`GET /v1/identity`), as
/// `las attest` fetches it to post with its quote.
pub fn identity_evidence(las: SocketAddr, nonce: &[u8]) -> Vec<u8> {
    let r = get(las, &format!("/v1/identity?nonce={}", hex::encode(nonce)));
    assert_eq!(r.status, 200, "GET /v1/identity");
    r.body
}

/// The `POST /v1/attest` body for service `app`: the nonce (as the service gave it), the
/// quote (base64), the application's report data (hex) and, when given, the LAS's identity
/// evidence (base64). Add other fields (`csr`, `las`) by index.
pub fn attest_body(
    nonce: &str,
    quote: &str,
    app_data: &str,
    evidence: Option<&[u8]>,
) -> serde_json::Value {
    let mut b = serde_json::json!({
        "service": "app", "nonce": nonce, "quote": quote, "report_data": app_data,
    });
    if let Some(e) = evidence {
        b["evidence"] = base64::engine::general_purpose::STANDARD.encode(e).into();
    }
    b
}

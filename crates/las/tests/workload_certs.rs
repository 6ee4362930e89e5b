//! Workload certificates end to end: a real LAS (simulated platform), a real `las verifier
//! serve`, `las attest --key-out --cert-out` as the enclave. Independent implementations
//! check the result: `openssl verify` against the bundle of `GET /v1/ca`, `openssl
//! s_server` serving the issued key and chain, `curl --cacert` completing the handshake
//! (and failing against a self-made certificate). The named refusals (unbound key, bad
//! CSR signature, unsupported key type) are posted over HTTP; a rejected enclave gets no
//! certificate; replicas sharing the key Secret issue under one CA; an operator's CA
//! (`--ca-cert`/`--ca-key`) is used as given. openssl and curl are Debian's (scripts/test
//! installs them); where they are missing the test says so through the one gate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use las_testkit::verifier::{
    self, app_quote, attest_body, identity_evidence, las_attest, post_json, verifier_command,
};
use las_testkit::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MRSIGNER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TRUST_DOMAIN: &str = "prod.example";

fn have(tool: &str) -> bool {
    // `openssl version`, `curl --version`.
    let arg = if tool == "openssl" {
        "version"
    } else {
        "--version"
    };
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tools_or_gate(what: &str) -> bool {
    for t in ["openssl", "curl"] {
        if !have(t) {
            gate::not_tested(
                what,
                &format!("no `{t}` (scripts/test installs it from Debian)"),
            );
            return false;
        }
    }
    true
}

fn policy(platform: &str) -> String {
    format!(
        "version: \"0.3\"\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{MRENCLAVE}\"]\n      signer: {{mrsigner: \"{MRSIGNER}\", isvprodid: 3, isvsvn_min: 5}}\n    platforms: [\"{platform}\"]\n    las_dns_names: [localhost, app.prod.example]\n"
    )
}

/// A platform, a work folder and the policy (in it) listing the platform; None, through the
/// gate, without openssl and curl.
fn setup(what: &str) -> Option<(SimPlatform, tempfile::TempDir, PathBuf)> {
    if !tools_or_gate(what) {
        return None;
    }
    let p = SimPlatform::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let policy_file = work.path().join("policy.yaml");
    std::fs::write(&policy_file, policy(&p.id)).unwrap();
    Some((p, work, policy_file))
}

fn verifier(policy: &Path, state: &Path, extra: &[&str]) -> Daemon {
    let mut args = vec!["--trust-domain", TRUST_DOMAIN];
    args.extend(extra);
    Daemon::start_command(verifier_command(policy, state, &args))
}

/// `las attest ... EXTRA` for the enclave on `p`.
fn attest(v: &Daemon, p: &SimPlatform, report_data: &str, extra: &[&str]) -> std::process::Output {
    las_attest(&format!("http://{}", v.addr), p, report_data, extra)
}

/// `las attest --key-out KEY --cert-out CERT` for the enclave on `p`.
fn attest_key_cert(
    v: &Daemon,
    p: &SimPlatform,
    report_data: &str,
    key: &Path,
    cert: &Path,
) -> std::process::Output {
    let (key, cert) = (key.to_str().unwrap(), cert.to_str().unwrap());
    attest(v, p, report_data, &["--key-out", key, "--cert-out", cert])
}

/// `openssl verify -CAfile CA CERT` must succeed.
fn openssl_verify(ca: &Path, cert: &Path) {
    run(Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ca)
        .arg(cert));
}

/// `openssl req -x509`: a self-signed P-256 certificate `cert` of a new key `key`, valid
/// for `days`, with `subject` and the `-addext` extensions `ext`.
fn openssl_self_signed(key: &Path, cert: &Path, days: &str, subject: &str, ext: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-nodes", "-newkey", "ec"]).args([
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-days",
        days,
        "-subj",
        subject,
    ]);
    for e in ext {
        cmd.args(["-addext", e]);
    }
    run(cmd.arg("-keyout").arg(key).arg("-out").arg(cert));
}

fn run(cmd: &mut Command) -> std::process::Output {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `openssl s_server` on loopback serving `cert` (+ `chain`) with `key`; killed on drop.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(cert: &Path, chain: Option<&Path>, key: &Path) -> TlsServer {
        let port = free_port();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-www", "-naccept", "10", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(c) = chain {
            cmd.arg("-cert_chain").arg(c);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl --cacert BUNDLE https://localhost:PORT/`: the exit code (0 handshake and answer,
/// 60 the peer certificate is not trusted).
fn curl(bundle: &Path, port: u16) -> (Option<i32>, String) {
    let o = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "--max-time", "10", "--cacert"])
        .arg(bundle)
        .arg(format!("https://localhost:{port}/"))
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Splits a PEM chain into its certificates' PEM blocks.
fn pem_blocks(chain: &str) -> Vec<String> {
    chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(str::to_owned)
        .collect()
}

/// `POST /v1/attest` with `csr` for a quote of `p` binding SHA-512(nonce ‖ `app_data`).
fn post_attest(v: &Daemon, p: &SimPlatform, app_data: &[u8], csr: &str) -> Resp {
    let (nonce, nb) = verifier::nonce(v.addr);
    let quote = app_quote(p, &las_verifier_service::bound_report_data(&nb, app_data));
    // The LAS's identity evidence for the same nonce, posted as `las attest` does (the
    // service fetches none).
    let ev = identity_evidence(p.las.addr, &nb);
    let mut body = attest_body(&nonce, &quote, &hex::encode(app_data), Some(&ev));
    body["csr"] = csr.into();
    post_json(v.addr, "/v1/attest", &body)
}

/// An openssl-made CSR (PEM) of a new key `-newkey SPEC`, and its SPKI's SHA-256.
fn openssl_csr(dir: &Path, name: &str, newkey: &[&str]) -> (String, Vec<u8>) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    run(Command::new("openssl")
        .args(["req", "-new", "-subj", "/CN=x", "-nodes", "-newkey"])
        .args(newkey)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    let spki = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key))
    .stdout;
    use sha2::Digest;
    (
        std::fs::read_to_string(&csr).unwrap(),
        sha2::Sha256::digest(&spki).to_vec(),
    )
}

#[test]
fn issued_chains_pass_openssl_and_curl_and_every_refusal_is_named() {
    let Some((p, work, policy_file)) = setup("workload certificates checked by openssl and curl")
    else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let v = verifier(&policy_file, state.path(), &[]);

    // The bundle relying parties trust.
    let r = http::get(v.addr, "/v1/ca");
    assert_eq!(r.status, 200);
    let bundle = work.path().join("bundle.pem");
    std::fs::write(&bundle, &r.body).unwrap();

    // The enclave side: a new key, bound, certified.
    let key = work.path().join("tls.key");
    let cert = work.path().join("tls.crt");
    // A link at the key path is replaced, not followed.
    let decoy = work.path().join("decoy");
    std::fs::write(&decoy, "decoy").unwrap();
    std::os::unix::fs::symlink(&decoy, &key).unwrap();
    let o = attest_key_cert(&v, &p, "c0ffee", &key, &cert);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), v.log());
    assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "decoy");
    let meta = std::fs::symlink_metadata(&key).unwrap();
    assert!(meta.file_type().is_file());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let chain = std::fs::read_to_string(&cert).unwrap();
    let blocks = pem_blocks(&chain);
    assert_eq!(blocks.len(), 2, "{chain}");
    let leaf = work.path().join("leaf.pem");
    let issuer = work.path().join("issuer.pem");
    std::fs::write(&leaf, &blocks[0]).unwrap();
    std::fs::write(&issuer, &blocks[1]).unwrap();
    // The EAR binds the key: app report data = SHA-256(SPKI) ‖ c0ffee.
    let spki = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key))
    .stdout;
    let token = stdout(&o).trim().to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    use sha2::Digest;
    assert_eq!(
        claims["submods"]["app"]["las.facts"]["app_report_data"],
        format!("{}c0ffee", hex::encode(sha2::Sha256::digest(&spki)))
    );

    // openssl verify against the bundle (with the purpose of a TLS server and client).
    for purpose in ["sslserver", "sslclient"] {
        let o = run(Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(&bundle)
            .arg(&leaf));
        assert!(String::from_utf8_lossy(&o.stdout).contains(": OK"));
    }
    // What the certificate says, as openssl prints it.
    let text = String::from_utf8(
        run(Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&leaf))
        .stdout,
    )
    .unwrap();
    assert!(
        text.contains(&format!("URI:spiffe://{TRUST_DOMAIN}/app")),
        "{text}"
    );
    assert!(
        text.contains("DNS:localhost, DNS:app.prod.example"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"));
    assert!(text.contains("1.3.6.1.5.5.7.1.35:"), "{text}");
    for want in [
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "Subject: O = las, CN = app",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let ca_text = String::from_utf8(
        run(Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&issuer))
        .stdout,
    )
    .unwrap();
    assert!(ca_text.contains("CA:TRUE, pathlen:0"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign, CRL Sign"), "{ca_text}");
    assert!(!text.contains("1.3.6.1.5.5.7.1.35: critical"), "{text}");

    // A TLS handshake with the issued key and chain: curl trusts it through the bundle.
    let server = TlsServer::start(&leaf, Some(&issuer), &key);
    let (code, err) = curl(&bundle, server.port);
    assert_eq!(code, Some(0), "{err}");
    drop(server);
    // A self-made certificate for the same names: curl refuses it.
    let self_key = work.path().join("self.key");
    let self_cert = work.path().join("self.crt");
    openssl_self_signed(
        &self_key,
        &self_cert,
        "1",
        "/CN=localhost",
        &["subjectAltName=DNS:localhost,URI:spiffe://prod.example/app"],
    );
    let server = TlsServer::start(&self_cert, None, &self_key);
    let (code, err) = curl(&bundle, server.port);
    assert_eq!(code, Some(60), "{err}");
    drop(server);

    // Refusals, each named, before the nonce is spent.
    let (good_csr, good_hash) = openssl_csr(
        work.path(),
        "good",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (ed_csr, ed_hash) = openssl_csr(work.path(), "ed", &["ed25519"]);
    let (rsa_csr, rsa_hash) = openssl_csr(work.path(), "rsa", &["rsa:2048"]);
    // One changed byte in the signature (the end of the DER).
    let der_b64: String = good_csr
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut der = base64::engine::general_purpose::STANDARD
        .decode(der_b64)
        .unwrap();
    *der.last_mut().unwrap() ^= 1;
    let bad_signature = base64::engine::general_purpose::STANDARD.encode(&der);
    for (case, bound, csr, error) in [
        (
            "a key the quote does not bind",
            &[7u8; 32][..],
            good_csr.as_str(),
            "unbound-key",
        ),
        (
            "an Ed25519 key",
            &ed_hash[..],
            ed_csr.as_str(),
            "unsupported-key-type",
        ),
        (
            "an RSA key",
            &rsa_hash[..],
            rsa_csr.as_str(),
            "unsupported-key-type",
        ),
        (
            "a changed signature byte",
            &good_hash[..],
            bad_signature.as_str(),
            "bad-csr-signature",
        ),
        ("not a CSR", &good_hash[..], "not a csr", "malformed-csr"),
    ] {
        let r = post_attest(&v, &p, bound, csr);
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (400, Some(error)),
            "{case}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // The bound CSR made by openssl: certified.
    let r = post_attest(&v, &p, &good_hash, &good_csr);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        pem_blocks(r.json()["certificate_chain"].as_str().unwrap()).len(),
        2
    );

    // A rejected enclave (platform not listed): EAR, no certificate, nothing written.
    let q = SimPlatform::start(&[]);
    let (k2, c2) = (work.path().join("k2"), work.path().join("c2"));
    let o = attest_key_cert(&v, &q, "", &k2, &c2);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!k2.exists() && !c2.exists());
    let (q_csr, q_hash) = openssl_csr(
        work.path(),
        "q",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let r = post_attest(&v, &q, &q_hash, &q_csr);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "contraindicated");
    assert!(r.json().get("certificate_chain").is_none());

    // `--csr FILE`: the caller's own key.
    let csr_file = work.path().join("good.csr");
    let c3 = work.path().join("c3");
    let o = attest(
        &v,
        &p,
        "",
        &[
            "--csr",
            csr_file.to_str().unwrap(),
            "--cert-out",
            c3.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    openssl_verify(&bundle, &c3);
    // Three certificates issued (--key-out, the posted CSR, --csr), none for the refusals.
    let m = fixtures::metric(
        &fixtures::scrape(v.addr),
        "las_verifier_certificates_issued_total",
    );
    assert_eq!(m, Some(3.0));
}

#[test]
fn replicas_sharing_the_secret_issue_under_one_ca_and_an_operator_ca_is_used_as_given() {
    let Some((p, work, policy_file)) = setup("workload certificates under a shared or operator CA")
    else {
        return;
    };

    // The Secret: the state files of a first start, copied as a Secret mount would be.
    let first = tempfile::tempdir().unwrap();
    drop(verifier(&policy_file, first.path(), &[]));
    let secret = tempfile::tempdir().unwrap();
    for f in [
        "ear-signing-key.pem",
        "nonce-key",
        "ca-key.pem",
        "ca-cert.pem",
    ] {
        std::fs::copy(first.path().join(f), secret.path().join(f)).unwrap();
    }
    let (s1, s2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let import = ["--import-keys-from", secret.path().to_str().unwrap()];
    let v1 = verifier(&policy_file, s1.path(), &import);
    let v2 = verifier(&policy_file, s2.path(), &import);
    let b1 = http::get(v1.addr, "/v1/ca").body;
    assert_eq!(b1, http::get(v2.addr, "/v1/ca").body);
    assert_eq!(
        b1,
        std::fs::read(secret.path().join("ca-cert.pem")).unwrap()
    );
    let bundle = work.path().join("bundle.pem");
    std::fs::write(&bundle, &b1).unwrap();
    // A certificate from replica 2 verifies with replica 1's bundle.
    let cert = work.path().join("c.pem");
    let o = attest_key_cert(&v2, &p, "", &work.path().join("k.pem"), &cert);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    openssl_verify(&bundle, &cert);
    drop((v1, v2));

    // An operator's CA (as cert-manager would make: P-256, CA:TRUE), and the old CA after
    // it in the certificate file during a rotation: both in the bundle, the new one issues.
    let (ca_key, ca_cert) = (work.path().join("op-ca.key"), work.path().join("op-ca.crt"));
    openssl_self_signed(
        &ca_key,
        &ca_cert,
        "30",
        "/O=operator/CN=operator CA",
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    std::fs::set_permissions(&ca_key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let rotated = work.path().join("rotated.crt");
    let mut both = std::fs::read(&ca_cert).unwrap();
    both.extend(std::fs::read(first.path().join("ca-cert.pem")).unwrap());
    std::fs::write(&rotated, &both).unwrap();
    let s3 = tempfile::tempdir().unwrap();
    let v3 = verifier(
        &policy_file,
        s3.path(),
        &[
            "--ca-cert",
            rotated.to_str().unwrap(),
            "--ca-key",
            ca_key.to_str().unwrap(),
        ],
    );
    let b3 = String::from_utf8(http::get(v3.addr, "/v1/ca").body).unwrap();
    assert_eq!(pem_blocks(&b3).len(), 2);
    assert_eq!(b3.as_bytes(), both.as_slice());
    let cert = work.path().join("c3.pem");
    let o = attest_key_cert(&v3, &p, "", &work.path().join("k3.pem"), &cert);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    openssl_verify(&ca_cert, &cert);
    // Not under the old CA alone.
    let o = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(first.path().join("ca-cert.pem"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(!o.status.success(), "verified under the old CA alone");
    drop(v3);

    // A key that is not the certificate's: the service does not start, naming it.
    let wrong = tempfile::tempdir().unwrap();
    let wrong_key = first.path().join("ca-key.pem");
    let mut cmd = verifier_command(
        &policy_file,
        wrong.path(),
        &[
            "--ca-cert",
            ca_cert.to_str().unwrap(),
            "--ca-key",
            wrong_key.to_str().unwrap(),
        ],
    );
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not for the CA key"), "{}", stderr(&o));
}

"""Workload certificates checked by implementations that share no code with ours: a real
LAS, a real `las verifier serve`, `las attest --key-out --cert-out` as the enclave;
Python's `ssl` module (OpenSSL underneath, through CPython) completes a TLS handshake
with `openssl s_server` serving the issued key and chain, trusting only the bundle of
`GET /v1/ca`, and checks the SPIFFE ID; a self-made certificate fails the handshake;
pkilint (RFC 5280 linter) finds no error in the issued leaf and CA certificates.

One pkilint finding is not an RFC 5280 error and is accepted by name, for the SPIFFE ID
only: pkilint 0.13 checks URIs with `validators.url`, which knows nine schemes (http,
https, ftp, ...) and calls every `spiffe://` URI invalid syntax. The URI is checked
against RFC 3986 here instead; any other finding fails the test."""
import base64
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import not_run

MRENCLAVE = "ab" * 32
MRSIGNER = "cd" * 32
TRUST_DOMAIN = "prod.example"
HOST = "app.prod.example"
# The SPIFFE ID grammar (a valid RFC 3986 URI): scheme, trust domain, path segments.
SPIFFE_RE = re.compile(r"^spiffe://[a-z0-9._-]+(/[A-Za-z0-9._-]+)+$")


def start(cmd, what):
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"listening on http://(\S+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    pytest.fail(f"{what} did not start")


def stop(proc):
    proc.terminate()
    proc.wait(timeout=15)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TlsServer:
    """`openssl s_server` on loopback with the given certificate, chain and key."""

    def __init__(self, cert, key, chain=None):
        self.port = free_port()
        cmd = ["openssl", "s_server", "-www", "-naccept", "10",
               "-accept", f"127.0.0.1:{self.port}", "-cert", str(cert), "-key", str(key)]
        if chain:
            cmd += ["-cert_chain", str(chain)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, "openssl s_server did not start"
                time.sleep(0.05)

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


def handshake(bundle, port):
    """A TLS client trusting only `bundle`; the peer's certificate as `ssl` decodes it."""
    ctx = ssl.create_default_context(cafile=str(bundle))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as tls:
            return tls.getpeercert()


@pytest.fixture()
def service(las_bin):
    if not shutil.which("openssl"):
        not_run("no openssl (scripts/test installs it from Debian)")
    procs = []
    state = tempfile.mkdtemp()
    p, addr = start([las_bin, "serve", "--mode", "sim", "--listen", "127.0.0.1:0",
                     "--state-dir", state], "las serve")
    procs.append(p)
    with urllib.request.urlopen(f"http://{addr}/v1/platform", timeout=10) as r:
        pid = json.load(r)["platform_id"]
    policy = Path(tempfile.mkdtemp()) / "policy.yaml"
    policy.write_text(
        'version: "0.3"\nsecurity:\n  attestation:\n    tolerate: [simulation]\n'
        "services:\n  - name: app\n"
        f'    attestation:\n      mrenclave: ["{MRENCLAVE}"]\n'
        f'      signer: {{mrsigner: "{MRSIGNER}", isvprodid: 3, isvsvn_min: 5}}\n'
        f'    platforms: ["{pid}"]\n    las_dns_names: [{HOST}]\n')
    p, vaddr = start([las_bin, "verifier", "serve", "--listen", "127.0.0.1:0", "--policy",
                      str(policy), "--state-dir", tempfile.mkdtemp(),
                      "--trust-domain", TRUST_DOMAIN], "las verifier serve")
    procs.append(p)
    yield (addr, state), f"http://{vaddr}"
    for p in procs:
        stop(p)


def test_python_ssl_trusts_the_issued_chain_and_pkilint_finds_no_error(service, las_bin):
    (las_addr, las_state), verifier = service
    work = Path(tempfile.mkdtemp())
    key, chain = work / "tls.key", work / "tls.crt"
    out = subprocess.run(
        [las_bin, "attest", "--verifier", verifier, "--service", "app", "--las", las_addr,
         "--state-dir", las_state, "--report-data", "", "--mrenclave", MRENCLAVE,
         "--mrsigner", MRSIGNER, "--isvprodid", "3", "--isvsvn", "5",
         "--key-out", str(key), "--cert-out", str(chain)],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    with urllib.request.urlopen(f"{verifier}/v1/ca", timeout=10) as r:
        assert r.headers["content-type"] == "application/pem-certificate-chain"
        bundle_pem = r.read().decode()
    bundle = work / "bundle.pem"
    bundle.write_text(bundle_pem)
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n",
                        chain.read_text(), re.S)
    assert len(blocks) == 2
    leaf, ca = work / "leaf.pem", work / "ca.pem"
    leaf.write_text(blocks[0])
    ca.write_text(blocks[1])
    assert blocks[1] in bundle_pem

    server = TlsServer(leaf, key, chain=ca)
    try:
        cert = handshake(bundle, server.port)
    finally:
        server.close()
    sans = cert["subjectAltName"]
    # The SPIFFE ID: exactly one URI SAN, for this trust domain and service.
    assert [v for k, v in sans if k == "URI"] == [f"spiffe://{TRUST_DOMAIN}/app"]
    assert ("DNS", HOST) in sans
    # Valid from the quote's time (as the EAR states it), for the default hour at most.
    payload = out.stdout.strip().split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    quoted = claims["submods"]["app"]["las.facts"]["quote_issued_at"]
    assert ssl.cert_time_to_seconds(cert["notBefore"]) == quoted
    lifetime = ssl.cert_time_to_seconds(cert["notAfter"]) - quoted
    assert 3600 <= lifetime <= 3600 + 120

    # A self-made certificate with the same names: the handshake fails.
    subprocess.run(
        ["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-days", "1", "-subj", f"/CN={HOST}",
         "-addext", f"subjectAltName=DNS:{HOST},URI:spiffe://{TRUST_DOMAIN}/app",
         "-keyout", str(work / "self.key"), "-out", str(work / "self.crt")],
        check=True, capture_output=True, timeout=60)
    server = TlsServer(work / "self.crt", work / "self.key")
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(bundle, server.port)
    finally:
        server.close()

    # pkilint: no RFC 5280 finding of severity ERROR or worse in the leaf and the CA,
    # but the one named in the module docstring (the SPIFFE URI, checked here instead).
    spiffe = f"spiffe://{TRUST_DOMAIN}/app"
    assert SPIFFE_RE.match(spiffe)
    known = f'pkix.invalid_uri_syntax (ERROR): Invalid URI syntax: "{spiffe}"'
    lint = shutil.which("lint_pkix_cert") or str(Path(sys.executable).parent / "lint_pkix_cert")
    for pem, allowed in ((leaf, {known}), (ca, set())):
        r = subprocess.run([lint, "lint", "-s", "ERROR", str(pem)],
                           capture_output=True, text=True, timeout=120)
        findings = {line.strip() for line in r.stdout.splitlines()
                    if re.search(r"\((ERROR|FATAL)\)", line)}
        assert findings <= allowed, f"{pem.name}:\n{r.stdout}{r.stderr}"
        assert r.returncode == (1 if findings else 0), f"{pem.name}:\n{r.stdout}{r.stderr}"
        # The linter does read our certificates: the known finding is there for the leaf.
        assert findings == allowed, f"{pem.name}:\n{r.stdout}"

"""An independent check of the verification service's answers: a real LAS, a real
`las verifier serve`, `las attest` as the enclave; PyJWT (with `cryptography`, sharing no
code with ours) verifies the EAR with nothing but the published JWKS, every documented
claim is checked, and a token with one changed signature character fails. Both forms the
service emits (`--ear-profile ietf`, the default, and `veraison`) are checked with each
form's own claim names."""
import base64
import hashlib
import json
import re
import subprocess
import tempfile
import time
import urllib.request

import jwt
import pytest

MRENCLAVE = "ab" * 32
MRSIGNER = "cd" * 32
APP_DATA = "c0ffee" * 4


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
    assert proc.wait(timeout=15) == 0


# The claim names of each form (draft-ietf-rats-ear-04, legacy Veraison).
PROFILES = {
    "ietf": {"tag": "tag:ietf.org,2026:rats/ear#04", "status": "ear_status",
             "tv": "ear_trustworthiness_vector", "vid": "ear_verifier_id"},
    "veraison": {"tag": "tag:github.com,2023:veraison/ear", "status": "ear.status",
                 "tv": "ear.trustworthiness-vector", "vid": "ear.verifier-id"},
}


@pytest.fixture(params=sorted(PROFILES))
def setup(las_bin, request):
    procs = []
    las = []
    for _ in range(2):
        state = tempfile.mkdtemp()
        p, addr = start([las_bin, "serve", "--mode", "sim", "--listen", "127.0.0.1:0",
                         "--state-dir", state], "las serve")
        procs.append(p)
        with urllib.request.urlopen(f"http://{addr}/v1/platform", timeout=10) as r:
            las.append((addr, state, json.load(r)["platform_id"]))
    policy = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    policy.write(
        'version: "0.3"\nname: demo\nsecurity:\n  attestation:\n    tolerate: [simulation]\n'
        "services:\n  - name: app\n    image_name: example/app\n    command: ./app\n"
        f'    attestation:\n      mrenclave: ["{MRENCLAVE}"]\n'
        f'      signer: {{mrsigner: "{MRSIGNER}", isvprodid: 3, isvsvn_min: 5}}\n'
        f'    platforms: ["{las[0][2]}"]\n')
    policy.close()
    p, vaddr = start([las_bin, "verifier", "serve", "--listen", "127.0.0.1:0", "--policy",
                      policy.name, "--state-dir", tempfile.mkdtemp(),
                      "--ear-profile", request.param], "las verifier serve")
    procs.append(p)
    with open(policy.name, "rb") as f:
        policy_digest = hashlib.sha256(f.read()).hexdigest()
    yield las, f"http://{vaddr}", policy_digest, request.param
    for p in procs:
        stop(p)


def attest(las_bin, verifier, las):
    addr, state, _ = las
    return subprocess.run(
        [las_bin, "attest", "--verifier", verifier, "--service", "app", "--las", addr,
         "--state-dir", state, "--report-data", APP_DATA, "--mrenclave", MRENCLAVE,
         "--mrsigner", MRSIGNER, "--isvprodid", "3", "--isvsvn", "5"],
        capture_output=True, text=True, timeout=60)


def jwks_keys(verifier):
    with urllib.request.urlopen(f"{verifier}/.well-known/jwks.json", timeout=10) as r:
        return jwt.PyJWKSet.from_dict(json.load(r))


def decode(token, keyset):
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keyset.keys if k.key_id == kid)
    return jwt.decode(token, key=key.key, algorithms=["ES256"],
                      options={"require": ["iat", "exp"]})


def test_pyjwt_verifies_the_ear_and_every_claim(setup, las_bin):
    las, verifier, policy_digest, profile = setup
    n = PROFILES[profile]
    keyset = jwks_keys(verifier)
    assert len(keyset.keys) == 1
    k = keyset.keys[0]
    assert k.key_type == "EC" and k.algorithm_name == "ES256"

    out = attest(las_bin, verifier, las[0])
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["typ"] == "JWT"
    claims = decode(token, keyset)
    assert claims["eat_profile"] == n["tag"]
    assert abs(claims["iat"] - time.time()) < 120
    assert claims["exp"] > claims["iat"]
    assert set(claims[n["vid"]]) == {"build", "developer"}
    nonce = base64.urlsafe_b64decode(claims["eat_nonce"] + "=" * (-len(claims["eat_nonce"]) % 4))
    assert len(nonce) == 56
    assert list(claims["submods"]) == ["app"]
    s = claims["submods"]["app"]
    assert s[n["status"]] == "warning"  # simulation is never affirming
    tv = s[n["tv"]]
    assert tv == {"instance-identity": 2, "configuration": 2, "executables": 2, "hardware": 32}
    if profile == "ietf":
        assert s["ear_appraisal_policy_ids"] == [f"policy:sha256:{policy_digest}"]
        assert claims["ear_status"] == "warning"
    else:
        assert s["ear.appraisal-policy-id"] == f"policy:sha256:{policy_digest}"
        assert "ear_status" not in claims and "ear_status" not in s
    f = s["las.facts"]
    assert f["platform_id"] == las[0][2]
    assert f["mode"] == "sim"
    assert f["mrenclave"] == MRENCLAVE and f["mrsigner"] == MRSIGNER
    assert f["isvprodid"] == 3 and f["isvsvn"] == 5
    assert f["tcb_status"] == "simulation"
    assert f["app_report_data"] == APP_DATA
    # What a relying party recomputes to bind the application's key to this enclave.
    assert f["report_data"] == hashlib.sha512(nonce + bytes.fromhex(APP_DATA)).hexdigest()
    assert s["las.reasons"] == []

    # One changed character of the signature: PyJWT refuses the token.
    head, payload, sig = token.split(".")
    i = len(sig) // 2
    bad = f"{head}.{payload}.{sig[:i]}{'A' if sig[i] != 'A' else 'B'}{sig[i + 1:]}"
    with pytest.raises(jwt.InvalidSignatureError):
        decode(bad, keyset)
    # A changed claim under the original signature: refused too.
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["submods"]["app"][n["status"]] = "affirming"
    p2 = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        decode(f"{head}.{p2}.{sig}", keyset)


def test_pyjwt_verifies_a_contraindicated_ear_with_its_reasons(setup, las_bin):
    las, verifier, _, profile = setup
    n = PROFILES[profile]
    out = attest(las_bin, verifier, las[1])  # a platform the policy does not list
    assert out.returncode == 1, out.stderr
    claims = decode(out.stdout.strip(), jwks_keys(verifier))
    s = claims["submods"]["app"]
    assert s[n["status"]] == "contraindicated"
    assert s[n["tv"]]["instance-identity"] == 97
    assert s["las.facts"]["platform_id"] == las[1][2]
    assert any(r["reason"] == "platform-not-allowed" and r["detail"] for r in s["las.reasons"])

"""An independent check of the quote and identity evidence formats: a real LAS issues a
quote and identity evidence, and Python's pycose (a COSE implementation that shares no
code with ours) verifies them with nothing but the platform public key; hashlib checks the
evidence's key/nonce binding. A flipped byte must fail."""
import base64
import hashlib
import json
import os
import subprocess
import urllib.request

import cbor2
import pytest
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message


@pytest.fixture()
def las(las_daemon):
    return las_daemon.addr, las_daemon.state


def get_json(addr, path):
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=10) as r:
        return json.load(r)


def get_quote(las_bin, addr, state, report_data="c0ffee"):
    out = subprocess.run(
        [las_bin, "quote", "--las", addr, "--state-dir", state, "--report-data", report_data,
         "--mrenclave", "ab" * 32, "--isvsvn", "4"],
        capture_output=True, text=True, check=True)
    return base64.b64decode(out.stdout.strip())


def decode(quote: bytes) -> Sign1Message:
    return Sign1Message.decode(quote)


def test_pycose_verifies_a_real_quote_with_the_platform_key(las, las_bin):
    addr, state = las
    platform = get_json(addr, "/v1/platform")
    key = OKPKey(crv=Ed25519, x=bytes.fromhex(platform["platform_id"]))
    quote = get_quote(las_bin, addr, state)
    assert quote[0] == 0xD2, "tagged COSE_Sign1"

    msg = decode(quote)
    msg.key = key
    assert msg.verify_signature()

    # The protected header names the platform key; the payload is the documented CBOR map.
    outer = cbor2.loads(quote)
    assert outer.tag == 18
    protected = cbor2.loads(outer.value[0])
    assert protected[1] == -8  # alg: EdDSA
    assert protected[4] == bytes.fromhex(platform["platform_id"])  # kid
    assert protected[3] == "application/vnd.las.quote+cbor"  # content type
    assert outer.value[1] == {}  # empty unprotected header
    payload = cbor2.loads(msg.payload)
    # Quote format 2 (docs/quote.md): the REPORT body once, raw; no decoded `enclave` map.
    assert payload["v"] == 2
    assert list(payload) == ["v", "mode", "platform_id", "las_version", "las_mrenclave",
                             "iat", "report_body"]
    assert "enclave" not in payload
    assert payload["mode"] == "sim"
    assert payload["platform_id"].hex().upper() == platform["platform_id"]
    # The enclave's fields, read from the raw body at the SDM offsets.
    body = payload["report_body"]
    assert len(body) == 384
    assert body[64:96] == bytes.fromhex("ab" * 32)  # MRENCLAVE
    assert int.from_bytes(body[258:260], "little") == 4  # ISVSVN
    assert body[320:384] == bytes.fromhex("c0ffee") + bytes(61)  # REPORTDATA
    assert int.from_bytes(body[48:56], "little") & 2 == 0  # ATTRIBUTES.FLAGS: not DEBUG
    assert msg.payload.count(body) == 1  # the body once in what the signature covers


def test_pycose_rejects_flipped_bytes_and_a_foreign_key(las, las_bin):
    addr, state = las
    platform = get_json(addr, "/v1/platform")
    key = OKPKey(crv=Ed25519, x=bytes.fromhex(platform["platform_id"]))
    quote = get_quote(las_bin, addr, state)
    # Flip one bit in the payload and in the signature: verification fails (or the
    # structure no longer decodes, which is a failure too).
    for pos in (len(quote) // 2, len(quote) - 1, 20):
        bad = bytearray(quote)
        bad[pos] ^= 0x01
        try:
            msg = decode(bytes(bad))
            msg.key = key
            ok = msg.verify_signature()
        except Exception:
            ok = False
        assert not ok, f"flipped byte {pos} still verifies"
    other = OKPKey.generate_key(crv=Ed25519)
    msg = decode(quote)
    msg.key = OKPKey(crv=Ed25519, x=other.x)
    assert not msg.verify_signature()


def get_evidence(addr, nonce: bytes) -> bytes:
    url = f"http://{addr}/v1/identity?nonce={nonce.hex()}"
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        return r.read()


def test_pycose_verifies_identity_evidence_and_its_binding(las):
    addr, _ = las
    platform = get_json(addr, "/v1/platform")
    pid = bytes.fromhex(platform["platform_id"])
    key = OKPKey(crv=Ed25519, x=pid)
    nonce = os.urandom(32)
    ev = get_evidence(addr, nonce)
    assert ev[0] == 0xD2, "tagged COSE_Sign1"

    msg = decode(ev)
    msg.key = key
    assert msg.verify_signature()

    outer = cbor2.loads(ev)
    assert outer.tag == 18
    protected = cbor2.loads(outer.value[0])
    assert protected[1] == -8  # alg: EdDSA
    assert protected[4] == pid  # kid
    assert protected[3] == "application/vnd.las.identity+cbor"
    assert outer.value[1] == {}
    payload = cbor2.loads(msg.payload)
    assert payload["v"] == 1
    assert payload["type"] == "sim"
    assert payload["mode"] == "sim"
    assert payload["platform_id"] == pid
    assert payload["nonce"] == nonce
    assert "dcap_quote" not in payload
    # The binding, computed here from its definition (las-core evidence.rs docs):
    # SHA-512("las-identity-binding-v1" || platform_id || nonce).
    assert payload["binding"] == hashlib.sha512(b"las-identity-binding-v1" + pid + nonce).digest()
    assert payload["cpusvn"].hex() == platform["cpusvn"].lower()
    assert payload["las_mrenclave"].hex() == platform["las_mrenclave"].lower()

    # Another nonce gives another binding; a flipped bit or another key fails.
    other = get_evidence(addr, bytes(32))
    assert cbor2.loads(decode(other).payload)["binding"] != payload["binding"]
    for pos in (len(ev) // 2, len(ev) - 1):
        bad = bytearray(ev)
        bad[pos] ^= 0x01
        try:
            m = decode(bytes(bad))
            m.key = key
            ok = m.verify_signature()
        except Exception:
            ok = False
        assert not ok, f"flipped byte {pos} still verifies"
    m = decode(ev)
    m.key = OKPKey(crv=Ed25519, x=OKPKey.generate_key(crv=Ed25519).x)
    assert not m.verify_signature()


@pytest.mark.parametrize("name,version", [("quote-v2.cose", 2), ("quote-v1.cose", 1)])
def test_pycose_verifies_the_committed_quote_vectors(repo, name, version):
    """tests/vectors/quote-v2.cose (format 2, issued) and quote-v1.cose (format 1, read),
    each pinned once: their key is the one derive_identity.py derives (from its definition,
    without our code) for seal key 01..01, and their payloads carry the inputs the README
    lists."""
    vectors = repo / "tests" / "vectors"
    ids = dict(line.split() for line in (vectors / "platform-ids.txt").read_text().splitlines()
               if line and not line.startswith("#"))
    pid = bytes.fromhex(ids["01" * 16])
    quote = (vectors / name).read_bytes()
    msg = decode(quote)
    msg.key = OKPKey(crv=Ed25519, x=pid)
    assert msg.verify_signature()
    assert cbor2.loads(cbor2.loads(quote).value[0])[4] == pid
    payload = cbor2.loads(msg.payload)
    assert payload["v"] == version and payload["mode"] == "sim"
    assert payload["platform_id"] == pid
    assert payload["las_version"] == "0.1.0"
    assert payload["las_mrenclave"] == bytes([5] * 32)
    assert payload["iat"] == 1_800_000_000
    body = payload["report_body"]
    assert body == (vectors / "quote-v1.report-body.bin").read_bytes()
    assert body[64:96] == bytes([2] * 32) and body[320:384] == bytes([9] * 64)
    if version == 1:
        # Format 1 also carried the body decoded.
        assert payload["enclave"]["mrenclave"] == body[64:96]
        assert payload["enclave"]["report_data"] == body[320:384]
    else:
        assert "enclave" not in payload and len(payload) == 7

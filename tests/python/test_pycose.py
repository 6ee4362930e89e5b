"""An independent check of the quote format: a real LAS issues a quote, and Python's
pycose (a COSE implementation that shares no code with ours) verifies it with nothing but
the platform public key. A flipped byte must fail."""
import base64
import json
import re
import subprocess
import tempfile
import time
import urllib.request

import cbor2
import pytest
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message


@pytest.fixture()
def las(las_bin):
    state = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [las_bin, "serve", "--mode", "sim", "--listen", "127.0.0.1:0", "--state-dir", state],
        stderr=subprocess.PIPE, text=True)
    addr = None
    deadline = time.time() + 20
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"listening on http://(\S+)", line)
        if m:
            addr = m.group(1)
            break
    assert addr, "las serve did not start"
    yield addr, state
    proc.terminate()
    assert proc.wait(timeout=15) == 0


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
    assert payload["v"] == 1
    assert payload["mode"] == "sim"
    assert payload["platform_id"].hex().upper() == platform["platform_id"]
    assert len(payload["report_body"]) == 384
    assert payload["enclave"]["mrenclave"] == bytes.fromhex("ab" * 32)
    assert payload["enclave"]["isvsvn"] == 4
    assert payload["enclave"]["report_data"] == bytes.fromhex("c0ffee") + bytes(61)
    assert payload["enclave"]["attributes"]["debug"] is False
    # The decoded fields agree with the raw report body (SDM offsets).
    body = payload["report_body"]
    assert body[64:96] == payload["enclave"]["mrenclave"]
    assert body[320:384] == payload["enclave"]["report_data"]
    assert int.from_bytes(body[258:260], "little") == 4


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

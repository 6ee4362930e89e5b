"""Independent check of the QE ID and PCK facts our code reads from a DCAP quote (issue 22
item 6): the real SGX sample quote in tests/vectors/dcap is parsed here with nothing of
ours (the header and certification data with `struct`, the PCK certificate with the
`cryptography` package, its SGX extension with a DER reader written here from X.690),
and compared with what `las tcb-state --dcap-quote FILE --json` prints. No expected value
is written down: both sides are computed from the file."""
import json
import struct
import subprocess

from cryptography import x509

SGX_EXTENSION = "1.2.840.113741.1.13.1"


def der_items(b: bytes):
    """(tag, value) of each TLV in `b` (definite lengths, one-byte tags)."""
    i = 0
    while i < len(b):
        tag = b[i]
        length = b[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(b[i:i + n], "big")
            i += n
        yield tag, b[i:i + length]
        i += length


def oid_str(v: bytes) -> str:
    first, arcs, n = v[0], [], 0
    for byte in v[1:]:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(n)
            n = 0
    return ".".join(str(x) for x in [first // 40, first % 40, *arcs])


def sgx_fields(ext: bytes) -> dict:
    """OID -> value of the SGX extension's SEQUENCE OF SEQUENCE {OID, value}, nested TCB
    components included."""
    out = {}
    [(tag, seq)] = list(der_items(ext))
    assert tag == 0x30
    for tag, item in der_items(seq):
        (t_oid, oid), (t_val, val) = list(der_items(item))[:2]
        out[oid_str(oid)] = (t_val, val)
        if t_val == 0x30:
            for _, comp in der_items(val):
                (_, c_oid), (ct, cv) = list(der_items(comp))[:2]
                out[oid_str(c_oid)] = (ct, cv)
    return out


def parse_quote(q: bytes) -> dict:
    version, key_type, tee_type, qe_svn, pce_svn = struct.unpack_from("<HHIHH", q, 0)
    assert version == 3 and tee_type == 0, (version, tee_type)
    vendor, user_data = struct.unpack_from("<16s20s", q, 12)
    offset = 48 + 384
    (sig_len,) = struct.unpack_from("<I", q, offset)
    offset += 4 + 64 + 64 + 384 + 64  # signature, attestation key, QE report, its signature
    (auth_len,) = struct.unpack_from("<H", q, offset)
    offset += 2 + auth_len
    cert_type, cert_len = struct.unpack_from("<HI", q, offset)
    assert cert_type == 5, cert_type
    pem = q[offset + 6:offset + 6 + cert_len]
    leaf = x509.load_pem_x509_certificates(pem.rstrip(b"\0"))[0]
    ext = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSION))
    f = sgx_fields(ext.value.value)
    pcesvn_tag, pcesvn = f[SGX_EXTENSION + ".2.17"]
    assert pcesvn_tag == 0x02
    return {
        "qe_id": user_data[:16].hex(),
        "ppid": f[SGX_EXTENSION + ".1"][1].hex(),
        "fmspc": f[SGX_EXTENSION + ".4"][1].hex(),
        "pce_id": f[SGX_EXTENSION + ".3"][1].hex(),
        "cpusvn": f[SGX_EXTENSION + ".2.18"][1].hex(),
        "pcesvn": int.from_bytes(pcesvn, "big"),
    }


def test_sample_quote_facts_agree_with_an_independent_parser(las_bin, repo):
    path = repo / "tests" / "vectors" / "dcap" / "sgx_quote"
    theirs = parse_quote(path.read_bytes())
    out = subprocess.run([las_bin, "tcb-state", "--dcap-quote", str(path), "--json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    ours = json.loads(out.stdout)
    for k, v in theirs.items():
        assert ours[k] == v, (k, ours[k], v)
    assert ours["state"] == "known" and ours["source"] == "dcap-quote"
    # The header's QE ID is the one SCONE prints: 16 bytes, 32 lower-case hex digits.
    assert len(ours["qe_id"]) == 32 and ours["qe_id"] == ours["qe_id"].lower()
    # A PCK certificate's PPID is 16 bytes and its FMSPC 6.
    assert len(bytes.fromhex(theirs["ppid"])) == 16 and len(bytes.fromhex(theirs["fmspc"])) == 6


def test_a_truncated_quote_is_an_error_not_a_crash(las_bin, tmp_path):
    q = tmp_path / "short"
    q.write_bytes(b"\x03\x00" + b"\x00" * 500)
    out = subprocess.run([las_bin, "tcb-state", "--dcap-quote", str(q), "--json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "DCAP quote" in out.stderr, out.stderr

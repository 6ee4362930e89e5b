"""Derives the identity vectors (platform-ids.txt, bindings.txt) from their written
definitions, with no code of ours: HKDF-SHA256 from RFC 5869 on Python's hmac/hashlib,
Ed25519 from the `cryptography` package. Run ONCE to write the files; the Rust tests only
read them. A change of the output is a change of every platform ID: never rerun this to
make a failing test pass.

    seed        = HKDF-SHA256(salt = none, ikm = seal key, info = "las platform identity v1", L = 32)
    platform ID = Ed25519 public key of seed (RFC 8032)
    binding     = SHA-512("las-identity-binding-v1" || platform ID || nonce)
"""
import hashlib
import hmac
import pathlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def platform_id(seal_key: bytes) -> bytes:
    seed = hkdf_sha256(b"", seal_key, b"las platform identity v1", 32)
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


here = pathlib.Path(__file__).parent
seal_keys = [bytes(16), bytes([1] * 16), bytes([3] * 16), bytes(range(16)), bytes([0xff] * 16),
             bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")]
lines = ["# seal key (16 bytes, hex)  platform ID (Ed25519 public key, hex)"]
lines += [f"{k.hex()} {platform_id(k).hex()}" for k in seal_keys]
(here / "platform-ids.txt").write_text("\n".join(lines) + "\n")

lines = ["# platform ID (hex)  nonce (hex)  binding = SHA-512(label || platform ID || nonce) (hex)"]
for k, nonce in [(bytes([1] * 16), bytes(16)), (bytes([3] * 16), bytes([0x5a] * 32)),
                 (bytes(range(16)), bytes(range(64)))]:
    pid = platform_id(k)
    lines.append(f"{pid.hex()} {nonce.hex()} {hashlib.sha512(b'las-identity-binding-v1' + pid + nonce).hexdigest()}")
(here / "bindings.txt").write_text("\n".join(lines) + "\n")

use super::*;
use crate::crypto::Key128;

/// The inputs of the committed vectors tests/vectors/quote-v{1,2}.cose (see the README
/// there): the REPORT body is the committed `quote-v1.report-body.bin`, read, not
/// written out again here.
pub(super) fn sample() -> (PlatformIdentity, QuoteClaims) {
    let id = PlatformIdentity::from_seal_key(&Key128::from_bytes([1; 16]));
    let body = include_bytes!("../../../../tests/vectors/quote-v1.report-body.bin");
    let claims = QuoteClaims {
        mode: Mode::Sim,
        platform_id: id.platform_id(),
        las_version: "0.1.0".into(),
        las_mrenclave: [5; 32],
        issued_at: 1_800_000_000,
        report_body: ReportBody::try_from_slice(body).unwrap(),
    };
    (id, claims)
}

/// A quote signed by `id` over `tree` as given (any format, any content).
fn signed(id: &PlatformIdentity, tree: &ciborium::Value) -> Vec<u8> {
    token::sign(id, QUOTE_CONTENT_TYPE, cbor::encode(tree).unwrap()).unwrap()
}

/// The payload tree of `claims` in `format` with `edit` applied to its entries.
fn edited(
    claims: &QuoteClaims,
    format: QuoteFormat,
    edit: impl FnOnce(&mut Vec<(ciborium::Value, ciborium::Value)>),
) -> ciborium::Value {
    let ciborium::Value::Map(mut m) = payload_tree(claims, format) else {
        panic!("a map");
    };
    edit(&mut m);
    ciborium::Value::Map(m)
}

/// Why the quote signed by `id` over `tree` is refused.
/// `TokenError` carries the COSE and CBOR libraries' errors, so it has no `PartialEq`:
/// compare by pattern.
macro_rules! assert_is {
    ($e:expr, $p:pat $(if $g:expr)?) => {{
        let e = &$e;
        assert!(matches!(e, $p $(if $g)?), "{e:?}");
    }};
    ($e:expr, $p:pat $(if $g:expr)?, $($msg:tt)+) => {{
        let e = &$e;
        assert!(matches!(e, $p $(if $g)?), "{e:?}: {}", format_args!($($msg)+));
    }};
}

fn refused(id: &PlatformIdentity, tree: &ciborium::Value) -> TokenError {
    decode_and_verify_quote(&signed(id, tree)).unwrap_err()
}

fn set(m: &mut [(ciborium::Value, ciborium::Value)], key: &str, v: ciborium::Value) {
    let e = m
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some(key))
        .unwrap();
    e.1 = v;
}

#[test]
fn a_las_issues_format_2_with_the_report_body_once() {
    let (id, claims) = sample();
    let q = encode_quote(&id, &claims).unwrap();
    let payload = token::open(&q, QUOTE_CONTENT_TYPE).unwrap().payload;
    let ciborium::Value::Map(m) = ciborium::from_reader(&payload[..]).unwrap() else {
        panic!("a map");
    };
    let keys: Vec<_> = m.iter().map(|(k, _)| k.as_text().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "v",
            "mode",
            "platform_id",
            "las_version",
            "las_mrenclave",
            "iat",
            "report_body"
        ]
    );
    assert_eq!(m[0].1, ciborium::Value::from(2u64));
    assert_eq!(QUOTE_VERSION, 2);
    // The 384 body bytes appear once in what the signature covers.
    let body = claims.report_body.to_bytes();
    let found = payload.windows(body.len()).filter(|w| *w == body).count();
    assert_eq!(found, 1);
    let got = decode_and_verify_quote(&q).unwrap();
    assert_eq!((got.claims, got.format), (claims, QuoteFormat::V2));
}

#[test]
fn format_1_is_still_read_and_its_decoded_copy_checked() {
    let (id, claims) = sample();
    let v1 = signed(&id, &payload_tree(&claims, QuoteFormat::V1));
    let got = decode_and_verify_quote(&v1).unwrap();
    assert_eq!((got.claims, got.format), (claims.clone(), QuoteFormat::V1));
    // A decoded field that disagrees with the raw body, validly signed: malformed.
    let mut lie = claims.clone();
    lie.report_body.mrenclave = [0xee; 32];
    let tree = edited(&claims, QuoteFormat::V1, |m| {
        set(m, "enclave", v1_enclave_tree(&lie.report_body));
    });
    assert_is!(refused(&id, &tree), TokenError::Inconsistent("mrenclave"));
    // Format 1 without its `enclave`: a missing field, not read as format 2.
    let tree = edited(&claims, QuoteFormat::V2, |m| set(m, "v", 1u64.into()));
    assert_is!(refused(&id, &tree), TokenError::Payload("enclave"));
}

/// Only versions 1 and 2 are read; every other `v`, a missing `v`, and a format-2
/// payload carrying format 1's `enclave` are refused, each signed validly.
#[test]
fn other_versions_and_mixed_formats_are_refused() {
    let (id, claims) = sample();
    for v in [0u64, 3, 255, u64::MAX] {
        for format in QuoteFormat::READ {
            let tree = edited(&claims, format, |m| set(m, "v", v.into()));
            let e = refused(&id, &tree);
            assert_is!(e, TokenError::UnsupportedQuoteFormat(got) if *got == v, "v {v}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("unsupported quote format {v}")),
                "{msg}"
            );
        }
    }
    for bad_v in [ciborium::Value::from(-1), "2".into(), ciborium::Value::Null] {
        let tree = edited(&claims, QuoteFormat::V2, |m| set(m, "v", bad_v.clone()));
        assert_is!(refused(&id, &tree), TokenError::Payload("v"), "{bad_v:?}");
    }
    let tree = edited(&claims, QuoteFormat::V2, |m| {
        m.retain(|(k, _)| k.as_text() != Some("v"))
    });
    assert_is!(refused(&id, &tree), TokenError::Payload("v"));
    // Format 2 with format 1's decoded copy, consistent and in format 1's place: an
    // unknown field (fail closed), not a format-1 quote with the wrong number.
    let tree = edited(&claims, QuoteFormat::V1, |m| set(m, "v", 2u64.into()));
    assert_is!(
        refused(&id, &tree),
        TokenError::Payload("payload (unknown field)")
    );
    // The error text names what is read.
    let read: Vec<String> = QuoteFormat::READ.iter().map(|f| f.to_string()).collect();
    assert!(
        TokenError::UnsupportedQuoteFormat(9)
            .to_string()
            .ends_with(&format!("reads formats {})", read.join(" and ")))
    );
    assert_eq!(QuoteFormat::from_version(1), Some(QuoteFormat::V1));
    assert_eq!(QuoteFormat::from_version(2), Some(QuoteFormat::V2));
    assert_eq!(QuoteFormat::from_version(3), None);
}

#[test]
fn round_trip() {
    let (id, claims) = sample();
    let q = encode_quote(&id, &claims).unwrap();
    assert_eq!(q[0], 0xd2, "tagged COSE_Sign1 (tag 18)");
    assert_eq!(decode_and_verify_quote(&q).unwrap().claims, claims);
}

#[test]
fn signed_data_is_what_the_platform_key_signed() {
    let (id, claims) = sample();
    let q = encode_quote(&id, &claims).unwrap();
    let u = decode_quote(&q).unwrap();
    let d = u.signed_data().unwrap();
    assert_eq!(d.key, id.platform_id());
    assert_eq!(
        &d.signature[..],
        &q[q.len() - 64..],
        "the signature ends the token"
    );
    let vk = d.key.verifying_key().unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&d.signature);
    vk.verify_strict(&d.message, &sig).unwrap();
    let mut other = d.message.clone();
    other[20] ^= 1;
    assert!(vk.verify_strict(&other, &sig).is_err());
    assert_eq!(u.verify().unwrap().claims, claims);
    // A bad signature decodes (the batch sees it) but does not verify.
    let mut bad = q.clone();
    let at = q.len() - 32;
    bad[at] ^= 1;
    assert!(decode_quote(&bad).unwrap().verify().is_err());
}

#[test]
fn every_bit_flip_and_every_byte_inversion_is_rejected() {
    let (id, claims) = sample();
    for format in QuoteFormat::READ {
        every_bit_flip_is_rejected(&signed(&id, &payload_tree(&claims, format)));
    }
}

fn every_bit_flip_is_rejected(q: &[u8]) {
    assert!(decode_and_verify_quote(q).is_ok());
    // Each of the 8 bits of every byte alone, then the whole byte.
    for i in 0..q.len() {
        for mask in (0..8).map(|b| 1u8 << b).chain([0xff]) {
            let mut bad = q.to_vec();
            bad[i] ^= mask;
            assert!(
                decode_and_verify_quote(&bad).is_err(),
                "byte {i} ^ {mask:#04x}"
            );
        }
    }
    for len in 0..q.len() {
        assert!(
            decode_and_verify_quote(&q[..len]).is_err(),
            "truncated to {len}"
        );
    }
    let mut longer = q.to_vec();
    longer.push(0);
    assert!(decode_and_verify_quote(&longer).is_err());
}

fn non_canonical(r: Result<VerifiedQuote, TokenError>, what: &str) {
    assert!(
        matches!(r, Err(TokenError::NonCanonical(_))),
        "{what}: {r:?}"
    );
}

/// Splices `with` in place of the first occurrence of `find`.
fn splice(b: &[u8], find: &[u8], with: &[u8]) -> Vec<u8> {
    let i = b.windows(find.len()).position(|w| w == find).unwrap();
    [&b[..i], with, &b[i + find.len()..]].concat()
}

/// Each encoding a LAS does not write is refused with the named error, even where the
/// signature is valid (the payload re-signed, or the envelope changed outside what the
/// signature covers).
#[test]
fn only_the_canonical_encoding_is_accepted() {
    let (id, claims) = sample();
    // The encoder is deterministic and its output is canonical.
    assert_eq!(
        encode_quote(&id, &claims).unwrap(),
        encode_quote(&id, &claims).unwrap()
    );
    assert_eq!(
        encode_quote(&id, &claims).unwrap(),
        signed(&id, &payload_tree(&claims, QuoteFormat::V2))
    );
    for format in QuoteFormat::READ {
        only_the_canonical_encoding_of(&id, &claims, format);
    }
}

fn only_the_canonical_encoding_of(id: &PlatformIdentity, claims: &QuoteClaims, f: QuoteFormat) {
    let good = signed(id, &payload_tree(claims, f));
    let payload = token::open(&good, QUOTE_CONTENT_TYPE).unwrap().payload;
    let got = decode_and_verify_quote(&good).unwrap();
    assert_eq!((&got.claims, got.format), (claims, f));
    let resign = |p: Vec<u8>| token::sign(id, QUOTE_CONTENT_TYPE, p).unwrap();
    // Re-signing the canonical payload gives the same bytes (Ed25519 is deterministic).
    assert_eq!(resign(payload.clone()), good);

    // Envelope: an indefinite-length array, and a byte after the end. Neither touches
    // what the signature covers.
    assert_eq!(good[1], 0x84, "array of 4");
    let indefinite = [&[0xd2, 0x9f], &good[2..], &[0xff]].concat();
    non_canonical(decode_and_verify_quote(&indefinite), "indefinite envelope");
    let mut trailing = good.clone();
    trailing.push(0x00);
    non_canonical(decode_and_verify_quote(&trailing), "trailing byte");
    // The signature's bstr with a 2-byte length (0x59 0x0040 for 64).
    let long_len = splice(&good, &[0x58, 0x40], &[0x59, 0x00, 0x40]);
    non_canonical(decode_and_verify_quote(&long_len), "long signature length");

    // Payload (re-signed): indefinite map, a small integer in 2 bytes, indefinite
    // bytes, a duplicated key, keys out of order, a byte after the map.
    // Format 1: a map of 8 (with `enclave`); format 2: of 7.
    let n: u8 = match f {
        QuoteFormat::V1 => 8,
        QuoteFormat::V2 => 7,
    };
    assert_eq!(payload[0], 0xa0 + n, "map of {n}");
    let p = [&[0xbf], &payload[1..], &[0xff]].concat();
    non_canonical(decode_and_verify_quote(&resign(p)), "indefinite map");
    let v = u8::try_from(f.version()).unwrap();
    let v1 = [0x61, b'v', v];
    let p = splice(&payload, &v1, &[0x61, b'v', 0x18, v]);
    non_canonical(decode_and_verify_quote(&resign(p)), "2-byte small int");
    let mut pid = vec![0x6b];
    pid.extend_from_slice(b"platform_id");
    let mut chunked = pid.clone();
    chunked.extend_from_slice(&[0x5f, 0x58, 0x20]);
    pid.extend_from_slice(&[0x58, 0x20]);
    let i = payload.windows(pid.len()).position(|w| w == pid).unwrap() + pid.len();
    let p = [&chunked[..], &payload[i..i + 32], &[0xff]].concat();
    let p = [&payload[..i - pid.len()], &p[..], &payload[i + 32..]].concat();
    non_canonical(decode_and_verify_quote(&resign(p)), "indefinite bytes");
    let p = [&[0xa1 + n], &payload[1..], &v1[..]].concat();
    non_canonical(decode_and_verify_quote(&resign(p)), "duplicate key");
    let ciborium::Value::Map(mut m) = ciborium::from_reader(&payload[..]).unwrap() else {
        panic!("a map");
    };
    m.swap(0, 1);
    let p = cbor::encode(&ciborium::Value::Map(m)).unwrap();
    non_canonical(decode_and_verify_quote(&resign(p)), "keys out of order");
    if f == QuoteFormat::V1 {
        // Keys out of order inside format 1's `enclave` map.
        let tree = edited(claims, f, |m| {
            let e = m.iter_mut().find(|(k, _)| k.as_text() == Some("enclave"));
            let Some((_, ciborium::Value::Map(e))) = e else {
                panic!("an enclave map");
            };
            e.swap(0, 1);
        });
        non_canonical(decode_and_verify_quote(&signed(id, &tree)), "enclave keys");
    }
    let mut p = payload.clone();
    p.push(0xf6);
    non_canonical(
        decode_and_verify_quote(&resign(p)),
        "trailing byte in payload",
    );
}

/// The protected header is inside a byte string that the signature covers as sent: a
/// LAS-signed token with its header parameters reordered verifies, and is refused.
#[test]
fn a_reordered_protected_header_is_refused() {
    use coset::{CoseSign1, ProtectedHeader, TaggedCborSerializable};
    let (id, claims) = sample();
    let good = encode_quote(&id, &claims).unwrap();
    let sign1 = CoseSign1::from_tagged_slice(&good).unwrap();
    let h = sign1.protected.header.clone();
    // {4: kid, 1: -8, 3: content type}: kid first (a LAS writes alg first).
    let map = ciborium::Value::Map(vec![
        (4.into(), ciborium::Value::Bytes(h.key_id.clone())),
        (1.into(), (-8).into()),
        (3.into(), QUOTE_CONTENT_TYPE.into()),
    ]);
    let raw = cbor::encode(&map).unwrap();
    let mut forged = CoseSign1 {
        protected: ProtectedHeader {
            original_data: Some(raw.clone()),
            header: ProtectedHeader::from_cbor_bstr(ciborium::Value::Bytes(raw))
                .unwrap()
                .header,
        },
        ..sign1
    };
    let tbs = forged.tbs_data(b"");
    forged.signature = id.sign(&tbs).to_vec();
    let bytes = forged.to_tagged_vec().unwrap();
    assert_ne!(bytes, good);
    let r = decode_and_verify_quote(&bytes);
    assert!(
        matches!(r, Err(TokenError::NonCanonical(w)) if w.contains("protected header")),
        "{r:?}"
    );
}

#[test]
fn a_kid_that_disagrees_with_the_platform_id_is_rejected() {
    let (id, claims) = sample();
    let other = PlatformIdentity::from_seal_key(&Key128::from_bytes([2; 16]));
    let mut forged = claims.clone();
    forged.platform_id = other.platform_id();
    // Signed by `id` (kid = id) but the payload names `other`.
    let q = token::sign(&id, QUOTE_CONTENT_TYPE, {
        let good = encode_quote(&other, &forged).unwrap();
        token::open(&good, QUOTE_CONTENT_TYPE).unwrap().payload
    })
    .unwrap();
    assert!(matches!(
        decode_and_verify_quote(&q),
        Err(TokenError::Inconsistent("platform_id (kid)"))
    ));
}

#[test]
fn a_key_swapped_in_kid_and_platform_id_fails_the_signature_check() {
    use coset::{CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
    let (id, claims) = sample();
    let other = PlatformIdentity::from_seal_key(&Key128::from_bytes([2; 16]));
    let mut forged = claims.clone();
    forged.platform_id = other.platform_id();
    let payload = {
        let good = encode_quote(&other, &forged).unwrap();
        token::open(&good, QUOTE_CONTENT_TYPE).unwrap().payload
    };
    // kid and platform_id both name `other`, consistently; the signature is `id`'s.
    let forge = |signer: &PlatformIdentity| {
        CoseSign1Builder::new()
            .protected(
                HeaderBuilder::new()
                    .algorithm(iana::Algorithm::EdDSA)
                    .key_id(other.platform_id().0.to_vec())
                    .content_type(QUOTE_CONTENT_TYPE.to_owned())
                    .build(),
            )
            .payload(payload.clone())
            .create_signature(b"", |tbs| signer.sign(tbs).to_vec())
            .build()
            .to_tagged_vec()
            .unwrap()
    };
    assert!(matches!(
        decode_and_verify_quote(&forge(&id)),
        Err(TokenError::Signature)
    ));
    // The same bytes signed by the key they name verify: only the signature differed.
    assert_eq!(
        decode_and_verify_quote(&forge(&other)).unwrap().claims,
        forged
    );
}

/// Refusals before the signature carry what refused them: the size, or coset's own
/// error as the typed source (not its text).
#[test]
fn oversized_and_non_cose_tokens_carry_their_cause() {
    use std::error::Error as _;
    let big = vec![0u8; crate::MAX_TOKEN_SIZE + 1];
    let e = decode_and_verify_quote(&big).unwrap_err();
    assert_is!(e, TokenError::TooLarge(n) if *n == crate::MAX_TOKEN_SIZE + 1);
    assert!(e.to_string().contains("more than the 65536 allowed"), "{e}");
    // Canonical CBOR (an empty map), but not a tagged COSE_Sign1.
    let e = decode_and_verify_quote(&[0xa0]).unwrap_err();
    assert_is!(e, TokenError::Cose(_));
    let source = e.source().expect("coset's error is the source");
    assert!(source.is::<coset::CoseError>(), "{source:?}");
    assert!(
        e.to_string().starts_with("not a tagged COSE_Sign1: "),
        "{e}"
    );
}

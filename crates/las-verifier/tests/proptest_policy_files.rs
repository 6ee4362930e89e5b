//! Malformed and hostile policy files give errors, never panics, and in bounded time:
//! deep nesting, huge lists, wrong types at every field, non-UTF-8, aliases, tags, huge
//! scalars; plus random bytes and random edits of a valid policy (proptest).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::time::{Duration, Instant};

use las_verifier::Policy;
use proptest::prelude::*;

const ID: &str = "2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151";

fn valid() -> String {
    format!(
        "version: \"0.3\"\nname: s\nsecurity:\n  attestation:\n    mode: hardware\n    tolerate: [simulation, debug-mode]\n    ignore_advisories: [INTEL-SA-00289]\n    trusted_scone_qe_pubkeys: [\"{ID}\"]\n    trusted_las:\n      - mrsigner: \"{ID}\"\n        isvprodid: 1\n        isvsvn_min: 2\nservices:\n  - name: app\n    attestation:\n      - mrenclave: [\"{ID}\"]\n      - signer: {{mrsigner: \"{ID}\", isvprodid: 1, isvsvn_min: 2, isvsvn_max: 9}}\n    platforms: [\"{ID}\"]\n"
    )
}

/// Parses with a time bound; returns whether it parsed.
fn parse(what: &str, bytes: &[u8]) -> bool {
    let t = Instant::now();
    let r = Policy::from_yaml(bytes);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "{what}: {took:?} for {} bytes",
        bytes.len()
    );
    if let Err(e) = &r {
        let m = e.to_string();
        assert!(!m.is_empty(), "{what}: empty error message");
        assert!(m.len() < 4096, "{what}: a {} byte error message", m.len());
    }
    r.is_ok()
}

#[test]
fn the_valid_policy_parses() {
    assert!(parse("valid", valid().as_bytes()));
}

#[test]
fn deep_nesting_is_an_error() {
    let n = 200_000;
    let cases = [
        (
            "flow sequences",
            format!("services: {}{}", "[".repeat(n), "]".repeat(n)),
        ),
        (
            "flow maps",
            format!("services: {}x{}", "{a: ".repeat(n), "}".repeat(n)),
        ),
        (
            "nested in a read field",
            format!(
                "services:\n  - name: a\n    attestation: {}{}\n",
                "[".repeat(n),
                "]".repeat(n)
            ),
        ),
        (
            "nested in an ignored field",
            format!(
                "secrets: {}{}\nservices: []\n",
                "[".repeat(n),
                "]".repeat(n)
            ),
        ),
    ];
    for (what, y) in cases {
        // Refused before the YAML parser sees it: at once, not in minutes.
        let t = Instant::now();
        let e = Policy::from_yaml(y.as_bytes()).unwrap_err().to_string();
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{what}: {:?}",
            t.elapsed()
        );
        assert!(e.contains("flow collections"), "{what}: {e}");
    }
    // Block sequences nest without the parser's flow-collection cost: refused by type.
    assert!(!parse(
        "block sequences",
        format!("services:\n{}x\n", "- ".repeat(n)).as_bytes()
    ));
    // Moderate nesting goes to the parser, which refuses it by type, quickly.
    let y = format!("services: {}{}", "[".repeat(2000), "]".repeat(2000));
    assert!(!parse("2000 levels", y.as_bytes()));
}

#[test]
fn a_large_real_policy_is_within_the_flow_bound() {
    // 1000 services with three flow collections each (250 KB).
    let svc: String = (0..1000)
        .map(|i| format!("  - name: app{i}\n    image_name: registry.example.com/app{i}:1.0\n    attestation: {{mrenclave: [\"{ID}\"]}}\n    platforms: [\"{ID}\"]\n"))
        .collect();
    let y = format!("services:\n{svc}");
    assert!(
        las_verifier::policy::flow_work(y.as_bytes()) < las_verifier::policy::MAX_FLOW_WORK / 2
    );
    assert!(parse("1000 services", y.as_bytes()));
}

#[test]
fn huge_lists_parse_or_fail_in_bounded_time() {
    // 60 000 platform IDs: about 4 MiB, just under the size cap. Valid, so accepted.
    let ids = vec![format!("\"{ID}\""); 60_000].join(",");
    let y = format!(
        "services:\n  - name: a\n    attestation: {{mrenclave: [\"{ID}\"]}}\n    platforms: [{ids}]\n"
    );
    assert!(y.len() < las_verifier::policy::MAX_POLICY_SIZE);
    assert!(parse("60 000 platforms", y.as_bytes()));
    // 400 000 tiny services in an ignored field, and as services (names must differ:
    // they are all `a`, so the duplicate check fails; it must not be quadratic).
    let many = "- a\n".repeat(400_000);
    assert!(!parse(
        "400 000 list items",
        format!("x: 1\nsecrets:\n{many}services: 5\n").as_bytes()
    ));
    let services = "  - name: a\n".repeat(200_000);
    assert!(!parse(
        "200 000 services",
        format!("services:\n{services}").as_bytes()
    ));
    // Over the size cap: refused before parsing.
    let big = format!(
        "services: []\n#{}\n",
        "x".repeat(las_verifier::policy::MAX_POLICY_SIZE)
    );
    assert!(!parse("over the cap", big.as_bytes()));
}

#[test]
fn wrong_types_at_every_field_are_errors() {
    let fields: &[(&str, &[&str])] = &[
        ("security", &["5", "[1]", "\"x\"", "true"]),
        ("security.attestation", &["5", "[1]", "\"x\""]),
        (
            "security.attestation.mode",
            &["5", "[1]", "{a: 1}", "\"hw\"", "null2"],
        ),
        (
            "security.attestation.tolerate",
            &[
                "5",
                "simulation",
                "[5]",
                "[[simulation]]",
                "{a: 1}",
                "[everything]",
            ],
        ),
        (
            "security.attestation.trusted_scone_qe_pubkeys",
            &["5", "\"x\"", "[5]", "[\"00\"]", "[[]]"],
        ),
        (
            "security.attestation.trusted_las",
            &[
                "5",
                "[5]",
                "[{}]",
                "[{mrenclave: 5}]",
                "[{isvsvn_min: 1}]",
                "[{mrsigner: \"00\"}]",
                "[{bogus: 1}]",
            ],
        ),
        (
            "security.attestation.ignore_advisories",
            &["5", "[[1]]", "{a: 1}"],
        ),
        ("services", &["5", "\"x\"", "{a: 1}", "[5]", "[[]]"]),
        ("services[0].name", &["[1]", "{a: 1}", "\"\"", "\"  \""]),
        (
            "services[0].platforms",
            &["5", "\"x\"", "[5]", "[\"zz\"]", "[\"00\"]"],
        ),
        (
            "services[0].attestation",
            &[
                "5",
                "\"x\"",
                "[]",
                "{}",
                "[5]",
                "{mrenclave: 5}",
                "{mrenclave: [5]}",
                "{signer: 5}",
                "{signer: {}}",
                "{signer: {mrsigner: 5}}",
                "{bogus: 1}",
            ],
        ),
        (
            "services[0].attestation.signer.isvprodid",
            &[
                "-1",
                "65536",
                "1e3",
                "\"1\"",
                "[1]",
                "0x1ffff",
                "99999999999999999999999",
            ],
        ),
        (
            "services[0].attestation.signer.isvsvn_min",
            &["-1", "65536", "abc", "{}"],
        ),
        (
            "services[0].attestation.signer.isvsvn_max",
            &["-1", "70000", "[]"],
        ),
    ];
    let mut tried = 0;
    for (path, values) in fields {
        for v in *values {
            let y = with_value(path, v);
            assert!(
                !parse(&format!("{path} = {v}"), y.as_bytes()),
                "{path} = {v} parsed:\n{y}"
            );
            tried += 1;
        }
    }
    println!("policy files / wrong types: {tried} values, all errors");
}

/// A valid policy with the field at `path` set to the YAML `value`.
fn with_value(path: &str, value: &str) -> String {
    let sig = format!("mrsigner: \"{ID}\"");
    match path {
        "security" => format!("security: {value}\n"),
        "security.attestation" => format!("security:\n  attestation: {value}\n"),
        p if p.starts_with("security.attestation.") => {
            let f = &p["security.attestation.".len()..];
            format!("security:\n  attestation:\n    {f}: {value}\n")
        }
        "services" => format!("services: {value}\n"),
        "services[0].name" => format!("services:\n  - name: {value}\n"),
        "services[0].platforms" => format!("services:\n  - name: a\n    platforms: {value}\n"),
        "services[0].attestation" => format!("services:\n  - name: a\n    attestation: {value}\n"),
        p if p.starts_with("services[0].attestation.signer.") => {
            let f = &p["services[0].attestation.signer.".len()..];
            format!(
                "services:\n  - name: a\n    attestation:\n      signer: {{{sig}, {f}: {value}}}\n"
            )
        }
        _ => unreachable!("{path}"),
    }
}

/// Each refusal of the file as a whole is its own variant with its typed cause, and the
/// message users see is unchanged: size, UTF-8 (with std's error as the source), flow
/// bound, and the YAML parser's error (kept whole, with its line; shown shortened, and not
/// a `source()` that a cause-chain printer would print unshortened).
#[test]
fn file_level_refusals_are_typed() {
    use las_verifier::PolicyError;
    use las_verifier::policy::{MAX_FLOW_WORK, MAX_POLICY_SIZE};
    use std::error::Error as _;

    let big = vec![b' '; MAX_POLICY_SIZE + 1];
    let e = Policy::from_yaml(&big).unwrap_err();
    assert!(
        matches!(e, PolicyError::TooLarge(n) if n == MAX_POLICY_SIZE + 1),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "policy is {} bytes, more than the {MAX_POLICY_SIZE} allowed",
            MAX_POLICY_SIZE + 1
        )
    );

    let mut b = valid().into_bytes();
    b.insert(10, 0xff);
    let e = Policy::from_yaml(&b).unwrap_err();
    assert!(
        matches!(e, PolicyError::NotUtf8(u) if u.valid_up_to() == 10),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "policy is not UTF-8 (byte 10)");
    assert!(e.source().is_some_and(|s| s.is::<std::str::Utf8Error>()));

    let n = 50_000;
    let flow = format!("services: {}{}", "[".repeat(n), "]".repeat(n));
    assert!(las_verifier::policy::flow_work(flow.as_bytes()) > MAX_FLOW_WORK);
    let e = Policy::from_yaml(flow.as_bytes()).unwrap_err();
    assert!(
        matches!(e, PolicyError::FlowWork { openers, size } if openers == n && size == flow.len()),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("policy has {n} flow collections")),
        "{e}"
    );

    // A huge scalar where a number belongs: the parser's message quotes it.
    let huge = "9".repeat(100_000);
    let y =
        format!("services:\n  - name: a\n    attestation:\n      signer: {{isvprodid: {huge}}}\n");
    let e = Policy::from_yaml(y.as_bytes()).unwrap_err();
    let PolicyError::Yaml(inner) = &e else {
        panic!("{e:?}");
    };
    assert_eq!(inner.location().map(|l| l.line()), Some(4), "{inner}");
    assert!(inner.to_string().len() > 100_000);
    let shown = e.to_string();
    assert!(
        shown.len() < 2_000 && shown.contains("characters left out"),
        "{shown}"
    );
    assert!(e.source().is_none());
}

#[test]
fn non_utf8_aliases_tags_and_odd_documents() {
    let v = valid();
    // (what, bytes, parses?); `None`: either is fine, only no panic and bounded time (an
    // empty policy parses but has no service, so it accepts nothing).
    let mut cases: Vec<(String, Vec<u8>, Option<bool>)> = Vec::new();
    // Invalid UTF-8 at the start, in a key, in a value, at the end.
    for at in [0, 10, v.len() / 2, v.len()] {
        let mut b = v.as_bytes().to_vec();
        b.insert(at, 0xff);
        cases.push((format!("0xff at {at}"), b, Some(false)));
    }
    cases.push((
        "lone surrogate (CESU)".into(),
        [v.as_bytes(), b"\xed\xa0\x80"].concat(),
        Some(false),
    ));
    cases.push((
        "UTF-16 BOM".into(),
        [b"\xff\xfe".as_slice(), v.as_bytes()].concat(),
        Some(false),
    ));
    cases.push((
        "NUL".into(),
        v.replace("name: app", "name: a\0pp").into_bytes(),
        Some(false),
    ));
    // Billion laughs aimed at a field the verifier reads.
    let laughs = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
    cases.push((
        "billion laughs in services[0].platforms".into(),
        format!("{laughs}services:\n  - name: a\n    platforms: *h\n").into_bytes(),
        Some(false),
    ));
    cases.push((
        "billion laughs in an ignored field".into(),
        format!("{laughs}services: []\n").into_bytes(),
        None,
    ));
    // Anchors and aliases used sensibly: the same as writing it out.
    cases.push((
        "alias of an ID".into(),
        format!("security:\n  attestation:\n    trusted_scone_qe_pubkeys: [&k \"{ID}\"]\nservices:\n  - name: a\n    attestation: {{mrenclave: [*k]}}\n    platforms: [*k]\n").into_bytes(),
        Some(true),
    ));
    cases.push((
        "recursive alias".into(),
        b"a: &a [*a]\nservices: []\n".to_vec(),
        None,
    ));
    cases.push((
        "undefined alias".into(),
        b"services: *nope\n".to_vec(),
        Some(false),
    ));
    cases.push((
        "!!binary tag".into(),
        b"services:\n  - name: !!binary aGVsbG8=\n".to_vec(),
        None,
    ));
    cases.push((
        "custom tag".into(),
        b"services: !evil [1]\n".to_vec(),
        Some(false),
    ));
    cases.push(("merge key".into(), format!("base: &b {{name: a}}\nservices:\n  - <<: *b\n    attestation: {{mrenclave: [\"{ID}\"]}}\n").into_bytes(), Some(false)));
    cases.push((
        "duplicate key".into(),
        b"services: []\nservices: []\n".to_vec(),
        Some(false),
    ));
    cases.push((
        "two documents".into(),
        b"services: []\n---\nservices: []\n".to_vec(),
        Some(false),
    ));
    cases.push(("document end only".into(), b"...\n".to_vec(), Some(false)));
    cases.push(("empty".into(), b"".to_vec(), None));
    cases.push(("only a comment".into(), b"# nothing\n".to_vec(), None));
    cases.push((
        "a 4 MB scalar".into(),
        format!("services:\n  - name: {}\n", "n".repeat(4_000_000)).into_bytes(),
        Some(true),
    ));
    cases.push((
        "tabs for indentation".into(),
        b"services:\n\t- name: a\n".to_vec(),
        Some(false),
    ));
    cases.push(("JSON".into(), format!("{{\"services\": [{{\"name\": \"a\", \"attestation\": {{\"mrenclave\": [\"{ID}\"]}}}}]}}").into_bytes(), Some(true)));
    cases.push(("a 10^6-digit number".into(), format!("services:\n  - name: a\n    attestation: {{signer: {{mrsigner: \"{ID}\", isvsvn_min: {}}}}}\n", "9".repeat(1_000_000)).into_bytes(), Some(false)));
    for (what, bytes, ok) in &cases {
        let parsed = parse(what, bytes);
        println!("  {what}: {}", if parsed { "parsed" } else { "error" });
        if let Some(ok) = ok {
            assert_eq!(parsed, *ok, "{what}");
        }
    }
    println!(
        "policy files / hostile documents: {} cases, no panic",
        cases.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..512)) {
        parse("random bytes", &b);
    }

    #[test]
    fn random_text_from_yaml_characters_never_panics(
        s in "[-a-z0-9:{}\\[\\],&*!|>'\"#%@` \n\t.?<=]{0,400}"
    ) {
        parse("random YAML-ish text", s.as_bytes());
    }

    /// Random edits of the valid policy: no panic, and whatever parses still holds the
    /// validated invariants.
    #[test]
    fn edits_of_a_valid_policy_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8)
    ) {
        let mut b = valid().into_bytes();
        for (i, x, op) in edits {
            let at = i.index(b.len() + 1);
            match op {
                0 if at < b.len() => b[at] = x,
                1 if at < b.len() => { b.remove(at); }
                _ => b.insert(at, x),
            }
        }
        if let Ok(p) = Policy::from_yaml(&b) {
            for s in p.services() {
                prop_assert!(!s.name.trim().is_empty());
                if let Some(alts) = &s.attestation {
                    prop_assert!(!alts.0.is_empty());
                    for a in &alts.0 {
                        prop_assert!(!a.mrenclave.is_empty() || a.signer.is_some());
                        if let Some(sg) = &a.signer
                            && let (Some(lo), Some(hi)) = (sg.isvsvn_min, sg.isvsvn_max)
                        {
                            prop_assert!(lo <= hi);
                        }
                    }
                }
            }
        }
    }
}

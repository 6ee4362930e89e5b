//! Property (issue 12): renaming any key of a policy to a near-miss spelling, or setting
//! its value to null, gives a parse error or a policy that accepts no quote the original
//! rejects. A typo can never widen a policy.
//!
//! The corpus: the README walk-through's policy and every `yaml` block of docs/policy.md
//! (read from the files at test time, so they stay in sync), the session files of
//! crates/las/tests/sessions that parse, and randomly generated policies in the forms
//! SCONE's session files use. The quotes: simulated quotes from two platforms over a
//! small grid of MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN and DEBUG, each with fresh
//! simulation evidence of its LAS.
//!
//! A near-miss that is itself a known key (at any level) is skipped: a rename to another
//! valid key is a different policy, not a typo a reader could catch.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::path::Path;
use std::sync::OnceLock;

use las_core::PlatformIdentity;
use las_core::crypto::Key128;
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_core::quote::{Mode, QuoteClaims, encode_quote};
use las_core::sgx::{Attributes, ReportBody, flags};
use las_verifier::policy::keys;
use las_verifier::{LasEvidence, Policy, VerifyOptions, VerifyRequest, verify_quote_with};
use proptest::prelude::*;
use proptest::sample::Index;

const NOW: u64 = 1_800_000_000;
const MRENCLAVES: [[u8; 32]; 3] = [[0xaa; 32], [0xcc; 32], [0xdd; 32]];
const SIGNERS: [[u8; 32]; 2] = [[0xbb; 32], [0x51; 32]];
/// The LAS build the simulated evidence names: the one docs/policy.md's `trusted_las` lists.
const LAS_MRENCLAVE: &str = "2539354d2612081be514e7b90b203c0be72f352a10edac630772b9773455d5ae";
const LAS_MRSIGNER: [u8; 32] = [0x1b; 32];
const NONCE: [u8; 24] = [0x4e; 24];

fn platform(i: usize) -> PlatformIdentity {
    PlatformIdentity::from_seal_key(&Key128::from_bytes([i as u8 + 1; 16]))
}

fn las_mrenclave() -> [u8; 32] {
    las_core::hexfmt::decode_fixed::<32>("las", LAS_MRENCLAVE).unwrap()
}

struct Q {
    quote: Vec<u8>,
    evidence: Vec<u8>,
}

/// The quote grid: 2 platforms x 3 MRENCLAVEs x 2 signers x (ISVPRODID, ISVSVN, DEBUG)
/// in 4 combinations.
fn quotes() -> &'static [Q] {
    static QS: OnceLock<Vec<Q>> = OnceLock::new();
    QS.get_or_init(|| {
        let mut out = Vec::new();
        for p in 0..2 {
            let id = platform(p);
            let evidence = encode_evidence(
                &id,
                &EvidenceClaims {
                    kind: EvidenceKind::Sim,
                    mode: Mode::Sim,
                    platform_id: id.platform_id(),
                    nonce: NONCE.to_vec(),
                    las_version: "0.1.0".into(),
                    las_mrenclave: las_mrenclave(),
                    las_mrsigner: LAS_MRSIGNER,
                    las_isvprodid: 1,
                    las_isvsvn: 1,
                    cpusvn: [1; 16],
                    issued_at: NOW - 5,
                    binding: binding(&id.platform_id(), &NONCE),
                    qe_id: None,
                },
            )
            .unwrap();
            for m in MRENCLAVES {
                for s in SIGNERS {
                    for (prod, svn, debug) in
                        [(3, 5, false), (3, 9, false), (1, 2, false), (3, 5, true)]
                    {
                        let mut f = flags::INIT | flags::MODE64BIT;
                        if debug {
                            f |= flags::DEBUG;
                        }
                        let quote = encode_quote(
                            &id,
                            &QuoteClaims {
                                mode: Mode::Sim,
                                platform_id: id.platform_id(),
                                las_version: "0.1.0".into(),
                                las_mrenclave: las_mrenclave(),
                                issued_at: NOW,
                                report_body: ReportBody {
                                    cpusvn: [1; 16],
                                    miscselect: 0,
                                    cet_attributes: 0,
                                    isv_ext_prod_id: [0; 16],
                                    attributes: Attributes { flags: f, xfrm: 3 },
                                    mrenclave: m,
                                    mrsigner: s,
                                    config_id: [0; 64],
                                    isvprodid: prod,
                                    isvsvn: svn,
                                    config_svn: 0,
                                    isv_family_id: [0; 16],
                                    report_data: [0; 64],
                                },
                            },
                        )
                        .unwrap();
                        out.push(Q {
                            quote,
                            evidence: evidence.clone(),
                        });
                    }
                }
            }
        }
        out
    })
}

fn accepts(p: &Policy, q: &Q) -> bool {
    verify_quote_with(
        p,
        &q.quote,
        &VerifyRequest {
            service: p.services().first().map(|s| s.name.as_str()),
            expected_report_data: None,
            las_evidence: Some(LasEvidence {
                token: &q.evidence,
                expected_nonce: Some(&NONCE),
            }),
            now: NOW,
        },
        &VerifyOptions::default(),
    )
    .is_ok_and(|v| v.accepted())
}

fn hexs(b: &[u8]) -> String {
    hex::encode(b)
}

fn substitute(text: &str) -> String {
    text.replace("$(printf 'aa%.0s' {1..32})", &hexs(&MRENCLAVES[0]))
        .replace("$(printf 'bb%.0s' {1..32})", &hexs(&SIGNERS[0]))
        .replace("$(las id)", &platform(0).platform_id().to_string())
        .replace("@PLATFORM_A@", &platform(0).platform_id().to_string())
        .replace("@PLATFORM_B@", &platform(1).platform_id().to_string())
        .replace("@LAS_MRENCLAVE@", LAS_MRENCLAVE)
        .replace("@LAS_MRSIGNER@", &hexs(&LAS_MRSIGNER))
}

/// The fixed corpus: README, docs/policy.md, the session files that parse.
fn corpus() -> &'static [(String, String)] {
    static C: OnceLock<Vec<(String, String)>> = OnceLock::new();
    C.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut out = Vec::new();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let start = readme
            .find("cat > policy.yaml <<YAML\n")
            .expect("README policy")
            + "cat > policy.yaml <<YAML\n".len();
        let end = start + readme[start..].find("\nYAML\n").unwrap();
        out.push(("README".to_owned(), substitute(&readme[start..end])));
        let docs = std::fs::read_to_string(root.join("docs/policy.md")).unwrap();
        for (i, block) in docs.split("```yaml\n").skip(1).enumerate() {
            let body = block.split("```").next().unwrap();
            out.push((
                format!("docs/policy.md yaml block {}", i + 1),
                body.to_owned(),
            ));
        }
        let mut files: Vec<_> = std::fs::read_dir(root.join("crates/las/tests/sessions"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let text = substitute(&std::fs::read_to_string(&f).unwrap());
            if Policy::from_yaml(text.as_bytes()).is_ok() {
                out.push((f.display().to_string(), text));
            }
        }
        out
    })
}

#[test]
fn the_corpus_parses_and_accepts_something() {
    let c = corpus();
    assert!(c.len() >= 12, "{} policies", c.len());
    for (name, text) in c.iter().take(2) {
        let p = Policy::from_yaml(text.as_bytes())
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}\n{text}"));
        if name == "README" {
            assert!(quotes().iter().any(|q| accepts(&p, q)), "{name}");
        }
    }
}

/// Every key known at any level (a near-miss equal to one of them is skipped).
fn known(k: &str) -> bool {
    keys::ALL
        .iter()
        .any(|l| l.evaluated.contains(&k) || l.ignored.iter().any(|(n, _)| *n == k))
}

/// Positions of keys in `text`: (byte offset of the key, its length, block-style?).
fn key_positions(text: &str) -> Vec<(usize, usize, bool)> {
    let mut out = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let b = line.as_bytes();
        let mut i = 0;
        let mut at_start = true;
        while i < b.len() {
            let c = b[i];
            if c == b'#' && (i == 0 || b[i - 1] == b' ') {
                break;
            }
            if at_start && (c == b' ' || c == b'-') {
                i += 1;
                continue;
            }
            let after_sep = i > 0 && matches!(b[i - 1], b'{' | b',' | b' ') && {
                let before = line[..i].trim_end();
                before.ends_with('{') || before.ends_with(',')
            };
            if (at_start || after_sep) && (c.is_ascii_alphabetic() || c == b'_' || c == b'<') {
                let len = line[i..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '<'))
                    .unwrap_or(line.len() - i);
                let rest = &line[i + len..];
                if rest.starts_with(':') && rest[1..].starts_with([' ', '\n', '\r']) || rest == ":"
                {
                    out.push((line_start + i, len, at_start));
                }
                i += len;
                at_start = false;
                continue;
            }
            at_start = false;
            i += 1;
        }
        line_start += line.len();
    }
    out
}

fn near_miss(k: &str, v: usize) -> Option<String> {
    let c: Vec<char> = k.chars().collect();
    let n = c.len();
    let i = v / 8 % n.max(1);
    let s: String = match v % 8 {
        0 => c
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, x)| x)
            .collect(),
        1 if i + 1 < n => {
            let mut d = c.clone();
            d.swap(i, i + 1);
            d.into_iter().collect()
        }
        2 => {
            let mut d = c.clone();
            d.insert(i, c[i]);
            d.into_iter().collect()
        }
        3 => {
            let mut d = c.clone();
            d[0] = d[0].to_ascii_uppercase();
            d.into_iter().collect()
        }
        4 => k.replace('_', "-"),
        5 => format!("{k}s"),
        6 => k.strip_suffix('s').unwrap_or(k).to_owned(),
        _ => {
            let mut d = c.clone();
            d.insert(i, 'x');
            d.into_iter().collect()
        }
    };
    (s != k && !s.is_empty() && !known(&s)).then_some(s)
}

/// `text` with the value of the key at `pos` replaced by `~`.
fn null_value(text: &str, pos: usize, len: usize, block: bool) -> String {
    let colon = pos + len + 1;
    let line_end = text[colon..].find('\n').map_or(text.len(), |e| colon + e);
    if !block {
        // Flow: the value runs to the next `,` or `}` at depth 0.
        let b = text.as_bytes();
        let mut depth = 0i32;
        let mut j = colon;
        while j < line_end {
            match b[j] {
                b'[' | b'{' => depth += 1,
                b']' | b'}' if depth == 0 => break,
                b']' | b'}' => depth -= 1,
                b',' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        return format!("{} ~{}", &text[..colon], &text[j..]);
    }
    // Block: the rest of the line and the more-indented lines below (and `- ` items at
    // the key's own indentation).
    let key_line_start = text[..pos].rfind('\n').map_or(0, |s| s + 1);
    let col = pos - key_line_start;
    let mut end = line_end;
    while end < text.len() {
        let next_start = end + 1;
        let next_end = text[next_start..]
            .find('\n')
            .map_or(text.len(), |e| next_start + e);
        let l = &text[next_start..next_end];
        let t = l.trim_start();
        let ind = l.len() - t.len();
        if !(t.is_empty() || ind > col || (ind == col && t.starts_with("- "))) {
            break;
        }
        end = next_end;
    }
    format!("{} ~{}", &text[..colon], &text[end..])
}

fn mutate(text: &str, key: Index, kind: bool, variant: usize) -> Option<String> {
    let keys = key_positions(text);
    if keys.is_empty() {
        return None;
    }
    let (pos, len, block) = keys[key.index(keys.len())];
    if kind {
        let k = &text[pos..pos + len];
        let m = near_miss(k, variant)?;
        Some(format!("{}{m}{}", &text[..pos], &text[pos + len..]))
    } else {
        Some(null_value(text, pos, len, block))
    }
}

fn check(original: &str, mutated: &str) -> Result<(), TestCaseError> {
    let p = Policy::from_yaml(original.as_bytes()).map_err(|e| {
        TestCaseError::fail(format!("the original does not parse: {e}\n{original}"))
    })?;
    let Ok(m) = Policy::from_yaml(mutated.as_bytes()) else {
        return Ok(());
    };
    for (i, q) in quotes().iter().enumerate() {
        if accepts(&m, q) && !accepts(&p, q) {
            return Err(TestCaseError::fail(format!(
                "quote {i} is rejected by the original and accepted after the edit\n--- original\n{original}\n--- edited\n{mutated}"
            )));
        }
    }
    Ok(())
}

/// A generated session file in the forms SCONE's files use.
fn generated() -> impl Strategy<Value = String> {
    let hexes = |v: Vec<usize>, set: &[[u8; 32]]| -> Vec<String> {
        v.into_iter().map(|i| hexs(&set[i % set.len()])).collect()
    };
    (
        prop::collection::btree_set(
            prop::sample::select(vec!["simulation", "debug-mode", "outdated-tcb", "hyperthreading"]),
            0..=4,
        ),
        prop::collection::vec(0..3usize, 1..=2),
        prop::option::of((0..2usize, prop::option::of(0..4u16), prop::option::of(0..8u16))),
        prop::option::of(prop::collection::vec(0..2usize, 1..=2)),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(tol, mre, signer, plats, legacy, flow, extras)| {
            let mut y = String::from("version: \"0.3\"\n");
            if extras {
                y.push_str("name: gen\naccess_policy:\n  read: [CREATOR]\n");
            }
            y.push_str(&format!(
                "security:\n  attestation:\n    tolerate: [{}]\n    ignore_advisories: [INTEL-SA-00289]\n",
                tol.into_iter().collect::<Vec<_>>().join(", ")
            ));
            y.push_str("services:\n  - name: app\n");
            if extras {
                y.push_str("    command: ./app --flag\n    environment:\n      A: \"1\"\n    image_name: img\n");
            }
            let m = hexes(mre, &MRENCLAVES);
            if legacy && signer.is_none() {
                y.push_str(&format!("    mrenclaves: [{}]\n", m.join(", ")));
            } else if flow {
                let mut parts = vec![format!("mrenclave: [{}]", m.join(", "))];
                if let Some((s, prod, min)) = signer {
                    let mut sp = vec![format!("mrsigner: {}", hexs(&SIGNERS[s]))];
                    if let Some(p) = prod {
                        sp.push(format!("isvprodid: {p}"));
                    }
                    if let Some(v) = min {
                        sp.push(format!("isvsvn_min: {v}"));
                    }
                    parts.push(format!("signer: {{{}}}", sp.join(", ")));
                }
                y.push_str(&format!("    attestation: {{{}}}\n", parts.join(", ")));
            } else {
                y.push_str("    attestation:\n      - mrenclave:\n");
                for h in &m {
                    y.push_str(&format!("          - {h}\n"));
                }
                if let Some((s, prod, min)) = signer {
                    y.push_str(&format!("        signer:\n          mrsigner: {}\n", hexs(&SIGNERS[s])));
                    if let Some(p) = prod {
                        y.push_str(&format!("          isvprodid: {p}\n"));
                    }
                    if let Some(v) = min {
                        y.push_str(&format!("          isvsvn_min: {v}\n"));
                    }
                }
            }
            if let Some(p) = plats {
                y.push_str("    platforms:\n");
                for i in p {
                    y.push_str(&format!("      - {}\n", platform(i).platform_id()));
                }
            }
            if extras {
                y.push_str("secrets:\n  - name: k\n    kind: ascii\n");
            }
            y
        })
}

proptest! {
    // Modest: most edits are parse errors (cheap); each edit that parses is checked
    // against 96 quotes. Runs in a few seconds in a debug build.
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn an_edit_of_a_corpus_policy_never_widens_it(
        which in any::<Index>(),
        key in any::<Index>(),
        rename in any::<bool>(),
        variant in 0..64usize,
    ) {
        let c = corpus();
        let (_, text) = &c[which.index(c.len())];
        if let Some(m) = mutate(text, key, rename, variant) {
            check(text, &m)?;
        }
    }

    #[test]
    fn an_edit_of_a_generated_policy_never_widens_it(
        text in generated(),
        key in any::<Index>(),
        rename in any::<bool>(),
        variant in 0..64usize,
    ) {
        if let Some(m) = mutate(&text, key, rename, variant) {
            check(&text, &m)?;
        }
    }
}

#[test]
fn the_six_platforms_mistakes_of_issue_12_are_all_edits_the_property_covers() {
    // A sanity check of the mutation machinery on the README policy: renaming
    // `platforms` and nulling it both give errors.
    let (_, readme) = &corpus()[0];
    let keys = key_positions(readme);
    let at = keys
        .iter()
        .find(|(p, l, _)| &readme[*p..*p + *l] == "platforms")
        .copied()
        .unwrap();
    let nulled = null_value(readme, at.0, at.1, at.2);
    assert!(nulled.contains("platforms: ~"), "{nulled}");
    assert!(Policy::from_yaml(nulled.as_bytes()).is_err());
    for v in 0..64 {
        if let Some(n) = near_miss("platforms", v) {
            let t = format!("{}{n}{}", &readme[..at.0], &readme[at.0 + at.1..]);
            assert!(Policy::from_yaml(t.as_bytes()).is_err(), "{n}");
        }
    }
}

#[test]
fn docs_policy_md_lists_every_key_the_reader_knows() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md"))
            .unwrap();
    for l in keys::ALL {
        for k in l.evaluated.iter().chain(l.ignored.iter().map(|(k, _)| k)) {
            assert!(
                docs.contains(&format!("`{k}`")) || docs.contains(&format!(".{k}`")),
                "docs/policy.md does not mention `{k}` ({})",
                l.path
            );
        }
    }
}

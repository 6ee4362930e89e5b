//! The session-file corpus (tests/sessions/*.yaml, forms of SCONE's session language
//! v0.3) and the policies of our own docs, run with the real `las verify` against two
//! live LAS daemons on loopback (platforms A and B). Each file's `# expect:` line gives
//! the outcome for the fixed quote from A; two more quotes (the same enclave on B, which
//! no file lists; another MRENCLAVE on A) must never be accepted by any file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::path::{Path, PathBuf};

use las_testkit::fixtures::app_quote_args;
use las_testkit::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER_MRENCLAVE: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
const MRSIGNER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn quote(p: &SimPlatform, out: &Path, mrenclave: &str) {
    let addr = p.las.addr.to_string();
    let state = p.dir.path().to_str().unwrap();
    let mut args = vec!["quote"];
    args.extend(app_quote_args(&addr, state, "c0ffee", mrenclave));
    args.extend_from_slice(&["-o", out.to_str().unwrap()]);
    let o = las(&args);
    assert!(o.status.success(), "las quote: {}", stderr(&o));
}

#[derive(Debug)]
enum Expect {
    Accepted,
    Rejected(Vec<String>),
    Error(String),
}

fn expectation(name: &str, text: &str) -> Expect {
    let line = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{name}: the first line must be `# expect: ...`"));
    if line == "accepted" {
        Expect::Accepted
    } else if let Some(r) = line.strip_prefix("rejected ") {
        Expect::Rejected(r.split_whitespace().map(str::to_owned).collect())
    } else if let Some(e) = line.strip_prefix("error ") {
        Expect::Error(e.to_owned())
    } else {
        panic!("{name}: unknown expectation `{line}`")
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sessions")
}

/// The README walk-through's policy, with its shell substitutions done.
fn readme_policy(platform_a: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let start = readme
        .find("cat > policy.yaml <<YAML\n")
        .expect("README has the walk-through policy")
        + "cat > policy.yaml <<YAML\n".len();
    let end = start + readme[start..].find("\nYAML\n").unwrap();
    readme[start..end]
        .replace("$(printf 'aa%.0s' {1..32})", MRENCLAVE)
        .replace("$(printf 'bb%.0s' {1..32})", MRSIGNER)
        .replace("$(las id)", platform_a)
}

#[test]
fn every_session_file_of_the_corpus_means_what_it_says_against_two_live_daemons() {
    let a = SimPlatform::start(&[]);
    let b = SimPlatform::start(&[]);
    assert_ne!(a.id, b.id);
    let work = tempfile::tempdir().unwrap();
    let q_a = work.path().join("a.cose");
    let q_b = work.path().join("b.cose");
    let q_other = work.path().join("other.cose");
    quote(&a, &q_a, MRENCLAVE);
    quote(&b, &q_b, MRENCLAVE);
    quote(&a, &q_other, OTHER_MRENCLAVE);
    let a_addr = a.las.addr.to_string();
    let b_addr = b.las.addr.to_string();

    // The LAS build, from its identity evidence (both daemons run the same build).
    let ev = get(
        a.las.addr,
        &format!("/v1/identity?nonce={}", "00".repeat(32)),
    );
    assert_eq!(ev.status, 200);
    let ev = las_core::evidence::decode_and_verify_evidence(&ev.body).unwrap();
    let las_mrenclave = hex::encode(ev.las_mrenclave);
    let las_mrsigner = hex::encode(ev.las_mrsigner);

    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus has {} files", files.len());

    let mut cases: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(f).unwrap(),
            )
        })
        .collect();
    cases.push((
        "README walk-through".into(),
        format!("# expect: accepted\n{}", readme_policy(&a.id)),
    ));

    let mut failures = Vec::new();
    for (name, text) in &cases {
        let expect = expectation(name, text);
        let text = text
            .replace("@PLATFORM_A@", &a.id)
            .replace("@PLATFORM_B@", &b.id)
            .replace("@LAS_MRENCLAVE@", &las_mrenclave)
            .replace("@LAS_MRSIGNER@", &las_mrsigner);
        let policy = work.path().join("policy.yaml");
        std::fs::write(&policy, &text).unwrap();

        let v = las_verify(&policy, &q_a, &a_addr, &["--expect-report-data", "c0ffee"]);
        let (out, err) = (stdout(&v), stderr(&v));
        let ok = match &expect {
            Expect::Accepted => v.status.code() == Some(0),
            Expect::Rejected(reasons) => {
                v.status.code() == Some(1) && reasons.iter().all(|r| out.contains(&format!("{r}:")))
            }
            Expect::Error(e) => v.status.code() == Some(2) && err.contains(e.as_str()),
        };
        if !ok {
            failures.push(format!(
                "{name}: expected {expect:?}, got exit {:?}\nstdout: {out}\nstderr: {err}",
                v.status.code()
            ));
        }
        // The two quotes no file may accept; an erroneous policy errs for them too.
        for (what, q, addr) in [
            ("platform B", &q_b, &b_addr),
            ("another MRENCLAVE", &q_other, &a_addr),
        ] {
            let v = las_verify(&policy, q, addr, &[]);
            let code = v.status.code();
            let fine = match expect {
                Expect::Error(_) => code == Some(2),
                _ => code == Some(1) || code == Some(2),
            };
            if !fine {
                failures.push(format!(
                    "{name}: the quote from {what} gave exit {code:?}\nstdout: {}\nstderr: {}",
                    stdout(&v),
                    stderr(&v)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn explain_shows_how_a_session_was_read() {
    let a = SimPlatform::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let q = work.path().join("a.cose");
    quote(&a, &q, MRENCLAVE);
    let text = std::fs::read_to_string(corpus_dir().join("01-full-session.yaml"))
        .unwrap()
        .replace("@PLATFORM_A@", &a.id);
    let policy = work.path().join("policy.yaml");
    std::fs::write(&policy, &text).unwrap();
    let addr = a.las.addr.to_string();

    let v = las_verify(&policy, &q, &addr, &["--explain"]);
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    let out = stdout(&v);
    for want in [
        "policy read as session language 0.3.10",
        "service: app",
        "attestation: 1 alternative(s)",
        &format!("mrsigner {MRSIGNER}, isvprodid 3, isvsvn >= 2, isvsvn <= 9"),
        &format!("platforms: {}", a.id.to_lowercase()),
        "tolerate: simulation, hyperthreading",
        "ignore_advisories: INTEL-SA-00161, INTEL-SA-00270",
        "line 4: name (",
        "line 6: predecessor",
        "line 13: security.singleton_enclaves",
        "line 19: security.attestation.one_time_password_shared_secret",
        "line 22: services[0].image_name",
        "line 23: services[0].command",
        "services[0].fspf_tag",
        "secrets (",
        "images (",
        "volumes (",
        "ACCEPTED",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }

    let v = las_verify(&policy, &q, &addr, &["--explain", "--json"]);
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    let j: serde_json::Value = serde_json::from_str(&stdout(&v)).unwrap();
    assert_eq!(j["accepted"], true);
    let p = &j["policy"];
    assert_eq!(p["service"], "app");
    assert_eq!(p["version"], "0.3.10");
    assert_eq!(p["alternatives"][0]["signer"]["isvsvn_max"], 9);
    assert_eq!(p["ignore_advisories"][1], "INTEL-SA-00270");
    let ignored = p["ignored_keys"].as_array().unwrap();
    assert!(
        ignored
            .iter()
            .any(|k| k["path"] == "services[0].command" && k["line"] == 23),
        "{ignored:?}"
    );

    // A legacy session: the alternative says where it came from.
    let legacy = std::fs::read_to_string(corpus_dir().join("02-legacy-mrenclaves.yaml"))
        .unwrap()
        .replace("@PLATFORM_A@", &a.id);
    std::fs::write(&policy, legacy).unwrap();
    let v = las_verify(&policy, &q, &addr, &["--explain"]);
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    assert!(
        stdout(&v).contains("(from the deprecated `mrenclaves`)"),
        "{}",
        stdout(&v)
    );
    assert!(stdout(&v).contains("policy read as session language 0.3\n"));
}

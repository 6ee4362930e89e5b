//! `las verify --max-age` against a live LAS on loopback: a quote older than the maximum
//! age is rejected with `quote-too-old` (judged by the quote's `iat` and `--now`), and a
//! note (stderr, and `notes` in --json) says when neither report data nor age was checked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use las_testkit::*;

const MRENCLAVE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const REPLAY: &str = "could be a replay";

#[test]
fn max_age_and_the_replay_note() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let addr = d.addr.to_string();
    let work = tempfile::tempdir().unwrap();
    let qfile = work.path().join("quote.cose");
    quote_to_file(d.addr, dir.path(), "c0ffee", MRENCLAVE, &qfile);
    let pol = work.path().join("policy.yaml");
    std::fs::write(
        &pol,
        format!(
            "security:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"{MRENCLAVE}\"]\n"
        ),
    )
    .unwrap();
    let (p, q) = (pol.to_str().unwrap(), qfile.to_str().unwrap());
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "--policy", p, "--quote", q, "--las", &addr];
        args.extend_from_slice(extra);
        las(&args)
    };

    // The quote's issue time, from the verdict itself.
    let o = verify(&["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let iat = j["quote"]["issued_at"].as_u64().unwrap();
    // Neither report data nor age checked: the note, on stderr and in the JSON notes.
    assert!(stderr(&o).contains(REPLAY), "{}", stderr(&o));
    assert!(
        j["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains(REPLAY)),
        "{j}"
    );

    // Young enough: accepted, without the note. The identity evidence is fresh (nonce),
    // so --now stays within its 600 s window.
    for (age, now) in [("30s", iat + 30), ("5m", iat + 300), ("1h", iat + 300)] {
        let o = verify(&["--max-age", age, "--now", &now.to_string()]);
        assert_eq!(o.status.code(), Some(0), "{age}: {}", stdout(&o));
        assert!(!stderr(&o).contains(REPLAY), "{}", stderr(&o));
    }
    // Too old: rejected with its reason, in text and JSON.
    let now = (iat + 31).to_string();
    let o = verify(&["--max-age", "30s", "--now", &now]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("quote-too-old: "), "{}", stdout(&o));
    assert!(stdout(&o).contains("31 s old"), "{}", stdout(&o));
    let o = verify(&["--max-age", "30s", "--now", &now, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["rejections"][0]["reason"], "quote-too-old", "{j}");
    assert_eq!(j["rejections"].as_array().unwrap().len(), 1, "{j}");

    // Report data checked instead of age: no note either.
    let o = verify(&["--expect-report-data", "c0ffee"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!stderr(&o).contains(REPLAY), "{}", stderr(&o));

    // Not a duration: a usage error (exit 2) naming the value.
    let o = verify(&["--max-age", "5 fortnights"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("5 fortnights"), "{}", stderr(&o));
}

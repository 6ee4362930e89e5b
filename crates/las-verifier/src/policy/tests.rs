use super::*;

const A: &str = "2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151";

#[test]
fn reads_the_subset_of_a_real_session_file() {
    let y = format!(
        r#"
name: my-session
version: "0.3"
security:
  attestation:
    mode: hardware
    tolerate: [debug-mode, outdated-tcb, simulation]
    ignore_advisories: [INTEL-SA-00289]
    trusted_scone_qe_pubkeys: ["{A}"]
services:
  - name: app
    image_name: registry/app
    command: python3 app.py
    environment: {{ A: "1" }}
    attestation:
      mrenclave: ["{a}"]
      signer: {{mrsigner: "{A}", isvprodid: 1, isvsvn_min: 2}}
    platforms: ["{a}", "{A}"]
  - name: other
    attestation:
      - mrenclave: ["{A}"]
      - signer: {{mrsigner: "{A}"}}
secrets:
  - name: s
    kind: ascii
volumes:
  - name: v
"#,
        a = A.to_lowercase()
    );
    let p = Policy::from_yaml(y.as_bytes()).unwrap();
    assert!(p.tolerates(Tolerance::DebugMode) && p.tolerates(Tolerance::Simulation));
    assert!(!p.tolerates(Tolerance::Hyperthreading));
    assert_eq!(p.services.len(), 2);
    let app = p.service(Some("app")).unwrap();
    assert_eq!(app.attestation.as_ref().unwrap().0.len(), 1);
    assert_eq!(
        app.platforms.as_ref().unwrap()[0],
        app.platforms.as_ref().unwrap()[1]
    );
    let other = p.service(Some("other")).unwrap();
    assert_eq!(other.attestation.as_ref().unwrap().0.len(), 2);
    let known = vec!["app".to_owned(), "other".to_owned()];
    let several = p.service(None).unwrap_err();
    assert_eq!(
        several,
        ServiceError::Ambiguous {
            known: known.clone()
        }
    );
    assert_eq!(
        several.to_string(),
        "the policy defines several services (app, other): choose one with --service"
    );
    let unknown = p.service(Some("web")).unwrap_err();
    assert_eq!(
        unknown,
        ServiceError::Unknown {
            name: "web".into(),
            known
        }
    );
    assert_eq!(
        unknown.to_string(),
        "no service `web` in the policy (services: app, other)"
    );
    assert_eq!(p.pinned_las_keys().count(), 1);
}

fn err(y: &str) -> String {
    let e = Policy::from_yaml(y.as_bytes()).unwrap_err().to_string();
    eprintln!("{e}");
    e
}

#[test]
fn errors_name_the_field_and_line() {
    let e = err("services:\n  - name: app\n    platforms: [\"abc\"]\n");
    assert!(
        e.contains("services[0].platforms") && e.contains("line 3"),
        "{e}"
    );
    let e = err("services:\n  - name: app\n    attestation:\n      signer: {mrsigner: x}\n");
    assert!(
        e.contains("services[0].attestation") && e.contains("line 4"),
        "{e}"
    );
    let e = err("security:\n  attestation:\n    tolerate: [everything]\n");
    assert!(
        e.contains("unknown tolerance `everything`") && e.contains("line 3"),
        "{e}"
    );
    let e = err(
        "services:\n  - name: app\n    attestation:\n      signer: {mrsigner: \"00000000000000000000000000000000000000000000000000000000000000AA\", isvprodid: abc}\n",
    );
    assert!(e.contains("isvprodid") && e.contains("line 4"), "{e}");
    let e = err("services:\n  - name: app\n    attestation: {}\n");
    assert!(e.contains("services[0].attestation"), "{e}");
    let e = err("services:\n  - name: a\n  - name: a\n");
    assert!(e.contains("defined twice"), "{e}");
    assert!(
        err("services: [").contains("line"),
        "syntax errors carry a line"
    );
    assert!(
        Policy::from_yaml(b"\xff\xfe")
            .unwrap_err()
            .to_string()
            .contains("UTF-8")
    );
}

const P: &str = "2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151";

fn svc(extra: &str) -> String {
    format!("services:\n  - name: app\n    attestation: {{mrenclave: [\"{P}\"]}}\n{extra}")
}

#[test]
fn misspelled_keys_are_errors_with_line_and_suggestion() {
    for (typo, want) in [
        ("platfroms", "did you mean `platforms`?"),
        ("Platforms", "did you mean `platforms`?"),
        ("platform", "did you mean `platforms`?"),
        ("atestation", "did you mean `attestation`?"),
        ("comand", "did you mean `command`?"),
    ] {
        let e = err(&svc(&format!("    {typo}: [\"{P}\"]\n")));
        assert!(e.contains(&format!("`{typo}`")) && e.contains(want), "{e}");
        assert!(e.contains("line 4"), "{e}");
    }
    let e = err("security:\n  attestation:\n    tolerates: [debug-mode]\n");
    assert!(
        e.contains("did you mean `tolerate`?") && e.contains("line 3"),
        "{e}"
    );
    let e = err("security:\n  attestation:\n    tolerate: [debug_mode]\n");
    assert!(e.contains("did you mean `debug-mode`?"), "{e}");
    let e = err("servics: []\n");
    assert!(e.contains("did you mean `services`?"), "{e}");
    let e = err(&format!(
        "services:\n  - name: app\n    attestation:\n      signer: {{mrsinger: \"{P}\"}}\n"
    ));
    assert!(e.contains("did you mean `mrsigner`?"), "{e}");
}

#[test]
fn null_empty_misplaced_and_referenced_platforms_are_errors() {
    let e = err(&svc("    platforms:\n      # TODO: add the IDs\n"));
    assert!(
        e.contains("`platforms` has no value") && e.contains("las platform-ids"),
        "{e}"
    );
    let e = err(&svc("    platforms: ~\n"));
    assert!(e.contains("`platforms` has no value"), "{e}");
    let e = err(&svc("    platforms: []\n"));
    assert!(e.contains("allows no platform"), "{e}");
    let e = err(&format!(
        "security:\n  attestation:\n    platforms: [\"{P}\"]\n{}",
        svc("")
    ));
    assert!(
        e.contains("belongs to each service") && e.contains("line 3"),
        "{e}"
    );
    // A reference needs the session's imports (read beside the policy file).
    let e = err(&svc("    platforms: [\"$$SCONE::platform_2$$\"]\n"));
    assert!(
        e.contains("$$SCONE::platform_2$$") && e.contains("platforms[0]"),
        "{e}"
    );
    let e = err(&svc(&format!(
        "    platforms: [\"{P}\"]\n    platforms: [\"{P}\"]\n"
    )));
    assert!(e.contains("appears twice"), "{e}");
}

#[test]
fn merge_keys_are_refused_and_aliases_work() {
    let e = err(&format!(
        "services:\n  - &base\n    name: a\n    platforms: [\"{P}\"]\n    attestation: {{mrenclave: [\"{P}\"]}}\n  - <<: *base\n    name: b\n"
    ));
    assert!(e.contains("merge key") && e.contains("line 6"), "{e}");
    let ok = Policy::from_yaml(
        format!(
            "services:\n  - name: a\n    attestation: &att {{mrenclave: [\"{P}\"]}}\n    platforms: &pl [\"{P}\"]\n  - name: b\n    attestation: *att\n    platforms: *pl\n"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(ok.services[1].platforms.as_ref().unwrap().len(), 1);
    assert_eq!(ok.services[1].attestation, ok.services[0].attestation);
}

#[test]
fn scone_forms_load_and_mean_what_scone_means() {
    for v in ["0.3", "\"0.3\"", "\"0.3.10\"", "'0.3.1'"] {
        let p = Policy::from_yaml(format!("version: {v}\npredecessor: ~\n{}", svc("")).as_bytes())
            .unwrap();
        assert!(p.version.as_deref().unwrap().starts_with("0.3"));
    }
    assert!(err("version: \"0.2\"\n").contains("0.3"));
    let e = err("security:\n  attestation:\n    mode: maa\n    url: ~\n");
    assert!(
        e.contains("Microsoft Azure Attestation") && e.contains("mode: hardware"),
        "{e}"
    );
    // `*` needs debug-mode, as in SCONE.
    let e = err(&format!(
        "security:\n  attestation:\n    tolerate: [outdated-tcb]\n    ignore_advisories: \"*\"\n{}",
        svc("")
    ));
    assert!(e.contains("debug-mode"), "{e}");
    let p = Policy::from_yaml(format!("security:\n  attestation:\n    tolerate: [debug-mode, outdated-tcb]\n    ignore_advisories: \"*\"\n{}", svc("")).as_bytes()).unwrap();
    assert!(p.attestation.ignore_all_advisories);
    // Legacy mrenclaves: one alternative; with attestation: refused.
    let p = Policy::from_yaml(
        format!("services:\n  - name: app\n    mrenclaves: [\"{P}\"]\n    command: x\n").as_bytes(),
    )
    .unwrap();
    let alts = &p.services[0].attestation.as_ref().unwrap().0;
    assert!(alts.len() == 1 && alts[0].legacy_mrenclaves && alts[0].mrenclave.len() == 1);
    let e = err(&svc(&format!("    mrenclaves: [\"{P}\"]\n")));
    assert!(
        e.contains("both `attestation` and the deprecated `mrenclaves`"),
        "{e}"
    );
    // isvsvn exact, not with a range.
    let e = err(&format!(
        "services:\n  - name: app\n    attestation:\n      signer: {{mrsigner: \"{P}\", isvprodid: 1, isvsvn: 4, isvsvn_min: 2}}\n"
    ));
    assert!(e.contains("`isvsvn`"), "{e}");
    // mrenclave as one string.
    let p = Policy::from_yaml(
        format!("services:\n  - name: app\n    attestation:\n      mrenclave: \"{P}\"\n")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        p.services[0].attestation.as_ref().unwrap().0[0]
            .mrenclave
            .len(),
        1
    );
}

#[test]
fn ignored_keys_are_listed_with_their_lines() {
    let y = format!(
        "name: s\nversion: 0.3\nsecrets:\n  - name: k\n    kind: ascii\nservices:\n  - name: app\n    command: run\n    environment:\n      name: x\n    pwd: /\n    mrenclaves: [\"{P}\"]\nsecurity:\n  attestation:\n    one_time_password_shared_secret: ABC\n"
    );
    let p = Policy::from_yaml(y.as_bytes()).unwrap();
    let got: Vec<(String, Option<usize>)> =
        p.ignored.iter().map(|k| (k.path.clone(), k.line)).collect();
    assert_eq!(
        got,
        vec![
            ("name".into(), Some(1)),
            ("secrets".into(), Some(3)),
            ("services[0].command".into(), Some(8)),
            ("services[0].environment".into(), Some(9)),
            ("services[0].pwd".into(), Some(11)),
            (
                "security.attestation.one_time_password_shared_secret".into(),
                Some(15)
            ),
        ]
    );
}

#[test]
fn hostile_inputs_are_errors_not_panics() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(Policy::from_yaml(deep.as_bytes()).is_err());
    let laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
    // `a` is no key of the session language: refused by name, at once (the aliases are
    // never expanded).
    let t = std::time::Instant::now();
    let e = Policy::from_yaml(laughs.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown key `a`"), "{e}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    // Aimed at a field the policy reads: refused.
    let aimed = format!("{laughs}services: *g\n");
    assert!(Policy::from_yaml(aimed.as_bytes()).is_err());
    assert!(Policy::from_yaml(b"services: 12").is_err());
    assert!(Policy::from_yaml(b"- 1\n- 2").is_err());
    let big = vec![b' '; MAX_POLICY_SIZE + 1];
    assert!(Policy::from_yaml(&big).is_err());
}

#[test]
fn las_dns_names_are_host_names_and_fail_closed() {
    let svc = |v: &str| {
        format!(
            "services:\n  - name: app\n    attestation: {{mrenclave: [\"{A}\"]}}\n    las_dns_names: {v}\n"
        )
    };
    let p = Policy::from_yaml(svc("[App.Example.com, app.example.com, x-1]").as_bytes()).unwrap();
    assert_eq!(
        p.service(Some("app")).unwrap().las_dns_names,
        ["app.example.com", "x-1"]
    );
    for (bad, says) in [
        ("[]", "empty list"),
        ("~", "las_dns_names"),
        ("[\"*.example.com\"]", "not a DNS host name"),
        ("[\"a..b\"]", "not a DNS host name"),
        ("[\"-a.b\"]", "not a DNS host name"),
        ("[\"a b\"]", "not a DNS host name"),
        ("name.example", "las_dns_names"),
    ] {
        let e = err(&svc(bad));
        assert!(e.contains(says), "{bad}: {e}");
    }
    // A typo of the key is still an unknown key, with the right one suggested.
    let e = err(&svc("[a]").replace("las_dns_names", "las_dns_name"));
    assert!(e.contains("las_dns_names"), "{e}");
}

/// SCONE 7 platform entries: `INTEL_QE_ID:<32 hex>` in either case, unquoted as SCONE
/// writes it, mixed with LAS keys; every malformed form is an error naming the entry.
#[test]
fn qe_id_entries_parse_mixed_and_fail_closed() {
    use crate::policy::PlatformEntry;
    let q = "INTEL_QE_ID:85FFC69266C833546E5DCA1C676A6151";
    let p = Policy::from_yaml(svc(&format!("    platforms: [{q}, \"{P}\"]\n")).as_bytes()).unwrap();
    let pl = p.services[0].platforms.as_ref().unwrap();
    assert!(
        matches!(pl[0], PlatformEntry::QeId(x) if x.to_string() == "85ffc69266c833546e5dca1c676a6151")
    );
    assert!(matches!(pl[1], PlatformEntry::LasKey(_)));
    // Block style too.
    let b = Policy::from_yaml(svc(&format!("    platforms:\n      - {q}\n")).as_bytes()).unwrap();
    assert_eq!(b.services[0].platforms.as_ref().unwrap().len(), 1);
    for (bad, want) in [
        ("INTEL_QE_ID:", "no QE ID"),
        (
            "INTEL_QE_ID:85ffc69266c833546e5dca1c676a61",
            "got 30 characters",
        ),
        (
            "INTEL_QE_ID:85ffc69266c833546e5dca1c676a6151aa",
            "got 34 characters",
        ),
        (
            "INTEL_QE_ID:85ffc69266c833546e5dca1c676a615z",
            "`z` is not a hex digit",
        ),
        (
            "INTEL_PPID:85ffc69266c833546e5dca1c676a6151",
            "unknown prefix `INTEL_PPID:`",
        ),
        (
            "intel_qe_id:85ffc69266c833546e5dca1c676a6151",
            "unknown prefix",
        ),
    ] {
        let e = err(&svc(&format!("    platforms: [\"{P}\", \"{bad}\"]\n")));
        assert!(
            e.contains(want) && e.contains("platforms[1]") && e.contains("line"),
            "{bad}: {e}"
        );
    }
}

/// `$$SCONE::NAME$$` platform entries, SCONE's way: the session's secret NAME imported from
/// session S, read from `S.yaml` beside the policy, which defines it with an explicit ASCII
/// value and exports it to the importing session. Every failure names the chain.
#[test]
fn scone_references_resolve_through_imported_sessions_and_fail_closed() {
    use crate::policy::PlatformEntry;
    let dir = tempfile::tempdir().unwrap();
    let qe = "INTEL_QE_ID:85ffc69266c833546e5dca1c676a6151";
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let policy = |platforms: &str| {
        format!(
            "name: app_session\nsecrets:\n  - name: platform_2\n    import:\n      session: platform_policy\n      secret: authorized_platform\n  - name: local\n    kind: ascii\n    value: \"{P}\"\nservices:\n  - name: app\n    attestation: {{mrenclave: [\"{P}\"]}}\n    platforms: [{platforms}]\n"
        )
    };
    let exporting = |value: &str, extra: &str| {
        format!(
            "name: platform_policy\nsecrets:\n  - name: authorized_platform\n    kind: ascii\n    value: \"{value}\"\n{extra}"
        )
    };
    let export = "    export:\n      session: app_session\n";
    write(
        "policy.yaml",
        &policy(&format!("$$SCONE::platform_2$$, \"{P}\"")),
    );
    write("platform_policy.yaml", &exporting(qe, export));
    let load = || Policy::from_file(&dir.path().join("policy.yaml"));
    let (p, files) = load().unwrap();
    let pl = p.services[0].platforms.as_ref().unwrap();
    assert_eq!(pl[0], PlatformEntry::parse(qe).unwrap());
    assert!(matches!(pl[1], PlatformEntry::LasKey(_)));
    assert_eq!(files.len(), 1);
    assert!(files[0].0.ends_with("platform_policy.yaml"));
    // Export as a list, or by namespace.
    write(
        "platform_policy.yaml",
        &exporting(
            qe,
            "    export:\n      - session: other\n      - session: app_session\n",
        ),
    );
    assert!(load().is_ok());
    // Without the file: refused, naming the way.
    let e = Policy::from_yaml(policy("$$SCONE::platform_2$$").as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("services[0].platforms[0]") && e.contains("from its file"),
        "{e}"
    );

    let err = |policy_text: &str, exporting_text: Option<&str>| {
        write("policy.yaml", policy_text);
        match exporting_text {
            Some(t) => write("platform_policy.yaml", t),
            None => {
                let _ = std::fs::remove_file(dir.path().join("platform_policy.yaml"));
            }
        }
        load().unwrap_err().to_string()
    };
    let r = policy("$$SCONE::platform_2$$");
    for (what, e, want) in [
        ("missing file", err(&r, None), "cannot read"),
        (
            "missing secret",
            err(&policy("$$SCONE::nope$$"), Some(&exporting(qe, export))),
            "no secret `nope`",
        ),
        (
            "not imported",
            err(&policy("$$SCONE::local$$"), Some(&exporting(qe, export))),
            "not imported",
        ),
        (
            "missing exported secret",
            err(
                &r,
                Some(&exporting(qe, export).replace("authorized_platform", "other")),
            ),
            "has no secret `authorized_platform`",
        ),
        (
            "not a platform entry",
            err(&r, Some(&exporting("hello", export))),
            "not a platform entry",
        ),
        (
            "malformed QE ID",
            err(&r, Some(&exporting("INTEL_QE_ID:85ff", export))),
            "got 4 characters",
        ),
        (
            "not exported",
            err(&r, Some(&exporting(qe, ""))),
            "not exported",
        ),
        (
            "binary kind",
            err(
                &r,
                Some(&exporting(qe, export).replace("kind: ascii", "kind: binary")),
            ),
            "not `ascii`",
        ),
        (
            "partial reference",
            err(&policy("\"x$$SCONE::platform_2$$\""), None),
            "not a platform entry",
        ),
    ] {
        assert!(
            e.contains(want) && e.contains("platforms[0]"),
            "{what}: {e}"
        );
        if what != "partial reference" && what != "missing secret" && what != "not imported" {
            assert!(
                e.contains("platform_policy.yaml"),
                "{what} names the chain: {e}"
            );
        }
    }
    // A cycle: the exporting session's value refers back through its own import.
    let cyclic = "name: platform_policy\nsecrets:\n  - name: authorized_platform\n    value: \"$$SCONE::back$$\"\n    export:\n      session: app_session\n  - name: back\n    import:\n      session: platform_policy\n      secret: authorized_platform\n";
    let e = err(&r, Some(cyclic));
    assert!(e.contains("cycle"), "{e}");
    // A chain that ends in an entry resolves.
    write("policy.yaml", &r);
    write(
        "platform_policy.yaml",
        "name: platform_policy\nsecrets:\n  - name: authorized_platform\n    value: \"$$SCONE::up$$\"\n    export:\n      session: app_session\n  - name: up\n    import:\n      session: shared\n      secret: machine\n",
    );
    write(
        "shared.yaml",
        &format!(
            "name: shared\nsecrets:\n  - name: machine\n    kind: ascii\n    value: \"{qe}\"\n    export:\n      session: platform_policy\n"
        ),
    );
    let (p, files) = load().unwrap();
    assert_eq!(
        p.services[0].platforms.as_ref().unwrap()[0],
        PlatformEntry::parse(qe).unwrap()
    );
    assert_eq!(files.len(), 2);
}

fn service(name: &str, signer: Option<Signer>) -> Service {
    Service {
        name: name.into(),
        attestation: Some(Alternatives(vec![Alternative {
            mrenclave: if signer.is_none() {
                vec![Hex32([1; 32])]
            } else {
                Vec::new()
            },
            signer,
            legacy_mrenclaves: false,
        }])),
        platforms: Some(vec![PlatformEntry::LasKey(PlatformId([2; 32]))]),
        las_dns_names: Vec::new(),
    }
}

/// `Policy::new` runs the checks `from_yaml` runs: each invalid policy is refused with the
/// field path, a valid one is built, and `with_attestation` checks the changed policy.
#[test]
fn the_constructor_refuses_what_the_parser_refuses() {
    let twice = Policy::new(
        Attestation::default(),
        vec![service("app", None), service("app", None)],
    )
    .unwrap_err();
    assert_eq!(
        twice.to_string(),
        "services[1].name: service `app` is defined twice"
    );
    let empty = Policy::new(Attestation::default(), vec![service(" ", None)]).unwrap_err();
    assert_eq!(empty.to_string(), "services[0].name: must not be empty");
    let range = Signer {
        mrsigner: Hex32([3; 32]),
        isvprodid: None,
        isvsvn: None,
        isvsvn_min: Some(5),
        isvsvn_max: Some(4),
    };
    let e = Policy::new(Attestation::default(), vec![service("app", Some(range))]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("services[0].attestation[0].signer: isvsvn_min is above isvsvn_max"),
        "{e}"
    );
    let wildcard = Attestation {
        ignore_all_advisories: true,
        ..Attestation::default()
    };
    let e = Policy::new(wildcard.clone(), Vec::new()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("security.attestation.ignore_advisories:"),
        "{e}"
    );
    // The same wildcard with debug-mode tolerated is what SCONE allows.
    let debug = Attestation {
        tolerate: vec![Tolerance::DebugMode],
        ..wildcard
    };
    let p = Policy::new(debug, vec![service("app", None)]).unwrap();
    assert_eq!(p.services().len(), 1);
    assert!(p.version().is_none() && p.ignored().is_empty());
    // A change that breaks a rule is refused; one that keeps them is taken.
    let e = p
        .clone()
        .with_attestation(|a| a.tolerate.clear())
        .unwrap_err();
    assert!(e.to_string().contains("ignore_advisories"), "{e}");
    let p = p
        .with_attestation(|a| a.tolerate.push(Tolerance::Simulation))
        .unwrap();
    assert!(p.tolerates(Tolerance::Simulation));
    // The empty policy is a valid one: no services, nothing tolerated.
    let d = Policy::default();
    assert!(d.services().is_empty() && !d.tolerates(Tolerance::Simulation));
    assert!(Policy::new(d.attestation().clone(), Vec::new()).is_ok());
}

/// Platform keys are `PlatformId`s: an entry and a pinned key read from YAML compare equal
/// to the platform's ID, and print as the platform ID prints.
#[test]
fn platform_keys_are_platform_ids() {
    let y = format!(
        "security:\n  attestation:\n    trusted_scone_qe_pubkeys: [\"{a}\"]\nservices:\n  - name: app\n    attestation: {{mrenclave: [\"{A}\"]}}\n    platforms: [\"{a}\"]\n",
        a = A.to_lowercase()
    );
    let p = Policy::from_yaml(y.as_bytes()).unwrap();
    let id = PlatformId::parse(A).unwrap();
    assert_eq!(p.pinned_las_keys().collect::<Vec<_>>(), vec![id]);
    assert_eq!(
        p.services()[0].platforms.as_deref(),
        Some(&[PlatformEntry::LasKey(id)][..])
    );
    assert_eq!(PlatformEntry::LasKey(id).to_string(), id.to_string());
}

/// A bad platform entry is a typed error: the case, the text given, and for a QE ID the
/// QE ID's own error as source.
#[test]
fn platform_entry_errors_are_typed() {
    use std::error::Error as _;
    assert!(matches!(
        PlatformEntry::parse("xyz").unwrap_err(),
        PlatformEntryError::NotAnEntry { entry } if entry == "xyz"
    ));
    assert!(matches!(
        PlatformEntry::parse("FOO:1").unwrap_err(),
        PlatformEntryError::UnknownPrefix { prefix, .. } if prefix == "FOO"
    ));
    let e = PlatformEntry::parse("INTEL_QE_ID:12").unwrap_err();
    assert!(matches!(e, PlatformEntryError::QeId { .. }) && e.source().is_some());
    assert!(matches!(
        PlatformEntry::parse("a$$SCONE::x$$").unwrap_err(),
        PlatformEntryError::SconeRef { .. }
    ));
}

//! Issue 13 attacks 2, 3, 5 and 6 against the real binary: links and other users' files
//! planted where `las policy set-platforms` writes, a secret or state folder that is a
//! link or another user's, a REPORT claiming another CPUSVN, and two daemons starting at
//! once on an empty state folder.
//!
//! Making files owned by another user needs root (CI runs as root); without it those
//! parts go through the one gate (`las_testkit::gate`: a failure under CI, a NOT TESTED
//! line elsewhere) and check the rest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use las_testkit::fixtures::*;
use las_testkit::*;

const POLICY: &str = "name: payments\nversion: \"0.3\"\nsecurity:\n  attestation:\n    tolerate: [simulation]\nservices:\n  - name: app\n    # the nodes of cluster eu-1\n    platforms: [2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151]\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n";
const NEW_ID: &str = "3D1E0F7A6B5C4D3E2F1A0B9C8D7E6F5A4B3C2D1E0F9A8B7C6D5E4F3A2B1C0D9E";
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    las_platform::sim::current_uid() == 0
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A file outside the policy's folder that an attacker wants overwritten: contents, mode
/// and owner are recorded to show they do not change.
struct Victim {
    path: std::path::PathBuf,
    meta: (u32, u32, u32),
}

impl Victim {
    fn new(path: std::path::PathBuf, owner: u32) -> Victim {
        std::fs::write(&path, b"victim contents").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&path, Some(owner), Some(owner)).unwrap();
        }
        let m = std::fs::metadata(&path).unwrap();
        Victim {
            meta: (m.uid(), m.gid(), m.mode()),
            path,
        }
    }
    fn assert_untouched(&self) {
        let now = std::fs::read(&self.path).unwrap();
        assert!(
            now == b"victim contents",
            "{} was overwritten ({} bytes now)",
            self.path.display(),
            now.len()
        );
        let m = std::fs::metadata(&self.path).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode()),
            self.meta,
            "{}",
            self.path.display()
        );
    }
}

#[test]
fn set_platforms_writes_through_no_planted_link_or_file() {
    // A shared folder (sticky, world-writable, like /tmp) holding a policy owned by uid
    // 1234, mode 0640; root edits it.
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let policy = shared.path().join("session.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&policy, Some(1234), Some(4321)).unwrap();
    } else {
        gate::not_tested(
            "set-platforms on a policy of another owner",
            "needs root (chown); the rest of this test runs",
        );
    }
    let root_victim = Victim::new(outside.path().join("root-only"), 0);

    // The old temp name was `.session.yaml.las-<pid>.tmp`: plant links (to a root-only file
    // elsewhere) and files owned by another user at the names of the next 300 pids.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut planted = Vec::new();
    for pid in last + 1..last + 300 {
        let name = shared.path().join(format!(".session.yaml.las-{pid}.tmp"));
        if pid % 2 == 0 {
            std::os::unix::fs::symlink(&root_victim.path, &name).unwrap();
            planted.push((name, None));
        } else {
            planted.push((name.clone(), Some(Victim::new(name, NOBODY))));
        }
    }

    let out = Command::new(las_bin())
        .args(["policy", "set-platforms", "--service", "app", "--ids"])
        .arg(format!("platforms: [{NEW_ID}]"))
        .arg("--policy")
        .arg(&policy)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(
        text.contains(NEW_ID) && text.contains("# the nodes of cluster eu-1"),
        "{text}"
    );
    let m = std::fs::symlink_metadata(&policy).unwrap();
    assert!(m.is_file());
    assert_eq!(m.mode() & 0o7777, 0o640, "the policy keeps its mode");
    if is_root() {
        assert_eq!(
            (m.uid(), m.gid()),
            (1234, 4321),
            "the policy keeps its owner"
        );
    }
    root_victim.assert_untouched();
    for (name, victim) in &planted {
        match victim {
            Some(v) => v.assert_untouched(),
            None => assert!(
                std::fs::symlink_metadata(name)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            ),
        }
    }
    // Nothing else was left in the folder.
    let extra: Vec<_> = std::fs::read_dir(shared.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "session.yaml" && !n.starts_with(".session.yaml.las-"))
        .collect();
    assert!(extra.is_empty(), "{extra:?}");
}

#[test]
fn set_platforms_never_widens_the_mode() {
    let d = tempfile::tempdir().unwrap();
    let policy = d.path().join("p.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = las(&[
        "policy",
        "set-platforms",
        "--service",
        "app",
        "--ids",
        &format!("platforms: [{NEW_ID}]"),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&policy).unwrap().mode() & 0o7777, 0o600);
}

/// The error is one line on stderr, exit code 2, and says what to do.
fn refused(o: &Output, needles: &[&str]) {
    assert_eq!(code(o), 2, "{}", stderr(o));
    let e = stderr(o);
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    for n in needles {
        assert!(e.contains(n), "`{n}` missing in: {e}");
    }
}

#[test]
fn a_secret_or_state_folder_that_is_a_link_or_another_users_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    assert_eq!(code(&las_id(&state)), 0);
    let m = std::fs::metadata(&state).unwrap();
    assert_eq!(m.mode() & 0o777, 0o700, "created 0700");
    let secret = state.join("platform-secret");
    let id = stdout(&las_id(&state));

    // The secret replaced by a link to another file (of the right size and mode).
    let elsewhere = d.path().join("their-secret");
    std::fs::rename(&secret, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &secret).unwrap();
    refused(&las_id(&state), &["symbolic link", "platform-secret"]);
    std::fs::remove_file(&secret).unwrap();
    std::fs::rename(&elsewhere, &secret).unwrap();
    assert_eq!(stdout(&las_id(&state)), id);

    // A group-readable secret.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    refused(&las_id(&state), &["0640", "chmod 600"]);
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A state folder others may write to.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(&las_id(&state), &["0777", "chmod 700"]);
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();

    // The state folder given as a link.
    let link = d.path().join("state-link");
    std::os::unix::fs::symlink(&state, &link).unwrap();
    refused(&las_id(&link), &["symbolic link", "readlink -f"]);

    if !is_root() {
        gate::not_tested(
            "a state folder or secret of another user",
            "needs root (chown); the cases above ran",
        );
        return;
    }
    std::os::unix::fs::chown(&secret, Some(NOBODY), Some(NOBODY)).unwrap();
    refused(&las_id(&state), &["owned by uid 65534", "chown 0"]);
    std::os::unix::fs::chown(&secret, Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    refused(&las_id(&state), &["owned by uid 65534", "chown 0"]);
    std::os::unix::fs::chown(&state, Some(0), Some(0)).unwrap();
    assert_eq!(
        stdout(&las_id(&state)),
        id,
        "nothing was changed by the refusals"
    );
}

#[test]
fn a_report_with_another_cpusvn_is_refused_with_its_reason() {
    use las_core::egetkey;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &["--sim-cpusvn", "0a000000000000000000000000000000"],
    );
    let root = las_platform::sim::read_secret(&dir.path().join("platform-secret")).unwrap();
    let platform_svn = [10u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let ti = target_info(d.addr);
    let good = egetkey::ereport(
        &root,
        &platform_svn,
        &app_enclave(),
        &ti,
        &[7; 64],
        &[3; 32],
    );
    let r = http(d.addr, "POST", "/v1/quote", &[], &good.to_bytes());
    assert_quote(&r, &[7; 64]);

    // MACed with the platform's own report key, claiming CPUSVN 0b00...: no CPU at 0a00...
    // writes that.
    let mut body = good.body.clone();
    body.cpusvn[0] = 11;
    let key = egetkey::report_key(&root, &platform_svn, &ti, &good.key_id);
    let forged = las_core::sgx::Report {
        mac: key.cmac(&body.to_bytes()),
        body,
        key_id: good.key_id,
    };
    let r = http(d.addr, "POST", "/v1/quote", &[], &forged.to_bytes());
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["error"], "invalid-report-cpusvn");
    assert!(j["message"].as_str().unwrap().contains("0b000000"), "{j}");
    let m = scrape(d.addr);
    assert_eq!(
        metric(
            &m,
            "las_quotes_refused_total{reason=\"invalid-report-cpusvn\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn two_daemons_starting_at_once_on_an_empty_folder_share_one_secret() {
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(dir.path().join("state"));
        let barrier = Arc::new(Barrier::new(2));
        let daemons: Vec<Daemon> = (0..2)
            .map(|_| {
                let (state, barrier) = (state.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Daemon::start(&state, &[])
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("both daemons start"))
            .collect();
        let ids: Vec<String> = daemons
            .iter()
            .map(|d| {
                get(d.addr, "/v1/platform").json()["platform_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids[0], ids[1], "round {round}: two platform IDs");
        let created = daemons
            .iter()
            .filter(|d| d.log().contains("created a new platform secret"))
            .count();
        assert_eq!(
            created, 1,
            "round {round}: exactly one daemon created the secret"
        );
        let names: Vec<_> = std::fs::read_dir(&*state)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["platform-secret"],
            "round {round}: no temp file left"
        );
        for d in daemons {
            let pid = d.child.id();
            assert!(
                d.terminate().success(),
                "round {round}: daemon {pid} failed"
            );
        }
        assert_eq!(
            stdout(&las_id(&state)),
            ids[0],
            "round {round}: the ID stays"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `las quote -o FILE` replaces a symlink planted at FILE with the quote and never writes
/// through it: the link's target keeps its contents.
#[test]
fn quote_output_replaces_a_planted_link_and_never_writes_through_it() {
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::tempdir().unwrap();
    let d = Daemon::start(state.path(), &[]);
    let out_dir = tempfile::tempdir().unwrap();
    let victim = out_dir.path().join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let out = out_dir.path().join("quote.cose");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    let addr = d.addr.to_string();
    let o = las(&[
        "quote",
        "--las",
        &addr,
        "--state-dir",
        state.path().to_str().unwrap(),
        "--report-data",
        "c0ffee",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    let meta = std::fs::symlink_metadata(&out).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    let quote = std::fs::read(&out).unwrap();
    assert!(las_core::quote::decode_and_verify_quote(&quote).is_ok());
    // No temp file is left beside it.
    let names: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// Issue 23, finding 2: root runs `set-platforms` on a policy that is a link in a folder
/// another user (nobody) owns. While `las` parses the (large) policy, that user points the
/// link at a root-only file elsewhere. `las` must refuse: the file it read is no longer what
/// the path names. Before the fix it resolved the link again after the parse, created the
/// temp file beside the new target, gave it nobody's ownership and renamed it over the
/// root-only file.
#[test]
fn set_platforms_refuses_a_link_swapped_during_the_parse() {
    if !is_root() {
        gate::not_tested(
            "set-platforms with a link swapped during the parse",
            "needs root (a folder owned by another user, chown)",
        );
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let theirs = base.path().join("shared");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root_only = base.path().join("etc");
    std::fs::create_dir(&root_only).unwrap();
    let victim = Victim::new(root_only.join("secret.conf"), 0);

    // A policy large enough that its parse takes a while: many services before `app`.
    let mut text = String::from("version: \"0.3\"\nservices:\n");
    let mut n = 0;
    while text.len() < 1024 * 1024 {
        text.push_str(&format!(
            "  - name: filler-{n}\n    platforms:\n      - {NEW_ID}\n    attestation:\n      mrenclave:\n        - \"{}\"\n",
            "ab".repeat(32)
        ));
        n += 1;
    }
    text.push_str(&format!(
        "  - name: app\n    platforms: []\n    attestation:\n      mrenclave:\n        - \"{}\"\n",
        "ab".repeat(32)
    ));
    let real = theirs.join("real.yaml");
    std::fs::write(&real, &text).unwrap();
    std::os::unix::fs::chown(&real, Some(NOBODY), Some(NOBODY)).unwrap();
    let link = theirs.join("session.yaml");
    std::os::unix::fs::symlink("real.yaml", &link).unwrap();

    let child = Command::new(las_bin())
        .args(["policy", "set-platforms", "--service", "app", "--ids"])
        .arg(format!("platforms: [{NEW_ID}]"))
        .arg("--policy")
        .arg(&link)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The moment `las` has read the whole policy (its read counter), the link is swapped
    // atomically, as the folder's owner could.
    let io = format!("/proc/{}/io", child.id());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut swapped = false;
    while std::time::Instant::now() < deadline {
        let rchar = std::fs::read_to_string(&io).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("rchar: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        match rchar {
            Some(r) if r >= text.len() => {
                let tmp = theirs.join("session.yaml.new");
                std::os::unix::fs::symlink(&victim.path, &tmp).unwrap();
                std::fs::rename(&tmp, &link).unwrap();
                swapped = true;
                break;
            }
            Some(_) => std::thread::sleep(Duration::from_micros(200)),
            None => break,
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        swapped,
        "the link was not swapped in time: {}",
        stderr(&out)
    );
    victim.assert_untouched();
    refused(&out, &["changed while it was edited", "nothing written"]);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), text);
    let m = std::fs::metadata(&real).unwrap();
    assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY));
    let left: Vec<_> = std::fs::read_dir(&theirs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "real.yaml" && n != "session.yaml")
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}

/// Issue 23: `las quote` without a state folder created an empty /var/lib/las (the default
/// folder's probe) before failing. In a mount namespace with an empty /var/lib, `las
/// quote` fails with the missing secret and leaves /var/lib and the per-user folder empty.
#[test]
fn las_quote_without_a_state_folder_creates_nothing() {
    if !is_root() || Command::new("unshare").arg("--version").output().is_err() {
        gate::not_tested(
            "las quote with no /var/lib/las",
            "needs root and unshare (a private /var/lib)",
        );
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let script = r#"mount -t tmpfs tmpfs /var/lib || exit 99
"$LAS" quote --las 127.0.0.1:9 --report-data 00 --timeout 2s
echo "rc=$?"
ls -A /var/lib; ls -A "$HOME"
"#;
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("LAS", las_bin())
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("LAS_STATE_DIR")
        .env_remove("SCONE_LAS_ADDR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(
        o.trim(),
        "rc=2",
        "the quote fails, and nothing is listed after it: {o}\n{e}"
    );
    assert!(e.contains("platform-secret") || e.contains("state"), "{e}");
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
}

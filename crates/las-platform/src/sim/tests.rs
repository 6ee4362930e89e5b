use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};

use super::state::TMP_PREFIX;
use super::*;

fn cfg(dir: &Path, cpusvn: [u8; 16], m: u8) -> PlatformConfig {
    PlatformConfig {
        mode: crate::ModeRequest::Sim,
        state_dir: dir.to_path_buf(),
        sim_cpusvn: Some(cpusvn),
        sim_las_mrenclave: Some([m; 32]),
        create_secret: true,
    }
}

#[test]
fn identity_is_stable_and_changes_with_cpusvn_executable_and_secret() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let id = |d: &Path, c, m| SimPlatform::open(&cfg(d, c, m)).unwrap().platform_id();
    let base = id(a.path(), [1; 16], 1);
    assert_eq!(base, id(a.path(), [1; 16], 1), "restart: same ID");
    assert_ne!(base, id(a.path(), [2; 16], 1), "microcode update: new ID");
    assert_ne!(base, id(a.path(), [1; 16], 2), "new LAS build: new ID");
    assert_ne!(base, id(b.path(), [1; 16], 1), "another server: new ID");
}

#[test]
fn secret_file_is_owner_only_and_checked() {
    let d = tempfile::tempdir().unwrap();
    let p = SimPlatform::open(&cfg(d.path(), [1; 16], 1)).unwrap();
    assert!(p.cpu().created);
    let path = d.path().join(SECRET_FILE);
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    assert!(
        !SimPlatform::open(&cfg(d.path(), [1; 16], 1))
            .unwrap()
            .cpu()
            .created
    );

    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let e = SimPlatform::open(&cfg(d.path(), [1; 16], 1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("platform-secret") && e.contains("chmod 600"),
        "{e}"
    );

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..31]).unwrap();
    let e = SimPlatform::open(&cfg(d.path(), [1; 16], 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("31 bytes"), "{e}");
    assert_eq!(fs::read(&path).unwrap().len(), 31, "left untouched");
}

#[test]
fn reports_made_on_the_platform_check_and_others_do_not() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let las = SimPlatform::open(&cfg(a.path(), [1; 16], 1)).unwrap();
    let app = EnclaveIdentity {
        mrenclave: [9; 32],
        ..EnclaveIdentity::default()
    };
    let cpu_a = SimCpu::open(a.path(), Some([1; 16]), false).unwrap();
    let r = cpu_a.ereport(&app, &las.target_info(), &[1; 64]).unwrap();
    assert!(las.check_report(&r.to_bytes()).is_ok());

    let cpu_b = SimCpu::open(b.path(), Some([1; 16]), true).unwrap();
    let forged = cpu_b.ereport(&app, &las.target_info(), &[1; 64]).unwrap();
    assert_eq!(las.check_report(&forged.to_bytes()), Err(ReportError::Mac));

    let other_target = las_enclave([2; 32]).target_info();
    let wrong = cpu_a.ereport(&app, &other_target, &[1; 64]).unwrap();
    assert_eq!(las.check_report(&wrong.to_bytes()), Err(ReportError::Mac));

    assert!(matches!(
        las.check_report(&r.to_bytes()[..431]),
        Err(ReportError::Length { actual: 431, .. })
    ));
}

#[test]
fn missing_secret_is_not_created_when_not_allowed() {
    let d = tempfile::tempdir().unwrap();
    let e = SimCpu::open(d.path(), None, false).unwrap_err().to_string();
    assert!(e.contains("las serve"), "{e}");
    assert!(!d.path().join(SECRET_FILE).exists());
}

#[test]
fn cpusvn_from_microcode() {
    let s = "processor\t: 0\nmicrocode\t: 0xf0\n";
    let svn = cpusvn_from_cpuinfo(s).unwrap();
    assert_eq!(svn[0], 0xf0);
    assert!(cpusvn_from_cpuinfo("processor: 0\n").is_none());
}

#[test]
fn stale_temp_files_are_removed_and_live_ones_kept() {
    let d = tempfile::tempdir().unwrap();
    let stale = d.path().join(format!("{TMP_PREFIX}crashed"));
    fs::write(&stale, b"partial").unwrap();
    // Another process's secret on its way to the final name: locked by its creator.
    let live = d.path().join(format!("{TMP_PREFIX}live"));
    fs::write(&live, [7u8; 32]).unwrap();
    let holder = File::open(&live).unwrap();
    holder.lock().unwrap();
    load_or_create_secret(d.path()).unwrap();
    assert!(!stale.exists());
    assert!(live.exists(), "a locked temp file is not removed");
    drop(holder);
    load_or_create_secret(d.path()).unwrap();
    assert!(!live.exists(), "removed once its creator is gone");
}

#[test]
fn created_folders_are_0700_and_existing_ones_checked() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("a/b/state");
    load_or_create_secret(&state).unwrap();
    for p in [d.path().join("a"), d.path().join("a/b"), state.clone()] {
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
    }

    fs::set_permissions(&state, fs::Permissions::from_mode(0o770)).unwrap();
    let e = load_or_create_secret(&state).unwrap_err().to_string();
    assert!(e.contains("chmod 700") && e.contains("0770"), "{e}");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();

    let link = d.path().join("link");
    std::os::unix::fs::symlink(&state, &link).unwrap();
    let e = load_or_create_secret(&link).unwrap_err().to_string();
    assert!(e.contains("symbolic link") && e.contains("readlink"), "{e}");
    let e = SimCpu::open(&link, None, false).unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");

    let file = d.path().join("file");
    fs::write(&file, b"x").unwrap();
    let e = load_or_create_secret(&file).unwrap_err().to_string();
    assert!(e.contains("not a folder"), "{e}");
}

#[test]
fn folder_of_another_user_is_refused() {
    if current_uid() != 0 {
        // Making a folder owned by another user needs root; CI runs as root.
        las_testkit::gate::not_tested("a state folder of another user", "needs root (chown)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    fs::DirBuilder::new().mode(0o700).create(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let e = load_or_create_secret(&state).unwrap_err().to_string();
    assert!(
        e.contains("owned by uid 65534") && e.contains("chown 0"),
        "{e}"
    );
    assert_eq!(fs::read_dir(&state).unwrap().count(), 0, "nothing created");
}

#[test]
fn secret_through_a_symlink_or_of_another_user_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let victim_dir = tempfile::tempdir().unwrap();
    // Another user's file of the right size and mode, reached through a link.
    let victim = victim_dir.path().join("their-secret");
    fs::write(&victim, [5u8; 32]).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    let path = d.path().join(SECRET_FILE);
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let e = load_or_create_secret(d.path()).unwrap_err();
    assert!(matches!(e, StateError::Symlink { .. }), "{e}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(
        fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&victim).unwrap(), [5u8; 32], "victim untouched");
    let e = SimCpu::open(d.path(), None, false).unwrap_err();
    assert!(matches!(e, StateError::Symlink { .. }), "{e}");

    // A dangling link is refused too, not followed to create a file elsewhere.
    fs::remove_file(&path).unwrap();
    let target = victim_dir.path().join("created-through-link");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let e = load_or_create_secret(d.path()).unwrap_err();
    assert!(matches!(e, StateError::Symlink { .. }), "{e}");
    assert!(!target.exists(), "nothing created through the link");
    fs::remove_file(&path).unwrap();

    // A FIFO does not hang the start.
    let fifo = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(fifo.success());
    let e = load_or_create_secret(d.path()).unwrap_err();
    assert!(matches!(e, StateError::NotAFile { .. }), "{e}");
    fs::remove_file(&path).unwrap();

    if current_uid() == 0 {
        fs::write(&path, [5u8; 32]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let e = load_or_create_secret(d.path()).unwrap_err();
        assert!(
            matches!(
                e,
                StateError::Owner {
                    owner: 65534,
                    uid: 0,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("chown 0"), "{e}");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o600));
    } else {
        las_testkit::gate::not_tested("a secret of another user", "needs root (chown)");
    }
}

#[test]
fn threads_creating_at_once_share_one_secret() {
    for _ in 0..20 {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state");
        let ids: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| load_or_create_secret(&state).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created = ids.iter().filter(|(_, c)| *c).count();
        assert_eq!(created, 1, "exactly one creator");
        let on_disk = read_secret(&state.join(SECRET_FILE)).unwrap();
        let id = |root: &RootSecret| {
            let seal = egetkey::mrenclave_seal_key(root, &[1; 16], &las_enclave([1; 32]));
            PlatformIdentity::from_seal_key(&seal).platform_id()
        };
        let want = id(&on_disk);
        for (root, _) in &ids {
            assert_eq!(id(root), want, "every opener uses the secret on disk");
        }
        let names: Vec<_> = fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [SECRET_FILE], "no temp file left");
    }
}

#[test]
fn report_with_another_cpusvn_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let las = SimPlatform::open(&cfg(a.path(), [1; 16], 1)).unwrap();
    let app = EnclaveIdentity {
        mrenclave: [9; 32],
        ..EnclaveIdentity::default()
    };
    let good = las
        .cpu()
        .ereport(&app, &las.target_info(), &[1; 64])
        .unwrap();
    assert!(las.check_report(&good.to_bytes()).is_ok());
    // The platform's own report key, a body claiming another CPUSVN: the MAC checks,
    // but no CPU at CPUSVN [1; 16] writes [2; 16] into a REPORT.
    let mut body = good.body.clone();
    body.cpusvn = [2; 16];
    let key = egetkey::report_key(&las.cpu().root, &[1; 16], &las.target_info(), &good.key_id);
    let forged = Report {
        mac: key.cmac(&body.to_bytes()),
        body,
        key_id: good.key_id,
    };
    assert_eq!(
        las.check_report(&forged.to_bytes()),
        Err(ReportError::Cpusvn {
            report: [2; 16],
            platform: [1; 16]
        })
    );
    let msg = las
        .check_report(&forged.to_bytes())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("CPUSVN 0202"), "{msg}");
}

//! The hardware backend on a stand-in `/dev/attestation` folder, with REPORT keys from the
//! software model of EGETKEY (`las_core::egetkey`). Everything but the ENCLU instruction
//! and Gramine's own files is exercised here; docs/hardware.md lists the gated tests that
//! run the rest on an SGX machine.

use std::path::Path;

use las_core::egetkey::{self, RootSecret};
use las_core::evidence::decode_and_verify_evidence;

use super::*;
use crate::testing::{CPUSVN, app_identity, app_report, las_identity, write_attestation_fs};

/// EGETKEY modelled in software: the KEYREQUEST built by [`report_key_request`] goes
/// through `las_core::egetkey::egetkey`, as it would through the CPU.
#[derive(Debug)]
struct ModelKeys {
    root: RootSecret,
    me: EnclaveIdentity,
}

impl ReportKeys for ModelKeys {
    fn report_key(&self, key_id: &[u8; 32]) -> Result<Key128, ReportKeyError> {
        Ok(egetkey::egetkey(
            &self.root,
            &CPUSVN,
            &self.me,
            &report_key_request(key_id),
        )?)
    }
}

struct Fake {
    dir: tempfile::TempDir,
    root: RootSecret,
}

impl Fake {
    fn fs(&self) -> AttestationFs {
        AttestationFs::new(self.dir.path())
    }

    fn keys(&self) -> Arc<dyn ReportKeys> {
        Arc::new(ModelKeys {
            root: self.root.clone(),
            me: las_identity(),
        })
    }

    fn open(&self) -> Result<GraminePlatform, PlatformError> {
        GraminePlatform::open_with(self.fs(), self.keys())
    }
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::write(dir.join(name), data).unwrap();
}

/// A stand-in for Gramine's files as the LAS enclave sees them
/// ([`write_attestation_fs`]), the model CPU of `root_byte` behind it.
fn fake(root_byte: u8) -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let root = RootSecret::from_bytes([root_byte; 32]);
    write_attestation_fs(dir.path(), &root);
    Fake { dir, root }
}

#[test]
fn key_request_layout_is_sgx_isas() {
    let key_id = [0x5a; 32];
    let ours = report_key_request(&key_id).to_bytes();
    let theirs = sgx_isa::Keyrequest {
        keyname: sgx_isa::Keyname::Report as u16,
        keyid: key_id,
        ..Default::default()
    };
    assert_eq!(&ours[..], AsRef::<[u8]>::as_ref(&theirs));
    assert_eq!(&ours[0..2], &[3, 0]); // KEYNAME = REPORT
    assert_eq!(&ours[40..72], &key_id); // KEYID
    assert!(ours[..40].iter().skip(2).all(|&b| b == 0));
    assert!(ours[72..].iter().all(|&b| b == 0));
}

#[test]
fn identity_is_the_seal_key_identity_and_target_info_is_gramines() {
    let f = fake(1);
    let p = f.open().unwrap();
    let seal = egetkey::mrenclave_seal_key(&f.root, &CPUSVN, &las_identity());
    assert_eq!(
        p.platform_id(),
        PlatformIdentity::from_seal_key(&seal).platform_id()
    );
    assert_eq!(p.mode(), Mode::Hw);
    assert_eq!(p.target_info(), las_identity().target_info());
    assert_eq!(p.las_enclave(), &las_identity());
    assert_eq!(p.cpusvn(), CPUSVN);
    // Same seal key after a restart: same platform ID. Another CPU: another one.
    assert_eq!(f.open().unwrap().platform_id(), p.platform_id());
    assert_ne!(fake(2).open().unwrap().platform_id(), p.platform_id());
}

#[test]
fn application_reports_are_checked_with_the_report_key() {
    let f = fake(1);
    let p = f.open().unwrap();
    let target = p.target_info();
    let r = app_report(&f.root, &target, &[0x11; 64]);
    let ok = p.check_report(&r.to_bytes()).unwrap();
    assert_eq!(ok.body.mrenclave, [0xaa; 32]);
    assert_eq!(ok.body.report_data, [0x11; 64]);

    // A flipped bit anywhere in the body, KEYID or MAC: every bit of every byte.
    let bytes = r.to_bytes();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes;
            bad[i] ^= 1 << bit;
            assert!(p.check_report(&bad).is_err(), "flip of bit {bit} at {i}");
        }
    }
    // Made on another platform, for another target, at another CPUSVN.
    let other_cpu = RootSecret::from_bytes([2; 32]);
    let r2 = app_report(&other_cpu, &target, &[0; 64]);
    assert!(matches!(
        p.check_report(&r2.to_bytes()),
        Err(ReportError::Mac)
    ));
    let r3 = app_report(&f.root, &app_identity().target_info(), &[0; 64]);
    assert!(matches!(
        p.check_report(&r3.to_bytes()),
        Err(ReportError::Mac)
    ));
    let r4 = egetkey::ereport(
        &f.root,
        &[8; 16],
        &app_identity(),
        &target,
        &[0; 64],
        &[3; 32],
    );
    assert!(matches!(
        p.check_report(&r4.to_bytes()),
        Err(ReportError::Mac)
    ));
    assert!(matches!(
        p.check_report(&bytes[..431]),
        Err(ReportError::Length { .. })
    ));
}

#[test]
fn evidence_writes_the_binding_and_carries_gramines_quote() {
    let f = fake(1);
    let p = f.open().unwrap();
    let nonce = [0x42; 32];
    let ev = p.identity_evidence(&nonce, 1_800_000_000).unwrap();
    let c = decode_and_verify_evidence(&ev).unwrap();
    assert_eq!(c.platform_id, p.platform_id());
    assert_eq!(c.mode, Mode::Hw);
    assert_eq!(
        c.kind,
        EvidenceKind::SgxDcap {
            quote: b"DCAP QUOTE FROM AESM".to_vec()
        }
    );
    // The report data the quote was asked for is the key/nonce binding of docs/quote.md.
    let written = std::fs::read(f.dir.path().join("user_report_data")).unwrap();
    assert_eq!(written, binding(&p.platform_id(), &nonce).to_vec());
    assert_eq!(c.las_mrenclave, [0x4c; 32]);
    assert_eq!(c.las_isvsvn, 2);
    assert!(matches!(
        p.identity_evidence(&[0; 15], 0),
        Err(PlatformError::Nonce { .. })
    ));
    // No quote from the host: an error, not evidence.
    std::fs::write(f.dir.path().join("quote"), b"").unwrap();
    assert!(matches!(
        p.identity_evidence(&nonce, 0),
        Err(PlatformError::Quote(_))
    ));
}

#[test]
fn refuses_to_open_outside_gramine_dcap_or_when_egetkey_disagrees() {
    let f = fake(1);
    write(f.dir.path(), "attestation_type", b"none\n");
    let e = f.open().unwrap_err().to_string();
    assert!(e.contains("sgx.remote_attestation = \"dcap\""), "{e}");

    let empty = tempfile::tempdir().unwrap();
    let e = GraminePlatform::open_with(AttestationFs::new(empty.path()), fake(1).keys())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not running inside a Gramine-SGX enclave"),
        "{e}"
    );

    // REPORT keys of another CPU (or a wrong KEYREQUEST): the self-test catches it.
    let g = fake(1);
    let wrong: Arc<dyn ReportKeys> = Arc::new(ModelKeys {
        root: RootSecret::from_bytes([2; 32]),
        me: las_identity(),
    });
    let e = GraminePlatform::open_with(g.fs(), wrong)
        .unwrap_err()
        .to_string();
    assert!(e.contains("self-test"), "{e}");

    // A seal key of the wrong size.
    let h = fake(1);
    write(h.dir.path(), "keys/_sgx_mrenclave", &[1; 32]);
    let e = h.open().unwrap_err().to_string();
    assert!(e.contains("expected 16"), "{e}");
}

#[test]
fn application_side_report_goes_through_target_info_and_user_report_data() {
    let f = fake(1);
    let fs = f.fs();
    let target = app_identity().target_info();
    let r = fs.report(&target, &[0x77; 64]).unwrap();
    // The stand-in `report` file is fixed; what matters is what was written before it.
    assert_eq!(r.body.mrenclave, las_identity().mrenclave);
    assert_eq!(
        std::fs::read(f.dir.path().join("target_info")).unwrap(),
        target.to_bytes().to_vec()
    );
    assert_eq!(
        std::fs::read(f.dir.path().join("user_report_data")).unwrap(),
        vec![0x77; 64]
    );
    write(f.dir.path(), "report", &[0; 100]);
    assert!(matches!(
        fs.report(&target, &[0; 64]),
        Err(GramineError::Size { expected: 432, .. })
    ));
}

#[test]
fn detection_says_no_here() {
    // This machine runs no Gramine: `auto` must stay on the simulated platform.
    assert!(!under_gramine_dcap());
}

/// The start-up self-test with the real `Egetkey` (the `asm!` block of `hw/enclu.rs`)
/// under the emulated ENCLU of `hw/emulator.rs`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod under_emulated_enclu {
    use super::*;
    use crate::hw::emulator::{self, Enclave};

    fn enter(f: &Fake) -> emulator::Entered {
        emulator::enter(Enclave {
            root: f.root.clone(),
            cpusvn: CPUSVN,
            identity: las_identity(),
        })
    }

    #[test]
    fn self_test_and_report_checks_execute_enclu() {
        let f = fake(1);
        let _in = enter(&f);
        let before = emulator::executed();
        let p = GraminePlatform::open_with(f.fs(), Arc::new(Egetkey)).unwrap();
        assert_eq!(
            emulator::executed(),
            before + 1,
            "the self-test ran EGETKEY"
        );
        assert_eq!(p.platform_id(), f.open().unwrap().platform_id());

        let r = app_report(&f.root, &p.target_info(), &[0x11; 64]);
        assert_eq!(
            p.check_report(&r.to_bytes()).unwrap().body.mrenclave,
            [0xaa; 32]
        );
        let mut forged = r.to_bytes();
        forged[431] ^= 1;
        assert!(matches!(p.check_report(&forged), Err(ReportError::Mac)));
        assert_eq!(emulator::executed(), before + 3);
    }

    /// A change to the KEYREQUEST bytes: a layout bug.
    type Mangle = fn(&mut [u8; 512]);

    /// `Egetkey` with the KEYREQUEST bytes changed before ENCLU.
    #[derive(Debug)]
    struct Mangled(Mangle);

    impl ReportKeys for Mangled {
        fn report_key(&self, key_id: &[u8; 32]) -> Result<Key128, ReportKeyError> {
            let mut b = report_key_request(key_id).to_bytes();
            (self.0)(&mut b);
            crate::hw::enclu::egetkey(&b).map_err(ReportKeyError::Sgx)
        }
    }

    #[test]
    fn a_wrong_keyrequest_layout_fails_the_self_test() {
        let cases: [(Mangle, &str); 4] = [
            // KEYID four bytes late (over MISCMASK, which a REPORT key ignores).
            (
                |b| {
                    b.copy_within(40..72, 44);
                    b[40..44].fill(0);
                },
                "self-test",
            ),
            // KEYNAME big-endian.
            (|b| b.swap(0, 1), "SGX error code 256"),
            // A SEAL key instead of the REPORT key.
            (|b| b[0] = 4, "self-test"),
            // KEYID in the CPUSVN field (a REPORT key ignores CPUSVN: KEYID is zero).
            (
                |b| {
                    b.copy_within(40..56, 8);
                    b[40..72].fill(0);
                },
                "self-test",
            ),
        ];
        for (i, (mangle, want)) in cases.into_iter().enumerate() {
            let f = fake(1);
            let _in = enter(&f);
            let e = GraminePlatform::open_with(f.fs(), Arc::new(Mangled(mangle)))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "case {i}: {e}");
        }
    }
}

/// At start the LAS quotes itself once (REPORTDATA: a label, never an evidence binding) and
/// reads its TCB state from that quote: here the real SGX sample quote stands in for
/// Gramine's. A quote that does not read, or none at all, makes the state `unknown` and the
/// LAS still opens; unknown has no QE ID.
#[test]
fn the_startup_quote_gives_the_tcb_state_and_a_failure_gives_unknown() {
    use las_core::api::TcbStateKind;
    let sample = include_bytes!("../../../../tests/vectors/dcap/sgx_quote");
    let wait = std::time::Duration::from_secs(10);
    let f = fake(1);
    write(f.dir.path(), "quote", sample);
    let p = f.open().unwrap();
    assert_eq!(p.tcb_state().state, TcbStateKind::Unknown, "not read yet");
    p.read_tcb_state(wait);
    let t = p.tcb_state();
    assert_eq!(t.state, TcbStateKind::Known);
    let facts = las_core::tcb::dcap_facts(sample).unwrap();
    assert_eq!(t.qe_id(), Some(facts.qe_id));
    assert_eq!(t.fmspc.as_deref(), Some(hex::encode(facts.fmspc).as_str()));
    assert_eq!(
        std::fs::read(f.dir.path().join("user_report_data")).unwrap(),
        tcb_state_report_data().to_vec()
    );
    // Not a DCAP quote: unknown, with the reason; the LAS opens all the same.
    let f = fake(1);
    let p = f.open().unwrap();
    p.read_tcb_state(wait);
    let t = p.tcb_state();
    assert_eq!(t.state, TcbStateKind::Unknown);
    assert!(t.reason.unwrap().contains("does not read"));
    assert_eq!(p.tcb_state().qe_id(), None);
    // No quote at all.
    let f = fake(1);
    write(f.dir.path(), "quote", b"");
    let p = f.open().unwrap();
    p.read_tcb_state(wait);
    assert_eq!(p.tcb_state().state, TcbStateKind::Unknown);
    assert!(
        p.tcb_state()
            .reason
            .unwrap()
            .contains("no start-up DCAP quote")
    );
    // A hung AESM (a FIFO nobody writes): the deadline passes, the state is unknown.
    let f = fake(1);
    let fifo = f.dir.path().join("quote");
    std::fs::remove_file(&fifo).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let _hold = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let p = f.open().unwrap();
    let t0 = std::time::Instant::now();
    p.read_tcb_state(std::time::Duration::from_millis(300));
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        p.tcb_state()
            .reason
            .unwrap()
            .contains("no start-up DCAP quote within 300ms")
    );
}

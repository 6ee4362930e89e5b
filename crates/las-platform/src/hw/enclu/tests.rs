//! The real `asm!` block of [`egetkey`], executed under the emulated ENCLU of
//! `hw/emulator.rs` (a SIGILL handler that does what the CPU does inside an enclave).
//!
//! Faults (#GP) end the process with SIGSEGV, as on hardware: those cases run in a child
//! process (this test binary, that one test) and the parent asserts how it died.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use las_core::egetkey::{self as model, EnclaveIdentity, RootSecret};
use las_core::sgx::{Attributes, KeyName, KeyRequest, flags, key_policy, key_request_offsets};

use super::*;
use crate::hw::emulator::{self, Enclave};
use crate::hw::report_key_request;

const CPUSVN: [u8; 16] = [9, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// The enclave EGETKEY runs in: the LAS enclave of the shared fixtures.
fn me() -> EnclaveIdentity {
    crate::testing::las_identity()
}

fn root() -> RootSecret {
    RootSecret::from_bytes([0x21; 32])
}

fn enter() -> emulator::Entered {
    emulator::enter(Enclave {
        root: root(),
        cpusvn: CPUSVN,
        identity: me(),
    })
}

fn seal_request() -> KeyRequest {
    KeyRequest {
        keyname: KeyName::Seal as u16,
        keypolicy: key_policy::MRENCLAVE,
        isvsvn: me().isvsvn,
        cpusvn: CPUSVN,
        attribute_mask: Attributes {
            flags: flags::INIT | flags::DEBUG,
            xfrm: 0,
        },
        key_id: [0; 32],
        misc_mask: 0,
        config_svn: 0,
    }
}

/// ENCLU with exactly these RAX/RBX/RCX; returns RAX and ZF after it.
fn raw_enclu(rax: u64, rbx: usize, rcx: usize) -> (u64, bool) {
    let status: u64;
    let zf: u8;
    // SAFETY: test-only probe of the emulator: `rbx`/`rcx` point at live buffers of the
    // caller (or deliberately misaligned addresses inside them, which fault before any
    // access); RBX is swapped in and restored as in `egetkey`.
    unsafe {
        core::arch::asm!(
            "xchg rbx, {b}",
            "enclu",
            "setz {zf}",
            "mov rbx, {b}",
            b = inout(reg) rbx => _,
            zf = out(reg_byte) zf,
            inlateout("rax") rax => status,
            in("rcx") rcx,
            options(nostack),
        );
    }
    (status, zf != 0)
}

const CHILD_ENV: &str = "LAS_ENCLU_EMULATOR_CHILD";

/// Runs `case` in a child process: this test binary, running only the test `name` of this
/// module. Returns how the child ended and its stderr. In the child, `case` runs and the
/// child exits 0 if it returns (so a case that should fault and does not is visible).
fn in_child(name: &str, case: impl FnOnce()) -> (ExitStatus, String) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        case();
        std::process::exit(0);
    }
    let module = module_path!().split_once("::").unwrap().1;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("{module}::{name}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child for {name} did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

fn assert_gp(name: &str, case: impl FnOnce(), reason: &str) {
    let (status, err) = in_child(name, case);
    assert_eq!(
        status.signal(),
        Some(libc::SIGSEGV),
        "{name}: expected #GP (SIGSEGV), got {status:?}; stderr:\n{err}"
    );
    assert!(
        err.contains("enclu emulator: #GP(0)") && err.contains(reason),
        "{name}: stderr does not name `{reason}`:\n{err}"
    );
}

#[test]
fn buffers_have_the_alignment_egetkey_requires() {
    assert_eq!(std::mem::align_of::<AlignedRequest>(), 512);
    assert_eq!(std::mem::size_of::<AlignedRequest>(), 512);
    assert_eq!(std::mem::align_of::<AlignedKey>(), 16);
    assert_eq!(std::mem::size_of::<AlignedKey>(), 16);
}

#[test]
fn report_key_comes_from_the_emulated_cpu() {
    let _in = enter();
    for k in [[0u8; 32], [0x5a; 32], [0xff; 32]] {
        let before = emulator::executed();
        let got = egetkey(&report_key_request(&k).to_bytes()).unwrap();
        assert_eq!(emulator::executed(), before + 1, "ENCLU did not execute");
        let want = model::report_key(&root(), &CPUSVN, &me().target_info(), &k);
        assert_eq!(got.expose(), want.expose());
    }
}

#[test]
fn seal_keys_and_the_sgx_status_codes() {
    let _in = enter();
    let k = egetkey(&seal_request().to_bytes()).unwrap();
    assert_eq!(
        k.expose(),
        model::mrenclave_seal_key(&root(), &CPUSVN, &me()).expose()
    );
    let mut r = seal_request();
    r.cpusvn[0] += 1;
    assert_eq!(
        egetkey(&r.to_bytes()).unwrap_err(),
        32,
        "SGX_INVALID_CPUSVN"
    );
    let mut r = seal_request();
    r.isvsvn += 1;
    assert_eq!(
        egetkey(&r.to_bytes()).unwrap_err(),
        64,
        "SGX_INVALID_ISVSVN"
    );
    for (name, code) in [(0u16, 2u32), (1, 2), (2, 2), (5, 256), (0x0300, 256)] {
        let mut r = report_key_request(&[1; 32]);
        r.keyname = name;
        assert_eq!(egetkey(&r.to_bytes()).unwrap_err(), code, "KEYNAME {name}");
    }
}

#[test]
fn rax_and_flags_as_the_cpu_sets_them() {
    #[repr(C, align(512))]
    struct Req([u8; 512]);
    #[repr(C, align(16))]
    struct Out([u8; 16]);
    let _in = enter();
    let req = Req(report_key_request(&[3; 32]).to_bytes());
    let mut out = Out([0xee; 16]);
    let (rax, zf) = raw_enclu(1, req.0.as_ptr() as usize, out.0.as_mut_ptr() as usize);
    assert_eq!((rax, zf), (0, false));
    let want = model::report_key(&root(), &CPUSVN, &me().target_info(), &[3; 32]);
    assert_eq!(&out.0, want.expose());

    // An error sets ZF and leaves OUTPUTDATA alone. Upper RAX bits are not the leaf.
    let mut bad = report_key_request(&[3; 32]);
    bad.keyname = 77;
    let req = Req(bad.to_bytes());
    let mut out = Out([0xee; 16]);
    let (rax, zf) = raw_enclu(
        0xffff_ffff_0000_0001,
        req.0.as_ptr() as usize,
        out.0.as_mut_ptr() as usize,
    );
    assert_eq!((rax, zf), (256, true));
    assert_eq!(out.0, [0xee; 16]);
}

/// `egetkey` called through the C ABI: RBX is callee-saved, so it must come back as the
/// caller left it although the `asm!` block swaps the KEYREQUEST address into it.
extern "C" fn egetkey_c(req: *const [u8; KEY_REQUEST_SIZE]) -> u32 {
    // SAFETY: the caller passes a live request.
    match egetkey(unsafe { &*req }) {
        Ok(_) => 0,
        Err(code) => code,
    }
}

#[test]
fn rbx_is_restored_and_rax_carries_the_status() {
    let _in = enter();
    let sentinel: u64 = 0x5a5a_1234_dead_beef;
    for (req, want) in [
        (report_key_request(&[4; 32]).to_bytes(), 0u32),
        (
            {
                let mut r = report_key_request(&[4; 32]);
                r.keyname = 9;
                r.to_bytes()
            },
            256,
        ),
    ] {
        let after: u64;
        let status: u64;
        // SAFETY: calls `egetkey_c` with a live request in RDI, the stack kept 16-byte
        // aligned (push + sub 8) and every caller-saved register declared clobbered; RBX
        // is saved and restored around the call.
        unsafe {
            core::arch::asm!(
                "push rbx",
                "sub rsp, 8",
                "mov rbx, {s}",
                "call {f}",
                "mov r12, rbx",
                "add rsp, 8",
                "pop rbx",
                s = in(reg) sentinel,
                f = in(reg) egetkey_c as *const () as usize,
                out("r12") after,
                in("rdi") &req as *const [u8; KEY_REQUEST_SIZE],
                lateout("rax") status,
                clobber_abi("C"),
            );
        }
        assert_eq!(after, sentinel, "egetkey clobbered RBX");
        assert_eq!(status as u32, want);
    }
}

#[test]
fn misaligned_keyrequest_is_a_general_protection_fault() {
    assert_gp(
        "misaligned_keyrequest_is_a_general_protection_fault",
        || {
            #[repr(C, align(512))]
            struct Req([u8; 1024]);
            let _in = enter();
            let mut req = Req([0; 1024]);
            req.0[64..576].copy_from_slice(&report_key_request(&[1; 32]).to_bytes());
            let mut out = [0u8; 32];
            let o = (out.as_mut_ptr() as usize + 15) & !15;
            raw_enclu(1, req.0.as_ptr() as usize + 64, o);
        },
        "not 512-byte aligned",
    );
}

#[test]
fn misaligned_output_is_a_general_protection_fault() {
    assert_gp(
        "misaligned_output_is_a_general_protection_fault",
        || {
            #[repr(C, align(512))]
            struct Req([u8; 512]);
            #[repr(C, align(16))]
            struct Out([u8; 32]);
            let _in = enter();
            let req = Req(report_key_request(&[1; 32]).to_bytes());
            let mut out = Out([0; 32]);
            raw_enclu(1, req.0.as_ptr() as usize, out.0.as_mut_ptr() as usize + 8);
        },
        "not 16-byte aligned",
    );
}

#[test]
fn swapped_rbx_and_rcx_fault() {
    // What `egetkey` would do with its two pointers swapped: the 16-byte key buffer is
    // not 512-byte aligned.
    assert_gp(
        "swapped_rbx_and_rcx_fault",
        || {
            #[repr(C, align(512))]
            struct Req([u8; 512]);
            #[repr(C, align(512))]
            struct Out([u8; 512]);
            let _in = enter();
            let req = Req(report_key_request(&[1; 32]).to_bytes());
            let mut out = Out([0; 512]);
            raw_enclu(1, out.0.as_mut_ptr() as usize + 16, req.0.as_ptr() as usize);
        },
        "not 512-byte aligned",
    );
}

#[test]
fn reserved_keyrequest_bytes_are_a_general_protection_fault() {
    assert_gp(
        "reserved_keyrequest_bytes_are_a_general_protection_fault",
        || {
            let _in = enter();
            let mut b = report_key_request(&[1; 32]).to_bytes();
            b[key_request_offsets::RESERVED2 + 100] = 1;
            let _ = egetkey(&b);
        },
        "RESERVED2",
    );
}

#[test]
fn reserved_keypolicy_bits_are_a_general_protection_fault() {
    assert_gp(
        "reserved_keypolicy_bits_are_a_general_protection_fault",
        || {
            let _in = enter();
            let mut r = seal_request();
            r.keypolicy |= 0x0040;
            let _ = egetkey(&r.to_bytes());
        },
        "reserved bits",
    );
}

#[test]
fn kss_fields_without_kss_are_a_general_protection_fault() {
    assert_gp(
        "kss_fields_without_kss_are_a_general_protection_fault",
        || {
            let _in = enter();
            let mut r = seal_request();
            r.config_svn = 1;
            let _ = egetkey(&r.to_bytes());
        },
        "KSS",
    );
}

#[test]
fn other_leaves_are_a_general_protection_fault() {
    assert_gp(
        "other_leaves_are_a_general_protection_fault",
        || {
            #[repr(C, align(512))]
            struct Req([u8; 512]);
            let _in = enter();
            let req = Req(report_key_request(&[1; 32]).to_bytes());
            let mut out = Req([0; 512]);
            raw_enclu(0x99, req.0.as_ptr() as usize, out.0.as_mut_ptr() as usize);
        },
        "leaf 153",
    );
}

#[test]
fn outside_an_enclave_enclu_is_still_undefined() {
    // The emulator only stands in for an entered enclave: elsewhere ENCLU faults as the
    // CPU makes it fault (#UD without SGX, #GP outside an enclave or where a hypervisor
    // hides SGX), and the emulator says nothing.
    let (status, err) = in_child("outside_an_enclave_enclu_is_still_undefined", || {
        emulator::install();
        let _ = egetkey(&report_key_request(&[1; 32]).to_bytes());
    });
    assert!(
        matches!(status.signal(), Some(libc::SIGILL | libc::SIGSEGV)),
        "{status:?} {err}"
    );
    assert!(!err.contains("enclu emulator"), "{err}");
}

#[test]
fn other_undefined_instructions_still_kill() {
    let (status, err) = in_child("other_undefined_instructions_still_kill", || {
        let _in = enter();
        // SAFETY: UD2 raises #UD by definition; the test expects the process to die.
        unsafe { core::arch::asm!("ud2") };
    });
    assert_eq!(status.signal(), Some(libc::SIGILL), "{err}");
}

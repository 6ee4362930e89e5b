//! TEST-ONLY: an emulated ENCLU[EGETKEY], so that the real instruction sequence of
//! `hw/enclu.rs` executes on machines without SGX (CI).
//!
//! Outside an enclave, ENCLU faults: #UD (SIGILL) on a CPU without SGX, #GP(0) (SIGSEGV,
//! `si_code` SI_KERNEL) where the CPU knows SGX but the code runs outside an enclave, or
//! where a hypervisor hides SGX (the CI machines raise #GP). Linux delivers either with
//! the faulting instruction's context. [`install`] puts a handler for both signals in
//! place that does what the CPU would do inside an enclave (Intel SDM vol. 3D, "EGETKEY"):
//!
//! - the instruction at RIP must be ENCLU (`0F 01 D7`) and, for SIGSEGV, the fault a
//!   kernel-raised one (SI_KERNEL, as for #GP); anything else is a genuine fault: the
//!   handler that was there before (Rust's stack-overflow handler, or the default) is put
//!   back and the instruction re-executes, so the process dies as it would without this
//!   handler;
//! - no enclave entered with [`enter`]: also a genuine fault (a machine without SGX);
//! - the leaf is EAX; anything but EGETKEY (1) is #GP(0);
//! - RBX (KEYREQUEST) must be 512-byte aligned and RCX (OUTPUTDATA) 16-byte aligned, else
//!   #GP(0);
//! - non-zero KEYREQUEST reserved fields or KEYPOLICY reserved bits are #GP(0), as are the
//!   KSS-only KEYPOLICY bits and CONFIGSVN when the enclave lacks ATTRIBUTES.KSS;
//! - KEYNAME REPORT and SEAL: the key from the software model `las_core::egetkey` for the
//!   entered enclave's identity, root secret and CPUSVN, written to RCX; a SEAL request
//!   above the current CPUSVN or the enclave's ISVSVN answers SGX_INVALID_CPUSVN (32) or
//!   SGX_INVALID_ISVSVN (64); EINITTOKEN/PROVISION/PROVISION_SEAL without the matching
//!   attribute answer SGX_INVALID_ATTRIBUTE (2); any other KEYNAME SGX_INVALID_KEYNAME
//!   (256); nothing is written to RCX on error;
//! - RAX = the status; ZF = 1 on error, 0 on success; CF, PF, AF, OF, SF cleared; every
//!   other register unchanged; RIP += 3.
//!
//! #GP(0) is delivered as the kernel delivers it: the process dies of SIGSEGV. The handler
//! first writes `enclu emulator: #GP(0): <reason>` to stderr, so tests that feed a faulting
//! case run it in a child process and assert both.
//!
//! Why a SIGILL handler rather than a mock of `enclu::egetkey`: the code under test is the
//! real `asm!` block, compiled as shipped; only the CPU's part is replaced, at the
//! instruction boundary, with the registers the compiler actually chose.
//!
//! This file is compiled only into tests: `hw/mod.rs` declares it under `cfg(test)`, and
//! `tests/hw_emulated.rs` includes it by path. No shipped build contains it.
#![allow(unsafe_code, dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use las_core::egetkey::{self, EnclaveIdentity, RootSecret};
use las_core::error::KeyError;
use las_core::sgx::{KEY_REQUEST_SIZE, KeyName, KeyRequest, flags};

/// The ENCLU opcode.
const ENCLU: [u8; 3] = [0x0f, 0x01, 0xd7];
/// ENCLU leaf of EGETKEY.
const EGETKEY: u64 = 1;

/// SGX status codes of EGETKEY (SDM vol. 3D; Linux `arch/x86/include/asm/sgx.h`).
pub const SGX_INVALID_ATTRIBUTE: u64 = 2;
/// A SEAL/PROVISION request's CPUSVN is beyond the platform's.
pub const SGX_INVALID_CPUSVN: u64 = 32;
/// A request's ISVSVN is above the enclave's.
pub const SGX_INVALID_ISVSVN: u64 = 64;
/// Unknown KEYNAME.
pub const SGX_INVALID_KEYNAME: u64 = 256;

/// KEYPOLICY bits that exist (MRENCLAVE .. ISVEXTPRODID); the others are reserved.
const KEYPOLICY_DEFINED: u16 = 0x003f;
/// KEYPOLICY bits that need ATTRIBUTES.KSS.
const KEYPOLICY_KSS: u16 = 0x003c;

const FLAG_CF: i64 = 1 << 0;
const FLAG_PF: i64 = 1 << 2;
const FLAG_AF: i64 = 1 << 4;
const FLAG_ZF: i64 = 1 << 6;
const FLAG_SF: i64 = 1 << 7;
const FLAG_OF: i64 = 1 << 11;

/// The enclave the emulated CPU runs in: what its SECS holds, and the platform.
#[derive(Debug, Clone)]
pub struct Enclave {
    /// Stands in for the CPU's fused keys.
    pub root: RootSecret,
    /// The platform's current CPUSVN.
    pub cpusvn: [u8; 16],
    /// The enclave's identity (SECS).
    pub identity: EnclaveIdentity,
}

/// The entered enclave; read by the handler.
static ENTERED: Mutex<Option<Enclave>> = Mutex::new(None);
/// Serialises tests that enter an enclave (one emulated CPU per process).
static IN_USE: Mutex<()> = Mutex::new(());
/// EGETKEYs that completed (status 0 or an SGX error code).
static EXECUTED: AtomicU64 = AtomicU64::new(0);
/// The SIGILL and SIGSEGV actions in place before [`install`].
static PREVIOUS: OnceLock<(libc::sigaction, libc::sigaction)> = OnceLock::new();

/// While alive, ENCLU executes as inside `enclave`. Dropping it leaves the enclave.
#[derive(Debug)]
pub struct Entered {
    _serial: MutexGuard<'static, ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        *ENTERED.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Installs the handler (once) and enters `enclave` until the guard is dropped. Blocks
/// while another test of this process is inside an enclave.
pub fn enter(enclave: Enclave) -> Entered {
    install();
    let serial = IN_USE.lock().unwrap_or_else(|p| p.into_inner());
    *ENTERED.lock().unwrap_or_else(|p| p.into_inner()) = Some(enclave);
    Entered { _serial: serial }
}

/// How many EGETKEYs the emulator has executed in this process.
pub fn executed() -> u64 {
    EXECUTED.load(Ordering::SeqCst)
}

/// Installs the SIGILL and SIGSEGV handler for the whole process (idempotent).
pub fn install() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: a zeroed `sigaction` is a valid value (empty mask, no flags); we fill in
        // the handler and flags before passing it to the kernel, which writes the previous
        // actions into `old_ill`/`old_segv`. `on_fault` has the SA_SIGINFO signature.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old_ill: libc::sigaction = std::mem::zeroed();
            let mut old_segv: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(libc::SIGILL, &sa, &mut old_ill), 0);
            assert_eq!(libc::sigaction(libc::SIGSEGV, &sa, &mut old_segv), 0);
            (old_ill, old_segv)
        }
    });
}

/// What the emulated CPU decided for one ENCLU.
enum Outcome {
    /// Not ours to emulate: let the #UD happen.
    Undefined,
    /// #GP(0), with the reason for the test log.
    GeneralProtection(String),
    /// EGETKEY completed with this status (and the key when 0).
    Done { status: u64, key: Option<[u8; 16]> },
}

/// Writes to stderr without allocating or locking (async-signal-safe).
fn say(msg: &str) {
    // SAFETY: writes `msg.len()` bytes from a live buffer to fd 2.
    unsafe {
        let _ = libc::write(2, msg.as_ptr().cast(), msg.len());
    }
}

/// Restores the default action of `sig` (SIG_DFL).
fn default_action(sig: libc::c_int) {
    // SAFETY: as in `install`, with SIG_DFL as the handler.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Puts back the action `sig` had before [`install`] (the default if unknown).
fn previous_action(sig: libc::c_int) {
    let prev = PREVIOUS
        .get()
        .map(|(ill, segv)| if sig == libc::SIGILL { ill } else { segv });
    match prev {
        // SAFETY: re-installs an action the kernel gave us.
        Some(p) => unsafe {
            libc::sigaction(sig, p, std::ptr::null_mut());
        },
        None => default_action(sig),
    }
}

/// The SIGILL/SIGSEGV handler.
///
/// Allocation in here (the key model's derivation buffer, the #GP message) is sound in
/// practice: the fault of ENCLU is synchronous, raised by this thread while it executes the
/// `asm!` block of `enclu::egetkey`, where it holds no allocator or stdio lock; other
/// threads holding such locks only make this thread wait.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `ucontext_t` for an SA_SIGINFO handler; it lives
    // on the signal stack frame for the duration of this call and is ours to modify (the
    // kernel restores the registers from it on return).
    let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
    let g = &mut uc.uc_mcontext.gregs;
    let rip = g[libc::REG_RIP as usize] as usize;
    // SAFETY: the kernel passes a valid `siginfo_t` for an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    if sig == libc::SIGSEGV && code != libc::SI_KERNEL {
        // A page fault (SEGV_MAPERR/ACCERR), not #GP: not an ENCLU for us.
        previous_action(sig);
        return;
    }
    // SAFETY: RIP points at the instruction that faulted, which the CPU just fetched, so at
    // least its first byte is mapped and executable; ENCLU is 3 bytes and x86 instructions
    // do not straddle into unmapped memory when they decoded as far as #UD.
    let insn: [u8; 3] = unsafe { std::ptr::read_unaligned(rip as *const [u8; 3]) };
    let outcome = if insn == ENCLU {
        emulate(
            g[libc::REG_RAX as usize] as u64,
            g[libc::REG_RBX as usize] as u64,
            g[libc::REG_RCX as usize] as u64,
        )
    } else {
        Outcome::Undefined
    };
    match outcome {
        Outcome::Undefined => {
            // Returning re-executes the instruction, which now faults into the previous
            // handler exactly as without the emulator.
            previous_action(sig);
        }
        Outcome::GeneralProtection(why) => {
            say(&format!("enclu emulator: #GP(0): {why}\n"));
            default_action(libc::SIGSEGV);
            // SAFETY: raising a signal whose action is the default: the process ends.
            unsafe {
                libc::raise(libc::SIGSEGV);
            }
        }
        Outcome::Done { status, key } => {
            if let Some(k) = key {
                let rcx = g[libc::REG_RCX as usize] as usize;
                // SAFETY: `emulate` checked RCX's 16-byte alignment; the caller's `asm!`
                // block passes a live 16-byte output buffer there (on hardware an invalid
                // address would be #PF; here it would be SIGSEGV, the same outcome).
                unsafe { std::ptr::write_volatile(rcx as *mut [u8; 16], k) };
            }
            let efl = &mut g[libc::REG_EFL as usize];
            *efl &= !(FLAG_CF | FLAG_PF | FLAG_AF | FLAG_OF | FLAG_SF | FLAG_ZF);
            if status != 0 {
                *efl |= FLAG_ZF;
            }
            g[libc::REG_RAX as usize] = status as i64;
            g[libc::REG_RIP as usize] = (rip + ENCLU.len()) as i64;
            EXECUTED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// EGETKEY as the SDM describes it, on the registers at the ENCLU.
fn emulate(rax: u64, rbx: u64, rcx: u64) -> Outcome {
    let entered = ENTERED.lock().unwrap_or_else(|p| p.into_inner());
    let Some(enclave) = entered.as_ref() else {
        return Outcome::Undefined;
    };
    // The leaf is EAX.
    let leaf = rax & 0xffff_ffff;
    if leaf != EGETKEY {
        return Outcome::GeneralProtection(format!(
            "ENCLU leaf {leaf} in EAX: only EGETKEY (1) is emulated"
        ));
    }
    if !rbx.is_multiple_of(512) {
        return Outcome::GeneralProtection(format!(
            "KEYREQUEST at RBX={rbx:#x} is not 512-byte aligned"
        ));
    }
    if !rcx.is_multiple_of(16) {
        return Outcome::GeneralProtection(format!(
            "OUTPUTDATA at RCX={rcx:#x} is not 16-byte aligned"
        ));
    }
    // SAFETY: RBX is 512-byte aligned; the caller's `asm!` block passes a live 512-byte
    // KEYREQUEST there (an unmapped address would fault here, as it would #PF on hardware).
    let raw: [u8; KEY_REQUEST_SIZE] =
        unsafe { std::ptr::read_volatile(rbx as *const [u8; KEY_REQUEST_SIZE]) };
    let req = match KeyRequest::try_from_slice(&raw) {
        Ok(r) => r,
        Err(e) => return Outcome::GeneralProtection(format!("KEYREQUEST: {e}")),
    };
    if req.keypolicy & !KEYPOLICY_DEFINED != 0 {
        return Outcome::GeneralProtection(format!(
            "KEYREQUEST.KEYPOLICY {:#06x} sets reserved bits",
            req.keypolicy
        ));
    }
    let me = &enclave.identity;
    if me.attributes.flags & flags::KSS == 0
        && (req.keypolicy & KEYPOLICY_KSS != 0 || req.config_svn != 0)
    {
        return Outcome::GeneralProtection(
            "KEYREQUEST uses KSS fields (KEYPOLICY bits 2-5 or CONFIGSVN) but the enclave lacks ATTRIBUTES.KSS".into(),
        );
    }
    let done = |status: u64| Outcome::Done { status, key: None };
    let needs = |bit: u64| {
        if me.attributes.flags & bit == 0 {
            done(SGX_INVALID_ATTRIBUTE)
        } else {
            // An emulated enclave with these attributes is a test bug: say so loudly.
            Outcome::GeneralProtection(format!(
                "KEYNAME {} with the enclave's attribute set is not modelled",
                req.keyname
            ))
        }
    };
    match req.keyname {
        n if n == KeyName::Report as u16 || n == KeyName::Seal as u16 => {
            match egetkey::egetkey(&enclave.root, &enclave.cpusvn, me, &req) {
                Ok(k) => Outcome::Done {
                    status: 0,
                    key: Some(*k.expose()),
                },
                Err(KeyError::Svn("CPUSVN")) => done(SGX_INVALID_CPUSVN),
                Err(KeyError::Svn(_)) => done(SGX_INVALID_ISVSVN),
                Err(_) => done(SGX_INVALID_KEYNAME),
            }
        }
        n if n == KeyName::EinitToken as u16 => needs(flags::EINITTOKEN_KEY),
        n if n == KeyName::Provision as u16 || n == KeyName::ProvisionSeal as u16 => {
            needs(flags::PROVISION_KEY)
        }
        _ => done(SGX_INVALID_KEYNAME),
    }
}

//! ENCLU[EGETKEY]: the one piece of `unsafe` code in the project.
//!
//! Gramine exposes the seal keys as files but not the REPORT key, which the LAS needs to
//! check application REPORTs. Code inside an SGX enclave may execute EGETKEY itself
//! (Gramine's own regression test `libos/test/regression/attestation.c` does), so the LAS
//! does: RAX = 1 (the EGETKEY leaf), RBX = the 512-byte KEYREQUEST (512-byte aligned),
//! RCX = the 16-byte output key (16-byte aligned); on return RAX is 0 or an SGX error code.
//!
//! Executing ENCLU outside an enclave raises #UD (SIGILL): [`egetkey`] must only be called
//! inside an SGX enclave, which `GraminePlatform::open` establishes first (Gramine's
//! `/dev/attestation` exists only there), and it proves the instruction works with a
//! self-test on the LAS's own REPORT before serving anything.
#![allow(unsafe_code)]

use las_core::crypto::Key128;
use las_core::sgx::KEY_REQUEST_SIZE;
use zeroize::Zeroize;

/// ENCLU leaf number of EGETKEY (Intel SDM vol. 3D, "EGETKEY").
const EGETKEY_LEAF: u32 = 1;

/// EGETKEY requires its KEYREQUEST on a 512-byte boundary.
#[repr(C, align(512))]
struct AlignedRequest([u8; KEY_REQUEST_SIZE]);

/// EGETKEY writes the key to a 16-byte aligned buffer.
#[repr(C, align(16))]
struct AlignedKey([u8; 16]);

impl Drop for AlignedKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Runs EGETKEY with `request` (a KEYREQUEST, see `las_core::sgx::KeyRequest::to_bytes`).
/// Returns the key, or the SGX error code from RAX (2 = SGX_INVALID_ATTRIBUTE,
/// 32 = SGX_INVALID_CPUSVN, 64 = SGX_INVALID_ISVSVN, 256 = SGX_INVALID_KEYNAME).
///
/// Must run inside an SGX enclave: see the module documentation.
pub(crate) fn egetkey(request: &[u8; KEY_REQUEST_SIZE]) -> Result<Key128, u32> {
    let req = AlignedRequest(*request);
    let mut key = AlignedKey([0; 16]);
    let status: u32;
    // SAFETY: `req` and `key` are live, correctly sized and aligned for the whole asm block
    // (the repr(align) wrappers give 512 and 16). EGETKEY reads 512 bytes at RBX and writes
    // 16 bytes at RCX, nothing else; the block declares RAX (status) and the scratch
    // register as outputs, keeps the stack untouched (nostack) and leaves memory and flags
    // as clobbered by default. RBX is reserved by LLVM, so it is swapped in and restored.
    // The #UD outside an enclave is excluded by the caller (module docs).
    unsafe {
        core::arch::asm!(
            "xchg rbx, {req}",
            "enclu",
            "mov rbx, {req}",
            req = inout(reg) core::ptr::from_ref(&req) => _,
            inlateout("eax") EGETKEY_LEAF => status,
            in("rcx") key.0.as_mut_ptr(),
            options(nostack),
        );
    }
    if status == 0 {
        Ok(Key128::from_bytes(key.0))
    } else {
        Err(status)
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests;

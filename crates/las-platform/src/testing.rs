//! TEST-ONLY fixtures of the hardware backend's tests: the enclaves they attest and a
//! stand-in for Gramine's `/dev/attestation` folder made with the software model of the
//! CPU (`las_core::egetkey`), the same model the emulated ENCLU (`hw/emulator.rs`) uses.
//!
//! Compiled into this crate's unit tests (`cfg(test)`) and, with the `testing` feature,
//! for `las-testkit`; `tests/hw_emulated.rs` includes it by path. It uses nothing of this
//! crate, only `las_core` and `std`, so that all three can share it. No shipped build
//! enables the feature.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::Path;

use las_core::egetkey::{self, EnclaveIdentity, RootSecret};
use las_core::sgx::{Attributes, Report, TargetInfo, flags};

/// The CPUSVN of the modelled CPU.
pub const CPUSVN: [u8; 16] = [7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// What the stand-in AESM answers for a quote (the LAS passes it through unread).
pub const AESM_QUOTE: &[u8] = b"DCAP QUOTE FROM AESM";

/// A release (not debug), initialised 64-bit enclave with x87+SSE state, MRENCLAVE and
/// MRSIGNER filled with one byte each.
pub fn release_enclave(
    mrenclave: u8,
    mrsigner: u8,
    isvprodid: u16,
    isvsvn: u16,
) -> EnclaveIdentity {
    EnclaveIdentity {
        mrenclave: [mrenclave; 32],
        mrsigner: [mrsigner; 32],
        attributes: Attributes {
            flags: flags::INIT | flags::MODE64BIT,
            xfrm: 3,
        },
        isvprodid,
        isvsvn,
        ..EnclaveIdentity::default()
    }
}

/// The LAS enclave itself (MRENCLAVE `4c..`, MRSIGNER `53..`).
pub fn las_identity() -> EnclaveIdentity {
    release_enclave(0x4c, 0x53, 1, 2)
}

/// An application enclave asking the LAS for quotes (MRENCLAVE `aa..`, MRSIGNER `bb..`).
pub fn app_identity() -> EnclaveIdentity {
    release_enclave(0xaa, 0xbb, 7, 3)
}

/// Writes Gramine's files as the LAS enclave sees them into `dir`, made with the model CPU
/// of `root` at [`CPUSVN`]: its TARGETINFO, a REPORT of itself for itself (what `report`
/// returns after `target_info` = `my_target_info`), the [`AESM_QUOTE`] placeholder and its
/// MRENCLAVE seal key.
pub fn write_attestation_fs(dir: &Path, root: &RootSecret) {
    let las = las_identity();
    let w = |name: &str, data: &[u8]| std::fs::write(dir.join(name), data).unwrap();
    w("attestation_type", b"dcap\n");
    w("my_target_info", &las.target_info().to_bytes());
    w("target_info", b"");
    w("user_report_data", b"");
    let own = egetkey::ereport(root, &CPUSVN, &las, &las.target_info(), &[0; 64], &[9; 32]);
    w("report", &own.to_bytes());
    w("quote", AESM_QUOTE);
    std::fs::create_dir(dir.join("keys")).unwrap();
    w(
        "keys/_sgx_mrenclave",
        egetkey::mrenclave_seal_key(root, &CPUSVN, &las).expose(),
    );
}

/// A REPORT of [`app_identity`] for `target` over `report_data`, made by the model CPU of
/// `root` at [`CPUSVN`] (KEYID `03..`).
pub fn app_report(root: &RootSecret, target: &TargetInfo, report_data: &[u8; 64]) -> Report {
    egetkey::ereport(
        root,
        &CPUSVN,
        &app_identity(),
        target,
        report_data,
        &[3; 32],
    )
}

//! The committed test vectors under `tests/vectors/` at the workspace root (see its
//! README.md for where each file came from and its SHA-256). Compiled in, so no test looks
//! for them at run time (no `cargo metadata`, no registry folder).

use std::path::PathBuf;

/// `tests/vectors/` of the workspace.
pub fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors"))
}

/// `tests/vectors/dcap/`: the real DCAP sample of dcap-qvl 0.7.1.
pub fn dcap_dir() -> PathBuf {
    dir().join("dcap")
}

/// A real SGX DCAP quote (v3, ECDSA-P256), dcap-qvl 0.7.1 `sample/sgx_quote`.
pub const DCAP_QUOTE: &[u8] = include_bytes!("../../../tests/vectors/dcap/sgx_quote");

/// Its collateral (QuoteCollateralV3 as JSON), dcap-qvl 0.7.1
/// `sample/sgx_quote_collateral.json`.
pub const DCAP_COLLATERAL_JSON: &[u8] =
    include_bytes!("../../../tests/vectors/dcap/sgx_quote_collateral.json");

/// 2025-07-01T00:00:00Z: inside the sample collateral's validity (TCB info and QE identity
/// from 2025-06-19 to 2025-07-19, CRLs likewise).
pub const DCAP_SAMPLE_NOW: u64 = 1_751_328_000;

/// A LAS quote in format 2 (what a LAS issues), pinned once: `quote-v2.cose`.
pub const QUOTE_V2: &[u8] = include_bytes!("../../../tests/vectors/quote-v2.cose");

/// The same claims in quote format 1 (read, no longer issued), pinned once: `quote-v1.cose`.
pub const QUOTE_V1: &[u8] = include_bytes!("../../../tests/vectors/quote-v1.cose");

/// The seal key of the platform that signed [`QUOTE_V1`] and [`QUOTE_V2`].
pub const QUOTE_SEAL_KEY: [u8; 16] = [1; 16];

/// The issue time (`iat`) of [`QUOTE_V1`] and [`QUOTE_V2`].
pub const QUOTE_IAT: u64 = 1_800_000_000;

/// `quote` (one of the vectors above) with its payload's `"v": from` changed to `"v": to`,
/// the signature left as it was: a verifier reads the version, and refuses one it does not
/// know, before it checks the signature.
#[allow(clippy::indexing_slicing, clippy::panic)]
pub fn quote_with_version(quote: &[u8], from: u8, to: u8) -> Vec<u8> {
    let find = [0x61, b'v', from];
    let i = quote
        .windows(3)
        .position(|w| w == find)
        .unwrap_or_else(|| panic!("no \"v\": {from} in the quote"));
    let mut q = quote.to_vec();
    q[i + 2] = to;
    q
}

/// The REPORT body inside [`DCAP_QUOTE`] (after its 48-byte header).
#[allow(clippy::indexing_slicing)]
pub fn dcap_report_body() -> &'static [u8] {
    &DCAP_QUOTE[48..432]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dcap_sample_is_an_sgx_quote_and_json() {
        assert_eq!(DCAP_QUOTE.len(), 4600);
        // Version 3, attestation key type 2 (ECDSA-256 with P-256).
        assert_eq!(&DCAP_QUOTE[..4], &[3, 0, 2, 0]);
        assert_eq!(dcap_report_body().len(), 384);
        let v: serde_json::Value = serde_json::from_slice(DCAP_COLLATERAL_JSON).unwrap();
        assert!(v.get("tcb_info").is_some(), "{v}");
        assert!(dcap_dir().join("README.md").exists() || dir().join("README.md").exists());
    }
}

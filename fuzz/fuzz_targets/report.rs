//! REPORT, REPORTBODY, TARGETINFO and KEYREQUEST parsing, and the LAS's MAC check.
//! Properties: no panic; whatever parses re-encodes to the same bytes; no input but the
//! seeds made with the platform's key carries a MAC that checks.
#![no_main]

use las_core::sgx::{KeyRequest, Report, ReportBody, TargetInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Report::try_from_slice(data) {
        assert_eq!(&r.to_bytes()[..], data, "REPORT does not round-trip");
        if las_fuzz::mac_checks(&r) {
            // Only REPORTs made with the root secret check: the seeds.
            let seed_body = las_fuzz::valid_report(r.body.attributes.debug(), r.body.report_data);
            assert_eq!(
                r.to_bytes(),
                seed_body.to_bytes(),
                "a REPORT that is not a seed passed the MAC check"
            );
        }
    }
    if let Ok(b) = ReportBody::try_from_slice(data) {
        assert_eq!(&b.to_bytes()[..], data, "REPORTBODY does not round-trip");
    }
    if let Ok(t) = TargetInfo::try_from_slice(data) {
        assert_eq!(&t.to_bytes()[..], data, "TARGETINFO does not round-trip");
    }
    if let Ok(k) = KeyRequest::try_from_slice(data) {
        assert_eq!(&k.to_bytes()[..], data, "KEYREQUEST does not round-trip");
    }
});

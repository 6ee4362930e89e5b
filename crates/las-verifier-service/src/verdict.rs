//! A verdict as an EAR claim set, in either form ([`EarProfile`]): draft-ietf-rats-ear-04
//! (`ear_status`, ...) or the legacy Veraison form (`ear.status`, ...): the status, the AR4SI
//! trustworthiness vector and the policy ID under the service's submodule, and our own
//! claims beside them in the one `las.` namespace (`las.facts`, `las.reasons`, `las.notes`),
//! named the same in both forms.

use las_core::api::verifier::EarStatus;
use las_verifier::{LasTrust, Reason, Verdict};
use serde_json::{Value, json};

use crate::ear::EarProfile;

/// `affirming`: accepted, nothing tolerated, hardware from verified evidence; `warning`:
/// accepted through a tolerance (every note is one; simulation always adds one, and so
/// does a `hw` quote whose LAS key is only pinned); `contraindicated`: rejected.
pub(crate) fn status_of(v: &Verdict) -> EarStatus {
    let sim = v
        .claims
        .as_ref()
        .is_some_and(|c| c.mode == las_core::Mode::Sim);
    if !v.accepted() {
        EarStatus::Contraindicated
    } else if sim || !v.notes.is_empty() {
        EarStatus::Warning
    } else {
        EarStatus::Affirming
    }
}

/// AR4SI tier and value for a rejection reason.
fn tier_of(r: Reason) -> (&'static str, u8) {
    match r {
        // 99: cryptographic validation of the evidence failed.
        // A quote in no format this verifier reads, or in another encoding than the
        // one a LAS writes, is evidence that could not be validated either.
        Reason::MalformedQuote
        | Reason::UnsupportedQuoteFormat
        | Reason::NonCanonicalQuote
        | Reason::BadSignature
        | Reason::DcapQuoteInvalid => ("instance-identity", 99),
        // 97: the attesting instance is not recognized.
        Reason::UntrustedLas | Reason::PlatformNotAllowed | Reason::EvidenceInconsistent => {
            ("instance-identity", 97)
        }
        // 96: freshness/binding broken: the evidence is not for this exchange.
        Reason::ReportDataMismatch | Reason::QuoteFromTheFuture | Reason::QuoteTooOld => {
            ("instance-identity", 96)
        }
        // 97: unrecognized hardware (simulation is no hardware at all).
        Reason::SimulationNotTolerated => ("hardware", 97),
        // 96: hardware with vulnerabilities the policy does not accept.
        Reason::TcbOutOfDate
        | Reason::TcbSoftwareHardeningNeeded
        | Reason::AdvisoryNotIgnored
        | Reason::DcapCollateralMissing
        | Reason::DcapCollateralExpired
        | Reason::TcbEvalDataNumberTooLow => ("hardware", 96),
        Reason::TcbConfigurationNeeded
        | Reason::HyperthreadingEnabled
        | Reason::DynamicPlatform
        | Reason::CachedKeys
        | Reason::SgxWithoutIntegrity => ("configuration", 96),
        Reason::DebugEnclave | Reason::DebugLas => ("executables", 96),
        // 33: unrecognized executables.
        Reason::MrenclaveMismatch
        | Reason::SignerMismatch
        | Reason::IsvsvnTooLow
        | Reason::IsvsvnTooHigh
        | Reason::NoAttestationPolicy => ("executables", 33),
        // Reasons added later: contraindicated until classified.
        #[allow(unreachable_patterns)]
        _ => ("configuration", 96),
    }
}

fn trust_vector(v: &Verdict) -> Value {
    let mut tv: Vec<(&'static str, u8)> = vec![
        ("instance-identity", 2),
        ("configuration", 2),
        ("executables", 2),
        ("hardware", 2),
    ];
    // The worst value of a tier wins (higher is worse: 2 < 32 < 96).
    fn set(tv: &mut [(&'static str, u8)], tier: &'static str, value: u8) {
        for e in tv.iter_mut() {
            if e.0 == tier && value > e.1 {
                e.1 = value;
            }
        }
    }
    if let Some(c) = &v.claims {
        if c.mode == las_core::Mode::Sim {
            // 32: hardware with known weaknesses (a simulated platform protects nothing).
            set(&mut tv, "hardware", 32);
        }
        if c.mode == las_core::Mode::Hw && v.las_trust == Some(LasTrust::Pinned) {
            // 32: the hardware is the quote's own claim, trusted through a pinned key only.
            set(&mut tv, "hardware", 32);
        }
        if c.report_body.attributes.debug() {
            // 32: recognized executables, but loaded in a weaker (debug) mode.
            set(&mut tv, "executables", 32);
        }
    }
    if v.accepted() && !v.notes.is_empty() && tv.iter().all(|e| e.1 == 2) {
        // Some other tolerance (advisories, TCB) was needed.
        set(&mut tv, "configuration", 32);
    }
    for r in &v.rejections {
        let (tier, value) = tier_of(r.reason);
        set(&mut tv, tier, value);
    }
    if v.claims.is_none() {
        // Nothing decoded: no claim about the other tiers.
        tv.retain(|e| e.0 == "instance-identity");
    }
    Value::Object(
        tv.into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect(),
    )
}

pub(crate) fn ear_claims(
    v: &Verdict,
    policy_id: &str,
    nonce: &str,
    app_data: &[u8],
    now: u64,
    lifetime: u64,
    profile: EarProfile,
) -> Value {
    let facts = v.claims.as_ref().map(|c| {
        let b = &c.report_body;
        let tcb = if c.mode == las_core::Mode::Sim {
            Some("simulation".to_owned())
        } else {
            v.notes.iter().find_map(|n| {
                n.split_once("TCB status ")
                    .map(|(_, t)| t.trim_end_matches(')').to_owned())
            })
        };
        json!({
            "platform_id": c.platform_id.to_string(),
            "mode": c.mode.as_str(),
            "mrenclave": hex::encode(b.mrenclave),
            "mrsigner": hex::encode(b.mrsigner),
            "isvprodid": b.isvprodid,
            "isvsvn": b.isvsvn,
            "debug": b.attributes.debug(),
            "cet_attributes": b.cet_attributes,
            "report_data": hex::encode(b.report_data),
            "app_report_data": hex::encode(app_data),
            "tcb_status": tcb,
            "las_version": c.las_version,
            "las_trust": match &v.las_trust {
                Some(LasTrust::Pinned) => json!("pinned"),
                Some(LasTrust::Evidence { kind, las_mrenclave }) => json!({
                    "evidence": kind, "las_mrenclave": hex::encode(las_mrenclave)
                }),
                None => Value::Null,
            },
            "quote_issued_at": c.issued_at,
            "las_platform": v.las_platform.as_ref().map(|p| json!({
                "qe_id": p.qe_id.to_string(),
                "simulated": p.simulated,
                "ppid": p.ppid,
                "fmspc": p.fmspc,
            })),
        })
    });
    let reasons: Vec<Value> = v
        .rejections
        .iter()
        .map(|r| json!({"reason": r.reason.as_str(), "detail": r.detail}))
        .collect();
    let status = status_of(v);
    let mut submod = serde_json::Map::new();
    submod.insert(profile.status_claim().into(), json!(status));
    submod.insert(profile.trust_vector_claim().into(), trust_vector(v));
    match profile {
        // An array of policy IDs in the draft; one string in the legacy form.
        EarProfile::Ietf => submod.insert("ear_appraisal_policy_ids".into(), json!([policy_id])),
        EarProfile::Veraison => submod.insert("ear.appraisal-policy-id".into(), json!(policy_id)),
    };
    submod.insert("las.facts".into(), facts.unwrap_or(Value::Null));
    submod.insert("las.reasons".into(), Value::Array(reasons));
    submod.insert("las.notes".into(), json!(v.notes));
    let mut submods = serde_json::Map::new();
    submods.insert(v.service.clone(), Value::Object(submod));
    let mut claims = serde_json::Map::new();
    claims.insert("eat_profile".into(), json!(profile.tag()));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now.saturating_add(lifetime)));
    claims.insert(
        profile.verifier_id_claim().into(),
        json!({
            "build": concat!("las-verifier-service ", env!("CARGO_PKG_VERSION")),
            "developer": "las",
        }),
    );
    if profile == EarProfile::Ietf {
        // The draft's overall status (optional there): the one appraisal's.
        claims.insert("ear_status".into(), json!(status));
    }
    claims.insert("eat_nonce".into(), json!(nonce));
    claims.insert("submods".into(), Value::Object(submods));
    Value::Object(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason that means "this evidence could not be validated" is the worst
    /// instance-identity value, whichever part of the decoding refused it.
    #[test]
    fn undecodable_quotes_are_instance_identity_99() {
        for r in [
            Reason::MalformedQuote,
            Reason::UnsupportedQuoteFormat,
            Reason::NonCanonicalQuote,
            Reason::BadSignature,
            Reason::DcapQuoteInvalid,
        ] {
            assert_eq!(tier_of(r), ("instance-identity", 99), "{}", r.as_str());
        }
        assert_eq!(tier_of(Reason::QuoteTooOld), ("instance-identity", 96));
        assert_eq!(tier_of(Reason::TcbEvalDataNumberTooLow), ("hardware", 96));
    }
}

//! The LAS behind a platform key: pinned, or trusted on identity evidence (simulated, or
//! a DCAP quote of the LAS appraised against Intel's collateral) whose measurement
//! `trusted_las` accepts.

use las_core::Mode;
use las_core::evidence::{EvidenceClaims, EvidenceKind, decode_and_verify_evidence};
use las_core::quote::QuoteClaims;

use super::{
    LasEvidence, LasPlatform, LasTrust, MAX_CLOCK_SKEW, MAX_EVIDENCE_AGE, Reason, Rejection,
    VerifyOptions, VerifyRequest,
};
use crate::dcap::{self, CollateralSet};
use crate::policy::{Policy, Tolerance, TrustedLas};

fn untrusted(detail: String) -> Rejection {
    Rejection {
        reason: Reason::UntrustedLas,
        detail,
    }
}

pub(super) fn las_trust(
    policy: &Policy,
    claims: &QuoteClaims,
    req: &VerifyRequest<'_>,
    opts: &VerifyOptions<'_>,
    notes: &mut Vec<String>,
) -> Result<(LasTrust, Option<LasPlatform>), Vec<Rejection>> {
    if policy.pinned_las_keys().any(|k| k == claims.platform_id) {
        // A pinned key says nothing about the machine. Evidence given beside it may still
        // name the machine (its QE ID); if it does not verify, the key stays trusted (as
        // pinned) and the QE ID stays unknown, which no INTEL_QE_ID entry matches.
        let platform = req.las_evidence.and_then(|ev| {
            let mut ev_notes = Vec::new();
            match verify_las_evidence_with(policy, &ev, opts, req.now, &mut ev_notes) {
                Ok((e, p)) if e.platform_id == claims.platform_id => p,
                Ok(_) => {
                    notes.push("the identity evidence given is for another LAS key: QE ID unknown".into());
                    None
                }
                Err(rs) => {
                    notes.push(format!(
                        "the identity evidence given beside the pinned key does not verify ({}): QE ID unknown",
                        rs.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                    None
                }
            }
        });
        return Ok((LasTrust::Pinned, platform));
    }
    let Some(ev) = req.las_evidence else {
        return Err(vec![untrusted(format!(
            "LAS key {} is not pinned in trusted_scone_qe_pubkeys and no identity evidence was given (use --las ADDR or --identity FILE)",
            claims.platform_id
        ))]);
    };
    let (e, platform) = verify_las_evidence_with(policy, &ev, opts, req.now, notes)?;
    if e.platform_id != claims.platform_id {
        return Err(vec![untrusted(format!(
            "the identity evidence is for LAS key {}, the quote was signed by {}",
            e.platform_id, claims.platform_id
        ))]);
    }
    if e.mode != claims.mode {
        return Err(vec![untrusted(format!(
            "the identity evidence is `{}` but the quote is `{}`",
            e.mode, claims.mode
        ))]);
    }
    Ok((
        LasTrust::Evidence {
            kind: e.kind.as_str(),
            las_mrenclave: e.las_mrenclave,
        },
        platform,
    ))
}

/// Verifies identity evidence on its own (what `las platform-ids --verify` does for each
/// LAS), returning the verified claims or every failed check: signature, binding to key
/// and nonce, freshness, simulation policy, and the LAS measurement against
/// `trusted_las`. For `sgx-dcap` evidence the DCAP quote is verified and appraised against
/// the collateral in `opts` (`dcap::appraise`: chain to Intel's root, TCB status and
/// advisories against `tolerate`/`ignore_advisories`, DEBUG, REPORTDATA = binding of key
/// and nonce; without collateral it is rejected with `dcap-collateral-missing`), the
/// evidence's LAS claims must equal the quote's, and the quote's MRENCLAVE/MRSIGNER must
/// be in `trusted_las`.
///
/// The one entry point for evidence: with the claims it returns the LAS's platform, the
/// QE ID and PCK facts of the verified DCAP quote (`sgx-dcap`), or the simulated QE ID the
/// LAS signed (`sim`, only where simulation is tolerated, which `sim` evidence needs
/// anyway); a caller that needs only the claims takes `.0`.
pub fn verify_las_evidence_with(
    policy: &Policy,
    ev: &LasEvidence<'_>,
    opts: &VerifyOptions<'_>,
    now: u64,
    notes: &mut Vec<String>,
) -> Result<(EvidenceClaims, Option<LasPlatform>), Vec<Rejection>> {
    let one = |r: Rejection| vec![r];
    // Bytes verified before (the caller kept them) give their claims; any others are
    // decoded and their signature checked here.
    let e = match opts.verified_evidence.filter(|v| v.token() == ev.token) {
        Some(v) => v.claims().clone(),
        None => decode_and_verify_evidence(ev.token).map_err(|err| {
            one(untrusted(format!(
                "identity evidence does not verify: {err}"
            )))
        })?,
    };
    match ev.expected_nonce {
        Some(n) if n != e.nonce.as_slice() => {
            return Err(one(untrusted(format!(
                "identity evidence answers nonce {}, not the one sent ({}): a replayed answer",
                hex::encode(&e.nonce),
                hex::encode(n)
            ))));
        }
        Some(_) => {}
        None => notes.push(
            "identity evidence read from a file: its freshness was not checked with a new nonce"
                .into(),
        ),
    }
    if e.issued_at.saturating_add(MAX_EVIDENCE_AGE) < now {
        return Err(one(untrusted(format!(
            "identity evidence issued at {} is older than {MAX_EVIDENCE_AGE} s",
            e.issued_at
        ))));
    }
    if e.issued_at > now.saturating_add(MAX_CLOCK_SKEW) {
        return Err(one(untrusted(format!(
            "identity evidence issued at {} lies in the future (now {now})",
            e.issued_at
        ))));
    }
    match &e.kind {
        EvidenceKind::Sim => {
            if !policy.tolerates(Tolerance::Simulation) {
                return Err(one(Rejection {
                    reason: Reason::SimulationNotTolerated,
                    detail: format!(
                        "LAS {} presents simulation evidence, which proves nothing; tolerate `simulation` to accept it",
                        e.platform_id
                    ),
                }));
            }
            notes.push(format!(
                "LAS {} trusted on simulation evidence (key possession only, no hardware proof)",
                e.platform_id
            ));
        }
        EvidenceKind::SgxDcap { quote } => {
            let empty = CollateralSet::new();
            let collateral = opts.dcap_collateral.unwrap_or(&empty);
            let a = dcap::appraise(policy, quote, &e.binding, collateral, now);
            let mut rs = a.rejections;
            if let Some(r) = &a.report {
                rs.extend(dcap_claims_consistent(&e, r));
            }
            if let Err(r) = check_las_measurement(policy, &e, notes) {
                rs.push(r);
            }
            if !rs.is_empty() {
                return Err(rs);
            }
            notes.extend(a.notes);
            let platform = a
                .report
                .as_ref()
                .and_then(|r| r.facts.as_ref())
                .map(|f| LasPlatform {
                    qe_id: f.qe_id,
                    simulated: false,
                    ppid: Some(hex::encode(&f.ppid)),
                    fmspc: Some(hex::encode(f.fmspc)),
                });
            notes.push(format!(
                "LAS {} trusted on its DCAP quote (TCB status {})",
                e.platform_id,
                a.report.map(|r| r.tcb_status).unwrap_or_default()
            ));
            return Ok((e, platform));
        }
    }
    check_las_measurement(policy, &e, notes).map_err(one)?;
    // Sim evidence reached here only with simulation tolerated.
    let platform = e.qe_id.map(|qe_id| LasPlatform {
        qe_id,
        simulated: true,
        ppid: None,
        fmspc: None,
    });
    Ok((e, platform))
}

/// The evidence's self-reported LAS identity must be what the hardware quoted.
fn dcap_claims_consistent(e: &EvidenceClaims, r: &dcap::DcapReport) -> Vec<Rejection> {
    let mut out = Vec::new();
    let mut differ = |what: &str, claimed: String, quoted: String| {
        if claimed != quoted {
            out.push(Rejection {
                reason: Reason::EvidenceInconsistent,
                detail: format!(
                    "the evidence claims LAS {what} {claimed} but its DCAP quote says {quoted}"
                ),
            });
        }
    };
    differ(
        "mrenclave",
        hex::encode(e.las_mrenclave),
        hex::encode(r.mrenclave),
    );
    differ(
        "mrsigner",
        hex::encode(e.las_mrsigner),
        hex::encode(r.mrsigner),
    );
    differ(
        "isvprodid",
        e.las_isvprodid.to_string(),
        r.isvprodid.to_string(),
    );
    differ("isvsvn", e.las_isvsvn.to_string(), r.isvsvn.to_string());
    differ("cpusvn", hex::encode(e.cpusvn), hex::encode(r.cpusvn));
    out
}

fn check_las_measurement(
    policy: &Policy,
    e: &EvidenceClaims,
    notes: &mut Vec<String>,
) -> Result<(), Rejection> {
    let trusted = &policy.attestation().trusted_las;
    if trusted.is_empty() {
        if e.mode == Mode::Sim {
            notes.push("no trusted_las configured: any simulated LAS build is accepted".into());
            return Ok(());
        }
        return Err(untrusted(format!(
            "no trusted LAS measurement configured (security.attestation.trusted_las); LAS mrenclave is {}",
            hex::encode(e.las_mrenclave)
        )));
    }
    let ok = trusted.iter().any(|t| trusted_las_matches(t, e));
    if ok {
        Ok(())
    } else {
        Err(untrusted(format!(
            "LAS measurement mrenclave={} mrsigner={} isvsvn={} is not in trusted_las",
            hex::encode(e.las_mrenclave),
            hex::encode(e.las_mrsigner),
            e.las_isvsvn
        )))
    }
}

/// An entry matches only when every field it gives matches (as service alternatives do):
/// `{mrenclave: [X], mrsigner: S}` is X signed by S, not "X, or anything S signed".
pub(crate) fn trusted_las_matches(t: &TrustedLas, e: &EvidenceClaims) -> bool {
    (t.mrenclave.is_empty() || t.mrenclave.iter().any(|m| m.0 == e.las_mrenclave))
        && t.mrsigner.is_none_or(|s| s.0 == e.las_mrsigner)
        && t.isvprodid.is_none_or(|p| p == e.las_isvprodid)
        && t.isvsvn_min.is_none_or(|m| e.las_isvsvn >= m)
        // Parsing refuses an entry without both; this keeps an empty one from matching.
        && !(t.mrenclave.is_empty() && t.mrsigner.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Hex32;

    fn claims(mrenclave: u8, mrsigner: u8, isvprodid: u16, isvsvn: u16) -> EvidenceClaims {
        EvidenceClaims {
            kind: EvidenceKind::Sim,
            mode: Mode::Sim,
            platform_id: las_core::PlatformId([0; 32]),
            nonce: Vec::new(),
            issued_at: 0,
            las_mrenclave: [mrenclave; 32],
            las_mrsigner: [mrsigner; 32],
            las_isvprodid: isvprodid,
            las_isvsvn: isvsvn,
            cpusvn: [0; 16],
            binding: [0; 64],
            qe_id: None,
            las_version: String::new(),
        }
    }

    fn entry(
        mrenclave: &[u8],
        mrsigner: Option<u8>,
        prod: Option<u16>,
        min: Option<u16>,
    ) -> TrustedLas {
        TrustedLas {
            mrenclave: mrenclave.iter().map(|b| Hex32([*b; 32])).collect(),
            mrsigner: mrsigner.map(|b| Hex32([b; 32])),
            isvprodid: prod,
            isvsvn_min: min,
        }
    }

    #[test]
    fn a_trusted_las_entry_needs_every_field_it_gives() {
        // {mrenclave: [X], mrsigner: S}: X signed by S, not "X or anything S signed".
        let both = entry(&[0x11], Some(0x55), None, None);
        assert!(trusted_las_matches(&both, &claims(0x11, 0x55, 1, 1)));
        assert!(!trusted_las_matches(&both, &claims(0x22, 0x55, 1, 1)));
        assert!(!trusted_las_matches(&both, &claims(0x11, 0x66, 1, 1)));
        // mrsigner alone, with and without isvsvn_min / isvprodid.
        let signer = entry(&[], Some(0x55), None, None);
        assert!(trusted_las_matches(&signer, &claims(0x99, 0x55, 7, 0)));
        assert!(!trusted_las_matches(&signer, &claims(0x99, 0x66, 7, 0)));
        let min = entry(&[], Some(0x55), Some(1), Some(3));
        assert!(trusted_las_matches(&min, &claims(0x99, 0x55, 1, 3)));
        assert!(!trusted_las_matches(&min, &claims(0x99, 0x55, 1, 2)));
        assert!(!trusted_las_matches(&min, &claims(0x99, 0x55, 2, 9)));
        let all = entry(&[0x11], Some(0x55), Some(1), Some(3));
        assert!(trusted_las_matches(&all, &claims(0x11, 0x55, 1, 4)));
        assert!(!trusted_las_matches(&all, &claims(0x22, 0x55, 1, 4)));
        assert!(!trusted_las_matches(&all, &claims(0x11, 0x55, 1, 2)));
        // An empty entry (refused by the parser) matches nothing.
        assert!(!trusted_las_matches(
            &entry(&[], None, None, None),
            &claims(0, 0, 0, 0)
        ));
    }
}

//! The quote itself against the service: signature, LAS trust, simulation, platforms,
//! attestation alternatives, DEBUG, report data, issue time.

use las_core::quote::batch::BatchVerified;
use las_core::quote::{QuoteClaims, VerifiedQuote, decode_and_verify_quote};
use las_core::{Mode, TokenError};

use super::evidence::las_trust;
use super::{
    MAX_CLOCK_SKEW, Reason, Rejection, Verdict, VerifyError, VerifyOptions, VerifyRequest,
};
use crate::policy::{Alternative, Policy, Tolerance};

/// The note (and its stable prefix) of a `hw` quote whose LAS is trusted only through a
/// pinned key: accepted, but its hardware is unverified (at most `warning` in an EAR).
pub const PINNED_HARDWARE_UNVERIFIED: &str = "pinned-key-hardware-unverified";

/// Verifies `quote` (a tagged COSE_Sign1 from a LAS) against `policy`: the one way to
/// verify a quote. It decodes the quote and checks its signature, then checks the LAS
/// behind the key and every rule of the service `req` names; `opts` carries the inputs
/// only some verifications need (`VerifyOptions::default()` for none). A rejected quote
/// is an `Ok` verdict with its rejections; `Err` means the request cannot be evaluated.
pub fn verify_quote_with(
    policy: &Policy,
    quote: &[u8],
    req: &VerifyRequest<'_>,
    opts: &VerifyOptions<'_>,
) -> Result<Verdict, VerifyError> {
    appraise(policy, req, opts, || decode_and_verify_quote(quote))
}

/// The batch path: [`verify_quote_with`] for a quote whose signature las-core's batch
/// verifier checked (`las_core::quote::batch::verify_quotes`, which the verification
/// service runs over the quotes of waiting requests); every other check is the same. A
/// [`BatchVerified`] comes only from that verifier, so no caller can skip the signature
/// check through here.
pub fn verify_batch_verified_with(
    policy: &Policy,
    quote: BatchVerified,
    req: &VerifyRequest<'_>,
    opts: &VerifyOptions<'_>,
) -> Result<Verdict, VerifyError> {
    appraise(policy, req, opts, || Ok(quote.into_verified()))
}

fn appraise(
    policy: &Policy,
    req: &VerifyRequest<'_>,
    opts: &VerifyOptions<'_>,
    decode: impl FnOnce() -> Result<VerifiedQuote, TokenError>,
) -> Result<Verdict, VerifyError> {
    if policy.attestation().mode == crate::policy::AttestationMode::None {
        return Err(VerifyError::AttestationModeNone);
    }
    let service = policy.service(req.service).map_err(VerifyError::Service)?;
    let mut v = Verdict {
        rejections: Vec::new(),
        notes: Vec::new(),
        claims: None,
        service: service.name.clone(),
        las_trust: None,
        las_platform: None,
    };
    let claims = match decode() {
        Ok(q) => q.claims,
        Err(e) => {
            let reason = match e {
                TokenError::Signature => Reason::BadSignature,
                TokenError::NonCanonical(_) => Reason::NonCanonicalQuote,
                TokenError::UnsupportedQuoteFormat(_) => Reason::UnsupportedQuoteFormat,
                _ => Reason::MalformedQuote,
            };
            v.rejections.push(Rejection {
                reason,
                detail: e.to_string(),
            });
            return Ok(v);
        }
    };
    let mut reject = |reason, detail: String| v.rejections.push(Rejection { reason, detail });

    // The LAS behind the key.
    let simulation_ok = policy.tolerates(Tolerance::Simulation);
    let mut notes = Vec::new();
    let trust = las_trust(policy, &claims, req, opts, &mut notes);
    let (las_trust, las_platform) = match trust {
        Ok((t, p)) => (Some(t), p),
        Err(rs) => {
            for r in rs {
                reject(r.reason, r.detail);
            }
            (None, None)
        }
    };

    // A pinned key proves who signed, not what the platform is: the quote's own `mode`
    // claim is all there is, so hardware is never taken as verified on it (issue 23).
    if las_trust == Some(super::LasTrust::Pinned) && claims.mode == Mode::Hw {
        notes.push(format!(
            "{PINNED_HARDWARE_UNVERIFIED}: the LAS key is trusted only because it is pinned in trusted_scone_qe_pubkeys; that the platform is hardware SGX is the quote's own claim, not verified evidence (give the LAS's identity evidence instead of pinning for an affirming result)"
        ));
    }

    if claims.mode == Mode::Sim {
        if simulation_ok {
            notes.push(
                "simulation tolerated: this quote comes from a simulated platform and proves nothing about hardware protection".into(),
            );
        } else {
            reject(
                Reason::SimulationNotTolerated,
                "the quote comes from the simulated platform (NOT SECURE); tolerate `simulation` in the policy to accept it".into(),
            );
        }
    }

    if let Some(platforms) = &service.platforms {
        // A QE ID counts only from verified evidence, and a simulated one only where
        // simulation is tolerated. It names the machine; the LAS itself was judged above.
        let qe_id = las_platform
            .as_ref()
            .filter(|p| !p.simulated || simulation_ok)
            .map(|p| p.qe_id);
        if !platforms
            .iter()
            .any(|p| p.matches(&claims.platform_id, qe_id))
        {
            let qe = match (&las_platform, qe_id) {
                (_, Some(q)) => format!("INTEL_QE_ID:{q}"),
                (Some(p), None) => format!(
                    "INTEL_QE_ID:{} (simulated, and simulation is not tolerated)",
                    p.qe_id
                ),
                (None, None) => "unknown (no verified identity evidence with a QE ID)".into(),
            };
            reject(
                Reason::PlatformNotAllowed,
                format!(
                    "platform {} (QE ID {qe}) is not in services[{}].platforms",
                    claims.platform_id, service.name
                ),
            );
        }
    }

    match &service.attestation {
        None => reject(
            Reason::NoAttestationPolicy,
            format!("service `{}` has no attestation rule", service.name),
        ),
        Some(alts) => {
            let per_alt: Vec<Vec<Rejection>> = alts
                .0
                .iter()
                .map(|a| check_alternative(a, &claims))
                .collect();
            if !per_alt.iter().any(Vec::is_empty) {
                let many = per_alt.len() > 1;
                for (i, rs) in per_alt.into_iter().enumerate() {
                    for r in rs {
                        let detail = if many {
                            format!("alternative {}: {}", i + 1, r.detail)
                        } else {
                            r.detail
                        };
                        reject(r.reason, detail);
                    }
                }
            }
        }
    }

    let body = &claims.report_body;
    if body.attributes.debug() {
        if policy.tolerates(Tolerance::DebugMode) {
            notes.push("debug enclave tolerated: its memory is readable by the host".into());
        } else {
            reject(
                Reason::DebugEnclave,
                "the enclave's DEBUG attribute is set; tolerate `debug-mode` to accept it".into(),
            );
        }
    }

    if let Some(want) = req.expected_report_data
        && body.report_data != *want
    {
        reject(
            Reason::ReportDataMismatch,
            format!(
                "report data is {}, expected {}",
                hex::encode(body.report_data),
                hex::encode(want)
            ),
        );
    }

    if claims.issued_at > req.now.saturating_add(MAX_CLOCK_SKEW) {
        reject(
            Reason::QuoteFromTheFuture,
            format!(
                "issued at {} but now is {} (more than {MAX_CLOCK_SKEW} s ahead)",
                claims.issued_at, req.now
            ),
        );
    }

    if let Some(max) = opts.max_age
        && claims.issued_at.saturating_add(max) < req.now
    {
        reject(
            Reason::QuoteTooOld,
            format!(
                "issued at {} but now is {}: {} s old, more than the maximum age of {max} s",
                claims.issued_at,
                req.now,
                req.now.saturating_sub(claims.issued_at)
            ),
        );
    }

    v.notes = notes;
    v.las_trust = las_trust;
    v.las_platform = las_platform;
    v.claims = Some(claims);
    Ok(v)
}

fn check_alternative(a: &Alternative, c: &QuoteClaims) -> Vec<Rejection> {
    let b = &c.report_body;
    let mut out = Vec::new();
    if !a.mrenclave.is_empty() && !a.mrenclave.iter().any(|m| m.0 == b.mrenclave) {
        out.push(Rejection {
            reason: Reason::MrenclaveMismatch,
            detail: format!(
                "mrenclave {} is not in the accepted list",
                hex::encode(b.mrenclave)
            ),
        });
    }
    if let Some(s) = &a.signer {
        if s.mrsigner.0 != b.mrsigner {
            out.push(Rejection {
                reason: Reason::SignerMismatch,
                detail: format!(
                    "mrsigner {} is not {}",
                    hex::encode(b.mrsigner),
                    hex::encode(s.mrsigner.0)
                ),
            });
        }
        if let Some(p) = s.isvprodid
            && p != b.isvprodid
        {
            out.push(Rejection {
                reason: Reason::SignerMismatch,
                detail: format!("isvprodid {} is not {p}", b.isvprodid),
            });
        }
        if let Some(want) = s.isvsvn
            && b.isvsvn != want
        {
            out.push(Rejection {
                reason: if b.isvsvn < want {
                    Reason::IsvsvnTooLow
                } else {
                    Reason::IsvsvnTooHigh
                },
                detail: format!("isvsvn {} is not {want} (signer.isvsvn)", b.isvsvn),
            });
        }
        if let Some(min) = s.isvsvn_min
            && b.isvsvn < min
        {
            out.push(Rejection {
                reason: Reason::IsvsvnTooLow,
                detail: format!("isvsvn {} is below isvsvn_min {min}", b.isvsvn),
            });
        }
        if let Some(max) = s.isvsvn_max
            && b.isvsvn > max
        {
            out.push(Rejection {
                reason: Reason::IsvsvnTooHigh,
                detail: format!("isvsvn {} is above isvsvn_max {max}", b.isvsvn),
            });
        }
    }
    out
}

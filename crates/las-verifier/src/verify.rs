//! Evaluating a quote (and the LAS behind it) against a policy.
//!
//! Order: decode + signature (stop on failure) → LAS trust → simulation → platforms →
//! attestation alternatives → DEBUG → report data → time. Every failing check after the
//! signature adds its own [`Reason`], so an operator sees all that is wrong at once.

use las_core::evidence::{EvidenceClaims, EvidenceKind, decode_and_verify_evidence};
use las_core::quote::{QuoteClaims, decode_and_verify_quote};
use las_core::{Mode, PlatformId, TokenError};

use crate::dcap::{self, CollateralSet};
use crate::policy::{Alternative, Policy, Tolerance};

/// A stable reason for rejecting a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The quote does not decode or is inconsistent.
    MalformedQuote,
    /// The signature does not verify with the platform key.
    BadSignature,
    /// The LAS behind the key is not trusted (no or bad evidence, unknown measurement).
    UntrustedLas,
    /// The quote or the evidence comes from the simulated platform and the policy does not
    /// tolerate `simulation`.
    SimulationNotTolerated,
    /// The platform ID is not in the service's `platforms`.
    PlatformNotAllowed,
    /// No alternative's MRENCLAVE list contains the enclave's.
    MrenclaveMismatch,
    /// MRSIGNER or ISVPRODID differ.
    SignerMismatch,
    /// ISVSVN below `isvsvn_min`.
    IsvsvnTooLow,
    /// ISVSVN above `isvsvn_max`.
    IsvsvnTooHigh,
    /// The enclave is a debug enclave and `debug-mode` is not tolerated.
    DebugEnclave,
    /// REPORTDATA differs from the expected value.
    ReportDataMismatch,
    /// The quote's issue time is in the future.
    QuoteFromTheFuture,
    /// The service has no attestation rule.
    NoAttestationPolicy,
    /// `sgx-dcap` evidence, but no collateral for the quote's platform (FMSPC) was given.
    DcapCollateralMissing,
    /// The DCAP collateral is outside its validity window at the verification time.
    DcapCollateralExpired,
    /// The LAS's DCAP quote does not verify: malformed, signature chain not to Intel's
    /// root, revoked, tampered collateral, or not an SGX enclave quote.
    DcapQuoteInvalid,
    /// The LAS's platform TCB is out of date and `outdated-tcb` is not tolerated.
    TcbOutOfDate,
    /// The platform needs a configuration change and `insecure-configuration` is not
    /// tolerated.
    TcbConfigurationNeeded,
    /// The platform needs software hardening and `software-hardening-needed` is not
    /// tolerated.
    TcbSoftwareHardeningNeeded,
    /// Intel advisories apply to the platform that `ignore_advisories` does not list
    /// (nor a tolerance covers).
    AdvisoryNotIgnored,
    /// The PCK certificate says hyper-threading is on and `hyperthreading` is not tolerated.
    HyperthreadingEnabled,
    /// The LAS enclave is a DEBUG enclave and `debug-mode` is not tolerated.
    DebugLas,
    /// The identity evidence's claims (LAS measurement, CPUSVN) differ from its DCAP quote.
    EvidenceInconsistent,
}

impl Reason {
    /// The stable spelling printed by `las verify`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedQuote => "malformed-quote",
            Reason::BadSignature => "bad-signature",
            Reason::UntrustedLas => "untrusted-las",
            Reason::SimulationNotTolerated => "simulation-not-tolerated",
            Reason::PlatformNotAllowed => "platform-not-allowed",
            Reason::MrenclaveMismatch => "mrenclave-mismatch",
            Reason::SignerMismatch => "signer-mismatch",
            Reason::IsvsvnTooLow => "isvsvn-too-low",
            Reason::IsvsvnTooHigh => "isvsvn-too-high",
            Reason::DebugEnclave => "debug-enclave",
            Reason::ReportDataMismatch => "report-data-mismatch",
            Reason::QuoteFromTheFuture => "quote-from-the-future",
            Reason::NoAttestationPolicy => "no-attestation-policy",
            Reason::DcapCollateralMissing => "dcap-collateral-missing",
            Reason::DcapCollateralExpired => "dcap-collateral-expired",
            Reason::DcapQuoteInvalid => "dcap-quote-invalid",
            Reason::TcbOutOfDate => "tcb-out-of-date",
            Reason::TcbConfigurationNeeded => "tcb-configuration-needed",
            Reason::TcbSoftwareHardeningNeeded => "tcb-software-hardening-needed",
            Reason::AdvisoryNotIgnored => "advisory-not-ignored",
            Reason::HyperthreadingEnabled => "hyperthreading-enabled",
            Reason::DebugLas => "debug-las",
            Reason::EvidenceInconsistent => "evidence-inconsistent",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Which check.
    pub reason: Reason,
    /// What exactly did not match.
    pub detail: String,
}

/// The verifier's knowledge about the LAS behind a platform key.
#[derive(Debug, Clone, Copy)]
pub struct LasEvidence<'a> {
    /// The identity evidence token (from `GET /v1/identity`).
    pub token: &'a [u8],
    /// The nonce the verifier sent; `None` when the evidence came from a file and its
    /// freshness cannot be established here (a note says so).
    pub expected_nonce: Option<&'a [u8]>,
}

/// Everything a verification needs besides the policy. The clock is a parameter.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRequest<'a> {
    /// The quote (tagged COSE_Sign1).
    pub quote: &'a [u8],
    /// The service to check against (`None`: the policy's only service).
    pub service: Option<&'a str>,
    /// REPORTDATA the enclave must have bound (e.g. hash of its TLS key and a nonce).
    pub expected_report_data: Option<&'a [u8; 64]>,
    /// Identity evidence of the LAS that issued the quote.
    pub las_evidence: Option<LasEvidence<'a>>,
    /// Now, seconds since the Unix epoch.
    pub now: u64,
}

/// Inputs that only some verifications need. `Default` gives none of them; the functions
/// without `_with` use the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// DCAP collateral for `sgx-dcap` identity evidence (from `--collateral FILE` or a
    /// PCCS, see `dcap::pccs`). Without it such evidence is rejected with
    /// `dcap-collateral-missing`.
    pub dcap_collateral: Option<&'a CollateralSet>,
}

/// How much clock skew between LAS and verifier is tolerated (seconds).
pub const MAX_CLOCK_SKEW: u64 = 300;
/// Oldest identity evidence accepted (seconds).
pub const MAX_EVIDENCE_AGE: u64 = 600;

/// How the LAS came to be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LasTrust {
    /// Its key is pinned in `trusted_scone_qe_pubkeys`.
    Pinned,
    /// Its identity evidence verified.
    Evidence {
        /// `sim` or `sgx-dcap`.
        kind: &'static str,
        /// The LAS MRENCLAVE from the evidence.
        las_mrenclave: [u8; 32],
    },
}

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Accepted when there is no rejection.
    pub rejections: Vec<Rejection>,
    /// Things the operator should know even when accepted (e.g. simulation tolerated).
    pub notes: Vec<String>,
    /// The quote's claims, when it decoded and its signature verified.
    pub claims: Option<QuoteClaims>,
    /// The service checked.
    pub service: String,
    /// How the LAS was trusted, when it was.
    pub las_trust: Option<LasTrust>,
}

impl Verdict {
    /// Whether the quote was accepted.
    pub fn accepted(&self) -> bool {
        self.rejections.is_empty()
    }

    /// Whether `reason` is among the rejections.
    pub fn has(&self, reason: Reason) -> bool {
        self.rejections.iter().any(|r| r.reason == reason)
    }
}

/// The request cannot be evaluated at all (not a rejection of the quote).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No such service, or several and none chosen.
    #[error("{0}")]
    Service(String),
    /// The policy asks for no attestation.
    #[error(
        "the policy's security.attestation.mode is `none`: it asks for no attestation, so there is nothing to verify a quote against"
    )]
    AttestationModeNone,
}

/// Verifies a quote against `policy` (no DCAP collateral: see [`verify_quote_with`]).
pub fn verify_quote(policy: &Policy, req: &VerifyRequest<'_>) -> Result<Verdict, VerifyError> {
    verify_quote_with(policy, req, &VerifyOptions::default())
}

/// Verifies a quote against `policy`, with the extra inputs in `opts` (DCAP collateral
/// for `sgx-dcap` identity evidence of the LAS).
pub fn verify_quote_with(
    policy: &Policy,
    req: &VerifyRequest<'_>,
    opts: &VerifyOptions<'_>,
) -> Result<Verdict, VerifyError> {
    if policy.attestation.mode == crate::policy::AttestationMode::None {
        return Err(VerifyError::AttestationModeNone);
    }
    let service = policy.service(req.service).map_err(VerifyError::Service)?;
    let mut v = Verdict {
        rejections: Vec::new(),
        notes: Vec::new(),
        claims: None,
        service: service.name.clone(),
        las_trust: None,
    };
    let claims = match decode_and_verify_quote(req.quote) {
        Ok(q) => q.claims,
        Err(e) => {
            let reason = match e {
                TokenError::Signature => Reason::BadSignature,
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
    let las_trust = match trust {
        Ok(t) => Some(t),
        Err(rs) => {
            for r in rs {
                reject(r.reason, r.detail);
            }
            None
        }
    };

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

    if let Some(platforms) = &service.platforms
        && !platforms.iter().any(|p| p.0 == claims.platform_id.0)
    {
        reject(
            Reason::PlatformNotAllowed,
            format!(
                "platform {} is not in services[{}].platforms",
                claims.platform_id, service.name
            ),
        );
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

    v.notes = notes;
    v.las_trust = las_trust;
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

fn untrusted(detail: String) -> Rejection {
    Rejection {
        reason: Reason::UntrustedLas,
        detail,
    }
}

fn las_trust(
    policy: &Policy,
    claims: &QuoteClaims,
    req: &VerifyRequest<'_>,
    opts: &VerifyOptions<'_>,
    notes: &mut Vec<String>,
) -> Result<LasTrust, Vec<Rejection>> {
    if policy.pinned_las_keys().any(|k| k == claims.platform_id) {
        return Ok(LasTrust::Pinned);
    }
    let Some(ev) = req.las_evidence else {
        return Err(vec![untrusted(format!(
            "LAS key {} is not pinned in trusted_scone_qe_pubkeys and no identity evidence was given (use --las ADDR or --identity FILE)",
            claims.platform_id
        ))]);
    };
    let e = verify_las_evidence_with(policy, &ev, opts, req.now, notes)?;
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
    Ok(LasTrust::Evidence {
        kind: e.kind.as_str(),
        las_mrenclave: e.las_mrenclave,
    })
}

/// Verifies identity evidence on its own (what `las platform-ids --verify` does for each
/// LAS): signature, binding to key and nonce, freshness, simulation policy, and the LAS
/// measurement against `trusted_las`. Returns the verified claims. Without DCAP
/// collateral (see [`verify_las_evidence_with`]) `sgx-dcap` evidence is rejected with
/// `dcap-collateral-missing`. Several failed checks are reported as the first one's
/// reason with every detail.
pub fn verify_las_evidence(
    policy: &Policy,
    ev: &LasEvidence<'_>,
    now: u64,
    notes: &mut Vec<String>,
) -> Result<EvidenceClaims, Rejection> {
    verify_las_evidence_with(policy, ev, &VerifyOptions::default(), now, notes).map_err(|rs| {
        let detail = rs
            .iter()
            .map(|r| format!("{}: {}", r.reason, r.detail))
            .collect::<Vec<_>>()
            .join("; ");
        Rejection {
            reason: rs.first().map_or(Reason::UntrustedLas, |r| r.reason),
            detail,
        }
    })
}

/// [`verify_las_evidence`] with the extra inputs in `opts` (DCAP collateral for
/// `sgx-dcap` evidence), returning every failed check. For `sgx-dcap` evidence the DCAP
/// quote is verified and appraised (`dcap::appraise`: chain to Intel's root, TCB status and
/// advisories against `tolerate`/`ignore_advisories`, DEBUG, REPORTDATA = binding of key
/// and nonce), the evidence's LAS claims must equal the quote's, and the quote's
/// MRENCLAVE/MRSIGNER must be in `trusted_las`.
pub fn verify_las_evidence_with(
    policy: &Policy,
    ev: &LasEvidence<'_>,
    opts: &VerifyOptions<'_>,
    now: u64,
    notes: &mut Vec<String>,
) -> Result<EvidenceClaims, Vec<Rejection>> {
    let one = |r: Rejection| vec![r];
    let e = decode_and_verify_evidence(ev.token).map_err(|err| {
        one(untrusted(format!(
            "identity evidence does not verify: {err}"
        )))
    })?;
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
            notes.push(format!(
                "LAS {} trusted on its DCAP quote (TCB status {})",
                e.platform_id,
                a.report.map(|r| r.tcb_status).unwrap_or_default()
            ));
            return Ok(e);
        }
    }
    check_las_measurement(policy, &e, notes).map_err(one)?;
    Ok(e)
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
    let trusted = &policy.attestation.trusted_las;
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
    let ok = trusted.iter().any(|t| {
        let by_enclave = t.mrenclave.iter().any(|m| m.0 == e.las_mrenclave);
        let by_signer = t.mrsigner.is_some_and(|s| {
            s.0 == e.las_mrsigner
                && t.isvprodid.is_none_or(|p| p == e.las_isvprodid)
                && t.isvsvn_min.is_none_or(|m| e.las_isvsvn >= m)
        });
        by_enclave || by_signer
    });
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

/// Parses a platform ID as a policy would (either case).
pub fn parse_platform_id(s: &str) -> Option<PlatformId> {
    PlatformId::parse(s).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use las_core::PlatformIdentity;
    use las_core::crypto::Key128;
    use las_core::evidence::{binding, encode_evidence};
    use las_core::quote::encode_quote;
    use las_core::sgx::{Attributes, ReportBody, flags};

    const NOW: u64 = 1_800_000_000;

    fn las(seed: u8) -> PlatformIdentity {
        PlatformIdentity::from_seal_key(&Key128::from_bytes([seed; 16]))
    }

    fn quote(id: &PlatformIdentity, mode: Mode, debug: bool, isvsvn: u16) -> Vec<u8> {
        let mut f = flags::INIT | flags::MODE64BIT;
        if debug {
            f |= flags::DEBUG;
        }
        encode_quote(
            id,
            &QuoteClaims {
                mode,
                platform_id: id.platform_id(),
                las_version: "t".into(),
                las_mrenclave: [5; 32],
                issued_at: NOW,
                report_body: ReportBody {
                    cpusvn: [1; 16],
                    miscselect: 0,
                    isv_ext_prod_id: [0; 16],
                    attributes: Attributes { flags: f, xfrm: 3 },
                    mrenclave: [0xaa; 32],
                    mrsigner: [0xbb; 32],
                    config_id: [0; 64],
                    isvprodid: 7,
                    isvsvn,
                    config_svn: 0,
                    isv_family_id: [0; 16],
                    report_data: [0x11; 64],
                },
            },
        )
        .unwrap()
    }

    fn evidence(id: &PlatformIdentity, nonce: &[u8], iat: u64, mrenclave: [u8; 32]) -> Vec<u8> {
        encode_evidence(
            id,
            &EvidenceClaims {
                kind: EvidenceKind::Sim,
                mode: Mode::Sim,
                platform_id: id.platform_id(),
                nonce: nonce.to_vec(),
                las_version: "t".into(),
                las_mrenclave: mrenclave,
                las_mrsigner: [6; 32],
                las_isvprodid: 1,
                las_isvsvn: 1,
                cpusvn: [1; 16],
                issued_at: iat,
                binding: binding(&id.platform_id(), nonce),
            },
        )
        .unwrap()
    }

    fn policy(extra_att: &str, service: &str) -> Policy {
        let y =
            format!("security:\n  attestation:\n{extra_att}services:\n  - name: app\n{service}");
        Policy::from_yaml(y.as_bytes()).unwrap()
    }

    const ALT: &str = "    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n      signer: {mrsigner: \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\", isvprodid: 7, isvsvn_min: 2}\n";

    fn run(p: &Policy, q: &[u8], ev: Option<LasEvidence<'_>>) -> Verdict {
        verify_quote(
            p,
            &VerifyRequest {
                quote: q,
                service: None,
                expected_report_data: Some(&[0x11; 64]),
                las_evidence: ev,
                now: NOW,
            },
        )
        .unwrap()
    }

    #[test]
    fn accepted_with_fresh_sim_evidence_when_simulation_tolerated() {
        let id = las(1);
        let p = policy("    tolerate: [simulation]\n", ALT);
        let nonce = [9u8; 16];
        let ev = evidence(&id, &nonce, NOW, [5; 32]);
        let v = run(
            &p,
            &quote(&id, Mode::Sim, false, 2),
            Some(LasEvidence {
                token: &ev,
                expected_nonce: Some(&nonce),
            }),
        );
        assert!(v.accepted(), "{:?}", v.rejections);
        assert!(v.notes.iter().any(|n| n.contains("simulation tolerated")));
    }

    #[test]
    fn each_violation_has_its_reason() {
        let id = las(1);
        let pinned = format!(
            "    tolerate: [simulation]\n    trusted_scone_qe_pubkeys: [\"{}\"]\n",
            id.platform_id()
        );
        let q = quote(&id, Mode::Sim, false, 2);
        assert!(run(&policy(&pinned, ALT), &q, None).accepted());

        // Not tolerated: simulation.
        let strict = format!("    trusted_scone_qe_pubkeys: [\"{}\"]\n", id.platform_id());
        assert!(run(&policy(&strict, ALT), &q, None).has(Reason::SimulationNotTolerated));
        // Platform list.
        let other = las(2).platform_id();
        let v = run(
            &policy(&pinned, &format!("{ALT}    platforms: [\"{other}\"]\n")),
            &q,
            None,
        );
        assert!(v.has(Reason::PlatformNotAllowed));
        // Measurements.
        let alt = ALT.replace("aaaa", "cccc");
        assert!(run(&policy(&pinned, &alt), &q, None).has(Reason::MrenclaveMismatch));
        let alt = ALT.replace("bbbb", "cccc");
        assert!(run(&policy(&pinned, &alt), &q, None).has(Reason::SignerMismatch));
        let alt = ALT.replace("isvprodid: 7", "isvprodid: 8");
        assert!(run(&policy(&pinned, &alt), &q, None).has(Reason::SignerMismatch));
        let low = quote(&id, Mode::Sim, false, 1);
        assert!(run(&policy(&pinned, ALT), &low, None).has(Reason::IsvsvnTooLow));
        // Debug.
        let dbg = quote(&id, Mode::Sim, true, 2);
        assert!(run(&policy(&pinned, ALT), &dbg, None).has(Reason::DebugEnclave));
        let tol = pinned.replace("[simulation]", "[simulation, debug-mode]");
        assert!(run(&policy(&tol, ALT), &dbg, None).accepted());
        // Report data.
        let v = verify_quote(
            &policy(&pinned, ALT),
            &VerifyRequest {
                quote: &q,
                service: Some("app"),
                expected_report_data: Some(&[0x12; 64]),
                las_evidence: None,
                now: NOW,
            },
        )
        .unwrap();
        assert!(v.has(Reason::ReportDataMismatch));
        // Untrusted LAS: not pinned, no evidence.
        let v = run(&policy("    tolerate: [simulation]\n", ALT), &q, None);
        assert!(v.has(Reason::UntrustedLas));
        // Bad signature / malformed.
        let mut bad = q.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(run(&policy(&pinned, ALT), &bad, None).has(Reason::BadSignature));
        assert!(run(&policy(&pinned, ALT), &q[..10], None).has(Reason::MalformedQuote));
    }

    #[test]
    fn evidence_for_another_key_old_nonce_or_untrusted_build_is_refused() {
        let id = las(1);
        let p = policy("    tolerate: [simulation]\n", ALT);
        let q = quote(&id, Mode::Sim, false, 2);
        let nonce = [9u8; 16];
        let check = |ev: &[u8], n: &[u8], p: &Policy| {
            run(
                p,
                &q,
                Some(LasEvidence {
                    token: ev,
                    expected_nonce: Some(n),
                }),
            )
        };
        // Evidence of another LAS (a swapped key).
        let other = evidence(&las(2), &nonce, NOW, [5; 32]);
        assert!(check(&other, &nonce, &p).has(Reason::UntrustedLas));
        // Replay: evidence for an old nonce.
        let old = evidence(&id, &[8u8; 16], NOW, [5; 32]);
        assert!(check(&old, &nonce, &p).has(Reason::UntrustedLas));
        // Stale.
        let stale = evidence(&id, &nonce, NOW - MAX_EVIDENCE_AGE - 1, [5; 32]);
        assert!(check(&stale, &nonce, &p).has(Reason::UntrustedLas));
        // trusted_las set: the build must be in it.
        let tl = "    tolerate: [simulation]\n    trusted_las:\n      - mrenclave: [\"0505050505050505050505050505050505050505050505050505050505050505\"]\n";
        let good = evidence(&id, &nonce, NOW, [5; 32]);
        assert!(check(&good, &nonce, &policy(tl, ALT)).accepted());
        let unknown = evidence(&id, &nonce, NOW, [4; 32]);
        assert!(check(&unknown, &nonce, &policy(tl, ALT)).has(Reason::UntrustedLas));
        // Simulation evidence without the tolerance.
        let strict = policy("    tolerate: []\n", ALT);
        assert!(check(&good, &nonce, &strict).has(Reason::SimulationNotTolerated));
    }

    /// sgx-dcap evidence around the REAL DCAP quote that ships with dcap-qvl: genuine, but
    /// its REPORTDATA binds no LAS key, so it must never pass as LAS evidence.
    fn dcap_evidence(id: &PlatformIdentity, nonce: &[u8], mrenclave: Option<[u8; 32]>) -> Vec<u8> {
        let (quote, _) = crate::dcap::tests::sample();
        let body = &quote[48..432];
        encode_evidence(
            id,
            &EvidenceClaims {
                kind: EvidenceKind::SgxDcap {
                    quote: quote.clone(),
                },
                mode: Mode::Hw,
                platform_id: id.platform_id(),
                nonce: nonce.to_vec(),
                las_version: "t".into(),
                las_mrenclave: mrenclave.unwrap_or(body[64..96].try_into().unwrap()),
                las_mrsigner: body[128..160].try_into().unwrap(),
                las_isvprodid: u16::from_le_bytes(body[256..258].try_into().unwrap()),
                las_isvsvn: u16::from_le_bytes(body[258..260].try_into().unwrap()),
                cpusvn: body[0..16].try_into().unwrap(),
                issued_at: crate::dcap::tests::SAMPLE_NOW,
                binding: binding(&id.platform_id(), nonce),
            },
        )
        .unwrap()
    }

    #[test]
    fn real_dcap_quote_reaches_the_binding_check_and_fails_it() {
        use crate::dcap::CollateralSet;
        let (quote, coll) = crate::dcap::tests::sample();
        let mrenclave = hex::encode(&quote[48 + 64..48 + 96]);
        let set = CollateralSet::from_json(&coll).unwrap();
        let opts = VerifyOptions {
            dcap_collateral: Some(&set),
        };
        let id = las(3);
        let nonce = [5u8; 32];
        let ev = dcap_evidence(&id, &nonce, None);
        let lev = LasEvidence {
            token: &ev,
            expected_nonce: Some(&nonce),
        };
        let now = crate::dcap::tests::SAMPLE_NOW;
        let names = |rs: &[Rejection]| rs.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>();
        let trusted = format!("    trusted_las:\n      - mrenclave: [\"{mrenclave}\"]\n");

        // Without tolerations: each weakness Intel's collateral names, then the binding.
        let strict = policy(&trusted, ALT);
        let rs = verify_las_evidence_with(&strict, &lev, &opts, now, &mut vec![]).unwrap_err();
        assert_eq!(
            names(&rs),
            [
                "tcb-configuration-needed",
                "tcb-software-hardening-needed",
                "advisory-not-ignored",
                "report-data-mismatch"
            ]
        );
        // With them: only the binding check fails.
        let tolerant = policy(
            &format!(
                "    tolerate: [insecure-configuration, software-hardening-needed]\n    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n{trusted}"
            ),
            ALT,
        );
        let rs = verify_las_evidence_with(&tolerant, &lev, &opts, now, &mut vec![]).unwrap_err();
        assert_eq!(names(&rs), ["report-data-mismatch"]);
        // The compatible entry point reports the same first reason.
        let r = verify_las_evidence(&tolerant, &lev, now, &mut vec![]).unwrap_err();
        assert_eq!(r.reason, Reason::DcapCollateralMissing);
        // Through a quote of that LAS: the verdict carries the reason, never acceptance.
        let q = quote_hw(&id);
        let v = verify_quote_with(
            &tolerant,
            &VerifyRequest {
                quote: &q,
                service: None,
                expected_report_data: Some(&[0x11; 64]),
                las_evidence: Some(lev),
                now,
            },
            &opts,
        )
        .unwrap();
        assert!(!v.accepted());
        assert_eq!(names(&v.rejections), ["report-data-mismatch"]);
        assert!(v.las_trust.is_none());
        // LAS measurement not trusted, and evidence that lies about the measurement.
        let rs = verify_las_evidence_with(
            &policy("    tolerate: [insecure-configuration, software-hardening-needed]\n    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n", ALT),
            &lev,
            &opts,
            now,
            &mut vec![],
        )
        .unwrap_err();
        assert_eq!(names(&rs), ["report-data-mismatch", "untrusted-las"]);
        let liar = dcap_evidence(&id, &nonce, Some([7; 32]));
        let rs = verify_las_evidence_with(
            &tolerant,
            &LasEvidence {
                token: &liar,
                expected_nonce: Some(&nonce),
            },
            &opts,
            now,
            &mut vec![],
        )
        .unwrap_err();
        assert_eq!(
            names(&rs),
            [
                "report-data-mismatch",
                "evidence-inconsistent",
                "untrusted-las"
            ]
        );
    }

    fn quote_hw(id: &PlatformIdentity) -> Vec<u8> {
        let mut c = las_core::quote::decode_and_verify_quote(&quote(id, Mode::Sim, false, 2))
            .unwrap()
            .claims;
        c.mode = Mode::Hw;
        c.issued_at = crate::dcap::tests::SAMPLE_NOW;
        encode_quote(id, &c).unwrap()
    }

    #[test]
    fn several_alternatives_accept_when_one_matches() {
        let id = las(1);
        let pinned = format!(
            "    tolerate: [simulation]\n    trusted_scone_qe_pubkeys: [\"{}\"]\n",
            id.platform_id()
        );
        let two = "    attestation:\n      - mrenclave: [\"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"]\n      - signer: {mrsigner: \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}\n";
        let q = quote(&id, Mode::Sim, false, 2);
        assert!(run(&policy(&pinned, two), &q, None).accepted());
        let none = two.replace("bbbb", "dddd");
        let v = run(&policy(&pinned, &none), &q, None);
        assert!(v.has(Reason::MrenclaveMismatch) && v.has(Reason::SignerMismatch));
        assert!(v.rejections[0].detail.starts_with("alternative 1"));
    }
}

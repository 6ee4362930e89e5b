//! Evaluating a quote (and the LAS behind it) against a policy.
//!
//! Order: decode + signature (stop on failure) → LAS trust → simulation → platforms →
//! attestation alternatives → DEBUG → report data → time. Every failing check after the
//! signature adds its own [`Reason`], so an operator sees all that is wrong at once.
//!
//! Split along its seams: `reason` (what a rejection says), `quote` (the quote
//! against the service), `evidence` (the LAS behind the key).

mod evidence;
mod quote;
mod reason;

use las_core::quote::QuoteClaims;

use crate::dcap::CollateralSet;
use las_core::evidence::VerifiedEvidence;

pub use evidence::verify_las_evidence_with;
pub use quote::{PINNED_HARDWARE_UNVERIFIED, verify_batch_verified_with, verify_quote_with};
pub use reason::{Reason, Rejection};

/// The verifier's knowledge about the LAS behind a platform key.
#[derive(Debug, Clone, Copy)]
pub struct LasEvidence<'a> {
    /// The identity evidence token (from `GET /v1/identity`).
    pub token: &'a [u8],
    /// The nonce the verifier sent; `None` when the evidence came from a file and its
    /// freshness cannot be established here (a note says so).
    pub expected_nonce: Option<&'a [u8]>,
}

/// Everything a verification needs besides the policy and the quote. The clock is a
/// parameter.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRequest<'a> {
    /// The service to check against (`None`: the policy's only service).
    pub service: Option<&'a str>,
    /// REPORTDATA the enclave must have bound (e.g. hash of its TLS key and a nonce).
    pub expected_report_data: Option<&'a [u8; 64]>,
    /// Identity evidence of the LAS that issued the quote.
    pub las_evidence: Option<LasEvidence<'a>>,
    /// Now, seconds since the Unix epoch.
    pub now: u64,
}

/// Inputs that only some verifications need. `Default` gives none of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// DCAP collateral for `sgx-dcap` identity evidence (from `--collateral FILE` or a
    /// PCCS, see `dcap::pccs`). Without it such evidence is rejected with
    /// `dcap-collateral-missing`.
    pub dcap_collateral: Option<&'a CollateralSet>,
    /// Oldest quote accepted, in seconds before `now` (`las verify --max-age`): a quote
    /// issued earlier is rejected with `quote-too-old`. `None`: the quote's age is not
    /// checked (with no expected report data either, an acceptance can be a replay).
    pub max_age: Option<u64>,
    /// Identity evidence the caller has verified before and kept by its exact bytes (the
    /// verification service's evidence cache). When `las_evidence.token` is exactly
    /// [`VerifiedEvidence::token`], its claims are taken without decoding the token and
    /// checking its signature again; the nonce, the age, the policy and the LAS
    /// measurement are still checked as for any evidence. Other bytes are verified as usual.
    pub verified_evidence: Option<&'a VerifiedEvidence>,
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

/// The platform below a LAS, from its verified identity evidence: the QE ID of the DCAP
/// quote (hardware) or the one the simulated LAS signed (simulation), and the PCK facts
/// where known. A QE ID names a machine, not a LAS build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LasPlatform {
    /// Intel's QE ID (simulated in simulation).
    pub qe_id: las_core::tcb::QeId,
    /// Whether it is a simulated QE ID (matched only where simulation is tolerated).
    pub simulated: bool,
    /// PPID (hex), from the verified DCAP quote's PCK certificate.
    pub ppid: Option<String>,
    /// FMSPC (hex), from the verified DCAP quote's PCK certificate.
    pub fmspc: Option<String>,
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
    /// The platform of the LAS, when its identity evidence verified and carried a QE ID.
    pub las_platform: Option<LasPlatform>,
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
    #[error(transparent)]
    Service(crate::policy::ServiceError),
    /// The policy asks for no attestation.
    #[error(
        "the policy's security.attestation.mode is `none`: it asks for no attestation, so there is nothing to verify a quote against"
    )]
    AttestationModeNone,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use las_core::Mode;
    use las_core::PlatformIdentity;
    use las_core::crypto::Key128;
    use las_core::evidence::{EvidenceClaims, EvidenceKind};
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
                    cet_attributes: 0,
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
                qe_id: None,
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
        verify_quote_with(
            p,
            q,
            &VerifyRequest {
                service: None,
                expected_report_data: Some(&[0x11; 64]),
                las_evidence: ev,
                now: NOW,
            },
            &VerifyOptions::default(),
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

    /// Evidence verified before and kept by its exact bytes (the service's cache): its
    /// claims are taken as they are, but its age, its nonce and the policy are checked on
    /// every use, and other bytes are not taken for it.
    #[test]
    fn kept_evidence_is_not_decoded_again_but_its_age_is_still_checked() {
        let id = las(1);
        let p = policy("    tolerate: [simulation]\n", ALT);
        let nonce = [9u8; 16];
        let ev = evidence(&id, &nonce, NOW, [5; 32]);
        let kept = VerifiedEvidence::verify(ev.clone()).unwrap();
        let q = quote(&id, Mode::Sim, false, 2);
        let lev = Some(LasEvidence {
            token: &ev,
            expected_nonce: Some(&nonce),
        });
        let at = |now: u64, lev: Option<LasEvidence<'_>>, kept: Option<&VerifiedEvidence>| {
            let req = VerifyRequest {
                service: None,
                expected_report_data: Some(&[0x11; 64]),
                las_evidence: lev,
                now,
            };
            let opts = VerifyOptions {
                verified_evidence: kept,
                ..VerifyOptions::default()
            };
            verify_quote_with(&p, &q, &req, &opts).unwrap()
        };
        let fresh = at(NOW, lev, Some(&kept));
        assert!(fresh.accepted(), "{:?}", fresh.rejections);
        assert_eq!(format!("{fresh:?}"), format!("{:?}", run(&p, &q, lev)));
        // Too old on reuse: refused as any old evidence is.
        let old = at(NOW + MAX_EVIDENCE_AGE + 1, lev, Some(&kept));
        assert!(old.has(Reason::UntrustedLas), "{:?}", old.rejections);
        assert!(
            old.rejections
                .iter()
                .any(|r| r.detail.contains("older than")),
            "{:?}",
            old.rejections
        );
        // Another nonce than the kept evidence answers: refused.
        let other = [8u8; 16];
        let replay = at(
            NOW,
            Some(LasEvidence {
                token: &ev,
                expected_nonce: Some(&other),
            }),
            Some(&kept),
        );
        assert!(replay.has(Reason::UntrustedLas), "{:?}", replay.rejections);
        // Different bytes are verified themselves: a broken signature is not excused by
        // the kept evidence.
        let mut bad = ev.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        let forged = at(
            NOW,
            Some(LasEvidence {
                token: &bad,
                expected_nonce: Some(&nonce),
            }),
            Some(&kept),
        );
        assert!(forged.has(Reason::UntrustedLas), "{:?}", forged.rejections);
        assert!(
            forged
                .rejections
                .iter()
                .any(|r| r.detail.contains("does not verify")),
            "{:?}",
            forged.rejections
        );
    }

    /// The service's path (signature checked in a batch): the same verdict as the
    /// one-at-a-time path, accepted or not, and the quote bytes are not read again; a
    /// quote whose signature does not verify comes back refused, never verified.
    #[test]
    fn a_batch_verified_quote_gets_the_same_verdict() {
        let id = las(1);
        let p = policy("    tolerate: [simulation]\n", ALT);
        let nonce = [9u8; 16];
        let ev = evidence(&id, &nonce, NOW, [5; 32]);
        let good = [
            quote(&id, Mode::Sim, false, 2),
            quote(&id, Mode::Sim, true, 1),
        ];
        let mut bad = good[0].clone();
        let n = bad.len();
        bad[n - 32] ^= 1;
        let unchecked = [&good[0], &good[1], &bad]
            .iter()
            .map(|q| las_core::quote::decode_quote(q).unwrap())
            .collect();
        let (mut out, _) = las_core::quote::batch::verify_quotes(unchecked);
        assert!(out.pop().unwrap().is_err(), "a bad signature is refused");
        for (q, verified) in good.iter().zip(out) {
            let lev = Some(LasEvidence {
                token: &ev,
                expected_nonce: Some(&nonce),
            });
            let want = run(&p, q, lev);
            let req = VerifyRequest {
                service: None,
                expected_report_data: Some(&[0x11; 64]),
                las_evidence: lev,
                now: NOW,
            };
            let got =
                verify_batch_verified_with(&p, verified.unwrap(), &req, &VerifyOptions::default())
                    .unwrap();
            assert_eq!(format!("{got:?}"), format!("{want:?}"));
        }
    }

    /// `max_age` (las verify --max-age): the quote's `iat` (NOW) against the injected
    /// clock; exactly `max_age` old is still accepted.
    #[test]
    fn max_age_rejects_old_quotes() {
        let id = las(1);
        let pinned = format!(
            "    tolerate: [simulation]\n    trusted_scone_qe_pubkeys: [\"{}\"]\n",
            id.platform_id()
        );
        let p = policy(&pinned, ALT);
        let q = quote(&id, Mode::Sim, false, 2);
        let at = |now: u64, max_age: Option<u64>| {
            verify_quote_with(
                &p,
                &q,
                &VerifyRequest {
                    service: None,
                    expected_report_data: None,
                    las_evidence: None,
                    now,
                },
                &VerifyOptions {
                    max_age,
                    ..VerifyOptions::default()
                },
            )
            .unwrap()
        };
        assert!(at(NOW + 300, Some(300)).accepted());
        assert!(at(NOW, Some(0)).accepted());
        let old = at(NOW + 301, Some(300));
        assert_eq!(
            old.rejections.iter().map(|r| r.reason).collect::<Vec<_>>(),
            [Reason::QuoteTooOld]
        );
        assert!(old.rejections[0].detail.contains("301 s old"));
        // Without a maximum age, age is not checked.
        assert!(at(NOW + 1_000_000, None).accepted());
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
        let v = verify_quote_with(
            &policy(&pinned, ALT),
            &q,
            &VerifyRequest {
                service: Some("app"),
                expected_report_data: Some(&[0x12; 64]),
                las_evidence: None,
                now: NOW,
            },
            &VerifyOptions::default(),
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
                qe_id: None,
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
            ..VerifyOptions::default()
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
        // Without collateral: the first reason says so.
        let rs =
            verify_las_evidence_with(&tolerant, &lev, &VerifyOptions::default(), now, &mut vec![])
                .unwrap_err();
        assert_eq!(rs[0].reason, Reason::DcapCollateralMissing);
        // Through a quote of that LAS: the verdict carries the reason, never acceptance.
        let q = quote_hw(&id);
        let v = verify_quote_with(
            &tolerant,
            &q,
            &VerifyRequest {
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

    fn sim_evidence_with_qe(id: &PlatformIdentity, nonce: &[u8], qe: [u8; 16]) -> Vec<u8> {
        let mut c =
            las_core::evidence::decode_and_verify_evidence(&evidence(id, nonce, NOW, [5; 32]))
                .unwrap();
        c.qe_id = Some(las_core::tcb::QeId(qe));
        encode_evidence(id, &c).unwrap()
    }

    /// A QE-ID entry matches the QE ID of the verified evidence of the LAS that signed the
    /// quote, whatever its key; never without evidence (a pinned key alone names no
    /// machine), never another machine's QE ID, and it does not replace the LAS checks.
    #[test]
    fn qe_id_entries_match_only_verified_evidence() {
        let nonce = [9u8; 16];
        let qe = "INTEL_QE_ID:07070707070707070707070707070707";
        let svc = format!("{ALT}    platforms: [{qe}]\n");
        let p = policy("    tolerate: [simulation]\n", &svc);
        let with = |id: &PlatformIdentity, q: [u8; 16], p: &Policy| {
            let ev = sim_evidence_with_qe(id, &nonce, q);
            run(
                p,
                &quote(id, Mode::Sim, false, 2),
                Some(LasEvidence {
                    token: &ev,
                    expected_nonce: Some(&nonce),
                }),
            )
        };
        // Two LAS builds (two keys) on one machine: both admitted.
        for seed in [1, 3] {
            let v = with(&las(seed), [7; 16], &p);
            assert!(v.accepted(), "{:?}", v.rejections);
            assert_eq!(v.las_platform.as_ref().unwrap().qe_id.0, [7; 16]);
            assert!(v.las_platform.unwrap().simulated);
        }
        // Another machine.
        let v = with(&las(1), [8; 16], &p);
        assert!(v.has(Reason::PlatformNotAllowed), "{:?}", v.rejections);
        // Evidence without a QE ID (an older LAS): unknown never matches.
        let ev = evidence(&las(1), &nonce, NOW, [5; 32]);
        let v = run(
            &p,
            &quote(&las(1), Mode::Sim, false, 2),
            Some(LasEvidence {
                token: &ev,
                expected_nonce: Some(&nonce),
            }),
        );
        assert!(v.has(Reason::PlatformNotAllowed));
        // Pinned key, no evidence: the machine is unknown.
        let pinned = policy(
            &format!(
                "    tolerate: [simulation]\n    trusted_scone_qe_pubkeys: [\"{}\"]\n",
                las(1).platform_id()
            ),
            &svc,
        );
        let v = run(&pinned, &quote(&las(1), Mode::Sim, false, 2), None);
        assert_eq!(
            v.rejections.iter().map(|r| r.reason).collect::<Vec<_>>(),
            [Reason::PlatformNotAllowed]
        );
        // Pinned key with the machine's evidence: admitted.
        assert!(with(&las(1), [7; 16], &pinned).accepted());
        // The LAS checks still apply: an untrusted build on the right machine is refused.
        let tl = policy(
            "    tolerate: [simulation]\n    trusted_las:\n      - mrenclave: [\"0404040404040404040404040404040404040404040404040404040404040404\"]\n",
            &svc,
        );
        assert!(with(&las(1), [7; 16], &tl).has(Reason::UntrustedLas));
        // Simulation not tolerated: refused, the QE ID does not help.
        let strict = policy("    tolerate: []\n", &svc);
        assert!(!with(&las(1), [7; 16], &strict).accepted());
    }

    #[test]
    fn a_pinned_key_does_not_make_a_hw_claim_verified() {
        let id = las(1);
        let pinned = format!("    trusted_scone_qe_pubkeys: [\"{}\"]\n", id.platform_id());
        let mut c = las_core::quote::decode_and_verify_quote(&quote(&id, Mode::Sim, false, 2))
            .unwrap()
            .claims;
        c.mode = Mode::Hw;
        let hw = encode_quote(&id, &c).unwrap();
        let v = run(&policy(&pinned, ALT), &hw, None);
        assert!(v.accepted(), "{:?}", v.rejections);
        assert_eq!(v.las_trust, Some(LasTrust::Pinned));
        assert!(
            v.notes
                .iter()
                .any(|n| n.starts_with(PINNED_HARDWARE_UNVERIFIED)),
            "{:?}",
            v.notes
        );
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

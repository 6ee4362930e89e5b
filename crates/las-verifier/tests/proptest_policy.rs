//! Property: a policy with a random combination of fields accepts a quote exactly when the
//! quote meets every one of them, and each violated field is reported with its reason.
//!
//! The quote and the policy are drawn from small sets (three platform keys, three
//! MRENCLAVEs, two signers, ISVSVN 0..6, sim or hw, DEBUG or not, report data, issue
//! time) so that matches and mismatches are both frequent; the policy is written as YAML
//! (block or flow style, hex in either case) and parsed like a file; the expected verdict
//! is computed here independently of the verifier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests may panic

use las_core::PlatformIdentity;
use las_core::crypto::Key128;
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_core::quote::{Mode, QuoteClaims, encode_quote};
use las_core::sgx::{Attributes, ReportBody, flags};
use las_verifier::{LasEvidence, Policy, Reason, VerifyOptions, VerifyRequest, verify_quote_with};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;
const MRENCLAVES: [[u8; 32]; 3] = [[0xa1; 32], [0xa2; 32], [0xa3; 32]];
const SIGNERS: [[u8; 32]; 2] = [[0x51; 32], [0x52; 32]];
const REPORT_DATA: [[u8; 64]; 2] = [[0xd1; 64], [0xd2; 64]];
const LAS_MRENCLAVE: [u8; 32] = [0x1a; 32];

fn platform(i: usize) -> PlatformIdentity {
    PlatformIdentity::from_seal_key(&Key128::from_bytes([i as u8 + 1; 16]))
}

#[derive(Debug, Clone)]
struct Q {
    platform: usize,
    sim: bool,
    mrenclave: usize,
    signer: usize,
    isvprodid: u16,
    isvsvn: u16,
    debug: bool,
    report_data: usize,
    /// Issued at NOW + this.
    iat_offset: i64,
}

fn quote() -> impl Strategy<Value = Q> {
    (
        0..3usize,
        any::<bool>(),
        0..3usize,
        0..2usize,
        0..3u16,
        0..6u16,
        any::<bool>(),
        0..2usize,
        prop::sample::select(vec![-100_000i64, -1, 0, 299, 300, 301, 5000]),
    )
        .prop_map(
            |(platform, sim, mrenclave, signer, isvprodid, isvsvn, debug, rd, iat)| Q {
                platform,
                sim,
                mrenclave,
                signer,
                isvprodid,
                isvsvn,
                debug,
                report_data: rd,
                iat_offset: iat,
            },
        )
}

#[derive(Debug, Clone)]
struct Signer {
    mrsigner: usize,
    isvprodid: Option<u16>,
    isvsvn_min: Option<u16>,
    isvsvn_max: Option<u16>,
}

#[derive(Debug, Clone)]
struct Alt {
    mrenclave: Vec<usize>,
    signer: Option<Signer>,
}

#[derive(Debug, Clone)]
struct P {
    tolerate_sim: bool,
    tolerate_debug: bool,
    pinned: Vec<usize>,
    /// `trusted_las`: none, the LAS's MRENCLAVE, another MRENCLAVE.
    trusted_las: Option<bool>,
    platforms: Option<Vec<usize>>,
    /// `None`: the service has no attestation rule.
    alts: Option<Vec<Alt>>,
    flow_style: bool,
    upper_hex: bool,
}

fn signer() -> impl Strategy<Value = Signer> {
    (
        0..2usize,
        prop::option::of(0..3u16),
        prop::option::of(0..6u16),
        prop::option::of(0..6u16),
    )
        .prop_map(|(mrsigner, isvprodid, lo, hi)| Signer {
            mrsigner,
            isvprodid,
            // The parser refuses min > max (nothing could match): keep them ordered.
            isvsvn_min: match (lo, hi) {
                (Some(l), Some(h)) => Some(l.min(h)),
                _ => lo,
            },
            isvsvn_max: match (lo, hi) {
                (Some(l), Some(h)) => Some(l.max(h)),
                _ => hi,
            },
        })
}

fn alt() -> impl Strategy<Value = Alt> {
    (
        prop::collection::btree_set(0..3usize, 0..=3),
        prop::option::of(signer()),
    )
        .prop_filter("an alternative needs mrenclave or signer", |(m, s)| {
            !m.is_empty() || s.is_some()
        })
        .prop_map(|(m, signer)| Alt {
            mrenclave: m.into_iter().collect(),
            signer,
        })
}

fn policy() -> impl Strategy<Value = P> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::btree_set(0..3usize, 0..=2),
        prop::option::of(any::<bool>()),
        // An empty `platforms: []` is a parse error (it would allow no platform).
        prop::option::of(prop::collection::btree_set(0..3usize, 1..=3)),
        prop::option::weighted(0.95, prop::collection::vec(alt(), 1..=3)),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(tolerate_sim, tolerate_debug, pinned, trusted_las, platforms, alts, flow, up)| P {
                tolerate_sim,
                tolerate_debug,
                pinned: pinned.into_iter().collect(),
                trusted_las,
                platforms: platforms.map(|s| s.into_iter().collect()),
                alts,
                flow_style: flow,
                upper_hex: up,
            },
        )
}

/// How the verifier learns about the LAS: nothing (pinning only), fresh evidence of the
/// quote's platform, or evidence of another platform.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ev {
    None,
    Own,
    Other,
}

fn h(b: &[u8], upper: bool) -> String {
    if upper {
        hex::encode_upper(b)
    } else {
        hex::encode(b)
    }
}

fn yaml(p: &P) -> String {
    let hx = |b: &[u8]| format!("\"{}\"", h(b, p.upper_hex));
    let list = |items: Vec<String>| format!("[{}]", items.join(", "));
    let mut tol = Vec::new();
    if p.tolerate_sim {
        tol.push("simulation".to_owned());
    }
    if p.tolerate_debug {
        tol.push("debug-mode".to_owned());
    }
    let mut y = format!(
        "version: \"0.3\"\nname: prop\nsecurity:\n  attestation:\n    tolerate: {}\n    trusted_scone_qe_pubkeys: {}\n",
        list(tol),
        list(
            p.pinned
                .iter()
                .map(|&i| hx(&platform(i).platform_id().0))
                .collect()
        )
    );
    if let Some(own) = p.trusted_las {
        let m = if own { LAS_MRENCLAVE } else { [0x2b; 32] };
        y.push_str(&format!(
            "    trusted_las:\n      - mrenclave: [{}]\n",
            hx(&m)
        ));
    }
    y.push_str("services:\n  - name: app\n    image_name: example/app\n");
    if let Some(pl) = &p.platforms {
        y.push_str(&format!(
            "    platforms: {}\n",
            list(
                pl.iter()
                    .map(|&i| hx(&platform(i).platform_id().0))
                    .collect()
            )
        ));
    }
    if let Some(alts) = &p.alts {
        let alt_text = |a: &Alt| {
            let mut fields = Vec::new();
            if !a.mrenclave.is_empty() {
                fields.push(format!(
                    "mrenclave: {}",
                    list(a.mrenclave.iter().map(|&i| hx(&MRENCLAVES[i])).collect())
                ));
            }
            if let Some(s) = &a.signer {
                let mut sf = vec![format!("mrsigner: {}", hx(&SIGNERS[s.mrsigner]))];
                if let Some(v) = s.isvprodid {
                    sf.push(format!("isvprodid: {v}"));
                }
                if let Some(v) = s.isvsvn_min {
                    sf.push(format!("isvsvn_min: {v}"));
                }
                if let Some(v) = s.isvsvn_max {
                    sf.push(format!("isvsvn_max: {v}"));
                }
                fields.push(format!("signer: {{{}}}", sf.join(", ")));
            }
            fields
        };
        if p.flow_style {
            let items: Vec<String> = alts
                .iter()
                .map(|a| format!("{{{}}}", alt_text(a).join(", ")))
                .collect();
            y.push_str(&format!("    attestation: [{}]\n", items.join(", ")));
        } else if alts.len() == 1 {
            // One alternative written as a plain object.
            y.push_str("    attestation:\n");
            for f in alt_text(&alts[0]) {
                y.push_str(&format!("      {f}\n"));
            }
        } else {
            y.push_str("    attestation:\n");
            for a in alts {
                let fs = alt_text(a);
                y.push_str(&format!("      - {}\n", fs[0]));
                for f in &fs[1..] {
                    y.push_str(&format!("        {f}\n"));
                }
            }
        }
    }
    y
}

fn make_quote(q: &Q) -> Vec<u8> {
    let id = platform(q.platform);
    let mut f = flags::INIT | flags::MODE64BIT;
    if q.debug {
        f |= flags::DEBUG;
    }
    encode_quote(
        &id,
        &QuoteClaims {
            mode: if q.sim { Mode::Sim } else { Mode::Hw },
            platform_id: id.platform_id(),
            las_version: "0.1.0".into(),
            las_mrenclave: LAS_MRENCLAVE,
            issued_at: NOW.saturating_add_signed(q.iat_offset),
            report_body: ReportBody {
                cpusvn: [1; 16],
                miscselect: 0,
                cet_attributes: 0,
                isv_ext_prod_id: [0; 16],
                attributes: Attributes { flags: f, xfrm: 3 },
                mrenclave: MRENCLAVES[q.mrenclave],
                mrsigner: SIGNERS[q.signer],
                config_id: [0; 64],
                isvprodid: q.isvprodid,
                isvsvn: q.isvsvn,
                config_svn: 0,
                isv_family_id: [0; 16],
                report_data: REPORT_DATA[q.report_data],
            },
        },
    )
    .unwrap()
}

const NONCE: [u8; 24] = [0x4e; 24];

fn make_evidence(platform_index: usize) -> Vec<u8> {
    let id = platform(platform_index);
    encode_evidence(
        &id,
        &EvidenceClaims {
            kind: EvidenceKind::Sim,
            mode: Mode::Sim,
            platform_id: id.platform_id(),
            nonce: NONCE.to_vec(),
            las_version: "0.1.0".into(),
            las_mrenclave: LAS_MRENCLAVE,
            las_mrsigner: [0x1b; 32],
            las_isvprodid: 1,
            las_isvsvn: 1,
            cpusvn: [1; 16],
            issued_at: NOW - 5,
            binding: binding(&id.platform_id(), &NONCE),
            qe_id: None,
        },
    )
    .unwrap()
}

/// Every reason the quote must be rejected for, computed from the model.
fn expected(q: &Q, p: &P, ev: Ev, want_rd: Option<usize>) -> Vec<Reason> {
    let mut r = Vec::new();
    // LAS trust: pinned, or sim evidence of this very key (mode must match, simulation
    // tolerated, trusted_las if set must list the LAS build).
    let trusted = p.pinned.contains(&q.platform)
        || (ev == Ev::Own && p.tolerate_sim && q.sim && p.trusted_las != Some(false));
    if !trusted {
        // Evidence refused for simulation reports that reason, everything else is
        // untrusted-las.
        if ev != Ev::None && !p.tolerate_sim && !p.pinned.contains(&q.platform) {
            r.push(Reason::SimulationNotTolerated);
        } else {
            r.push(Reason::UntrustedLas);
        }
    }
    if q.sim && !p.tolerate_sim {
        r.push(Reason::SimulationNotTolerated);
    }
    if let Some(pl) = &p.platforms
        && !pl.contains(&q.platform)
    {
        r.push(Reason::PlatformNotAllowed);
    }
    match &p.alts {
        None => r.push(Reason::NoAttestationPolicy),
        Some(alts) => {
            let per: Vec<Vec<Reason>> = alts
                .iter()
                .map(|a| {
                    let mut v = Vec::new();
                    if !a.mrenclave.is_empty() && !a.mrenclave.contains(&q.mrenclave) {
                        v.push(Reason::MrenclaveMismatch);
                    }
                    if let Some(s) = &a.signer {
                        if s.mrsigner != q.signer || s.isvprodid.is_some_and(|x| x != q.isvprodid) {
                            v.push(Reason::SignerMismatch);
                        }
                        if s.isvsvn_min.is_some_and(|m| q.isvsvn < m) {
                            v.push(Reason::IsvsvnTooLow);
                        }
                        if s.isvsvn_max.is_some_and(|m| q.isvsvn > m) {
                            v.push(Reason::IsvsvnTooHigh);
                        }
                    }
                    v
                })
                .collect();
            if !per.iter().any(Vec::is_empty) {
                r.extend(per.into_iter().flatten());
            }
        }
    }
    if q.debug && !p.tolerate_debug {
        r.push(Reason::DebugEnclave);
    }
    if want_rd.is_some_and(|w| w != q.report_data) {
        r.push(Reason::ReportDataMismatch);
    }
    if q.iat_offset > 300 {
        r.push(Reason::QuoteFromTheFuture);
    }
    r
}

fn ev_strategy() -> impl Strategy<Value = Ev> {
    prop_oneof![Just(Ev::None), Just(Ev::Own), Just(Ev::Other)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn a_quote_is_accepted_exactly_when_it_meets_every_field(
        q in quote(),
        p in policy(),
        ev in ev_strategy(),
        want_rd in prop::option::of(0..2usize),
    ) {
        let text = yaml(&p);
        let policy = Policy::from_yaml(text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let quote = make_quote(&q);
        let evidence = match ev {
            Ev::None => None,
            Ev::Own => Some(make_evidence(q.platform)),
            Ev::Other => Some(make_evidence((q.platform + 1) % 3)),
        };
        let rd = want_rd.map(|i| REPORT_DATA[i]);
        let v = verify_quote_with(&policy, &quote, &VerifyRequest {
            service: None,
            expected_report_data: rd.as_ref(),
            las_evidence: evidence.as_deref().map(|token| LasEvidence {
                token,
                expected_nonce: Some(&NONCE),
            }),
            now: NOW,
        }, &VerifyOptions::default()).unwrap();
        let want = expected(&q, &p, ev, want_rd);
        let mut got: Vec<Reason> = v.rejections.iter().map(|r| r.reason).collect();
        let mut want_sorted = want.clone();
        got.sort_by_key(|r| r.as_str());
        got.dedup();
        want_sorted.sort_by_key(|r| r.as_str());
        want_sorted.dedup();
        // Never accepted when a field is violated; and the model and the verifier agree
        // on every reason (so a test of the model is a test of the verifier).
        prop_assert_eq!(v.accepted(), want.is_empty(), "{:?}\n{}", v.rejections, text);
        prop_assert_eq!(got, want_sorted, "{:?}\n{}", v.rejections, text);
    }
}

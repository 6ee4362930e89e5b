//! What a collection finds: one [`Found`] per LAS that answered (and verified), one
//! [`Failure`] per LAS that did not; and the per-LAS probes shared by both sources.

use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use las_core::PlatformId;
use las_core::tcb::QeId;
use las_verifier::dcap::CollateralSet;
use las_verifier::{LasEvidence, Policy, Reason, VerifyOptions, verify_las_evidence_with};

use crate::addr::LasAddr;
use crate::fetch::{FetchError, Transport, fetch_identity, fetch_platform, http_client};

/// Bytes of the nonce sent to every LAS in verified mode.
pub const NONCE_LEN: usize = 32;

/// Where a LAS was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A pod of the LAS DaemonSet.
    Pod {
        /// Namespace.
        namespace: String,
        /// The node it is scheduled on (before the name: lists sort by node).
        node: Option<String>,
        /// Pod name.
        name: String,
    },
    /// A LAS reached directly.
    Las {
        /// Its address.
        addr: LasAddr,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pod {
                namespace,
                name,
                node,
            } => {
                write!(f, "pod {namespace}/{name}")?;
                if let Some(n) = node {
                    write!(f, " (node {n})")?;
                }
                Ok(())
            }
            Target::Las { addr } => write!(f, "LAS {addr}"),
        }
    }
}

/// How an ID was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `GET /v1/platform` through the API server's pod proxy (trusts the cluster).
    ApiProxy,
    /// The last `public key` line of the pod's log (trusts the cluster).
    PodLog,
    /// `GET /v1/platform` straight from the LAS (trusts the network).
    Direct,
    /// Identity evidence for a fresh nonce, verified: trusts neither.
    Verified,
}

impl Source {
    /// The stable spelling (table and JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::ApiProxy => "api-proxy",
            Source::PodLog => "pod-log",
            Source::Direct => "direct",
            Source::Verified => "verified",
        }
    }
}

/// A LAS whose platform ID was obtained.
#[derive(Debug, Clone)]
pub struct Found {
    /// Which LAS.
    pub target: Target,
    /// Its platform ID.
    pub platform_id: PlatformId,
    /// How.
    pub source: Source,
    /// What the operator should know (e.g. fallback taken, simulation tolerated).
    pub notes: Vec<String>,
    /// Its Intel QE ID, as the same source tells it (`None`: unknown, e.g. the LAS's
    /// start-up quote failed, or an older LAS).
    pub qe_id: Option<PlatformQe>,
}

/// A LAS's QE ID and whether it is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformQe {
    /// The QE ID.
    pub qe_id: QeId,
    /// Derived from a simulated platform's secret (matched only where simulation is
    /// tolerated).
    pub simulated: bool,
}

impl PlatformQe {
    /// The QE ID of a `tcb_state` (`None` when unknown).
    pub fn of(t: &las_core::api::TcbState) -> Option<Self> {
        t.qe_id().map(|qe_id| PlatformQe {
            qe_id,
            simulated: t.state == las_core::api::TcbStateKind::Simulated,
        })
    }
}

/// Why a LAS is missing from the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The pod is not running (pending, failed, terminating).
    NotRunning,
    /// The pod runs but is not ready.
    NotReady,
    /// No answer (connection, timeout, API server proxy error, HTTP error).
    Unreachable,
    /// An answer that is not what a LAS sends.
    BadAnswer,
    /// Neither the LAS nor its log gave an ID.
    NoKeyInLog,
    /// The identity evidence was rejected.
    Rejected(Reason),
    /// `/v1/platform` claims another ID than the verified evidence.
    PlatformIdMismatch,
}

impl FailureKind {
    /// The stable spelling (stderr and JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NotRunning => "not-running",
            FailureKind::NotReady => "not-ready",
            FailureKind::Unreachable => "unreachable",
            FailureKind::BadAnswer => "bad-answer",
            FailureKind::NoKeyInLog => "no-key-in-log",
            FailureKind::Rejected(r) => r.as_str(),
            FailureKind::PlatformIdMismatch => "platform-id-mismatch",
        }
    }

    fn of_fetch(e: &FetchError) -> Self {
        if e.is_bad_answer() {
            FailureKind::BadAnswer
        } else {
            FailureKind::Unreachable
        }
    }
}

/// A LAS missing from the list, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Which LAS.
    pub target: Target,
    /// The kind of failure.
    pub kind: FailureKind,
    /// The ID the LAS claimed, when it claimed one (verification failures).
    pub platform_id: Option<PlatformId>,
    /// What exactly happened.
    pub detail: String,
}

/// The result of a collection.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    /// Every LAS with an ID, sorted by target.
    pub found: Vec<Found>,
    /// Every LAS without one, sorted by target.
    pub failures: Vec<Failure>,
}

impl Collection {
    /// The QE IDs, sorted, each once (LAS whose QE ID is unknown are left out: see
    /// [`Collection::without_qe_id`]).
    pub fn qe_ids(&self) -> Vec<QeId> {
        let mut ids: Vec<QeId> = self
            .found
            .iter()
            .filter_map(|f| f.qe_id.map(|q| q.qe_id))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The LAS that answered but whose QE ID is unknown.
    pub fn without_qe_id(&self) -> impl Iterator<Item = &Found> {
        self.found.iter().filter(|f| f.qe_id.is_none())
    }

    /// The IDs, sorted, each once.
    pub fn ids(&self) -> Vec<PlatformId> {
        let mut ids: Vec<PlatformId> = self.found.iter().map(|f| f.platform_id).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Whether every LAS answered (and verified), and there was at least one.
    pub fn complete(&self) -> bool {
        self.failures.is_empty() && !self.found.is_empty()
    }

    /// The results of probing each LAS, in any order, sorted by target.
    pub(crate) fn from_results(results: Vec<Result<Found, Failure>>) -> Collection {
        let mut c = Collection::default();
        for r in results {
            match r {
                Ok(f) => c.found.push(f),
                Err(f) => c.failures.push(f),
            }
        }
        c.found.sort_by(|a, b| a.target.cmp(&b.target));
        c.failures.sort_by(|a, b| a.target.cmp(&b.target));
        c
    }
}

/// The verified mode: trust only what identity evidence for a fresh nonce proves.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Trusted LAS measurements (`trusted_las`) and tolerances (`simulation`).
    pub policy: Policy,
    /// Now, seconds since the Unix epoch (read once per LAS).
    pub clock: fn() -> u64,
    /// DCAP collateral for hardware LAS evidence (`sgx-dcap`); without it such evidence is
    /// rejected with `dcap-collateral-missing`.
    pub dcap_collateral: Option<CollateralSet>,
}

/// How to collect.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deadline of each request to a LAS (and of each log read).
    pub timeout: Duration,
    /// `Some`: verified mode.
    pub verify: Option<Verification>,
    /// LAS instances asked at the same time.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(10),
            verify: None,
            concurrency: 16,
        }
    }
}

/// A failed probe before the target is attached.
pub(crate) struct ProbeError {
    pub kind: FailureKind,
    pub platform_id: Option<PlatformId>,
    pub detail: String,
}

impl ProbeError {
    pub(crate) fn fetch(what: &str, e: &FetchError) -> Self {
        ProbeError {
            kind: FailureKind::of_fetch(e),
            platform_id: None,
            detail: format!("{what}: {e}"),
        }
    }

    pub(crate) fn at(self, target: Target) -> Failure {
        Failure {
            target,
            kind: self.kind,
            platform_id: self.platform_id,
            detail: self.detail,
        }
    }
}

/// Plain mode: the ID (and QE ID) the LAS claims at `GET /v1/platform`.
pub(crate) async fn probe_claimed(
    t: &Transport,
    timeout: Duration,
) -> Result<(PlatformId, Option<PlatformQe>), ProbeError> {
    fetch_platform(t, timeout)
        .await
        .map(|(id, info)| (id, PlatformQe::of(&info.tcb_state)))
        .map_err(|e| ProbeError::fetch("GET /v1/platform", &e))
}

/// Verified mode: evidence for a fresh random nonce, verified like `las verify` does, and
/// the ID it proves must be the one `GET /v1/platform` claims.
pub(crate) async fn probe_verified(
    t: &Transport,
    v: &Verification,
    timeout: Duration,
) -> Result<(PlatformId, Option<PlatformQe>, Vec<String>), ProbeError> {
    let (claimed, _) = fetch_platform(t, timeout)
        .await
        .map_err(|e| ProbeError::fetch("GET /v1/platform", &e))?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|e| ProbeError {
        kind: FailureKind::Unreachable,
        platform_id: Some(claimed),
        detail: format!("no randomness for the nonce: {e}"),
    })?;
    let token = fetch_identity(t, &nonce, timeout)
        .await
        .map_err(|e| ProbeError {
            platform_id: Some(claimed),
            ..ProbeError::fetch("GET /v1/identity", &e)
        })?;
    let mut notes = Vec::new();
    let ev = LasEvidence {
        token: &token,
        expected_nonce: Some(&nonce),
    };
    let vopts = VerifyOptions {
        dcap_collateral: v.dcap_collateral.as_ref(),
        ..VerifyOptions::default()
    };
    let (claims, platform) =
        verify_las_evidence_with(&v.policy, &ev, &vopts, (v.clock)(), &mut notes).map_err(
            |rs| {
                // The first failed check is the kind; every check's detail is kept.
                let detail = rs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match i {
                        0 => r.detail.clone(),
                        _ => format!("{}: {}", r.reason, r.detail),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                ProbeError {
                    kind: FailureKind::Rejected(
                        rs.first().map_or(Reason::UntrustedLas, |r| r.reason),
                    ),
                    platform_id: Some(claimed),
                    detail,
                }
            },
        )?;
    if claims.platform_id != claimed {
        return Err(ProbeError {
            kind: FailureKind::PlatformIdMismatch,
            platform_id: Some(claimed),
            detail: format!(
                "GET /v1/platform claims {claimed} but the identity evidence proves key {}",
                claims.platform_id
            ),
        });
    }
    // The QE ID the verified evidence carries (the DCAP quote's, or the simulated one).
    let qe = platform.map(|p| PlatformQe {
        qe_id: p.qe_id,
        simulated: p.simulated,
    });
    Ok((claims.platform_id, qe, notes))
}

/// Asks every LAS in `addrs` directly (verified when `opts.verify` is set).
pub async fn collect_direct(addrs: &[LasAddr], opts: &Options) -> Collection {
    let client = http_client(opts.timeout);
    let mut unique: Vec<LasAddr> = addrs.to_vec();
    unique.sort();
    unique.dedup();
    let results: Vec<Result<Found, Failure>> = futures::stream::iter(unique)
        .map(|addr| {
            let t = Transport::Direct {
                client: client.clone(),
                addr: addr.clone(),
            };
            async move {
                let target = Target::Las { addr };
                probe_one(&t, opts)
                    .await
                    .map(|(platform_id, qe_id, source, notes)| Found {
                        target: target.clone(),
                        platform_id,
                        source,
                        notes,
                        qe_id,
                    })
                    .map_err(|e| e.at(target))
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    Collection::from_results(results)
}

/// One LAS in the mode `opts` asks for.
pub(crate) async fn probe_one(
    t: &Transport,
    opts: &Options,
) -> Result<(PlatformId, Option<PlatformQe>, Source, Vec<String>), ProbeError> {
    match &opts.verify {
        Some(v) => probe_verified(t, v, opts.timeout)
            .await
            .map(|(id, qe, notes)| (id, qe, Source::Verified, notes)),
        None => {
            let source = match t {
                Transport::Direct { .. } => Source::Direct,
                Transport::PodProxy { .. } => Source::ApiProxy,
            };
            probe_claimed(t, opts.timeout)
                .await
                .map(|(id, qe)| (id, qe, source, Vec::new()))
        }
    }
}

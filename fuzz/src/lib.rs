//! What the fuzz targets and the seed generator share: one fixed simulated platform and one
//! fixed signing identity, so that seeds made by `gen-corpus` are valid for the targets
//! (REPORT MACs check, quote and evidence signatures verify) and the targets can tell a
//! genuine token from a forged one.

use std::path::PathBuf;
use std::sync::OnceLock;

use las_core::PlatformIdentity;
use las_core::crypto::Key128;
use las_core::egetkey::{self, EnclaveIdentity, RootSecret};
use las_core::evidence::{EvidenceClaims, EvidenceKind, binding, encode_evidence};
use las_core::quote::{Mode, QuoteClaims, encode_quote};
use las_core::sgx::{Attributes, Report, ReportBody, TargetInfo, flags};

/// The simulated platform's root secret.
pub const ROOT: [u8; 32] = [0x42; 32];
/// Its CPUSVN.
pub const CPUSVN: [u8; 16] = [7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// The LAS's MRENCLAVE on it.
pub const LAS_MRENCLAVE: [u8; 32] = [0x1a; 32];
/// Time of the seeds and of every verification.
pub const NOW: u64 = 1_800_000_000;
/// The nonce of the seed evidence.
pub const NONCE: [u8; 32] = [0x4e; 32];

/// The LAS's TARGETINFO on the fixed platform.
pub fn las_target_info() -> TargetInfo {
    las_platform::sim::las_enclave(LAS_MRENCLAVE).target_info()
}

/// An application enclave.
pub fn app(debug: bool) -> EnclaveIdentity {
    let mut f = flags::INIT | flags::MODE64BIT;
    if debug {
        f |= flags::DEBUG;
    }
    EnclaveIdentity {
        mrenclave: [0xaa; 32],
        mrsigner: [0xbb; 32],
        attributes: Attributes { flags: f, xfrm: 3 },
        isvprodid: 3,
        isvsvn: 5,
        ..EnclaveIdentity::default()
    }
}

/// A REPORT of `app(debug)` for the LAS on the fixed platform, with a valid MAC.
pub fn valid_report(debug: bool, report_data: [u8; 64]) -> Report {
    egetkey::ereport(
        &RootSecret::from_bytes(ROOT),
        &CPUSVN,
        &app(debug),
        &las_target_info(),
        &report_data,
        &[0x5e; 32],
    )
}

/// Whether `r`'s MAC checks with the fixed LAS's report key.
pub fn mac_checks(r: &Report) -> bool {
    egetkey::report_key(
        &RootSecret::from_bytes(ROOT),
        &CPUSVN,
        &las_target_info(),
        &r.key_id,
    )
    .verify_cmac(&r.body.to_bytes(), &r.mac)
}

/// The identity that signs the seed quotes and evidence.
pub fn signer() -> &'static PlatformIdentity {
    static ID: OnceLock<PlatformIdentity> = OnceLock::new();
    ID.get_or_init(|| PlatformIdentity::from_seal_key(&Key128::from_bytes([7; 16])))
}

/// The claims of the seed quotes: (mode, debug) variants.
pub fn quote_claims(mode: Mode, debug: bool) -> QuoteClaims {
    QuoteClaims {
        mode,
        platform_id: signer().platform_id(),
        las_version: "0.1.0".into(),
        las_mrenclave: LAS_MRENCLAVE,
        issued_at: NOW,
        report_body: valid_report(debug, [0x11; 64]).body,
    }
}

/// Every quote claim set the seeds were made from.
pub fn all_quote_claims() -> Vec<QuoteClaims> {
    vec![
        quote_claims(Mode::Sim, false),
        quote_claims(Mode::Sim, true),
        quote_claims(Mode::Hw, false),
    ]
}

/// A seed quote.
pub fn quote(mode: Mode, debug: bool) -> Vec<u8> {
    encode_quote(signer(), &quote_claims(mode, debug)).expect("the seed quote encodes")
}

/// The claims of the seed evidence.
pub fn evidence_claims(kind: EvidenceKind) -> EvidenceClaims {
    let id = signer().platform_id();
    EvidenceClaims {
        mode: match kind {
            EvidenceKind::Sim => Mode::Sim,
            EvidenceKind::SgxDcap { .. } => Mode::Hw,
        },
        kind,
        platform_id: id,
        nonce: NONCE.to_vec(),
        las_version: "0.1.0".into(),
        las_mrenclave: LAS_MRENCLAVE,
        las_mrsigner: las_platform::sim::LAS_MRSIGNER,
        las_isvprodid: 1,
        las_isvsvn: 1,
        cpusvn: CPUSVN,
        issued_at: NOW - 5,
        binding: binding(&id, &NONCE),
        // The seeds keep the form without a QE ID (still valid; the decoder reads both).
        qe_id: None,
    }
}

/// Every evidence claim set the seeds were made from.
pub fn all_evidence_claims() -> Vec<EvidenceClaims> {
    vec![
        evidence_claims(EvidenceKind::Sim),
        evidence_claims(EvidenceKind::SgxDcap {
            quote: vec![3; 600],
        }),
    ]
}

/// A seed evidence.
pub fn evidence(kind: EvidenceKind) -> Vec<u8> {
    encode_evidence(signer(), &evidence_claims(kind)).expect("the seed evidence encodes")
}

/// A policy that accepts the simulated seed quote (pinned key, simulation tolerated).
pub const POLICY: &str = "version: \"0.3\"\nsecurity:\n  attestation:\n    tolerate: [simulation]\n    trusted_scone_qe_pubkeys: [\"PLATFORM\"]\nservices:\n  - name: app\n    attestation:\n      mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n      signer: {mrsigner: \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\", isvprodid: 3, isvsvn_min: 5}\n    platforms: [\"PLATFORM\"]\n";

/// [`POLICY`] with the signer's platform ID filled in.
pub fn policy_text() -> String {
    POLICY.replace("PLATFORM", &signer().platform_id().to_string())
}

/// The state folder of the fixed platform (secret written once, 0600).
pub fn state_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::OpenOptionsExt;
        let d = tempfile::Builder::new()
            .prefix("las-fuzz-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(d.join(las_platform::sim::SECRET_FILE))
            .expect("secret file");
        std::io::Write::write_all(&mut f, &ROOT).expect("write secret");
        d
    })
    .clone()
}

/// The fixed simulated platform as the daemon opens it.
pub fn platform() -> las_platform::sim::SimPlatform {
    las_platform::sim::SimPlatform::open(&las_platform::PlatformConfig {
        mode: las_platform::ModeRequest::Sim,
        state_dir: state_dir(),
        sim_cpusvn: Some(CPUSVN),
        sim_las_mrenclave: Some(LAS_MRENCLAVE),
        create_secret: false,
    })
    .expect("the fixed platform opens")
}

/// The HTTP fuzz input: a few selector bytes, then a query or path, then the body.
///
/// `[route, method, content type, accept, query length (u8), query..., body...]`
#[derive(Debug)]
pub struct HttpInput<'a> {
    /// Index into [`ROUTES`] (the last one takes the path from the query bytes).
    pub route: usize,
    /// Index into [`METHODS`].
    pub method: usize,
    /// Index into [`CONTENT_TYPES`].
    pub content_type: usize,
    /// Index into [`ACCEPTS`].
    pub accept: usize,
    /// Query string (or path for the last route).
    pub query: &'a [u8],
    /// Request body.
    pub body: &'a [u8],
}

/// Routes the HTTP target picks from; `None` = a path from the input.
pub const ROUTES: [Option<&str>; 8] = [
    Some("/healthz"),
    Some("/readyz"),
    Some("/metrics"),
    Some("/v1/platform"),
    Some("/v1/target-info"),
    Some("/v1/quote"),
    Some("/v1/identity"),
    None,
];
/// Methods.
pub const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "FOO",
];
/// Content types (`None`: no header).
pub const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("application/octet-stream"),
    Some("application/json"),
    Some("text/plain"),
    Some("application/json; charset=utf-8"),
    Some("APPLICATION/OCTET-STREAM; x=y"),
];
/// Accept headers.
pub const ACCEPTS: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("application/cose"),
    Some("*/*"),
];

impl<'a> HttpInput<'a> {
    /// Splits fuzz bytes; `None` when there are too few.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (head, rest) = data.split_first_chunk::<5>()?;
        let qlen = usize::from(head[4]).min(rest.len());
        let (query, body) = rest.split_at(qlen);
        Some(Self {
            route: usize::from(head[0]) % ROUTES.len(),
            method: usize::from(head[1]) % METHODS.len(),
            content_type: usize::from(head[2]) % CONTENT_TYPES.len(),
            accept: usize::from(head[3]) % ACCEPTS.len(),
            query,
            body,
        })
    }

    /// The bytes of an input (for the seed generator).
    pub fn encode(route: u8, method: u8, ct: u8, accept: u8, query: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = vec![
            route,
            method,
            ct,
            accept,
            u8::try_from(query.len()).expect("short query"),
        ];
        v.extend_from_slice(query);
        v.extend_from_slice(body);
        v
    }
}

/// Parses an HTTP answer body as a token: raw COSE, or JSON with `field` in base64.
pub fn token_from_body(body: &[u8], json: bool, field: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    if json {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        base64::engine::general_purpose::STANDARD
            .decode(v.get(field)?.as_str()?)
            .ok()
    } else {
        Some(body.to_vec())
    }
}

/// The report data of the seed REPORTs (distinct per seed).
pub fn report_data(i: u8) -> [u8; 64] {
    [i; 64]
}

/// The body of a REPORT as bytes.
pub fn body_bytes(b: &ReportBody) -> Vec<u8> {
    b.to_bytes().to_vec()
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte), as the
/// daemon's query extractor does it, lossy to text.
pub fn form_decode(q: &[u8]) -> String {
    let mut out = Vec::with_capacity(q.len());
    let mut i = 0;
    while i < q.len() {
        match q[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < q.len() => {
                match std::str::from_utf8(&q[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

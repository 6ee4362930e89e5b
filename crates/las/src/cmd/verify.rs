//! `las verify`: check a quote against a policy. Exit 0 accepted, 1 rejected, 2 error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use las_client::{LasAddr, LasClient};
use las_verifier::dcap::evidence_dcap_quote;
use las_verifier::{
    LasEvidence, LasTrust, Policy, Verdict, VerifyOptions, VerifyRequest, verify_quote_with,
};

use clap::Args;

/// Largest token file read.
const MAX_FILE: u64 = 1024 * 1024;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("las_trust").args(["las", "identity"])))]
pub struct VerifyArgs {
    /// Policy file (session language v0.3; only the attestation part is read).
    #[arg(long, value_name = "FILE", required_unless_present = "ear")]
    pub policy: Option<PathBuf>,
    /// The quote: raw COSE_Sign1 bytes or base64 (what `las quote` writes).
    #[arg(long, value_name = "FILE", required_unless_present = "ear")]
    pub quote: Option<PathBuf>,
    /// Instead of a quote: check an EAR from a verification service (the token, or a file
    /// holding it) against --jwks, and print its claims.
    #[arg(long, value_name = "TOKEN|FILE", requires = "jwks", conflicts_with_all = ["policy", "quote"])]
    pub ear: Option<String>,
    /// With --ear: the service's key set (a JWKS file, or its http:// URL).
    #[arg(long, value_name = "FILE|URL", requires = "ear")]
    pub jwks: Option<String>,
    /// Service of the policy to check against (default: the only service).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Report data the enclave must have bound (hex, up to 64 bytes, zero-padded).
    #[arg(long, value_name = "HEX")]
    pub expect_report_data: Option<String>,
    /// Ask this LAS for fresh identity evidence (a random nonce) to trust its key.
    #[arg(long = "las", value_name = "ADDR")]
    pub las: Option<String>,
    /// Identity evidence of the LAS read from a file (from GET /v1/identity?nonce=...).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// With --identity: the nonce that evidence must answer (hex).
    #[arg(long, value_name = "HEX", requires = "identity")]
    pub identity_nonce: Option<String>,
    /// Verify as of this time (seconds since the Unix epoch) instead of now.
    #[arg(long, value_name = "UNIX_SECS")]
    pub now: Option<u64>,
    /// Reject a quote issued longer ago than this (`30s`, `5m`, `1h`, `1h 30m`), judged by
    /// its issue time and the verifier's clock (or --now): `quote-too-old`. Without it and
    /// without --expect-report-data, an accepted quote may be a replay (a note says so).
    #[arg(long, value_name = "DURATION", env = "LAS_VERIFY_MAX_AGE", value_parser = las_server::duration::parse)]
    pub max_age: Option<std::time::Duration>,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print how the policy was read: the service, its attestation alternatives,
    /// platforms, tolerations, ignored advisories, and the keys not evaluated (with
    /// their lines). With --json it is the verdict's `policy` field.
    #[arg(long)]
    pub explain: bool,
    /// How long to wait for the LAS (with --las) and for the PCCS (with --pccs-url), e.g.
    /// 10s, 1m, 500ms (bare seconds work too).
    #[arg(long = "timeout", visible_alias = "timeout-secs", value_name = "DURATION",
          default_value = "10s", value_parser = las_server::duration::timeout)]
    pub timeout: Duration,
    #[command(flatten)]
    pub collateral: super::collateral::CollateralArgs,
}

/// Reads a token file: raw CBOR (starts with the COSE_Sign1 tag 0xd2) or base64 text.
pub fn read_token(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))?;
    anyhow::ensure!(
        meta.len() <= MAX_FILE,
        "{what} file {} is {} bytes; a {what} is far smaller",
        path.display(),
        meta.len()
    );
    let raw = std::fs::read(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))?;
    if raw.first() == Some(&0xd2) {
        return Ok(raw);
    }
    // Base64 text when it decodes as such; anything else is handed to the verifier as is,
    // which rejects it as malformed (a tampered quote is a rejection, not an I/O error).
    let decoded = std::str::from_utf8(&raw).ok().and_then(|t| {
        base64::engine::general_purpose::STANDARD
            .decode(t.trim())
            .ok()
    });
    Ok(decoded.unwrap_or(raw))
}

pub fn run(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let (Some(ear), Some(jwks)) = (&a.ear, &a.jwks) {
        return super::ear::run(ear, jwks, a.now, a.timeout);
    }
    let (Some(policy_path), Some(quote_path)) = (&a.policy, &a.quote) else {
        anyhow::bail!("--policy and --quote are required (or --ear with --jwks)");
    };
    std::fs::metadata(policy_path)
        .with_context(|| format!("cannot read policy {}", policy_path.display()))?;
    // From its file: `$$SCONE::NAME$$` platform entries resolve through the sessions it
    // imports, read beside it.
    let (policy, _) = Policy::from_file(policy_path)
        .with_context(|| format!("malformed policy {}", policy_path.display()))?;
    let quote = read_token(quote_path, "quote")?;
    let expected = a
        .expect_report_data
        .as_deref()
        .map(|s| super::quote::report_data("--expect-report-data", s))
        .transpose()?;
    let now = a.now.unwrap_or_else(las_platform::unix_now);

    let (evidence, nonce) = match (&a.las, &a.identity) {
        (Some(addr), _) => {
            let mut nonce = [0u8; 32];
            getrandom(&mut nonce)?;
            let las = LasClient::new(LasAddr::parse(addr)?, a.timeout);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let ev = rt
                .block_on(las.identity(&nonce))
                .context("cannot get identity evidence from the LAS")?;
            (Some(ev), Some(nonce.to_vec()))
        }
        (None, Some(path)) => {
            let ev = read_token(path, "identity evidence")?;
            let nonce = a
                .identity_nonce
                .as_deref()
                .map(|h| hex::decode(h.trim()).context("--identity-nonce is not hex"))
                .transpose()?;
            (Some(ev), nonce)
        }
        (None, None) => (None, None),
    };
    let req = VerifyRequest {
        service: a.service.as_deref(),
        expected_report_data: expected.as_ref(),
        las_evidence: evidence.as_deref().map(|token| LasEvidence {
            token,
            expected_nonce: nonce.as_deref(),
        }),
        now,
    };
    // DCAP collateral for `sgx-dcap` identity evidence.
    let collateral = a.collateral.load(
        evidence.as_deref().and_then(evidence_dcap_quote).as_deref(),
        now,
        a.timeout,
    )?;
    let opts = VerifyOptions {
        dcap_collateral: Some(&collateral),
        max_age: a.max_age.map(|d| d.as_secs()),
        verified_evidence: None,
    };
    // How the policy was read, printed before the verdict (and even when the verification
    // cannot run), so a SCONE user sees what their session means here.
    let explained = if a.explain {
        let svc = policy
            .service(a.service.as_deref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !a.json {
            match out!(
                "{}",
                las_verifier::policy::explain::explain_text(&policy, svc)
            ) {
                // A closed stdout: the verdict below still decides the exit code.
                Err(e) if !crate::out::is_stdout_closed(&e) => return Err(e),
                _ => {}
            }
        }
        Some(las_verifier::policy::explain::explain_json(&policy, svc))
    } else {
        None
    };
    let verdict = verify_quote_with(&policy, &quote, &req, &opts)?;
    let code = if verdict.accepted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    // Without report data bound to something fresh (a nonce, a new TLS key) and without a
    // maximum age, nothing tells this quote from one recorded earlier.
    let replay = (expected.is_none() && a.max_age.is_none()).then_some(REPLAY_NOTE);
    if let Some(n) = replay {
        note!("note: {n}");
    }
    let printed = if a.json {
        let mut j = to_json(&verdict);
        if let (Some(e), Some(obj)) = (explained, j.as_object_mut()) {
            obj.insert("policy".into(), e);
        }
        if let (Some(n), Some(notes)) = (replay, j.get_mut("notes").and_then(|v| v.as_array_mut()))
        {
            notes.push(n.into());
        }
        outln!("{j}")
    } else {
        print_text(&verdict)
    };
    match printed {
        Ok(()) => Ok(code),
        // The reader has gone (`| head -1`): the verdict still decides the exit code.
        Err(e) if crate::out::is_stdout_closed(&e) => Ok(code),
        Err(e) => Err(e),
    }
}

/// Printed (stderr, and in `--json` notes) when neither report data nor age is checked.
const REPLAY_NOTE: &str = "neither --expect-report-data nor --max-age was given: the quote's freshness was not checked, so this acceptance could be a replay of an old quote";

pub(crate) fn getrandom(buf: &mut [u8]) -> anyhow::Result<()> {
    let f = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    use std::io::Read;
    (&f).read_exact(buf).context("cannot read /dev/urandom")
}

fn print_text(v: &Verdict) -> anyhow::Result<()> {
    let who = v
        .claims
        .as_ref()
        .map(|c| format!(" from platform {} (mode {})", c.platform_id, c.mode))
        .unwrap_or_default();
    if v.accepted() {
        outln!("ACCEPTED: quote for service `{}`{who}", v.service)?;
    } else {
        outln!("REJECTED: quote for service `{}`{who}", v.service)?;
        for r in &v.rejections {
            outln!("  {}: {}", r.reason, r.detail)?;
        }
    }
    if let Some(c) = &v.claims {
        let b = &c.report_body;
        outln!(
            "  enclave: mrenclave={} mrsigner={} isvprodid={} isvsvn={} debug={}",
            hex::encode(b.mrenclave),
            hex::encode(b.mrsigner),
            b.isvprodid,
            b.isvsvn,
            b.attributes.debug()
        )?;
    }
    match &v.las_trust {
        Some(LasTrust::Pinned) => outln!("  LAS: key pinned in trusted_scone_qe_pubkeys")?,
        Some(LasTrust::Evidence {
            kind,
            las_mrenclave,
        }) => outln!(
            "  LAS: identity evidence ({kind}) verified, LAS mrenclave={}",
            hex::encode(las_mrenclave)
        )?,
        None => {}
    }
    match &v.las_platform {
        Some(p) => outln!(
            "  LAS platform: Intel QE ID {}{}{}{}",
            p.qe_id,
            if p.simulated { " (SIMULATED)" } else { "" },
            p.ppid
                .as_ref()
                .map(|x| format!(" PPID {x}"))
                .unwrap_or_default(),
            p.fmspc
                .as_ref()
                .map(|x| format!(" FMSPC {x}"))
                .unwrap_or_default()
        )?,
        None if v.las_trust.is_some() => {
            outln!("  LAS platform: QE ID unknown (no verified identity evidence carries one)")?
        }
        None => {}
    }
    for n in &v.notes {
        outln!("  note: {n}")?;
    }
    Ok(())
}

fn to_json(v: &Verdict) -> serde_json::Value {
    let claims = v.claims.as_ref().map(|c| {
        let b = &c.report_body;
        serde_json::json!({
            "platform_id": c.platform_id.to_string(),
            "mode": c.mode.as_str(),
            "las_version": c.las_version,
            "las_mrenclave": hex::encode(c.las_mrenclave),
            "issued_at": c.issued_at,
            "mrenclave": hex::encode(b.mrenclave),
            "mrsigner": hex::encode(b.mrsigner),
            "isvprodid": b.isvprodid,
            "isvsvn": b.isvsvn,
            "debug": b.attributes.debug(),
            "cet_attributes": b.cet_attributes,
            "report_data": hex::encode(b.report_data),
        })
    });
    serde_json::json!({
        "accepted": v.accepted(),
        "service": v.service,
        "rejections": v.rejections.iter().map(|r| serde_json::json!({
            "reason": r.reason.as_str(), "detail": r.detail
        })).collect::<Vec<_>>(),
        "notes": v.notes,
        "quote": claims,
        "las_trust": match &v.las_trust {
            Some(LasTrust::Pinned) => serde_json::json!("pinned"),
            Some(LasTrust::Evidence { kind, .. }) => serde_json::json!(format!("evidence:{kind}")),
            None => serde_json::Value::Null,
        },
        "las_platform": las_platform_json(v.las_platform.as_ref()),
    })
}

/// The platform of the LAS that issued the quote (QE ID, PPID, FMSPC), or null.
pub(crate) fn las_platform_json(p: Option<&las_verifier::LasPlatform>) -> serde_json::Value {
    match p {
        Some(p) => serde_json::json!({
            "qe_id": p.qe_id.to_string(),
            "simulated": p.simulated,
            "ppid": p.ppid,
            "fmspc": p.fmspc,
        }),
        None => serde_json::Value::Null,
    }
}

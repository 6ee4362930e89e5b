//! `las tcb-state`: what `scone las show-tcb-state` prints (FMSPC, PPID, Intel QE ID, CPU
//! SVN, PCE SVN), for a running LAS (`--las`) or a DCAP quote file (`--dcap-quote`); with
//! DCAP collateral also Intel's TCB status and advisories.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use las_client::{LasAddr, LasClient};
use las_core::api::{TcbState, TcbStateKind};
use las_core::evidence::{EvidenceKind, decode_and_verify_evidence};
use las_verifier::Policy;
use las_verifier::dcap::appraise;
use serde_json::{Value, json};

use super::verify::getrandom;

/// A DCAP quote and the REPORTDATA it must carry.
type QuoteToJudge = (Vec<u8>, [u8; 64]);

/// Largest DCAP quote file read.
const MAX_QUOTE_FILE: u64 = 64 * 1024;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["las", "dcap_quote"])))]
pub struct TcbStateArgs {
    /// The LAS to ask (`host` or `host:port`): its GET /v1/platform `tcb_state`.
    #[arg(long, value_name = "ADDR")]
    pub las: Option<String>,
    /// A DCAP quote file (raw bytes): the QE ID from its header and the PCK facts from its
    /// certification data. Without collateral its signatures are not checked.
    #[arg(long, value_name = "FILE")]
    pub dcap_quote: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Judge the collateral as of this time (seconds since the Unix epoch).
    #[arg(long, value_name = "UNIX_SECS")]
    pub now: Option<u64>,
    /// How long to wait for the LAS and the PCCS.
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = las_server::duration::timeout)]
    pub timeout: Duration,
    #[command(flatten)]
    pub collateral: super::collateral::CollateralArgs,
}

pub fn run(a: TcbStateArgs) -> anyhow::Result<ExitCode> {
    let now = a.now.unwrap_or_else(las_platform::unix_now);
    let with_collateral = a.collateral.given();
    // The state, and the DCAP quote (with the REPORTDATA it must carry) to judge.
    let (state, source, quote): (TcbState, &str, Option<QuoteToJudge>) =
        match (&a.las, &a.dcap_quote) {
            (Some(addr), _) => {
                let las = LasClient::new(LasAddr::parse(addr)?, a.timeout);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let info = rt
                    .block_on(las.platform())
                    .context("cannot ask the LAS for its platform")?;
                let quote = if with_collateral {
                    // A fresh quote of the LAS through its identity evidence, bound to
                    // our nonce: the TCB status is of this platform now.
                    let mut nonce = [0u8; 32];
                    getrandom(&mut nonce)?;
                    let ev = rt
                        .block_on(las.identity(&nonce))
                        .context("cannot get identity evidence from the LAS")?;
                    let e = decode_and_verify_evidence(&ev)
                        .context("the LAS's identity evidence does not verify")?;
                    anyhow::ensure!(e.nonce == nonce, "the LAS answered another nonce");
                    match e.kind {
                        EvidenceKind::SgxDcap { quote } => Some((quote, e.binding)),
                        EvidenceKind::Sim => None,
                    }
                } else {
                    None
                };
                (info.tcb_state, "las", quote)
            }
            (None, Some(path)) => {
                let meta = std::fs::metadata(path)
                    .with_context(|| format!("cannot read DCAP quote {}", path.display()))?;
                anyhow::ensure!(
                    meta.len() <= MAX_QUOTE_FILE,
                    "DCAP quote {} is {} bytes; a quote is far smaller",
                    path.display(),
                    meta.len()
                );
                let q = std::fs::read(path)
                    .with_context(|| format!("cannot read DCAP quote {}", path.display()))?;
                let facts = las_core::tcb::dcap_facts(&q)
                    .with_context(|| format!("DCAP quote {}", path.display()))?;
                let rd = quote_report_data(&q)?;
                (TcbState::from_dcap(&facts), "dcap-quote", Some((q, rd)))
            }
            (None, None) => anyhow::bail!("give --las ADDR or --dcap-quote FILE"),
        };

    let mut tcb = None;
    if with_collateral {
        tcb = Some(match &quote {
            None if state.state == TcbStateKind::Simulated => json!({
                "tcb_status": "simulated",
                "advisory_ids": [],
                "note": "a simulated platform: Intel's collateral does not apply",
            }),
            None => json!({"tcb_status": null, "note": "the LAS presented no DCAP quote"}),
            Some((q, rd)) => {
                let set = a.collateral.load(Some(q), now, a.timeout)?;
                // Only the chain and Intel's verdict are wanted: judge against an empty
                // policy and report, not enforce.
                let ap = appraise(&Policy::default(), q, rd, &set, now);
                match ap.report {
                    Some(r) => json!({
                        "tcb_status": r.tcb_status,
                        "advisory_ids": r.advisory_ids,
                        "verified": true,
                    }),
                    None => json!({
                        "tcb_status": null,
                        "verified": false,
                        "errors": ap.rejections.iter().map(|r| format!("{}: {}", r.reason, r.detail)).collect::<Vec<_>>(),
                    }),
                }
            }
        });
    }

    let mut j = serde_json::to_value(&state)?;
    if let Some(o) = j.as_object_mut() {
        o.insert("source".into(), json!(source));
        if let Some(Value::Object(t)) = &tcb {
            o.extend(t.clone());
        }
    }
    if a.json {
        outln!("{j}")?;
    } else {
        print_text(&state, tcb.as_ref())?;
    }
    if source == "dcap-quote" && !with_collateral {
        note!(
            "note: the quote's signatures were not checked (give --collateral or --pccs-url to check them)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// REPORTDATA of a DCAP quote (bytes 368..432: header 48 + report body offset 320).
fn quote_report_data(q: &[u8]) -> anyhow::Result<[u8; 64]> {
    q.get(48 + 320..48 + 384)
        .and_then(|b| b.try_into().ok())
        .context("the DCAP quote has no report body")
}

fn print_text(s: &TcbState, tcb: Option<&Value>) -> anyhow::Result<()> {
    let f = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    match s.state {
        TcbStateKind::Unknown => {
            outln!(
                "TCB state unknown: {}",
                s.reason.as_deref().unwrap_or("not reported by this LAS")
            )?;
        }
        k => {
            if k == TcbStateKind::Simulated {
                outln!("SIMULATED platform (NOT SECURE)")?;
            }
            outln!("Platform FMSPC: {}", f(&s.fmspc))?;
            outln!("PPID: {}", f(&s.ppid))?;
            outln!("Intel QE ID: {}", f(&s.qe_id))?;
            outln!("PCE ID: {}", f(&s.pce_id))?;
            outln!("Platform SVN:")?;
            outln!("  CPU SVN: {}", f(&s.cpusvn))?;
            outln!(
                "  PCE SVN: {}",
                s.pcesvn.map_or_else(|| "unknown".into(), |p| p.to_string())
            )?;
            if let Some(p) = &s.platform_instance_id {
                outln!("Platform instance ID: {p}")?;
            }
        }
    }
    if let Some(t) = tcb {
        match t.get("tcb_status").and_then(Value::as_str) {
            Some(st) => outln!("TCB status: {st}")?,
            None => outln!("TCB status: unknown")?,
        }
        if let Some(adv) = t.get("advisory_ids").and_then(Value::as_array) {
            let ids: Vec<&str> = adv.iter().filter_map(Value::as_str).collect();
            outln!(
                "Advisories: {}",
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            )?;
        }
        if let Some(errs) = t.get("errors").and_then(Value::as_array) {
            for e in errs.iter().filter_map(Value::as_str) {
                outln!("  {e}")?;
            }
        }
    }
    Ok(())
}

//! `las platform-ids`: the platform IDs of every LAS, for the `platforms:` of a policy.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use las_discovery::{
    ClientSettings, Collection, LasAddr, Options, PodSelection, Target, Verification,
};
use las_verifier::Tolerance;
use las_verifier::policy::{Hex32, TrustedLas};
use las_verifier::{PlatformEntry, Policy};

const EXIT_CODES: &str = "\
Exit codes:
  0  every LAS answered (and, with --verify, verified): the list is complete
  1  the list is incomplete: a pod is not running or not ready, a LAS did not answer or
     failed verification (each one named on stderr), or no LAS was found at all
  2  usage or configuration error, or the source cannot be read at all (kubeconfig, the
     API server refused the pod list, a --dns name does not resolve, unreadable policy)";

pub const ABOUT: &str = "\
Collect the platform ID (LAS public key) of every LAS, for the `platforms:` of a policy.

Source: Kubernetes by default (kubeconfig, or the in-cluster service account): the LAS pods of
release INSTANCE, labelled app.kubernetes.io/component=las,app.kubernetes.io/instance=INSTANCE
by the chart (for every release name and nameOverride), each asked
GET /v1/platform through the API server's pod proxy, falling back to the last `public key`
line of the pod's log. With --las/--dns: each LAS directly.

Prints `platforms: [ ID1, ID2]` (sorted, each once): the line the get_platform_ids bash
function printed. Pods that are not ready and LAS that do not answer are named on stderr.

Plain mode trusts the cluster (or the network) to report the keys truthfully. --verify
trusts neither: each LAS must sign identity evidence for a fresh random nonce, checked like
`las verify` does (trusted LAS measurement; simulation only with --allow-simulation), and
only the IDs that verify are printed.

  las platform-ids                                  # like get_platform_ids
  las platform-ids -o wide                          # node, pod, ID, source
  las platform-ids --las 10.0.0.5 --las 10.0.0.6    # without Kubernetes
  las platform-ids --dns las-headless.attest.svc    # every LAS behind a headless Service
  las platform-ids --verify --policy p.yaml \\
    | las policy set-platforms --policy p.yaml --service app";

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct PlatformIdsArgs {
    /// Namespace of the LAS pods (same variable as the bash function). Default: the
    /// namespace of the kubeconfig context (in a pod: its own namespace), else `default`.
    #[arg(short = 'n', long, env = "NAMESPACE", help_heading = "Kubernetes")]
    pub namespace: Option<String>,
    /// The LAS release name: selects the chart's LAS pods of that release, labelled
    /// app.kubernetes.io/component=las and app.kubernetes.io/instance=INSTANCE (same
    /// variable as the bash function).
    #[arg(
        long,
        env = "INSTANCE",
        default_value = "las",
        help_heading = "Kubernetes"
    )]
    pub instance: String,
    /// Label selector of the LAS pods, instead of the one --instance makes.
    #[arg(
        short = 'l',
        long,
        value_name = "SELECTOR",
        help_heading = "Kubernetes"
    )]
    pub selector: Option<String>,
    /// kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, else the in-cluster
    /// service account.
    #[arg(long, value_name = "FILE", help_heading = "Kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context. Default: the current context.
    #[arg(long, value_name = "NAME", help_heading = "Kubernetes")]
    pub context: Option<String>,
    /// The LAS port: in the pods (default: the container port named `las`, else 18766); with
    /// --las/--dns, for the addresses that name none (default 18766).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// Ask this LAS directly instead of Kubernetes: `host`, `host:port` or `[v6]:port`
    /// (port 18766 by default). Repeat for several.
    #[arg(long = "las", value_name = "ADDR", help_heading = "Direct",
          conflicts_with_all = ["namespace", "instance", "selector", "kubeconfig", "context"])]
    pub las: Vec<String>,
    /// Ask every address NAME resolves to (e.g. a headless Service), directly: `name` or
    /// `name:port`. Repeat for several.
    #[arg(long = "dns", value_name = "NAME", help_heading = "Direct",
          conflicts_with_all = ["namespace", "instance", "selector", "kubeconfig", "context"])]
    pub dns: Vec<String>,

    /// Trust neither the cluster nor the network: print only IDs whose LAS signed identity
    /// evidence for a fresh random nonce that verifies (same checks as `las verify`).
    #[arg(long, help_heading = "Verification")]
    pub verify: bool,
    /// Policy whose security.attestation (trusted_las, tolerate) decides which LAS builds
    /// are trusted.
    #[arg(
        long,
        value_name = "FILE",
        requires = "verify",
        help_heading = "Verification"
    )]
    pub policy: Option<PathBuf>,
    /// A trusted LAS measurement (MRENCLAVE, 64 hex), added to the policy's trusted_las.
    /// Repeat for several.
    #[arg(
        long,
        value_name = "HEX64",
        requires = "verify",
        help_heading = "Verification"
    )]
    pub trusted_las_mrenclave: Vec<String>,
    /// Accept simulation evidence (NOT SECURE: it proves key possession only, no hardware
    /// protection).
    #[arg(long, requires = "verify", help_heading = "Verification")]
    pub allow_simulation: bool,
    /// With --verify: DCAP collateral file(s) for LAS on SGX hardware, whose evidence
    /// carries a DCAP quote (JSON, as for `las verify --collateral`). Repeat for several.
    #[arg(
        long,
        value_name = "FILE",
        env = "LAS_DCAP_COLLATERAL",
        help_heading = "Verification"
    )]
    pub collateral: Vec<PathBuf>,

    /// Print Intel QE IDs (`platforms: [ INTEL_QE_ID:…, INTEL_QE_ID:…]`, SCONE 7's platform
    /// names, which survive LAS and microcode updates) instead of LAS keys. A LAS whose QE
    /// ID is unknown is named on stderr and makes the list incomplete (exit 1).
    #[arg(long)]
    pub qe_id: bool,
    /// Compare the running LAS with POLICY instead of printing IDs: per service with
    /// `platforms`, the LAS that match no entry (their nodes would be refused) and the
    /// entries that match no running LAS. Exit 1 when a LAS would be refused (or a LAS gave
    /// no ID), 0 when every LAS is admitted. Run it before and after an upgrade.
    #[arg(long, value_name = "POLICY")]
    pub check: Option<PathBuf>,

    /// Output: `line` = platforms: [ ID1, ID2]; `wide` = a table with node, pod, ID and
    /// source; `json` or `yaml` for scripts (the same object).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Line)]
    pub output: OutputFormat,
    /// How long to wait for each request (API server, LAS, pod log), e.g. 10s, 1m, 500ms
    /// (bare seconds work too).
    #[arg(long = "timeout", visible_alias = "timeout-secs", value_name = "DURATION",
          default_value = "10s", value_parser = las_server::duration::timeout)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// `platforms: [ ID1, ID2]`, ready to paste into a policy.
    Line,
    /// A table: node, pod (or LAS address), platform ID, source.
    Wide,
    /// One JSON object: platforms, complete, las, failures.
    Json,
    /// The JSON object as YAML.
    Yaml,
}

pub fn run(a: PlatformIdsArgs) -> anyhow::Result<ExitCode> {
    let verify = verification(&a)?;
    let verified = verify.is_some();
    let timeout = a.timeout;
    let opts = Options {
        timeout,
        verify,
        ..Options::default()
    };
    let direct = !a.las.is_empty() || !a.dns.is_empty();
    let mut addrs = Vec::new();
    for s in &a.las {
        addrs.push(with_default_port(LasAddr::parse(s)?, s, a.port));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let collection = rt.block_on(async {
        if direct {
            for name in &a.dns {
                let port = a.port.filter(|_| !names_port(name));
                addrs.extend(
                    las_discovery::resolve_all(name)
                        .await?
                        .into_iter()
                        .map(|x| with_default_port(x, name, port)),
                );
            }
            Ok::<_, anyhow::Error>(las_discovery::collect_direct(&addrs, &opts).await)
        } else {
            let client = las_discovery::k8s::client(&ClientSettings {
                kubeconfig: a.kubeconfig.as_deref(),
                context: a.context.as_deref(),
                timeout,
            })
            .await?;
            // kubectl's order: the flag (or NAMESPACE), then the kubeconfig context's
            // namespace (in a pod: the service account's), then `default`.
            let namespace = a
                .namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned());
            let sel = PodSelection {
                namespace,
                selector: a
                    .selector
                    .clone()
                    .unwrap_or_else(|| las_discovery::instance_selector(&a.instance)),
                port: a.port,
            };
            let c = las_discovery::collect_pods(&client, &sel, &opts).await?;
            if c.found.is_empty() && c.failures.is_empty() {
                note!(
                    "las platform-ids: no pods in namespace `{}` match `{}` (set --namespace/NAMESPACE and --instance/INSTANCE)",
                    sel.namespace, sel.selector
                );
            }
            Ok(c)
        }
    })?;

    if let Some(p) = &a.check {
        return check(&collection, p, a.output);
    }
    let mut complete = collection.complete();
    if a.qe_id {
        for f in collection.without_qe_id() {
            note!(
                "MISSING: {}: platform {} reports no Intel QE ID (TCB state unknown: its start-up DCAP quote failed, or an older LAS)",
                f.target,
                f.platform_id
            );
            complete = false;
        }
    }
    match a.output {
        OutputFormat::Line if a.qe_id => {
            let entries: Vec<PlatformEntry> = collection
                .qe_ids()
                .into_iter()
                .map(PlatformEntry::QeId)
                .collect();
            outln!("{}", las_discovery::platforms_line(&entries))?
        }
        OutputFormat::Line => outln!("{}", las_discovery::platforms_line(&collection.ids()))?,
        OutputFormat::Wide => out!("{}", table(&collection, direct))?,
        OutputFormat::Json => outln!("{}", to_json(&collection, verified))?,
        OutputFormat::Yaml => out!(
            "{}",
            serde_norway::to_string(&to_json(&collection, verified))
                .context("cannot write YAML")?
        )?,
    }
    report(&collection, verified);
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--check POLICY`: which running LAS each service with `platforms` would refuse, and
/// which entries match no running LAS. A QE ID counts as the same source tells it (verified
/// with --verify); a simulated QE ID only where the policy tolerates simulation.
fn check(c: &Collection, path: &std::path::Path, output: OutputFormat) -> anyhow::Result<ExitCode> {
    std::fs::metadata(path).with_context(|| format!("cannot read policy {}", path.display()))?;
    let (policy, _) =
        Policy::from_file(path).with_context(|| format!("malformed policy {}", path.display()))?;
    let sim_ok = policy.tolerates(Tolerance::Simulation);
    let qe_of =
        |f: &las_discovery::Found| f.qe_id.filter(|q| !q.simulated || sim_ok).map(|q| q.qe_id);
    let mut refused_any = !c.failures.is_empty() || c.found.is_empty();
    let mut services = Vec::new();
    let mut text = String::new();
    for svc in policy.services() {
        let Some(entries) = &svc.platforms else {
            text.push_str(&format!(
                "service {}: no `platforms`: every platform is admitted\n",
                svc.name
            ));
            services.push(serde_json::json!({"service": svc.name, "restricted": false, "refused": [], "unused_entries": []}));
            continue;
        };
        let refused: Vec<&las_discovery::Found> = c
            .found
            .iter()
            .filter(|f| !entries.iter().any(|e| e.matches(&f.platform_id, qe_of(f))))
            .collect();
        let unused: Vec<String> = entries
            .iter()
            .filter(|e| !c.found.iter().any(|f| e.matches(&f.platform_id, qe_of(f))))
            .map(ToString::to_string)
            .collect();
        refused_any |= !refused.is_empty();
        text.push_str(&format!(
            "service {}: {} of {} LAS admitted\n",
            svc.name,
            c.found.len() - refused.len(),
            c.found.len()
        ));
        for f in &refused {
            text.push_str(&format!(
                "  REFUSED: {}: platform {} QE ID {}\n",
                f.target,
                f.platform_id,
                f.qe_id.map_or_else(
                    || "unknown".to_owned(),
                    |q| format!(
                        "INTEL_QE_ID:{}{}",
                        q.qe_id,
                        if q.simulated { " (simulated)" } else { "" }
                    )
                )
            ));
        }
        for e in &unused {
            text.push_str(&format!("  UNUSED ENTRY: {e} matches no running LAS\n"));
        }
        services.push(serde_json::json!({
            "service": svc.name,
            "restricted": true,
            "refused": refused.iter().map(|f| {
                let mut m = target_json(&f.target);
                m.insert("platform_id".into(), f.platform_id.to_string().into());
                m.insert("qe_id".into(), f.qe_id.map(|q| q.qe_id.to_string()).into());
                serde_json::Value::Object(m)
            }).collect::<Vec<_>>(),
            "unused_entries": unused,
        }));
    }
    match output {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::json!({"admitted": !refused_any, "services": services})
        )?,
        _ => out!("{text}")?,
    }
    report(c, false);
    Ok(if refused_any {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether an address names its port: `host:port` or `[v6]:port` (a bare IPv6 address has
/// colons but no port).
fn names_port(s: &str) -> bool {
    let t = s.trim();
    if let Some(rest) = t.strip_prefix('[') {
        return rest.contains("]:");
    }
    t.parse::<std::net::Ipv6Addr>().is_err() && t.contains(':')
}

/// `--port` as the port of the addresses that name none.
fn with_default_port(mut addr: LasAddr, given: &str, port: Option<u16>) -> LasAddr {
    if let Some(p) = port
        && !names_port(given)
    {
        addr.port = p;
    }
    addr
}

/// The policy of verified mode: --policy, plus --trusted-las-mrenclave and
/// --allow-simulation.
fn verification(a: &PlatformIdsArgs) -> anyhow::Result<Option<Verification>> {
    if !a.verify {
        return Ok(None);
    }
    let policy = match &a.policy {
        Some(p) => {
            std::fs::metadata(p).with_context(|| format!("cannot read policy {}", p.display()))?;
            Policy::from_file(p)
                .with_context(|| format!("malformed policy {}", p.display()))?
                .0
        }
        None => Policy::default(),
    };
    let mut trusted = Vec::with_capacity(a.trusted_las_mrenclave.len());
    for h in &a.trusted_las_mrenclave {
        let m = las_core::hexfmt::decode_fixed::<32>("--trusted-las-mrenclave", h)
            .with_context(|| format!("--trusted-las-mrenclave `{h}` is not 64 hex characters"))?;
        trusted.push(TrustedLas {
            mrenclave: vec![Hex32(m)],
            mrsigner: None,
            isvprodid: None,
            isvsvn_min: None,
        });
    }
    let policy = policy
        .with_attestation(|att| {
            att.trusted_las.extend(trusted);
            if a.allow_simulation && !att.tolerate.contains(&Tolerance::Simulation) {
                att.tolerate.push(Tolerance::Simulation);
            }
        })
        .context("the policy with --trusted-las-mrenclave and --allow-simulation")?;
    let dcap_collateral = if a.collateral.is_empty() {
        None
    } else {
        Some(super::collateral::read_files(&a.collateral)?)
    };
    Ok(Some(Verification {
        policy,
        clock: las_platform::unix_now,
        dcap_collateral,
    }))
}

fn target_columns(t: &Target, direct: bool) -> Vec<String> {
    match t {
        Target::Pod { name, node, .. } => {
            vec![node.clone().unwrap_or_else(|| "-".into()), name.clone()]
        }
        Target::Las { addr } if direct => vec![addr.to_string()],
        Target::Las { addr } => vec!["-".into(), addr.to_string()],
    }
}

/// `--output wide`: NODE POD PLATFORM-ID SOURCE (direct mode: LAS PLATFORM-ID SOURCE).
fn table(c: &Collection, direct: bool) -> String {
    let mut rows: Vec<Vec<String>> = vec![if direct {
        vec!["LAS".into(), "PLATFORM-ID".into(), "SOURCE".into()]
    } else {
        vec![
            "NODE".into(),
            "POD".into(),
            "PLATFORM-ID".into(),
            "SOURCE".into(),
        ]
    }];
    for f in &c.found {
        let mut r = target_columns(&f.target, direct);
        r.push(f.platform_id.to_string());
        r.push(f.source.as_str().into());
        rows.push(r);
    }
    let cols = rows.first().map(Vec::len).unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn target_json(t: &Target) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    match t {
        Target::Pod {
            namespace,
            name,
            node,
        } => {
            m.insert("namespace".into(), namespace.clone().into());
            m.insert("pod".into(), name.clone().into());
            m.insert("node".into(), node.clone().into());
        }
        Target::Las { addr } => {
            m.insert("address".into(), addr.to_string().into());
        }
    }
    m
}

fn to_json(c: &Collection, verified: bool) -> serde_json::Value {
    let las: Vec<serde_json::Value> = c
        .found
        .iter()
        .map(|f| {
            let mut m = target_json(&f.target);
            m.insert("platform_id".into(), f.platform_id.to_string().into());
            m.insert("qe_id".into(), f.qe_id.map(|q| q.qe_id.to_string()).into());
            m.insert("source".into(), f.source.as_str().into());
            m.insert("notes".into(), f.notes.clone().into());
            m.into()
        })
        .collect();
    let failures: Vec<serde_json::Value> = c
        .failures
        .iter()
        .map(|f| {
            let mut m = target_json(&f.target);
            m.insert(
                "platform_id".into(),
                f.platform_id.map(|p| p.to_string()).into(),
            );
            m.insert("reason".into(), f.kind.as_str().into());
            m.insert("detail".into(), f.detail.clone().into());
            m.into()
        })
        .collect();
    let ids: Vec<String> = c.ids().iter().map(ToString::to_string).collect();
    serde_json::json!({
        "platforms": ids,
        "complete": c.complete(),
        "verified": verified,
        "las": las,
        "failures": failures,
    })
}

/// Failures, notes and a summary on stderr.
fn report(c: &Collection, verified: bool) {
    let mut notes = BTreeSet::new();
    for f in &c.found {
        for n in &f.notes {
            notes.insert(format!("note: {}: {n}", f.target));
        }
    }
    for n in notes {
        note!("{n}");
    }
    let label = if verified { "NOT VERIFIED" } else { "MISSING" };
    for f in &c.failures {
        let claim = f
            .platform_id
            .map(|p| format!(" platform ID {p}"))
            .unwrap_or_default();
        note!(
            "{label}: {}{claim}: {}: {}",
            f.target,
            f.kind.as_str(),
            f.detail
        );
    }
    let total = c.found.len() + c.failures.len();
    if !c.failures.is_empty() {
        note!(
            "las platform-ids: the list is INCOMPLETE: {} of {total} LAS {}",
            c.found.len(),
            if verified { "verified" } else { "answered" }
        );
    } else if verified && total > 0 {
        note!("las platform-ids: all {total} LAS verified");
    }
}

//! How a policy was read (`las verify --explain`): the service, its alternatives, its
//! platforms, the tolerations, the advisories ignored and the keys not evaluated, so a
//! SCONE user can check that a session means here what it meant in SCONE.

use serde_json::{Value, json};

use super::{AttestationMode, Policy, Service};

fn hex(h: &super::Hex32) -> String {
    hex::encode(h.0)
}

fn entry(p: &super::PlatformEntry) -> String {
    match p {
        super::PlatformEntry::LasKey(k) => hex::encode(k.0),
        super::PlatformEntry::QeId(q) => q.entry(),
    }
}

fn alternatives(s: &Service) -> Value {
    let Some(alts) = &s.attestation else {
        return Value::Null;
    };
    alts.0
        .iter()
        .map(|a| {
            json!({
                "from": if a.legacy_mrenclaves { "mrenclaves (deprecated form)" } else { "attestation" },
                "mrenclave": a.mrenclave.iter().map(hex).collect::<Vec<_>>(),
                "signer": a.signer.as_ref().map(|g| json!({
                    "mrsigner": hex(&g.mrsigner),
                    "isvprodid": g.isvprodid,
                    "isvsvn": g.isvsvn,
                    "isvsvn_min": g.isvsvn_min,
                    "isvsvn_max": g.isvsvn_max,
                })),
            })
        })
        .collect()
}

/// The reading of `policy` for `service`, as JSON.
pub fn explain_json(policy: &Policy, service: &Service) -> Value {
    let a = &policy.attestation;
    json!({
        "version": policy.version,
        "mode": match a.mode { AttestationMode::Hardware => "hardware", AttestationMode::None => "none" },
        "service": service.name,
        "alternatives": alternatives(service),
        "platforms": service.platforms.as_ref().map(|p| p.iter().map(entry).collect::<Vec<_>>()),
        "tolerate": a.tolerate.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "ignore_advisories": if a.ignore_all_advisories { json!("*") } else { json!(a.ignore_advisories) },
        "trusted_scone_qe_pubkeys": a.trusted_scone_qe_pubkeys.iter().map(|k| hex::encode(k.0)).collect::<Vec<_>>(),
        "trusted_las": a.trusted_las.iter().map(|t| json!({
            "mrenclave": t.mrenclave.iter().map(hex).collect::<Vec<_>>(),
            "mrsigner": t.mrsigner.as_ref().map(hex),
            "isvprodid": t.isvprodid,
            "isvsvn_min": t.isvsvn_min,
        })).collect::<Vec<_>>(),
        "ignored_keys": policy.ignored.iter().map(|k| json!({
            "path": k.path, "line": k.line, "reason": k.reason,
        })).collect::<Vec<_>>(),
    })
}

/// The reading of `policy` for `service`, as text lines.
pub fn explain_text(policy: &Policy, service: &Service) -> String {
    let a = &policy.attestation;
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line(format!(
        "policy read as session language {}",
        policy
            .version
            .as_deref()
            .unwrap_or("0.3 (no `version` key)")
    ));
    line(format!("service: {}", service.name));
    match &service.attestation {
        None => line("  attestation: none (every quote is rejected: no-attestation-policy)".into()),
        Some(alts) => {
            line(format!(
                "  attestation: {} alternative(s), one must match completely",
                alts.0.len()
            ));
            for (i, alt) in alts.0.iter().enumerate() {
                let mut parts = Vec::new();
                if !alt.mrenclave.is_empty() {
                    let m: Vec<String> = alt.mrenclave.iter().map(hex).collect();
                    parts.push(format!("mrenclave in [{}]", m.join(", ")));
                }
                if let Some(g) = &alt.signer {
                    let mut s = format!("mrsigner {}", hex(&g.mrsigner));
                    if let Some(p) = g.isvprodid {
                        s.push_str(&format!(", isvprodid {p}"));
                    }
                    if let Some(v) = g.isvsvn {
                        s.push_str(&format!(", isvsvn = {v}"));
                    }
                    if let Some(v) = g.isvsvn_min {
                        s.push_str(&format!(", isvsvn >= {v}"));
                    }
                    if let Some(v) = g.isvsvn_max {
                        s.push_str(&format!(", isvsvn <= {v}"));
                    }
                    parts.push(s);
                }
                let from = if alt.legacy_mrenclaves {
                    " (from the deprecated `mrenclaves`)"
                } else {
                    ""
                };
                line(format!("    {}. {}{from}", i + 1, parts.join(" and ")));
            }
        }
    }
    match &service.platforms {
        None => line("  platforms: any (no `platforms` key)".into()),
        Some(p) => {
            let p: Vec<String> = p.iter().map(entry).collect();
            line(format!("  platforms: {}", p.join(", ")));
        }
    }
    let tol: Vec<&str> = a.tolerate.iter().map(|t| t.as_str()).collect();
    line(format!(
        "tolerate: {}",
        if tol.is_empty() {
            "nothing".to_owned()
        } else {
            tol.join(", ")
        }
    ));
    line(format!(
        "ignore_advisories: {}",
        if a.ignore_all_advisories {
            "all (\"*\", with debug-mode tolerated)".to_owned()
        } else if a.ignore_advisories.is_empty() {
            "none".to_owned()
        } else {
            a.ignore_advisories.join(", ")
        }
    ));
    line(format!(
        "LAS trust: {} pinned key(s), {} trusted_las entr{}",
        a.trusted_scone_qe_pubkeys.len(),
        a.trusted_las.len(),
        if a.trusted_las.len() == 1 { "y" } else { "ies" }
    ));
    if policy.ignored.is_empty() {
        line("keys not evaluated: none".into());
    } else {
        line("keys not evaluated (known SCONE keys; docs/policy.md says why):".into());
        for k in &policy.ignored {
            let at = k.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            line(format!("  {at}{} ({})", k.path, k.reason));
        }
    }
    o
}

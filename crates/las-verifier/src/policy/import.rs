//! Shared platform lists, SCONE's way: a `platforms` entry `$$SCONE::NAME$$` is the value
//! of the session's secret NAME, which must be imported from another session:
//!
//! ```text
//!  policy.yaml                                   platform_policy.yaml (beside it)
//!  name: app_session                             name: platform_policy
//!  secrets:                                      secrets:
//!    - name: platform_2                            - name: authorized_platform
//!      import:                          ─────►       kind: ascii
//!        session: platform_policy                    value: "INTEL_QE_ID:85ff…"
//!        secret: authorized_platform                 export:
//!  services:                                           session: app_session
//!    - platforms: [$$SCONE::platform_2$$]
//! ```
//!
//! The exporting session must define the secret with an explicit ASCII value (`kind` absent
//! or `ascii`) that is one platform entry, or itself a reference to a secret it imports
//! (followed, with cycles refused), and must export it to the importing session
//! (`export: {session: NAME}`, a list of them, or `{namespace: NS}` for sessions `NS/…`), as
//! CAS requires. Every failure names the chain.

use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::{MAX_POLICY_SIZE, PlatformEntry, flow_work};

/// Longest import chain followed.
const MAX_DEPTH: usize = 8;

/// `Some(NAME)` when `s` is exactly `$$SCONE::NAME$$` with a plain NAME.
pub(super) fn reference(s: &str) -> Option<&str> {
    let name = s.strip_prefix(super::SCONE_REF)?.strip_suffix("$$")?;
    plain_name(name).then_some(name)
}

fn plain_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Reads at most [`MAX_POLICY_SIZE`] bytes of a file.
pub(super) fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    f.take(MAX_POLICY_SIZE as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_POLICY_SIZE {
        return Err(std::io::Error::other(format!(
            "more than the {MAX_POLICY_SIZE} bytes allowed"
        )));
    }
    Ok(bytes)
}

/// Resolves references of one policy file.
pub(super) struct Resolver<'a> {
    dir: &'a Path,
    text: &'a str,
    files: &'a mut Vec<(PathBuf, Vec<u8>)>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(
        dir: &'a Path,
        text: &'a str,
        files: &'a mut Vec<(PathBuf, Vec<u8>)>,
    ) -> Self {
        Self { dir, text, files }
    }

    /// The platform entry `$$SCONE::name$$` stands for, or why it has none (the chain).
    pub(super) fn resolve(&mut self, name: &str) -> Result<PlatformEntry, String> {
        let doc: Value = serde_norway::from_str(self.text).map_err(|e| e.to_string())?;
        let mut chain = Vec::new();
        self.follow(&doc, "the policy", name, &mut chain)
            .map_err(|e| format!("`$$SCONE::{name}$$`: {e}"))
    }

    fn follow(
        &mut self,
        doc: &Value,
        here: &str,
        name: &str,
        chain: &mut Vec<String>,
    ) -> Result<PlatformEntry, String> {
        let secret = find_secret(doc, name)
            .ok_or_else(|| format!("{here} has no secret `{name}` in `secrets`"))?;
        let import = secret.get("import").ok_or_else(|| {
            format!("{here}'s secret `{name}` is not imported (`import: {{session: S, secret: X}}`); only imported secrets name platforms here")
        })?;
        let session = import
            .get("session")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{here}'s secret `{name}`: `import` has no `session`"))?;
        let x = import
            .get("secret")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{here}'s secret `{name}`: `import` has no `secret`"))?;
        if !plain_name(session) {
            return Err(format!(
                "{here}'s secret `{name}` imports from session `{session}`: only a plain session name (letters, digits, `_`, `-`, `.`) is read, as `<session>.yaml` beside the policy"
            ));
        }
        let link = format!("{session}.yaml secret `{x}`");
        if chain.contains(&link) {
            chain.push(link);
            return Err(format!("an import cycle: {}", chain.join(" -> ")));
        }
        chain.push(link.clone());
        if chain.len() > MAX_DEPTH {
            return Err(format!(
                "the import chain is longer than {MAX_DEPTH}: {}",
                chain.join(" -> ")
            ));
        }
        let path = self.dir.join(format!("{session}.yaml"));
        let bytes = read_limited(&path)
            .map_err(|e| format!("-> {link}: cannot read {}: {e}", path.display()))?;
        self.files.push((path.clone(), bytes.clone()));
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| format!("-> {link}: {} is not UTF-8", path.display()))?;
        if flow_work(&bytes) > super::MAX_FLOW_WORK {
            return Err(format!(
                "-> {link}: {} nests flow collections too deeply",
                path.display()
            ));
        }
        let exporting: Value = serde_norway::from_str(text)
            .map_err(|e| format!("-> {link}: {} is not valid YAML: {e}", path.display()))?;
        let s = find_secret(&exporting, x)
            .ok_or_else(|| format!("-> {link}: session `{session}` has no secret `{x}`"))?;
        let importer = doc.get("name").and_then(Value::as_str);
        if !exported_to(s, importer) {
            return Err(format!(
                "-> {link}: the secret is not exported to this session (`export: {{session: {}}}` in {})",
                importer.unwrap_or("<the importing session's `name`, which it lacks>"),
                path.display()
            ));
        }
        if let Some(k) = s.get("kind")
            && k.as_str() != Some("ascii")
        {
            return Err(format!(
                "-> {link}: `kind` is {}, not `ascii`: a platform entry is an explicit ASCII value",
                serde_norway::to_string(k).unwrap_or_default().trim()
            ));
        }
        let value = s.get("value").and_then(Value::as_str).ok_or_else(|| {
            format!("-> {link}: no explicit string `value` (a generated or imported-without-value secret names no platform)")
        })?;
        if let Some(next) = reference(value) {
            let r = self.follow(&exporting, &format!("session `{session}`"), next, chain);
            return r.map_err(|e| format!("-> {link} -> {e}"));
        }
        PlatformEntry::parse(value)
            .map_err(|e| format!("-> {link}: its value is not a platform entry: {e}"))
    }
}

fn find_secret<'v>(doc: &'v Value, name: &str) -> Option<&'v Value> {
    doc.get("secrets")?
        .as_sequence()?
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
}

/// Whether the secret's `export` names the importing session (by `session`, or by a
/// `namespace` its name lies in).
fn exported_to(secret: &Value, importer: Option<&str>) -> bool {
    let Some(importer) = importer else {
        return false;
    };
    let one = |e: &Value| {
        e.get("session").and_then(Value::as_str) == Some(importer)
            || e.get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|ns| {
                    importer
                        .strip_prefix(ns)
                        .is_some_and(|rest| rest.starts_with('/'))
                })
    };
    match secret.get("export") {
        Some(Value::Sequence(list)) => list.iter().any(one),
        Some(e) => one(e),
        None => false,
    }
}

//! Writing platform IDs into a policy file's `services[NAME].platforms` in place.
//!
//! The file is edited as text, so comments, key order, quoting and every other field stay
//! byte for byte as they were: only the lines of the one `platforms:` value are replaced
//! (or one line is added to the service). The result is then parsed twice to prove the
//! edit: as a policy whose service now lists exactly the new IDs, and as a YAML document
//! equal to the old one apart from that list.
//!
//! Supported: `services:` as a block sequence at the top level (the form of session files);
//! a flow-style `services: [...]` or `- {name: ...}` is refused with a message.

// It reads untrusted policy text: no arithmetic that can overflow (as dcap-qvl's parsers).
#![deny(clippy::arithmetic_side_effects)]

use serde_norway::Value;

use super::{MAX_FLOW_WORK, MAX_POLICY_SIZE, PlatformEntry, Policy, flow_work};

/// The edit was refused; nothing should be written. The message says why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyEditError {
    /// The policy text cannot be edited this way, or the edit would not read back as
    /// intended. The enum's one catch-all: a description for the operator (the editor
    /// works on text and has no source error to carry).
    #[error("{0}")]
    Refused(String),
}

/// The outcome of [`set_platforms`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformsEdit {
    /// The new file text.
    pub text: String,
    /// The service's entries before (`None`: it had no `platforms:`).
    pub before: Option<Vec<PlatformEntry>>,
}

fn err(m: impl Into<String>) -> PolicyEditError {
    PolicyEditError::Refused(m.into())
}

fn indent(line: &str) -> usize {
    line.len()
        .saturating_sub(line.trim_start_matches(' ').len())
}

fn body(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r'])
}

fn blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// `key: rest` at the start of `s`: the key (unquoted) and what follows the colon.
fn key_value(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start_matches(' ');
    let (key, rest) = if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"')?;
        (q.get(..end)?.to_owned(), q.get(end.saturating_add(1)..)?)
    } else if let Some(q) = s.strip_prefix('\'') {
        let end = q.find('\'')?;
        (q.get(..end)?.to_owned(), q.get(end.saturating_add(1)..)?)
    } else {
        let end = s.find(':')?;
        (s.get(..end)?.trim_end().to_owned(), s.get(end..)?)
    };
    let rest = rest.trim_start_matches(' ').strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with([' ', '\r', '\n'])) {
        return None;
    }
    if key.is_empty() || key.starts_with(['-', '#', '{', '[']) {
        return None;
    }
    Some((key, rest))
}

/// A plain or quoted scalar without its trailing comment.
fn scalar(v: &str) -> String {
    let v = v.trim();
    if let Some(q) = v.strip_prefix('"') {
        return q.split('"').next().unwrap_or_default().to_owned();
    }
    if let Some(q) = v.strip_prefix('\'') {
        return q.split('\'').next().unwrap_or_default().to_owned();
    }
    match v.find(" #") {
        Some(i) => v.get(..i).unwrap_or(v).trim().to_owned(),
        None => v.to_owned(),
    }
}

/// How an entry is written into the list: plain, unless YAML could read it as a number;
/// a QE-ID entry is quoted (a `:` inside a flow list is read differently by YAML readers).
fn yaml_id(id: &PlatformEntry) -> String {
    let s = id.to_string();
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'E') || s.contains(':') {
        format!("\"{s}\"")
    } else {
        s
    }
}

fn flow_list(ids: &[PlatformEntry]) -> String {
    let v: Vec<String> = ids.iter().map(yaml_id).collect();
    format!("[{}]", v.join(", "))
}

/// One key line of a service item.
struct KeyLine {
    line: usize,
    /// Byte offset of the key in the line.
    col: usize,
    key: String,
}

/// Sets `services[service].platforms` to `ids` (LAS keys and QE IDs, sorted, each once by
/// the caller).
pub fn set_platforms(
    text: &str,
    service: &str,
    ids: &[PlatformEntry],
) -> Result<PlatformsEdit, PolicyEditError> {
    // The same bounds as `Policy::from_yaml`: the text is parsed here before the policy
    // reader sees it, and libyaml's time on nested flow collections is superquadratic.
    if text.len() > MAX_POLICY_SIZE {
        return Err(err(format!(
            "the policy is {} bytes, more than the {MAX_POLICY_SIZE} allowed",
            text.len()
        )));
    }
    if flow_work(text.as_bytes()) > MAX_FLOW_WORK {
        return Err(err(
            "the policy nests or repeats flow collections (`[`, `{`) more than can be parsed in bounded time; write large lists in block style",
        ));
    }
    let old_doc: Value = serde_norway::from_str(text)
        .map_err(|e| err(format!("the policy is not valid YAML: {e}")))?;
    let before = current_platforms(&old_doc, service);

    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };

    // The top-level `services:` block.
    let (svc_line, rest) = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| indent(l) == 0)
        .find_map(|(i, l)| match key_value(body(l)) {
            Some((k, rest)) if k == "services" => Some((i, rest.to_owned())),
            _ => None,
        })
        .ok_or_else(|| err("the policy has no top-level `services:`"))?;
    let after = rest.trim();
    if !(after.is_empty() || after.starts_with('#')) {
        return Err(err(
            "`services:` is written in flow style (`services: [...]`); write it as a block list (`- name: ...`) to edit it with this command, or edit it by hand",
        ));
    }
    let mut block_end = lines.len();
    for (i, l) in lines.iter().enumerate().skip(svc_line.saturating_add(1)) {
        if !blank_or_comment(l) && indent(l) == 0 && !l.starts_with('-') {
            block_end = i;
            break;
        }
    }
    let first = (svc_line.saturating_add(1)..block_end)
        .find(|&i| lines.get(i).is_some_and(|l| !blank_or_comment(l)))
        .ok_or_else(|| err("`services:` is empty"))?;
    let seq_indent = lines.get(first).map(|l| indent(l)).unwrap_or(0);
    let is_item = |l: &str| {
        indent(l) == seq_indent && {
            let t = body(l).get(seq_indent..).unwrap_or("");
            t == "-" || t.starts_with("- ")
        }
    };
    if !lines.get(first).is_some_and(|l| is_item(l)) {
        return Err(err("`services:` is not a list of services"));
    }
    let starts: Vec<usize> = (first..block_end)
        .filter(|&i| lines.get(i).is_some_and(|l| is_item(l)))
        .collect();

    let mut names = Vec::new();
    let mut chosen = None;
    for (n, &start) in starts.iter().enumerate() {
        let end = starts
            .get(n.saturating_add(1))
            .copied()
            .unwrap_or(block_end);
        let keys = item_keys(&lines, start, end, seq_indent)?;
        let name = keys.iter().find(|k| k.key == "name").and_then(|k| {
            let l = lines.get(k.line)?;
            let (_, v) = key_value(body(l).get(k.col..)?)?;
            Some(scalar(v))
        });
        if let Some(nm) = name {
            if nm == service {
                chosen = Some((start, end, keys));
                break;
            }
            names.push(nm);
        }
    }
    let (start, end, keys) = chosen.ok_or_else(|| {
        err(format!(
            "no service `{service}` in the policy (services: {})",
            names.join(", ")
        ))
    })?;
    let content_col = keys
        .first()
        .map(|k| k.col)
        .unwrap_or(seq_indent.saturating_add(2));

    match keys.iter().find(|k| k.key == "platforms") {
        Some(k) => {
            let line = lines.get(k.line).cloned().unwrap_or_default();
            let prefix = line.get(..k.col).unwrap_or("").to_owned();
            let (_, value) = key_value(body(&line).get(k.col..).unwrap_or(""))
                .ok_or_else(|| err("cannot read the `platforms:` line"))?;
            let value = value.trim();
            let comment = trailing_comment(value);
            let block_seq = value.is_empty() || value.starts_with('#');
            // Continuation lines of the old value.
            let mut last = k.line;
            if value.starts_with('[') {
                let mut depth = brackets(value);
                while depth > 0 {
                    last = last.saturating_add(1);
                    let l = lines
                        .get(last)
                        .filter(|_| last < end)
                        .ok_or_else(|| err("the `platforms: [` list is not closed"))?;
                    if !blank_or_comment(l) {
                        depth = depth.saturating_add(brackets(l));
                    }
                }
            }
            for i in last.saturating_add(1)..end {
                if value.starts_with('[') {
                    break;
                }
                let Some(l) = lines.get(i) else { break };
                if blank_or_comment(l) {
                    continue;
                }
                let ind = indent(l);
                let dash = body(l)
                    .get(ind..)
                    .is_some_and(|t| t == "-" || t.starts_with("- "));
                if ind > content_col || (block_seq && ind == content_col && dash) {
                    last = i;
                } else {
                    break;
                }
            }
            let mut new_line = format!("{prefix}platforms: {}", flow_list(ids));
            if let Some(c) = comment {
                new_line.push(' ');
                new_line.push_str(&c);
            }
            new_line.push_str(
                if line.ends_with('\n') || last.saturating_add(1) < lines.len() {
                    eol
                } else {
                    ""
                },
            );
            lines.splice(k.line..=last, [new_line]);
        }
        None => {
            let last_content = (start..end)
                .rev()
                .find(|&i| lines.get(i).is_some_and(|l| !blank_or_comment(l)))
                .unwrap_or(start);
            if let Some(l) = lines.get_mut(last_content)
                && !l.ends_with('\n')
            {
                l.push_str(eol);
            }
            let new_line = format!(
                "{}platforms: {}{eol}",
                " ".repeat(content_col),
                flow_list(ids)
            );
            lines.insert(last_content.saturating_add(1), new_line);
        }
    }
    let new_text = lines.concat();
    check(&old_doc, &new_text, service, ids)?;
    Ok(PlatformsEdit {
        text: new_text,
        before,
    })
}

/// Open minus closed brackets of a flow list line (IDs contain no brackets).
fn brackets(line: &str) -> i64 {
    let code = line.split(" #").next().unwrap_or(line);
    (code.matches('[').count() as i64).saturating_sub(code.matches(']').count() as i64)
}

/// The comment after a one-line value (`[A, B] # prod`), kept in the new line.
fn trailing_comment(value: &str) -> Option<String> {
    if value.starts_with('#') {
        return Some(value.to_owned());
    }
    if value.starts_with('[') {
        let close = value.find(']')?;
        let after = value.get(close.saturating_add(1)..)?.trim();
        if after.starts_with('#') {
            return Some(after.to_owned());
        }
    }
    None
}

/// The keys of one service item (lines `start..end`, the dash at `seq_indent`).
fn item_keys(
    lines: &[String],
    start: usize,
    end: usize,
    seq_indent: usize,
) -> Result<Vec<KeyLine>, PolicyEditError> {
    let dash_line = lines.get(start).map(|l| body(l)).unwrap_or("");
    let after_dash = dash_line.get(seq_indent.saturating_add(1)..).unwrap_or("");
    let rest = after_dash.trim_start_matches(' ');
    if rest.starts_with('{') {
        return Err(err(
            "a service is written in flow style (`- {name: ...}`); write it as a block mapping to edit it with this command, or edit it by hand",
        ));
    }
    let mut out = Vec::new();
    let mut col = None;
    if !rest.is_empty() && !rest.starts_with('#') {
        let c = dash_line.len().saturating_sub(rest.len());
        col = Some(c);
        if let Some((key, _)) = key_value(rest) {
            out.push(KeyLine {
                line: start,
                col: c,
                key,
            });
        }
    }
    for i in start.saturating_add(1)..end {
        let Some(l) = lines.get(i) else { break };
        if blank_or_comment(l) {
            continue;
        }
        let ind = indent(l);
        let c = *col.get_or_insert(ind);
        if ind != c {
            continue;
        }
        if let Some((key, _)) = key_value(body(l).get(ind..).unwrap_or("")) {
            out.push(KeyLine {
                line: i,
                col: ind,
                key,
            });
        }
    }
    Ok(out)
}

fn service_mut<'a>(doc: &'a mut Value, service: &str) -> Option<&'a mut serde_norway::Mapping> {
    doc.get_mut("services")?
        .as_sequence_mut()?
        .iter_mut()
        .filter_map(Value::as_mapping_mut)
        .find(|m| m.get("name").and_then(Value::as_str) == Some(service))
}

fn current_platforms(doc: &Value, service: &str) -> Option<Vec<PlatformEntry>> {
    let mut d = doc.clone();
    let list = service_mut(&mut d, service)?
        .get("platforms")?
        .as_sequence()?
        .clone();
    list.iter()
        .map(|v| v.as_str().and_then(|s| PlatformEntry::parse(s).ok()))
        .collect()
}

/// Proves the edit: the new text is a valid policy whose service lists exactly `ids`, and
/// apart from that list the document is the old one.
fn check(
    old: &Value,
    new_text: &str,
    service: &str,
    ids: &[PlatformEntry],
) -> Result<(), PolicyEditError> {
    let bug = |m: String| {
        err(format!(
            "the edited policy would be wrong, nothing was written: {m}"
        ))
    };
    let policy = Policy::from_yaml(new_text.as_bytes()).map_err(|e| bug(e.to_string()))?;
    let svc = policy
        .service(Some(service))
        .map_err(|e| bug(e.to_string()))?;
    let got: Vec<PlatformEntry> = svc.platforms.iter().flatten().copied().collect();
    if got != ids {
        return Err(bug(format!(
            "services[{service}].platforms reads back differently"
        )));
    }
    let mut a = old.clone();
    let mut b: Value = serde_norway::from_str(new_text).map_err(|e| bug(e.to_string()))?;
    for d in [&mut a, &mut b] {
        if let Some(m) = service_mut(d, service) {
            m.remove("platforms");
        }
    }
    if a != b {
        return Err(bug("fields other than the platforms list changed".into()));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "126C8098408FEB2002F5EB8B9E6C2AE26197E3617875633C5BD4EB4454278C34";
    const B: &str = "BCA7B05F55BCA38EA7A0BDEBDC402942BE77BEC7F0D3F37C72F6C1898047B312";
    const C: &str = "2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151";

    fn ids(v: &[&str]) -> Vec<PlatformEntry> {
        v.iter().map(|s| PlatformEntry::parse(s).unwrap()).collect()
    }

    fn set(text: &str, svc: &str, v: &[&str]) -> String {
        set_platforms(text, svc, &ids(v)).unwrap().text
    }

    const POLICY: &str = r#"# Production session, owned by the app team.
name: my-session
version: "0.3"

security:
  attestation:
    tolerate: [debug-mode]   # until release
services:
  - name: db
    platforms: [BCA7B05F55BCA38EA7A0BDEBDC402942BE77BEC7F0D3F37C72F6C1898047B312]
    attestation:
      mrenclave: ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
  # the application
  - name: app
    command: python3 app.py
    platforms:   # the cluster's LAS instances
      - 2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151
      # old node, retired
      - 126C8098408FEB2002F5EB8B9E6C2AE26197E3617875633C5BD4EB4454278C34
    attestation:
      mrenclave: ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
secrets:
  - name: s
    kind: ascii
"#;

    #[test]
    fn replaces_a_block_list_keeping_everything_else() {
        let out = set(POLICY, "app", &[A, B]);
        let want = POLICY.replace(
            &format!(
                "    platforms:   # the cluster's LAS instances\n      - {C}\n      # old node, retired\n      - {A}\n"
            ),
            &format!("    platforms: [{A}, {B}] # the cluster's LAS instances\n"),
        );
        assert_ne!(want, POLICY);
        assert_eq!(out, want);
        let e = set_platforms(POLICY, "app", &ids(&[A])).unwrap();
        assert_eq!(e.before, Some(ids(&[C, A])));
    }

    #[test]
    fn replaces_a_flow_list_and_keeps_its_comment() {
        let p = POLICY.replace(
            &format!("    platforms: [{B}]\n"),
            &format!("    platforms: [{B}]  # eu-1\n"),
        );
        let out = set(&p, "db", &[C]);
        assert_eq!(
            out,
            p.replace(
                &format!("    platforms: [{B}]  # eu-1\n"),
                &format!("    platforms: [{C}] # eu-1\n")
            )
        );
    }

    #[test]
    fn a_list_spread_over_lines() {
        let p = format!(
            "services:\n  - name: app\n    platforms: [\n      {A},\n      {B}\n    ]\n    attestation: {{mrenclave: [{A}]}}\n"
        );
        assert_eq!(
            set(&p, "app", &[C]),
            format!(
                "services:\n  - name: app\n    platforms: [{C}]\n    attestation: {{mrenclave: [{A}]}}\n"
            )
        );
    }

    #[test]
    fn adds_the_key_when_missing() {
        let p = "services:\n- name: \"app\"  # quoted\n  attestation:\n    mrenclave: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n\n# trailing\nsecurity: {}\n";
        let out = set(p, "app", &[A]);
        assert_eq!(
            out,
            p.replace(
                "\n\n# trailing",
                &format!("\n  platforms: [{A}]\n\n# trailing")
            )
        );
        let e = set_platforms(p, "app", &ids(&[A])).unwrap();
        assert_eq!(e.before, None);
        // No final newline.
        let p = "services:\n  - name: app\n    command: x";
        assert_eq!(set(p, "app", &[A]), format!("{p}\n    platforms: [{A}]\n"));
    }

    #[test]
    fn block_list_at_the_key_indentation_and_crlf() {
        let p = format!(
            "services:\r\n  - name: app\r\n    platforms:\r\n    - {A}\r\n    command: x\r\n"
        );
        assert_eq!(
            set(&p, "app", &[B]),
            format!("services:\r\n  - name: app\r\n    platforms: [{B}]\r\n    command: x\r\n")
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let e = |t: &str, s: &str| set_platforms(t, s, &ids(&[A])).unwrap_err().to_string();
        assert!(
            e(POLICY, "web").contains("no service `web`") && e(POLICY, "web").contains("db, app")
        );
        assert!(e("services: [{name: app}]\n", "app").contains("flow style"));
        assert!(e("services:\n  - {name: app}\n", "app").contains("flow style"));
        assert!(e("name: x\n", "app").contains("no top-level `services:`"));
        assert!(e("services: [\n", "app").contains("not valid YAML"));
        // The flow bound of `Policy::from_yaml` applies before the editor parses.
        let deep = format!("services:\n  - name: app\n    x: {}\n", "[".repeat(50_000));
        assert!(
            e(&deep, "app").contains("bounded time"),
            "{}",
            e(&deep, "app")
        );
    }

    #[test]
    fn numeric_looking_ids_are_quoted() {
        let digits = "1".repeat(64);
        let p = "services:\n  - name: app\n";
        let out = set(p, "app", &[&digits]);
        assert!(out.contains(&format!("platforms: [\"{digits}\"]")), "{out}");
    }
}

//! Lines of the keys a policy was read with, for `--explain`: serde's YAML reader gives
//! no positions for values it reads without error, so the keys visited (in document
//! order) are found again by a forward scan of the text. Best effort: a key the scan
//! does not find (an unusual flow style) gets no line; nothing here affects a verdict.

// It reads untrusted policy text: no arithmetic that can overflow (as dcap-qvl's parsers).
#![deny(clippy::arithmetic_side_effects)]

use super::{keys, parse};

/// Every key visited, in document order: (path, key, reason when ignored).
pub(super) fn key_walk(raw: &parse::RawTop) -> Vec<(String, String, Option<&'static str>)> {
    let mut out = Vec::new();
    for k in &raw.order.0 {
        out.push((k.clone(), k.clone(), keys::ignored_reason(&keys::TOP, k)));
        if k == "security"
            && let Some(s) = &raw.security
        {
            for k2 in &s.order.0 {
                out.push((
                    format!("security.{k2}"),
                    k2.clone(),
                    keys::ignored_reason(&keys::SECURITY, k2),
                ));
                if k2 == "attestation"
                    && let Some(a) = &s.attestation
                {
                    for k3 in &a.order.0 {
                        out.push((
                            format!("security.attestation.{k3}"),
                            k3.clone(),
                            keys::ignored_reason(&keys::ATTESTATION, k3),
                        ));
                    }
                }
            }
        }
        if k == "services"
            && let Some(svcs) = &raw.services
        {
            for (i, s) in svcs.iter().enumerate() {
                for k2 in &s.order.0 {
                    out.push((
                        format!("services[{i}].{k2}"),
                        k2.clone(),
                        keys::ignored_reason(&keys::SERVICE, k2),
                    ));
                }
            }
        }
    }
    out
}

fn indent_of(line: &str) -> usize {
    line.len()
        .saturating_sub(line.trim_start_matches(' ').len())
}

/// The column of `key` used as a mapping key in `line`, if it is.
fn key_column(line: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = line
        .get(from..)
        .and_then(|s| s.find(key))
        .map(|p| p.saturating_add(from))
    {
        let before = line.get(..pos).unwrap_or_default();
        let after = line
            .get(pos.saturating_add(key.len())..)
            .unwrap_or_default();
        let before_ok = before
            .trim_end_matches(['"', '\''])
            .trim_end()
            .chars()
            .last()
            .is_none_or(|c| matches!(c, '-' | '{' | ','));
        let after = after.trim_start_matches(['"', '\'']).trim_start();
        let after_ok = after
            .strip_prefix(':')
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']));
        if before_ok && after_ok {
            return Some(pos);
        }
        from = pos.saturating_add(key.len());
    }
    None
}

/// Lines (1-based) of the keys of `walk`, by a forward scan; the value of an ignored key
/// (its more-indented block) is skipped so that keys inside it are not mistaken for the
/// next key.
pub(super) fn locate(
    text: &str,
    walk: &[(String, String, Option<&'static str>)],
) -> Vec<Option<usize>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut cur = 0usize;
    let mut out = Vec::with_capacity(walk.len());
    for (_, key, reason) in walk {
        let found = lines
            .iter()
            .enumerate()
            .skip(cur)
            .find_map(|(i, l)| key_column(l, key).map(|c| (i, c)));
        let Some((i, col)) = found else {
            out.push(None);
            continue;
        };
        out.push(Some(i.saturating_add(1)));
        cur = i.saturating_add(1);
        if reason.is_some() && !lines.get(i).is_some_and(|l| l.contains('{')) {
            while let Some(l) = lines.get(cur) {
                let t = l.trim_start();
                let ind = indent_of(l);
                if t.is_empty()
                    || t.starts_with('#')
                    || ind > col
                    || (ind == col && t.starts_with("- "))
                {
                    cur = cur.saturating_add(1);
                } else {
                    break;
                }
            }
        }
    }
    out
}

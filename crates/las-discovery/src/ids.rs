//! The `platforms:` line operators paste into policies, both ways.

use las_core::PlatformId;

use crate::DiscoveryError;

/// `platforms: [ ID1, ID2]`: exactly what the `get_platform_ids` bash function printed,
/// IDs in the order given (callers sort them). No IDs: `platforms: []`.
pub fn platforms_line(ids: &[PlatformId]) -> String {
    if ids.is_empty() {
        return "platforms: []".into();
    }
    let list: Vec<String> = ids.iter().map(PlatformId::to_string).collect();
    format!("platforms: [ {}]", list.join(", "))
}

/// Reads platform IDs from what `las platform-ids` prints: the `platforms: [ A, B]` line,
/// its `--output json`, a YAML list, or IDs separated by white space or commas. Sorted,
/// each once. Anything else is an error naming the first word that is not an ID.
pub fn parse_ids(text: &str) -> Result<Vec<PlatformId>, DiscoveryError> {
    let t = text.trim();
    let mut ids = Vec::new();
    if t.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(t)
            .map_err(|e| DiscoveryError::Ids(format!("not the JSON of `las platform-ids`: {e}")))?;
        let list = v
            .get("platforms")
            .and_then(|p| p.as_array())
            .ok_or_else(|| DiscoveryError::Ids("the JSON has no `platforms` list".into()))?;
        for x in list {
            let s = x
                .as_str()
                .ok_or_else(|| DiscoveryError::Ids(format!("`{x}` is not a platform ID")))?;
            ids.push(parse_one(s)?);
        }
    } else {
        let cleaned: String = t
            .chars()
            .map(|c| match c {
                '[' | ']' | ',' | '"' | '\'' => ' ',
                c => c,
            })
            .collect();
        for w in cleaned.split_whitespace() {
            if w == "platforms:" || w == "-" {
                continue;
            }
            ids.push(parse_one(w)?);
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

fn parse_one(w: &str) -> Result<PlatformId, DiscoveryError> {
    PlatformId::parse(w).map_err(|_| {
        DiscoveryError::Ids(format!(
            "`{}` is not a platform ID (64 hex characters)",
            w.chars().take(80).collect::<String>()
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "126C8098408FEB2002F5EB8B9E6C2AE26197E3617875633C5BD4EB4454278C34";
    const B: &str = "BCA7B05F55BCA38EA7A0BDEBDC402942BE77BEC7F0D3F37C72F6C1898047B312";

    #[test]
    fn the_line_of_the_bash_function() {
        let ids = [PlatformId::parse(A).unwrap(), PlatformId::parse(B).unwrap()];
        // The sample output of the deployment page, byte for byte.
        assert_eq!(platforms_line(&ids), format!("platforms: [ {A}, {B}]"));
        assert_eq!(platforms_line(&ids[..1]), format!("platforms: [ {A}]"));
        assert_eq!(platforms_line(&[]), "platforms: []");
    }

    #[test]
    fn reads_every_form_it_prints() {
        let want = vec![PlatformId::parse(A).unwrap(), PlatformId::parse(B).unwrap()];
        for input in [
            format!("platforms: [ {B}, {A}]\n"),
            format!("platforms: [\"{}\", '{A}']", B.to_lowercase()),
            format!("{A}\n{B}\n{A}\n"),
            format!("platforms:\n  - {A}\n  - {B}\n"),
            format!("{{\"platforms\": [\"{A}\", \"{B}\"], \"complete\": true}}"),
        ] {
            assert_eq!(parse_ids(&input).unwrap(), want, "{input}");
        }
        assert!(parse_ids("").unwrap().is_empty());
        let e = parse_ids(&format!("platforms: [ {A}, nope]")).unwrap_err();
        assert!(e.to_string().contains("`nope`"), "{e}");
        assert!(parse_ids("{\"x\": 1}").is_err());
        assert!(parse_ids(&format!("platforms: [ {}]", &A[..63])).is_err());
    }
}

//! The `platforms:` line operators paste into policies, both ways.

use las_verifier::PlatformEntry;

use crate::DiscoveryError;

/// `platforms: [ ID1, ID2]`: exactly what the `get_platform_ids` bash function printed,
/// IDs in the order given (callers sort them); with QE IDs
/// `platforms: [ INTEL_QE_ID:…, INTEL_QE_ID:…]`. No IDs: `platforms: []`.
pub fn platforms_line<T: std::fmt::Display>(ids: &[T]) -> String {
    if ids.is_empty() {
        return "platforms: []".into();
    }
    let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
    format!("platforms: [ {}]", list.join(", "))
}

/// Reads platform entries (LAS keys, `INTEL_QE_ID:` entries) from what `las platform-ids`
/// prints: the `platforms: [ A, B]` line, its `--output json`, a YAML list, or entries
/// separated by white space or commas. Sorted, each once. Anything else is an error naming
/// the first word that is not an entry.
pub fn parse_ids(text: &str) -> Result<Vec<PlatformEntry>, DiscoveryError> {
    let t = text.trim();
    let mut ids = Vec::new();
    if t.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(t).map_err(DiscoveryError::IdsJson)?;
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

fn parse_one(w: &str) -> Result<PlatformEntry, DiscoveryError> {
    PlatformEntry::parse(w).map_err(|e| {
        DiscoveryError::Ids(format!(
            "`{}` is not a platform ID (64 hex characters, or INTEL_QE_ID: and 32 hex digits): {e}",
            w.chars().take(80).collect::<String>()
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use las_core::PlatformId;

    const A: &str = "126C8098408FEB2002F5EB8B9E6C2AE26197E3617875633C5BD4EB4454278C34";
    const B: &str = "BCA7B05F55BCA38EA7A0BDEBDC402942BE77BEC7F0D3F37C72F6C1898047B312";

    #[test]
    fn the_line_of_the_bash_function() {
        let ids = [PlatformId::parse(A).unwrap(), PlatformId::parse(B).unwrap()];
        // The sample output of the deployment page, byte for byte.
        assert_eq!(platforms_line(&ids), format!("platforms: [ {A}, {B}]"));
        assert_eq!(platforms_line(&ids[..1]), format!("platforms: [ {A}]"));
        assert_eq!(platforms_line::<PlatformId>(&[]), "platforms: []");
    }

    #[test]
    fn reads_every_form_it_prints() {
        let want = vec![
            PlatformEntry::parse(A).unwrap(),
            PlatformEntry::parse(B).unwrap(),
        ];
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

    /// `las platform-ids --qe-id` output reads back, mixed with LAS keys; malformed QE-ID
    /// entries are errors that name them.
    #[test]
    fn qe_id_entries_read_back() {
        const Q: &str = "INTEL_QE_ID:85ffc69266c833546e5dca1c676a6151";
        let got = parse_ids(&format!("platforms: [ {Q}, {A}]")).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(platforms_line(&got[1..]), format!("platforms: [ {Q}]"));
        for bad in [
            "INTEL_QE_ID:",
            "INTEL_QE_ID:85ff",
            "QE:85ffc69266c833546e5dca1c676a6151",
        ] {
            let e = parse_ids(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod typed_error_tests {
    use super::*;
    use crate::fetch::FetchError;

    /// Broken JSON keeps serde's error as the source; the other refusals stay the one
    /// documented catch-all; fetch errors classify by variant, not by text.
    #[test]
    fn errors_are_typed() {
        use std::error::Error as _;
        let e = parse_ids("{not json").unwrap_err();
        assert!(
            matches!(e, DiscoveryError::IdsJson(_)) && e.source().is_some(),
            "{e:?}"
        );
        let e = parse_ids("nothex").unwrap_err();
        assert!(matches!(e, DiscoveryError::Ids(_)), "{e:?}");
        assert!(FetchError::TooLarge.is_bad_answer());
        assert!(FetchError::EvidenceTooLarge(1).is_bad_answer());
        let bad_mode = serde_json::from_str::<las_core::api::QuoteAnswer>(
            r#"{"quote":"","platform_id":"","mode":"x"}"#,
        )
        .unwrap_err();
        let e = FetchError::NotJson {
            what: "GET /v1/platform",
            source: std::sync::Arc::new(bad_mode),
        };
        assert!(e.is_bad_answer() && e.source().is_some());
        assert!(!FetchError::Timeout(1).is_bad_answer());
    }
}

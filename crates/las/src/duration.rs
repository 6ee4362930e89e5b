//! `30s`-style durations for the client timeouts (`--timeout`), accepting the bare seconds
//! of the old `--timeout-secs` flags too, so that old command lines keep working.

use std::time::Duration;

/// Longest timeout accepted: an hour.
const MAX: Duration = Duration::from_secs(3600);

/// `10`, `10s`, `1m30s`, `500ms`: more than zero, at most an hour.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = match t.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(t)
            .map_err(|e| format!("`{s}` is not a duration such as 10s, 1m30s or 500ms ({e})"))?,
    };
    if d.is_zero() || d > MAX {
        return Err(format!("`{s}` is outside 1ms..=1h"));
    }
    Ok(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_human_durations() {
        assert_eq!(parse_timeout("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_timeout("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_timeout("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_timeout("500ms").unwrap(), Duration::from_millis(500));
        for bad in ["0", "0s", "2h", "ten", "", "-1"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }
}

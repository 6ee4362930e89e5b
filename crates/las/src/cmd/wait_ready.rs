//! `las wait-ready`: waits until a LAS answers `GET /readyz`, for scripts that start
//! `las serve` in the background (the README's walk-through).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use las_client::{LasAddr, LasClient};

use crate::cli::WaitReadyArgs;

/// Pause between two attempts.
const POLL: Duration = Duration::from_millis(50);

/// Parses a duration: a whole number followed by `ms`, `s` or `m` (`500ms`, `10s`, `2m`),
/// or a bare number of seconds. Hand-written: this one syntax is all the CLI accepts, and
/// a duration crate would add a dependency for three suffixes.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: expected e.g. 500ms, 10s or 2m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("`{s}`: unknown unit `{unit}`: expected ms, s or m")),
    };
    if d.is_zero() || d > Duration::from_secs(3600) {
        return Err(format!("`{s}`: expected more than 0 and at most 60m"));
    }
    Ok(d)
}

pub fn run(a: WaitReadyArgs) -> anyhow::Result<ExitCode> {
    let addr = LasAddr::parse(&a.las)?;
    let deadline = Instant::now() + a.timeout;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut attempts = 0u32;
    let last = rt.block_on(async {
        loop {
            attempts = attempts.saturating_add(1);
            let left = deadline.saturating_duration_since(Instant::now());
            // Each attempt gets the time left, at most a second, so that a LAS that
            // accepts but does not answer cannot hold the command past --timeout.
            let client = LasClient::new(addr.clone(), left.clamp(POLL, Duration::from_secs(1)));
            let err = match client.ready().await {
                Ok(()) => return None,
                Err(e) => e,
            };
            if Instant::now() + POLL >= deadline {
                return Some(err);
            }
            tokio::time::sleep(POLL).await;
        }
    });
    match last {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            eprintln!(
                "las wait-ready: the LAS at {addr} was not ready within {:?} ({attempts} attempts); last error: {e}",
                a.timeout
            );
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "s", "0s", "10h", "1.5s", "-1s", "61m", "10 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}

//! `las wait-ready`: waits until a LAS answers `GET /readyz`, for scripts that start
//! `las serve` in the background (the README's walk-through).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use las_client::LasClient;

use clap::Args;

/// Pause between two attempts.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Args)]
pub struct WaitReadyArgs {
    #[command(flatten)]
    pub las: super::LocalLas,
    /// How long to wait: e.g. 500ms, 10s, 2m (a bare number is seconds).
    #[arg(long, env = "LAS_WAIT_TIMEOUT", default_value = "10s", value_name = "DURATION",
          value_parser = las_server::duration::timeout)]
    pub timeout: std::time::Duration,
}

pub fn run(a: WaitReadyArgs) -> anyhow::Result<ExitCode> {
    let addr = a.las.parse()?;
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
            note!(
                "las wait-ready: the LAS at {addr} was not ready within {:?} ({attempts} attempts); last error: {e}",
                a.timeout
            );
            Ok(ExitCode::from(1))
        }
    }
}

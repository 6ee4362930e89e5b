//! `las serve`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use las_server::ServerConfig;

use crate::cli::ServeArgs;

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let platform = super::platform::config(&a.platform)?;
    let server = ServerConfig {
        listen: a.listen,
        body_limit: a.max_body_bytes as usize,
        header_timeout: Duration::from_secs(a.header_timeout_secs),
        write_timeout: Duration::from_secs(a.write_timeout_secs),
        max_connections: a.max_connections as usize,
        drain_timeout: Duration::from_secs(a.drain_timeout_secs),
        ..ServerConfig::default()
    };
    tracing::info!(target: "las", "state folder {}", platform.state_dir.display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(las_server::run(server, platform))?;
    Ok(ExitCode::SUCCESS)
}

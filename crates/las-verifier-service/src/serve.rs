//! Start-up and the serve loop: load policy and keys, bind, watch the policy, serve
//! (las-server's connection loop, shared with the LAS daemon) until shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{ServiceConfig, StartError};
use crate::routes::app;
use crate::state::AppState;

/// Serves `state` on `listener` until `shutdown`; then drains (up to `limits.drain_timeout`).
/// The LAS daemon's loop (`las_http::serve_router`): connection cap, header read
/// timeout, write deadline, capped read buffer, graceful drain.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    las_http::serve_router(
        listener,
        app(state.clone()),
        &state.config.limits,
        state.metrics.connections.clone(),
        &state.shutting_down,
        shutdown,
    )
    .await
}

/// The whole service: load policy and keys, bind, watch the policy, serve until
/// `shutdown`.
pub async fn run(
    config: ServiceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let state = AppState::new(config)?;
    let listener = las_http::bind(state.config.listen).await?;
    let local = listener.local_addr()?;
    tracing::info!(
        target: "las",
        "verification service: policy {} ({}), EAR signing key kid {}",
        state.config.policy.display(),
        state.policy_id(),
        state.signer.kid()
    );
    tracing::info!(target: "las", "listening on http://{local}");
    let watcher = crate::state::watch(state.clone());
    let r = serve(listener, state, shutdown).await;
    watcher.abort();
    r?;
    tracing::info!(target: "las", "stopped");
    Ok(())
}

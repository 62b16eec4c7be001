//! `opsbot serve`: the HTTP server with graceful shutdown. On SIGTERM or Ctrl-C it
//! stops taking requests, lets running jobs finish for a grace period, and records the
//! rest as interrupted.

use crate::app;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// How long running jobs may take to finish after a stop signal.
const JOB_GRACE: Duration = Duration::from_secs(10);

pub async fn run(config: Option<&Path>, listen: Option<String>) -> Result<()> {
    let app = app::build(config).await?;
    let listen = listen.unwrap_or_else(|| app.config.server.listen.clone());
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?} is not an address like 127.0.0.1:8080"))?;
    match app.engine.ensure_synced().await {
        Ok(reports) if !reports.is_empty() => {
            tracing::info!("initial sync:\n{}", opsbot_engine_summary(&reports))
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "initial sync failed; the pool is served as stored"),
    }
    let router = opsbot_http::router(opsbot_http::AppState {
        store: app.store.clone(),
        version: env!("CARGO_PKG_VERSION"),
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, "opsbot serving");
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
            }
        })
        .await
        .context("serving HTTP")?;
    let interrupted = app.engine.shutdown(JOB_GRACE).await;
    if interrupted > 0 {
        tracing::warn!(interrupted, "jobs interrupted by shutdown");
    }
    tracing::info!("stopped");
    Ok(())
}

fn opsbot_engine_summary(reports: &[opsbot_store::SyncReport]) -> String {
    opsbot_engine::sync_summary(reports)
}

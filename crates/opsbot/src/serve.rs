//! `opsbot serve`: the HTTP server with graceful shutdown. On SIGTERM or Ctrl-C it
//! stops taking requests, lets running jobs finish for a grace period, and records the
//! rest as interrupted.

use crate::app;
use anyhow::{Context, Result};
use opsbot_channels::wecom::{Settings, WecomChannel};
use std::path::Path;
use std::sync::Arc;
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
            tracing::info!("initial sync:\n{}", opsbot_engine::sync_summary(&reports))
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "initial sync failed; the pool is served as stored"),
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for p in &app.config.providers {
        if let Some(period) = p.sync_period() {
            tokio::spawn(scheduled_sync(
                app.engine.clone(),
                p.name.clone(),
                period,
                stop_rx.clone(),
            ));
        }
    }
    let wecom = wecom_channel(&app)?;
    let delivery = wecom
        .as_ref()
        .map(|ch| tokio::spawn(ch.delivery(app.owner.clone()).run(stop_rx.clone())));
    if let Some(ch) = &wecom {
        let apps: Vec<&str> = ch.app_names().collect();
        tracing::info!(?apps, "WeCom callbacks at /wecom/{{app}}/callback");
    }
    let cmdb = crate::cmdb::api(&app).await?;
    crate::cmdb::spawn_tasks(&app, &cmdb, stop_rx.clone());
    let router = opsbot_http::router(opsbot_http::AppState {
        store: app.store.clone(),
        version: env!("CARGO_PKG_VERSION"),
        wecom,
        cmdb: Some(cmdb),
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, "opsbot serving");
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    opsbot_http::serve(listener, router, async move {
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
    // Replies still queued stay in the outbox for the next start.
    let _ = stop_tx.send(true);
    if let Some(worker) = delivery {
        let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Re-syncs one provider every `period` until stopped. A failed sync is logged and
/// tried again at the next tick; the pool keeps what it had.
async fn scheduled_sync(
    engine: Arc<opsbot_engine::Engine>,
    provider: String,
    period: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is now; startup already synced
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let started = std::time::Instant::now();
        match engine.sync_provider(&provider, "sync:schedule").await {
            Ok(r) => tracing::info!(
                %provider, vms = r.vms, added = r.added, updated = r.updated, removed = r.removed,
                ms = started.elapsed().as_millis() as u64, "scheduled sync"
            ),
            Err(e) => tracing::warn!(%provider, error = %e, "scheduled sync failed"),
        }
    }
}

/// The WeCom channel for the configured apps, if any.
fn wecom_channel(app: &app::App) -> Result<Option<Arc<WecomChannel>>> {
    if app.config.wecom.apps.is_empty() {
        return Ok(None);
    }
    let channel = WecomChannel::new(
        &app.config.wecom.apps,
        app.engine.clone(),
        app.store.clone(),
        Settings::default(),
    )
    .context("configuring WeCom")?;
    Ok(Some(Arc::new(channel)))
}

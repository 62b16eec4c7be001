//! `opsbot serve`: the HTTP server with graceful shutdown. On SIGTERM or Ctrl-C it
//! stops taking requests, lets running jobs finish for a grace period, and records the
//! rest as interrupted.

use crate::app;
use anyhow::{Context, Result};
use opsbot_channels::mp::MpChannel;
use opsbot_channels::wecom::{Settings, WecomChannel};
use opsbot_channels::wecom_bot::BotChannel;
use opsbot_channels::{ChannelError, ChannelRegistry};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// How long running jobs may take to finish after a stop signal.
const JOB_GRACE: Duration = Duration::from_secs(10);
/// How often processed message ids past every replay window are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

pub async fn run(config: Option<&Path>, listen: Option<String>) -> Result<()> {
    let app = app::build_server(config).await?;
    let secret = app
        .secret
        .clone()
        .context("the server's secret key was not loaded")?;
    if app.cards.is_none() {
        tracing::info!("card buttons are off ([chat] buttons = false): confirmations are typed");
    }
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
    tokio::spawn(sweep_stale_jobs(app.engine.clone(), stop_rx.clone()));
    // Orders and builds a dead process left running are marked interrupted (their askers
    // told); this instance's own orders keep their heartbeat.
    app.deploys.recover().await;
    let _deploy_upkeep = app.deploys.spawn_upkeep();
    // The Kubernetes pool's watches, stopped when this returns (shutdown).
    let _kube_watches = app.kube.as_ref().map(|k| k.start());
    for p in &app.config.providers {
        if let Some(period) = p.sync_period() {
            tokio::spawn(scheduled_sync(
                app.engine.clone(),
                app.owner.clone(),
                p.name.clone(),
                period,
                stop_rx.clone(),
            ));
        }
    }
    let (engine, store) = (&app.engine, &app.store);
    let wecom_settings = Settings {
        limit_windows: app.rate_windows.clone(),
        ..app.config.wecom.app_settings()
    };
    let wecom = configured(&app.config.wecom.apps, "configuring WeCom", |c| {
        WecomChannel::new(c, engine.clone(), store.clone(), wecom_settings.clone())
    })?;
    let robots = app
        .alerts
        .as_ref()
        .map(|parts| parts.settings.robots.as_slice())
        .unwrap_or_default();
    let mut delivery = match &wecom {
        Some(ch) => Some(
            ch.delivery(app.owner.clone(), robots)
                .context("configuring alert robots")?,
        ),
        None => None,
    };
    let alerts = match &app.alerts {
        Some(parts) => {
            // Alerts to robots need the delivery worker even without a WeCom app.
            let worker = match delivery.take() {
                Some(d) => d,
                None => WecomChannel::new(
                    &[],
                    app.engine.clone(),
                    app.store.clone(),
                    wecom_settings.clone(),
                )
                .context("configuring WeCom delivery")?
                .delivery(app.owner.clone(), robots)
                .context("configuring alert robots")?,
            };
            let (gateway, task) = opsbot_alerts::Gateway::start(
                parts.settings.clone(),
                parts.silences.clone(),
                app.store.clone(),
                app.store.clone(),
                Some(worker.waker()),
                // Automatic remediation runs its commands through the engine.
                Some(opsbot_alerts::Remedy {
                    operator: Arc::new(opsbot_engine::EngineOperator::new(&app.engine)),
                    runs: app.store.clone(),
                }),
                stop_rx.clone(),
            );
            delivery = Some(worker);
            tracing::info!("alert gateway at /alerts/{{openfalcon,alertmanager,zabbix,generic}}");
            Some((gateway, task))
        }
        None => None,
    };
    let delivery = delivery.map(|d| tokio::spawn(d.run(stop_rx.clone())));
    if let Some(ch) = &wecom {
        let apps: Vec<&str> = ch.app_names().collect();
        tracing::info!(?apps, "WeCom callbacks at /wecom/{{app}}/callback");
    }
    let wecom_bots = configured(
        &app.config.wecom.bots,
        "configuring the WeCom robots",
        |c| BotChannel::new(c, engine.clone(), store.clone(), Default::default()),
    )?;
    let wechat = configured(
        &app.config.wechat.mp,
        "configuring the WeChat Official Accounts",
        |c| MpChannel::new(c, engine.clone(), store.clone(), Default::default()),
    )?;
    let mut workers: Vec<_> = delivery.into_iter().collect();
    // The channels above run with their default settings: the longest callback
    // timestamp window among them bounds how late a replay can come.
    let window = [
        Settings::default().timestamp_window,
        opsbot_channels::wecom_bot::Settings::default().timestamp_window,
        opsbot_channels::mp::Settings::default().timestamp_window,
    ]
    .into_iter()
    .max()
    .unwrap_or_default();
    workers.push(tokio::spawn(
        opsbot_store::retention::prune_processed_periodically(
            app.store.clone(),
            app.owner.clone(),
            opsbot_store::retention::processed_retention(window),
            PRUNE_EVERY,
            stop_rx.clone(),
        ),
    ));
    // Sent cards past their buttons' expiry (and remediation runs) are forgotten.
    workers.push(tokio::spawn(
        opsbot_store::retention::prune_cards_periodically(
            app.store.clone(),
            app.owner.clone(),
            PRUNE_EVERY,
            stop_rx.clone(),
        ),
    ));
    if let Some(ch) = &wecom_bots {
        workers.push(tokio::spawn(
            ch.delivery(app.owner.clone()).run(stop_rx.clone()),
        ));
        let bots: Vec<&str> = ch.bot_names().collect();
        tracing::info!(
            ?bots,
            "WeCom robot callbacks at /wecom/bot/{{bot}}/callback"
        );
    }
    if let Some(ch) = &wechat {
        workers.push(tokio::spawn(
            ch.delivery(app.owner.clone()).run(stop_rx.clone()),
        ));
        let accounts: Vec<&str> = ch.account_names().collect();
        tracing::info!(
            ?accounts,
            "WeChat callbacks at /wechat/{{account}}/callback"
        );
    }
    let mut api = opsbot_http::ApiContext::new(
        app.engine.clone(),
        app.store.clone(),
        app.sessions.clone(),
        app.config.web.clone(),
        app.config.server.public_url.clone(),
        wecom.as_deref(),
        &secret,
    )
    .await
    .context("starting the REST API and web UI")?;
    if let Some(windows) = &app.rate_windows {
        api.share_limits(windows.clone());
    }
    api.deploys = Some(app.deploys.clone());
    api.kube = app.kube.clone();
    let cmdb = crate::cmdb::api(&app, &secret);
    crate::cmdb::spawn_tasks(&app, &cmdb, stop_rx.clone());
    // Each configured channel, registered under its kind: its callback route serves it.
    let mut channels = ChannelRegistry::default();
    if let Some(ch) = wecom {
        channels.register(ch);
    }
    if let Some(ch) = wecom_bots {
        channels.register(ch);
    }
    if let Some(ch) = wechat {
        channels.register(ch);
    }
    let router = opsbot_http::router(opsbot_http::AppState {
        store: app.store.clone(),
        version: env!("CARGO_PKG_VERSION"),
        channels,
        alerts: alerts.as_ref().map(|(g, _)| g.clone()),
        api: Some(Arc::new(api)),
        cmdb: Some(cmdb),
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let limits = fit_to_descriptors(app.config.server.limits());
    tracing::info!(%addr, max_connections = limits.max_connections, "opsbot serving: REST API at /api/v1, web UI at /ui/, /metrics");
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    opsbot_http::serve_with(listener, router, limits, async move {
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
    // Replies still queued stay in the outbox for the next start; open alert groups
    // stay in the store.
    let _ = stop_tx.send(true);
    if let Some((gateway, task)) = alerts {
        drop(gateway); // the last handle: the writer stores what is queued and ends
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for worker in workers {
        let _ = tokio::time::timeout_at(deadline, worker).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// File descriptors kept for everything but client connections: the store's pool,
/// Redis, outgoing calls to WeCom and vCenter, the log, spool files.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft open-files limit to the hard one (the soft default, often 1024, is
/// far below what the connection limit allows), and lowers the connection limit if the
/// descriptors still do not cover it: a full server then makes new clients wait, it
/// never fails every accept with "Too many open files".
fn fit_to_descriptors(mut limits: opsbot_http::ServeLimits) -> opsbot_http::ServeLimits {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "could not raise the open-files limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the open-files limit");
            return limits;
        }
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS))
        .unwrap_or(usize::MAX)
        .max(1);
    if limits.max_connections > room {
        tracing::warn!(
            configured = limits.max_connections,
            used = room,
            open_files = soft,
            "server.max_connections is more than the open-files limit allows; raise `ulimit -n` (LimitNOFILE) to serve that many"
        );
        limits.max_connections = room;
    }
    limits
}

/// Marks the jobs of dead processes interrupted, every sweep period until stopped:
/// a process killed and restarted at once leaves its jobs' heartbeats fresh at the
/// start, so the start alone would not notice them. Every instance sweeps; each job is
/// marked by one.
async fn sweep_stale_jobs(
    engine: Arc<opsbot_engine::Engine>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(engine.job_sweep_period());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is now; the engine swept as it started
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if let Err(e) = engine.sweep_stale_jobs().await {
            tracing::warn!(error = %e, "cannot look for jobs of dead processes; trying again later");
        }
    }
}

/// Re-syncs one provider every `period` until stopped. A failed sync is logged and
/// tried again at the next tick; the pool keeps what it had. When several instances
/// share the store, the one holding the provider's lease syncs and the others skip; the
/// lease outlives a period by half, so its holder keeps it from tick to tick and another
/// instance takes over only when the holder stops or dies. The sync's pool write is
/// fenced by the lease: a holder frozen past it writes nothing once another took over.
async fn scheduled_sync(
    engine: Arc<opsbot_engine::Engine>,
    owner: String,
    provider: String,
    period: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let lease = format!("schedule:sync:{provider}");
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is now; startup already synced
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let held = match engine
            .store()
            .lease_take(&lease, &owner, period + period / 2)
            .await
        {
            Ok(Some(held)) => held,
            Ok(None) => {
                tracing::debug!(%provider, "scheduled sync runs on another instance");
                continue;
            }
            Err(e) => {
                tracing::warn!(%provider, error = %e, "cannot take the scheduled-sync lease; skipping this round");
                continue;
            }
        };
        let started = std::time::Instant::now();
        let sync = engine.sync_provider(&provider, "sync:schedule");
        match opsbot_engine::fenced(held, sync).await {
            Ok(r) => tracing::info!(
                %provider, vms = r.vms, unchanged = r.unchanged, added = r.added, updated = r.updated,
                removed = r.removed, ms = started.elapsed().as_millis() as u64, "scheduled sync"
            ),
            Err(e) => tracing::warn!(%provider, error = %e, "scheduled sync failed"),
        }
    }
    // Let another instance take over at once instead of after the lease runs out.
    if let Err(e) = engine.store().lease_release(&lease, &owner).await {
        tracing::debug!(%provider, error = %e, "could not release the scheduled-sync lease");
    }
}

/// The channel built from `configs` (its apps, robots or accounts), if there are any.
fn configured<T, C>(
    configs: &[T],
    what: &'static str,
    new: impl FnOnce(&[T]) -> Result<C, ChannelError>,
) -> Result<Option<Arc<C>>> {
    if configs.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(new(configs).context(what)?)))
}

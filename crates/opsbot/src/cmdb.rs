//! CMDB wiring on the server: the HTTP endpoints' state, the stale sweep and scheduled
//! agentless (SSH) and Salt collection in `serve`, and `opsbot collect [--source salt]`.

use crate::app::{self, App};
use crate::out::outln;
use anyhow::{Context, Result};
use opsbot_cmdb::ingest::{sweep_stale, Ingestor};
use opsbot_cmdb::salt::{self, MinionOutcome, SaltSettings};
use opsbot_cmdb::ssh::{self, SshSettings};
use opsbot_core::parse_duration;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Reports written per transaction at most.
const MAX_BATCH: usize = 256;

pub fn api(app: &App, secret: &opsbot_auth::SecretKey) -> Arc<opsbot_http::CmdbApi> {
    Arc::new(opsbot_http::CmdbApi {
        ingestor: Ingestor::start(app.store.clone(), app.store.clone(), MAX_BATCH),
        tokens: opsbot_auth::Tokens::new(app.store.clone(), secret),
        engine: app.engine.clone(),
        max_report_bytes: app.config.cmdb.max_report_bytes,
    })
}

/// The background tasks of `serve`: flag stale assets every minute, and collect over
/// SSH every `cmdb.ssh.schedule` (when set).
pub fn spawn_tasks(
    app: &App,
    api: &opsbot_http::CmdbApi,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let store = app.store.clone();
    let stale_after = app.config.cmdb.stale_after();
    let mut s = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = s.changed() => return,
            }
            match sweep_stale(store.as_ref(), stale_after, "cmdb:stale").await {
                Ok(v) if !v.is_empty() => tracing::warn!(assets = ?v, "assets flagged stale"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "stale sweep failed"),
            }
        }
    });
    spawn_salt(app, api, stop.clone());
    let ssh_cfg = app.config.cmdb.ssh.clone();
    let Some(period) = parse_duration(&ssh_cfg.schedule).filter(|d| !d.is_zero()) else {
        return;
    };
    let ingestor = api.ingestor.clone();
    let store = app.store.clone();
    let mut s = stop;
    tokio::spawn(async move {
        let settings = SshSettings::from_config(&ssh_cfg);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = s.changed() => return,
            }
            let pool = match store.load_pool().await {
                Ok(p) => p.inventory,
                Err(e) => {
                    tracing::warn!(error = %e, "agentless collection: cannot read the pool; configured hosts only");
                    Default::default()
                }
            };
            let targets = ssh::targets(&ssh_cfg, &pool);
            let started = std::time::Instant::now();
            let results =
                ssh::collect_and_store(&settings, &targets, &ingestor, "ssh:schedule").await;
            let failed: Vec<String> = results
                .iter()
                .filter_map(|c| {
                    c.result
                        .as_ref()
                        .err()
                        .map(|e| format!("{}: {e}", c.target.name))
                })
                .collect();
            tracing::info!(
                hosts = results.len(),
                failed = failed.len(),
                ms = started.elapsed().as_millis() as u64,
                "scheduled agentless collection"
            );
            for f in failed {
                tracing::warn!("agentless collection failed: {f}");
            }
        }
    });
}

/// Collection through salt-api every `cmdb.salt.interval` (when `[cmdb.salt] api` is set
/// and the interval is not 0). A pass that fails as a whole (salt-api unreachable, login
/// refused, token expired twice) is logged and tried again at the next interval.
fn spawn_salt(app: &App, api: &opsbot_http::CmdbApi, stop: tokio::sync::watch::Receiver<bool>) {
    let cfg = &app.config.cmdb.salt;
    let Some(period) = parse_duration(&cfg.interval).filter(|d| !d.is_zero()) else {
        return;
    };
    let settings = match SaltSettings::from_config(cfg) {
        None => return,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::error!(error = %e, "[cmdb.salt]: Salt collection is off");
            return;
        }
    };
    let ingestor = api.ingestor.clone();
    let mut s = stop;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = s.changed() => return,
            }
            let started = std::time::Instant::now();
            match salt::collect_and_store(&settings, &ingestor, "salt:schedule").await {
                Ok(results) => {
                    let (mut silent, mut refused) = (Vec::new(), Vec::new());
                    for r in &results {
                        match &r.outcome {
                            MinionOutcome::Collected(_) => {}
                            MinionOutcome::NoAnswer => silent.push(r.minion.clone()),
                            MinionOutcome::Refused(why) => {
                                refused.push(format!("{}: {why}", r.minion))
                            }
                        }
                    }
                    tracing::info!(
                        minions = results.len(),
                        no_answer = silent.len(),
                        refused = refused.len(),
                        ms = started.elapsed().as_millis() as u64,
                        "scheduled Salt collection"
                    );
                    if !silent.is_empty() {
                        tracing::warn!(minions = ?silent, "Salt collection: no answer within the timeout");
                    }
                    for r in refused {
                        tracing::warn!("Salt collection refused a minion's answer: {r}");
                    }
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "Salt collection failed; trying again at the next interval"
                ),
            }
        }
    });
}

/// Where `opsbot collect` collects from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CollectSource {
    Ssh,
    Salt,
}

/// `opsbot collect --source salt`: one pass through salt-api now; a line per minion;
/// exit 1 if the pass failed or a minion was refused or did not answer.
pub async fn collect_salt(config: Option<&Path>, only: &[String]) -> Result<ExitCode> {
    let app = app::build(config).await?;
    let cfg = &app.config.cmdb.salt;
    let mut settings = match SaltSettings::from_config(cfg) {
        None => anyhow::bail!("没有配置 Salt:请在 [cmdb.salt] 中设置 api = {{ url = …, username = …, password_file = … }}"),
        Some(s) => s.context("[cmdb.salt] api")?,
    };
    if !only.is_empty() {
        settings.target =
            opsbot_salt::Target::List(only.iter().map(|h| h.to_lowercase()).collect());
    }
    let ingestor = Ingestor::start(app.store.clone(), app.store.clone(), MAX_BATCH);
    let started = std::time::Instant::now();
    let results = salt::collect_and_store(&settings, &ingestor, "salt:cli")
        .await
        .map_err(|e| anyhow::anyhow!("Salt 采集失败({}): {e}", settings.target))?;
    let (mut failed, mut silent) = (0, 0);
    for r in &results {
        match &r.outcome {
            MinionOutcome::Collected(c) => outln!(
                "{}: 成功({}),{} 处变更{}",
                r.minion,
                if c.created { "新资产" } else { "已更新" },
                c.changes.len(),
                c.vm.as_ref()
                    .map(|v| format!(",虚拟机 {}/{}", v.provider, v.name))
                    .unwrap_or_default()
            ),
            MinionOutcome::NoAnswer => {
                silent += 1;
                outln!(
                    "{}: 未应答({} 内没有回应;资产保持不变)",
                    r.minion,
                    cfg.timeout
                );
            }
            MinionOutcome::Refused(why) => {
                failed += 1;
                outln!("{}: 失败: {why}", r.minion);
            }
        }
    }
    if results.is_empty() {
        outln!("目标 {} 没有匹配任何 minion", settings.target);
    }
    outln!(
        "共 {} 个 minion,失败 {} 个,未应答 {} 个,耗时 {:.0} ms",
        results.len(),
        failed,
        silent,
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(if failed == 0 && silent == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `opsbot collect`: one agentless run now; a line per host; exit 1 if any failed.
pub async fn collect(config: Option<&Path>, only: &[String]) -> Result<ExitCode> {
    let app = app::build(config).await?;
    let cfg = &app.config.cmdb.ssh;
    let pool = app.store.load_pool().await.context("reading the pool")?;
    let mut targets = ssh::targets(cfg, &pool.inventory);
    if !only.is_empty() {
        let wanted: Vec<String> = only.iter().map(|h| h.to_lowercase()).collect();
        targets.retain(|t| wanted.contains(&t.name) || wanted.contains(&t.host.to_lowercase()));
        for w in &wanted {
            if !targets
                .iter()
                .any(|t| &t.name == w || &t.host.to_lowercase() == w)
            {
                anyhow::bail!("--host {w}: 不在 [cmdb.ssh] 配置或按资源池选出的主机中");
            }
        }
    }
    if targets.is_empty() {
        anyhow::bail!("没有要采集的主机:请在配置中添加 [[cmdb.ssh.targets]] 或 [[cmdb.ssh.pool]]");
    }
    let settings = SshSettings::from_config(cfg);
    let ingestor = Ingestor::start(app.store.clone(), app.store.clone(), MAX_BATCH);
    let started = std::time::Instant::now();
    let results = ssh::collect_and_store(&settings, &targets, &ingestor, "ssh:cli").await;
    let mut failed = 0;
    for c in &results {
        let ms = c.elapsed.as_millis();
        match &c.result {
            // Chat's words (资产/变更), so the CLI and chat read alike.
            Ok(r) => outln!(
                "{}: 成功({}),{} 处变更{};耗时 {ms} ms",
                c.target.name,
                if r.created { "新资产" } else { "已更新" },
                r.changes.len(),
                r.vm.as_ref()
                    .map(|v| format!(",虚拟机 {}/{}", v.provider, v.name))
                    .unwrap_or_default()
            ),
            Err(e) => {
                failed += 1;
                outln!("{}: 失败: {e};耗时 {ms} ms", c.target.name);
            }
        }
    }
    outln!(
        "共 {} 台主机,失败 {} 台,耗时 {:.0} ms",
        results.len(),
        failed,
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

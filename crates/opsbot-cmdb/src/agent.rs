//! The host agent's loop: collect (built-ins + plug-ins) on an interval with jitter,
//! spool the report, send what is spooled, and back off while the server is away.
//! `opsbot agent` (the binary) parses the command line and calls [`run`] or [`once`].

use crate::client::{Drained, Reporter};
use crate::collect;
use crate::facts::Report;
use crate::plugins::{self, PluginSettings};
use crate::source::FsSource;
use crate::spool::Spool;
use crate::{identity, CmdbError, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub interval: Duration,
    /// Identity file and spool live here.
    pub state_dir: PathBuf,
    /// `/`, or a tree standing in for it (tests).
    pub root: PathBuf,
    /// Built-in collectors not to run.
    pub disabled: Vec<String>,
    pub plugins: Option<PluginSettings>,
    pub max_spool: usize,
}

impl AgentSettings {
    pub fn new(state_dir: impl Into<PathBuf>) -> AgentSettings {
        AgentSettings {
            interval: Duration::from_secs(3600),
            state_dir: state_dir.into(),
            root: "/".into(),
            disabled: Vec::new(),
            plugins: None,
            max_spool: 1000,
        }
    }

    pub fn spool(&self) -> Result<Spool> {
        Spool::open(self.state_dir.join("spool"), self.max_spool)
    }
}

/// One collection: built-in collectors, then plug-ins, under the kept identity.
pub async fn collect_report(settings: &AgentSettings) -> Result<Report> {
    let started = Instant::now();
    let source = if settings.root == std::path::Path::new("/") {
        FsSource::live()
    } else {
        FsSource::at(&settings.root)
    };
    let disabled = settings.disabled.clone();
    let mut report =
        tokio::task::spawn_blocking(move || collect::collect(&source, &disabled, None))
            .await
            .map_err(|e| CmdbError::Config(format!("collector task: {e}")))?;
    report.identity =
        identity::load_or_create(&settings.state_dir.join("identity"), &report.hostname)?;
    if let Some(p) = &settings.plugins {
        let out = plugins::run_all(p).await;
        report.plugins = out.facts;
        report.problems.extend(out.problems);
    }
    report.collection_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Collects once and queues the report in the spool; returns its JSON.
pub async fn collect_and_spool(settings: &AgentSettings, spool: &Spool) -> Result<Vec<u8>> {
    let report = collect_report(settings).await?;
    let body = serde_json::to_vec(&report).map_err(|e| CmdbError::Config(e.to_string()))?;
    spool.push(&body)?;
    Ok(body)
}

/// `--once`: collect, send everything spooled (this report last), and say how it went.
pub async fn once(settings: &AgentSettings, reporter: &Reporter) -> Result<(Vec<u8>, Drained)> {
    let spool = settings.spool()?;
    let body = collect_and_spool(settings, &spool).await?;
    let drained = reporter.drain(&spool).await?;
    Ok((body, drained))
}

/// `interval` ± 10 %, so a fleet started together does not report in lockstep.
pub fn jittered(interval: Duration) -> Duration {
    let f: f64 = 0.9 + rand::random::<f64>() * 0.2;
    interval.mul_f64(f)
}

/// The wait after `failures` failed sends in a row: 1 s, 2 s, 4 s … at most 5 min,
/// with jitter.
pub fn backoff(failures: u32) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(9);
    jittered(Duration::from_secs(secs.min(300)))
}

/// Runs until `stop` turns true: collects every `interval` (jittered) and sends; while
/// the server cannot take reports, retries with backoff (reports wait in the spool).
pub async fn run(
    settings: &AgentSettings,
    reporter: &Reporter,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let spool = settings.spool()?;
    let mut next_collect = Instant::now();
    let mut failures = 0u32;
    loop {
        if Instant::now() >= next_collect {
            match collect_and_spool(settings, &spool).await {
                Ok(body) => tracing::info!(bytes = body.len(), "collected"),
                Err(e) => tracing::error!(error = %e, "collection failed"),
            }
            next_collect = Instant::now() + jittered(settings.interval);
        }
        let wait = match reporter.drain(&spool).await {
            Ok(d) => {
                if d.stored > 0 || d.refused > 0 {
                    tracing::info!(stored = d.stored, refused = d.refused, "reported");
                }
                match d.stopped {
                    None => {
                        failures = 0;
                        next_collect.saturating_duration_since(Instant::now())
                    }
                    Some(why) => {
                        failures += 1;
                        let wait = backoff(failures);
                        let waiting = spool.pending().map(|p| p.len()).unwrap_or(0);
                        tracing::warn!(%why, waiting, retry_in = ?wait, "server unavailable; reports kept in the spool");
                        wait.min(next_collect.saturating_duration_since(Instant::now()))
                    }
                }
            }
            Err(e) => {
                failures += 1;
                tracing::error!(error = %e, "spool error");
                backoff(failures)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Ok(()),
        }
        if *stop.borrow() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_and_backoff_stay_in_bounds() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(100));
            assert!(j >= Duration::from_secs(90) && j <= Duration::from_secs(110));
        }
        assert!(backoff(1) <= Duration::from_millis(1100));
        assert!(backoff(4) >= Duration::from_millis(7200));
        assert!(backoff(60) <= Duration::from_secs(330));
    }
}

//! `opsbot agent`: the CMDB host agent. Flags win over `[cmdb.agent]` of `--config`.
//! `--once` collects, reports, prints the report it sent on stdout, and exits 0 when
//! the server stored it, 1 when it is kept in the spool for the next run.

use crate::config::{parse_duration, Config};
use crate::out::outln;
use anyhow::{bail, Context, Result};
use opsbot_cmdb::agent::{self, AgentSettings};
use opsbot_cmdb::client::Reporter;
use opsbot_cmdb::collect::COLLECTORS;
use opsbot_cmdb::plugins::PluginSettings;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The opsbot server (https://ops.example.com).
    #[arg(long)]
    server: Option<String>,
    /// The agent token (`opsbot token create --agent`); better in $OPSBOT_AGENT_TOKEN,
    /// where `ps` does not show it.
    #[arg(long, env = "OPSBOT_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Collect and report once, print the report, exit.
    #[arg(long)]
    once: bool,
    /// How often to report (`1h`, `30m`); jittered by ±10 %.
    #[arg(long)]
    interval: Option<String>,
    /// Folder of plug-ins: executables printing one JSON object of facts.
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// A TOML file with a [cmdb.agent] section.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the identity file and the spool live (default /var/lib/opsbot-agent).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// A built-in collector not to run (repeatable): os, cpu, memory, disks,
    /// filesystems, nics, board, uptime.
    #[arg(long = "disable", value_name = "COLLECTOR")]
    disable: Vec<String>,
    /// Collect from this directory instead of / (a chroot or a test tree).
    #[arg(long, hide = true, default_value = "/")]
    root: PathBuf,
}

pub async fn run(args: AgentArgs) -> Result<ExitCode> {
    let cfg = match &args.config {
        Some(file) => Config::load(Some(file))?.cmdb.agent,
        None => opsbot_cmdb::config::AgentConfig::default(),
    };
    let Some(server) = args.server.clone().or(cfg.server.clone()) else {
        bail!("--server is required (the opsbot URL, e.g. https://ops.example.com)");
    };
    let Some(token) = args.token.clone().filter(|t| !t.trim().is_empty()) else {
        bail!("--token (or $OPSBOT_AGENT_TOKEN) is required: issue one with `opsbot token create --agent`");
    };
    let interval_text = args.interval.clone().unwrap_or(cfg.interval.clone());
    let interval = parse_duration(&interval_text)
        .filter(|d| !d.is_zero())
        .with_context(|| {
            format!("--interval {interval_text:?}: expected a duration like 30m or 1h")
        })?;
    let mut disabled = cfg.disabled_collectors.clone();
    for d in &args.disable {
        if !COLLECTORS.contains(&d.as_str()) {
            bail!(
                "--disable {d:?}: unknown collector; the built-in ones are {}",
                COLLECTORS.join(", ")
            );
        }
        disabled.push(d.clone());
    }
    let mut settings = AgentSettings::new(
        args.state_dir
            .clone()
            .unwrap_or_else(|| cfg.state_dir.clone().into()),
    );
    settings.interval = interval;
    settings.root = args.root.clone();
    settings.disabled = disabled;
    settings.max_spool = cfg.max_spool;
    if let Some(dir) = args
        .plugins
        .clone()
        .or(cfg.plugins.clone().map(PathBuf::from))
    {
        let mut p = PluginSettings::new(dir);
        p.timeout = parse_duration(&cfg.plugin_timeout).unwrap_or(p.timeout);
        settings.plugins = Some(p);
    }
    let reporter = Reporter::new(&server, &token)?;
    if args.once {
        let (body, drained) = agent::once(&settings, &reporter).await?;
        let report: serde_json::Value = serde_json::from_slice(&body)?;
        outln!("{}", serde_json::to_string_pretty(&report)?);
        let waiting = settings.spool()?.pending()?.len();
        match drained.stopped {
            None if drained.refused == 0 => {
                eprintln!(
                    "opsbot agent: sent {} report(s); {}",
                    drained.stored,
                    drained
                        .answers
                        .last()
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                );
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!(
                    "opsbot agent: the server refused {} report(s); kept under {}/rejected with the reason",
                    drained.refused,
                    settings.spool()?.dir().display()
                );
                Ok(ExitCode::FAILURE)
            }
            Some(why) => {
                eprintln!(
                    "opsbot agent: {why}; {waiting} report(s) kept in the spool for the next run"
                );
                Ok(ExitCode::FAILURE)
            }
        }
    } else {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            let _ = stop_tx.send(true);
        });
        tracing::info!(%server, interval = ?settings.interval, state = %settings.state_dir.display(), "opsbot agent running");
        agent::run(&settings, &reporter, stop_rx).await?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    }
}

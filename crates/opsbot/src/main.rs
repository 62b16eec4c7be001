//! The `opsbot` binary: command line, configuration, wiring and shutdown.

mod agent;
mod app;
mod cmdb;
mod config;
mod console;
mod limits;
#[cfg(test)]
mod menu_tests;
mod out;
mod providers;
mod serve;
mod token;

use anyhow::Result;
use clap::{Parser, Subcommand};
use out::outln;
use std::path::PathBuf;
use std::process::ExitCode;

// glibc's allocator spends half of a busy API server's CPU on its own bookkeeping
// (malloc_consolidate, chunk unlinking) over the 10,000-VM pool's many small strings;
// mimalloc doubles the VM list's throughput (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "opsbot",
    version,
    about = "ChatOps for the data centre, from WeCom / WeChat on a phone"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the server: WeCom callbacks, REST API, alert webhooks, web UI, /healthz.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides server.listen (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Talk to the engine on this terminal (same commands, permissions and audit).
    Chat {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Who you are (a WeCom userid in the config). Default: the local administrator
        /// without --config, $USER with it.
        #[arg(long)]
        user: Option<String>,
        /// Answer confirmation prompts with yes.
        #[arg(long)]
        yes: bool,
        /// Run one message, print every reply until its job ends, and exit
        /// (0 success, 1 failed, 2 invalid, 3 denied, 4 needs confirmation).
        #[arg(short = 'c', value_name = "TEXT")]
        command: Option<String>,
    },
    /// Sync the resource pool from the providers once; prints counts and elapsed time.
    Sync {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        provider: Option<String>,
    },
    /// The CMDB host agent: collect this host's facts and report them to the server.
    Agent(agent::AgentArgs),
    /// Collect CMDB facts now: over SSH from the hosts in [cmdb.ssh] (agentless mode), or
    /// through salt-api from the minions [cmdb.salt] targets (`--source salt`).
    Collect {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only these hosts (asset names; minion ids with `--source salt`); default: every
        /// configured and pool host, or the configured Salt target.
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// `ssh` or `salt`.
        #[arg(long, value_enum, default_value = "ssh")]
        source: cmdb::CollectSource,
    },
    /// API and agent tokens: create, list, revoke.
    Token {
        #[command(subcommand)]
        action: token::TokenCmd,
    },
    /// Print the argon2 hash of a password for `[web] admin_password_hash` (the
    /// password is read from standard input, one line).
    HashPassword,
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(out::log_colours())
        .init();
}

fn main() -> ExitCode {
    // One TLS backend for every crate, installed before anything opens a connection.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    // The agent idles on a host for months: one thread keeps it small.
    let builder = match cli.command {
        Cmd::Agent(_) => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    };
    let mut builder = builder;
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("opsbot: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("opsbot: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Serve { config, listen } => {
            init_tracing("info");
            serve::run(config.as_deref(), listen).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Chat {
            config,
            user,
            yes,
            command,
        } => {
            init_tracing("warn");
            console::run(config.as_deref(), user, yes, command).await
        }
        Cmd::Sync { config, provider } => {
            init_tracing("warn");
            app::sync_once(config.as_deref(), provider.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Agent(args) => {
            init_tracing("info");
            agent::run(args).await
        }
        Cmd::Collect {
            config,
            hosts,
            source,
        } => {
            init_tracing("warn");
            match source {
                cmdb::CollectSource::Ssh => cmdb::collect(config.as_deref(), &hosts).await,
                cmdb::CollectSource::Salt => cmdb::collect_salt(config.as_deref(), &hosts).await,
            }
        }
        Cmd::HashPassword => {
            let mut line = String::new();
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("password (the input is shown; pipe it in to hide it):");
            }
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                anyhow::bail!("the password is empty");
            }
            outln!(
                "{}",
                opsbot_http::config::hash_password(password).map_err(anyhow::Error::msg)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Token { action } => {
            init_tracing("warn");
            token::run(action).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

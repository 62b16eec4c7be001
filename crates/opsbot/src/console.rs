//! `opsbot chat`: the engine on a terminal, interactive (history, Chinese input) or
//! one-shot with `-c` for scripts. Same engine, permissions and audit as every channel.

use crate::app;
use crate::config::LOCAL_ADMIN;
use crate::out::outln;
use anyhow::{Context, Result};
use opsbot_core::JobState;
use opsbot_engine::{Incoming, Reply, ReplySink, Status};
use rustyline::error::ReadlineError;
use rustyline::ExternalPrinter;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

const CHANNEL: &str = "console";

/// Exit codes of `opsbot chat -c`, documented in the README.
fn exit_code(status: Status) -> u8 {
    match status {
        Status::Ok | Status::Accepted(_) => 0,
        Status::Failed => 1,
        Status::Invalid => 2,
        Status::Denied => 3,
        Status::NeedsConfirmation => 4,
    }
}

pub async fn run(
    config: Option<&Path>,
    user: Option<String>,
    yes: bool,
    command: Option<String>,
) -> Result<ExitCode> {
    let app = app::build(config).await?;
    if let Err(e) = app.engine.ensure_synced().await {
        eprintln!("⚠ 首次同步资源池失败: {e}");
    }
    // A release run from this console keeps its heartbeat; one a dead process left is
    // marked interrupted.
    app.deploys.recover().await;
    let _deploy_upkeep = app.deploys.spawn_upkeep();
    // The Kubernetes pool's watches, stopped when this returns (shutdown).
    let _kube_watches = app.kube.as_ref().map(|k| k.start());
    let user = user.unwrap_or_else(|| {
        if app.configured {
            std::env::var("USER").unwrap_or_else(|_| "console".into())
        } else {
            LOCAL_ADMIN.into()
        }
    });
    match command {
        Some(text) => one_shot(&app, user, yes, text).await,
        None => interactive(&app, user, yes).await,
    }
}

async fn one_shot(app: &app::App, user: String, yes: bool, text: String) -> Result<ExitCode> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
    let sink: Arc<dyn ReplySink> = Arc::new(tx);
    let msg = Incoming {
        channel: CHANNEL.into(),
        user,
        chat: None,
        text,
        assume_yes: yes,
    };
    let response = app.engine.handle(msg, sink).await;
    outln!("{}", response.text);
    let Status::Accepted(job) = response.status else {
        if response.status == Status::NeedsConfirmation {
            eprintln!("(需要确认: 加 --yes 参数直接执行)");
        }
        return Ok(ExitCode::from(exit_code(response.status)));
    };
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            reply = rx.recv() => {
                let Some(reply) = reply else { return Ok(ExitCode::FAILURE) };
                outln!("{}", reply.text);
                if reply.job == job {
                    if let Some(state) = reply.finished {
                        return Ok(if state == JobState::Succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE });
                    }
                }
            }
            _ = term.recv() => return Ok(interrupted(app, &mut rx, "收到 SIGTERM", 143).await),
            _ = tokio::signal::ctrl_c() => return Ok(interrupted(app, &mut rx, "收到 Ctrl-C", 130).await),
        }
    }
}

/// Records the running jobs as interrupted and prints what the users are told.
async fn interrupted(
    app: &app::App,
    rx: &mut mpsc::UnboundedReceiver<Reply>,
    why: &str,
    code: u8,
) -> ExitCode {
    app.engine.jobs().interrupt_all(why).await;
    while let Ok(reply) = rx.try_recv() {
        outln!("{}", reply.text);
    }
    ExitCode::from(code)
}

/// Which store this console writes, so an engineer never acts on a test database by
/// mistake: a SQLite file by its absolute path, any other URL without its password.
fn store_label(url: &str) -> String {
    let sqlite = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    match sqlite {
        Some(rest) if rest.starts_with(":memory:") => "SQLite 内存数据库(退出即丢失)".into(),
        Some(rest) => {
            let path = Path::new(rest.split('?').next().unwrap_or(rest));
            let shown = std::env::current_dir()
                .map(|d| d.join(path))
                .unwrap_or_else(|_| path.to_path_buf());
            format!("SQLite {}", shown.display())
        }
        None => opsbot_store::redact(url),
    }
}

/// What the line reader passes on.
enum Input {
    Line(String),
    CtrlC,
    /// Ctrl-D or the end of input.
    End,
}

/// Ctrl-C in interactive chat: the first one offers to cancel the user's running jobs
/// (a job is not something to kill by reflex); a second one in a row leaves.
#[derive(Default)]
struct CtrlC {
    armed: bool,
}

impl CtrlC {
    /// Another line was sent: the next Ctrl-C is a first one again.
    fn disarm(&mut self) {
        self.armed = false;
    }

    /// Handles one Ctrl-C; `true`: leave now.
    fn pressed(&mut self, app: &app::App, user: &str) -> bool {
        if std::mem::replace(&mut self.armed, true) {
            return true;
        }
        let jobs = app.engine.jobs().running_of(user);
        if jobs.is_empty() {
            outln!("(再按 Ctrl-C 或按 Ctrl-D 退出)");
        }
        for (id, command) in jobs {
            outln!(
                "{id} 运行中({command}):发送 取消:{id} 取消它,再按 Ctrl-C 退出(运行中的任务会被中断)"
            );
        }
        false
    }
}

/// The second Ctrl-C: what still runs is interrupted (and recorded so), as on SIGTERM,
/// and what the user is told of it is printed before leaving.
async fn leave_on_ctrl_c(
    app: &app::App,
    sink: Arc<dyn ReplySink>,
    printer: tokio::task::JoinHandle<()>,
) -> ExitCode {
    if app.engine.jobs().running_count() > 0 {
        app.engine.jobs().interrupt_all("收到 Ctrl-C").await;
    }
    drop(sink);
    // The printer ends once the stopped jobs have let go of their sinks.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), printer).await;
    ExitCode::from(130)
}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".opsbot_history"))
}

async fn interactive(app: &app::App, user: String, yes: bool) -> Result<ExitCode> {
    let mut editor = rustyline::DefaultEditor::new().context("opening the terminal")?;
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    // Job progress arrives while the user types: print it above the prompt.
    let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
    let sink: Arc<dyn ReplySink> = Arc::new(tx);
    let printer = editor.create_external_printer().ok();
    let printer_task = tokio::spawn(async move {
        let mut printer = printer;
        while let Some(reply) = rx.recv().await {
            match printer.as_mut() {
                Some(p) => {
                    let _ = p.print(format!("{}\n", reply.text));
                }
                None => outln!("{}", reply.text),
            }
        }
    });

    outln!(
        "opsbot {} · 用户 {user} · 存储 {} · 发送 帮助 查看命令,菜单 打开数字菜单,Ctrl-D 退出",
        env!("CARGO_PKG_VERSION"),
        store_label(&app.config.store.url)
    );
    let (line_tx, mut line_rx) = mpsc::channel::<Input>(1);
    let (ack_tx, ack_rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        loop {
            let input = match editor.readline("opsbot> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    Input::Line(line)
                }
                // Ctrl-C at the prompt (a terminal in raw mode sends no SIGINT).
                Err(ReadlineError::Interrupted) => Input::CtrlC,
                Err(_) => {
                    let _ = line_tx.blocking_send(Input::End);
                    break;
                }
            };
            if line_tx.blocking_send(input).is_err() || ack_rx.recv().is_err() {
                break;
            }
        }
        if let Some(h) = history {
            let _ = editor.save_history(&h);
        }
    });

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    // SIGINT while a command runs or off a terminal: the same as Ctrl-C at the prompt.
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut ctrl_c = CtrlC::default();
    loop {
        tokio::select! {
            input = line_rx.recv() => {
                match input {
                    Some(Input::Line(line)) => {
                        ctrl_c.disarm();
                        if !line.trim().is_empty() {
                            let msg = Incoming { channel: CHANNEL.into(), user: user.clone(), chat: None, text: line, assume_yes: yes };
                            let response = app.engine.handle(msg, sink.clone()).await;
                            outln!("{}", response.text);
                        }
                    }
                    Some(Input::CtrlC) => {
                        if ctrl_c.pressed(app, &user) {
                            return Ok(leave_on_ctrl_c(app, sink, printer_task).await);
                        }
                    }
                    Some(Input::End) | None => break,
                }
                let _ = ack_tx.send(());
            }
            _ = int.recv() => {
                if ctrl_c.pressed(app, &user) {
                    return Ok(leave_on_ctrl_c(app, sink, printer_task).await);
                }
            }
            _ = term.recv() => {
                app.engine.jobs().interrupt_all("收到 SIGTERM").await;
                return Ok(ExitCode::from(143));
            }
        }
    }
    let running = app.engine.jobs().running_count();
    if running > 0 {
        outln!("还有 {running} 个任务在运行,等待完成(Ctrl-C 中断)…");
        tokio::select! {
            _ = app.engine.jobs().wait_idle(std::time::Duration::from_secs(24 * 3600)) => {}
            _ = int.recv() => { app.engine.jobs().interrupt_all("收到 Ctrl-C").await; }
            _ = term.recv() => { app.engine.jobs().interrupt_all("收到 SIGTERM").await; }
        }
    }
    drop(sink);
    let _ = reader.join();
    // The jobs' last words (how each ended) may still be on their way to the printer,
    // which ends once the finished jobs have let go of their sinks.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), printer_task).await;
    Ok(ExitCode::SUCCESS)
}

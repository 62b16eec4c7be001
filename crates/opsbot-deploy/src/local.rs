//! Commands run on the opsbot host (release-wide hooks, scale hooks): `sh -c` with the
//! OPSBOT_* environment, output lines to a log, killed with their process group at the
//! timeout.

use crate::log::LogSink;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Runs `command`; `Err` says how it failed (exit code, timeout, not started).
pub async fn run(
    command: &str,
    env: &[(String, String)],
    dir: Option<&Path>,
    timeout: Duration,
    log: &dyn LogSink,
) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().map_err(|e| format!("无法启动: {e}"))?;
    let pid = child.id();
    let out = child.stdout.take().map(BufReader::new);
    let err = child.stderr.take().map(BufReader::new);
    let pump = async {
        let mut lines_out = out.map(|o| o.lines());
        let mut lines_err = err.map(|e| e.lines());
        loop {
            tokio::select! {
                l = async { match lines_out.as_mut() { Some(o) => o.next_line().await, None => Ok(None) } }, if lines_out.is_some() => {
                    match l { Ok(Some(l)) => log.line(&l), _ => lines_out = None }
                }
                l = async { match lines_err.as_mut() { Some(e) => e.next_line().await, None => Ok(None) } }, if lines_err.is_some() => {
                    match l { Ok(Some(l)) => log.line(&l), _ => lines_err = None }
                }
                else => break,
            }
        }
        child.wait().await
    };
    match tokio::time::timeout(timeout, pump).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(match status.code() {
            Some(c) => format!("退出码 {c}"),
            None => "被信号终止".into(),
        }),
        Ok(Err(e)) => Err(format!("等待失败: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                // The whole group: a hook's own children must not outlive it.
                let _ = nix_kill_group(pid);
            }
            Err(format!("超过 {}s 未结束,已终止", timeout.as_secs()))
        }
    }
}

fn nix_kill_group(pid: u32) -> std::io::Result<()> {
    std::process::Command::new("kill")
        .arg("-KILL")
        .arg(format!("-{pid}"))
        .status()
        .map(|_| ())
}

//! Commands run on the opsbot host (release-wide hooks, scale hooks): `sh -c` with the
//! OPSBOT_* variables of the order (never opsbot's own configuration), output lines to a
//! log, killed with their process group at the timeout — the same runner builds use
//! ([`crate::build::exec`]).

use crate::build::{command_for, exec, BuildError};
use crate::log::LogSink;
use std::path::Path;
use std::time::Duration;

/// Runs `command`; `Err` says how it failed (exit code, timeout, not started).
pub async fn run(
    command: &str,
    env: &[(String, String)],
    dir: Option<&Path>,
    timeout: Duration,
    log: &dyn LogSink,
) -> Result<(), String> {
    let mut cmd = command_for("sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    match exec(cmd, "hook", Some(log), false, deadline, timeout).await {
        Ok(ran) if ran.code == 0 => Ok(()),
        Ok(ran) => Err(format!("退出码 {}", ran.code)),
        Err(BuildError::Timeout { .. }) => {
            Err(format!("超过 {}s 未结束,已终止", timeout.as_secs()))
        }
        Err(e) => Err(format!("无法运行: {e}")),
    }
}

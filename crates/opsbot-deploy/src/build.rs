//! A build (seed 003's `getcode` + `mavenProject`): fetch the project's code at a
//! reference into a fresh work directory, run its build commands one after another with
//! every output line streamed to a [`LogSink`], stop at the first failing one, and pack
//! the artefact into the [`ArtefactStore`]. Also the process runner the fetch uses: every
//! program runs in its own process group, killed whole at the deadline.

use crate::artefacts::ArtefactStore;
use crate::config::Project;
use crate::log::LogSink;
use crate::vcs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `what` is "branch, tag or commit", "revision" or "path".
    #[error("{what} {reference:?} not found in {url}")]
    UnknownReference {
        what: &'static str,
        reference: String,
        url: String,
    },
    /// A reference that could be read as an option or a revision range is refused
    /// before any program sees it.
    #[error("{reference:?} is not a branch, tag, commit or revision: {why}")]
    InvalidReference {
        reference: String,
        why: &'static str,
    },
    #[error("cannot fetch from {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("build command `{command}` failed with exit code {code}")]
    CommandFailed { command: String, code: i32 },
    #[error("{what} did not finish within {}s and was stopped", after.as_secs())]
    Timeout { what: String, after: Duration },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("nothing to pack: no file of artefact.path matches artefact.include / exclude")]
    Empty,
}

impl BuildError {
    pub fn io(context: impl Into<String>, source: io::Error) -> BuildError {
        BuildError::Io {
            context: context.into(),
            source,
        }
    }
}

pub struct BuildRequest<'a> {
    pub project: &'a Project,
    /// Branch, tag or commit (git), revision or path (svn); "" = the project's default.
    pub reference: &'a str,
    pub build_id: i64,
    /// The revision of the project's previous build: the change log starts after it.
    pub previous_revision: Option<&'a str>,
    /// `<data_dir>/work`.
    pub work_root: &'a Path,
    /// For the whole build: fetch, commands and packing.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// A full commit id (git) or a revision number (svn).
    pub revision: String,
    pub changelog: String,
    /// The artefact's sha256 in the store.
    pub artefact: String,
    pub size: u64,
}

/// Fresh `<work_root>/<project>-<build_id>`, removed afterwards (also on failure).
pub async fn run(
    req: &BuildRequest<'_>,
    store: &ArtefactStore,
    log: &dyn LogSink,
) -> Result<Built, BuildError> {
    let deadline = Instant::now() + req.timeout;
    let work = req
        .work_root
        .join(format!("{}-{}", dir_name(&req.project.name), req.build_id));
    // A folder of the same name is a leftover of a crash: the build starts from nothing.
    remove_dir(&work).await?;
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(|e| BuildError::io(format!("creating {}", work.display()), e))?;
    // Removes the folder if this future is dropped mid-way (an aborted order).
    let mut guard = WorkDir(Some(work.clone()));
    let result = build_in(req, &work, deadline, store, log).await;
    guard.0 = None;
    let removed = remove_dir(&work).await;
    let built = result?;
    removed?;
    Ok(built)
}

async fn build_in(
    req: &BuildRequest<'_>,
    work: &Path,
    deadline: Instant,
    store: &ArtefactStore,
    log: &dyn LogSink,
) -> Result<Built, BuildError> {
    let p = req.project;
    let left = deadline.saturating_duration_since(Instant::now());
    let checkout = vcs::fetch(
        &p.repo,
        req.reference,
        work,
        req.previous_revision,
        log,
        left,
    )
    .await?;
    let build_id = req.build_id.to_string();
    for command in &p.build {
        log.line(&format!("$ {command}"));
        let mut cmd = command_for("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(work)
            .env("OPSBOT_PROJECT", &p.name)
            .env("OPSBOT_REVISION", &checkout.revision)
            .env("OPSBOT_BUILD", &build_id);
        let what = format!("build command `{command}`");
        let ran = exec(cmd, &what, Some(log), false, deadline, req.timeout).await?;
        if ran.code != 0 {
            log.line(&format!("exit code {}", ran.code));
            return Err(BuildError::CommandFailed {
                command: command.clone(),
                code: ran.code,
            });
        }
    }
    let from = artefact_dir(work, &p.artefact.path).await?;
    log.line(&format!("packing {}", p.artefact.path));
    // Packing cannot be interrupted (blocking file work), but the build still ends at its
    // deadline; an unfinished pack then stores nothing anyone names (or a complete file
    // under its own sha, which is harmless).
    let (artefact, size) = tokio::time::timeout_at(
        deadline,
        store.pack(&from, &p.artefact.include, &p.artefact.exclude),
    )
    .await
    .map_err(|_| BuildError::Timeout {
        what: "packing the artefact".into(),
        after: req.timeout,
    })??;
    log.line(&format!("artefact {artefact} ({size} bytes)"));
    Ok(Built {
        revision: checkout.revision,
        changelog: checkout.changelog,
        artefact,
        size,
    })
}

/// `artefact.path` in the checkout, refused when it (through a link) leads outside.
async fn artefact_dir(work: &Path, path: &str) -> Result<PathBuf, BuildError> {
    let canon = |p: PathBuf| async move {
        tokio::fs::canonicalize(&p)
            .await
            .map_err(|e| BuildError::io(format!("artefact.path {path:?} after the build"), e))
    };
    let root = canon(work.to_path_buf()).await?;
    let dir = canon(work.join(path.trim_start_matches('/'))).await?;
    if !dir.starts_with(&root) {
        return Err(BuildError::io(
            format!("artefact.path {path:?}"),
            io::Error::new(io::ErrorKind::InvalidInput, "it leads outside the checkout"),
        ));
    }
    Ok(dir)
}

/// The project's name as a folder name: anything but `[A-Za-z0-9._-]` becomes `_`.
fn dir_name(project: &str) -> String {
    let s: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

async fn remove_dir(dir: &Path) -> Result<(), BuildError> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(BuildError::io(format!("removing {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

struct WorkDir(Option<PathBuf>);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A program with opsbot's environment minus its own `OPSBOT_*` variables: opsbot's
/// configuration arrives through them (figment) and may hold secrets no build should see.
pub(crate) fn command_for(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OPSBOT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub(crate) struct Ran {
    /// The exit code; 128 + the signal when a signal ended it (as shells report it).
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Kept of a captured stream: enough for `git log` of a few hundred commits.
const STDOUT_CAP: usize = 4 << 20;
const STDERR_CAP: usize = 64 << 10;
/// Longer output lines are cut into pieces this long (a minified file printed whole).
const LINE_CAP: usize = 4096;
/// After the program ended and its group was killed, how long its pipes may stay open
/// (held by a process that left the group with `setsid`) before reading stops.
const DRAIN: Duration = Duration::from_secs(5);

/// Kills the whole process group when dropped.
struct Group(Option<i32>);

impl Group {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            // The group may be gone already (ESRCH): nothing left to stop.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `cmd` in its own process group until it exits or `deadline`. Output lines go to
/// `log` as they come (stdout and stderr, in the order they arrive); with `capture`,
/// stdout and stderr are also returned. When the program ends, whatever it left running
/// in its group is killed, so a background `sleep 999` never outlives its build.
pub(crate) async fn exec(
    mut cmd: Command,
    what: &str,
    log: Option<&dyn LogSink>,
    capture: bool,
    deadline: Instant,
    budget: Duration,
) -> Result<Ran, BuildError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| BuildError::io(format!("cannot start {what}"), e))?;
    let mut group = Group(child.id().and_then(|p| i32::try_from(p).ok()));
    let out = child.stdout.take();
    let err = child.stderr.take();
    let (mut kept_out, mut kept_err) = (Vec::new(), Vec::new());
    let (out_cap, err_cap) = if capture {
        (STDOUT_CAP, STDERR_CAP)
    } else {
        (0, 0)
    };
    let status = {
        let mut pumps = Box::pin(async {
            tokio::join!(
                pump(out, log, &mut kept_out, out_cap),
                pump(err, log, &mut kept_err, err_cap)
            )
        });
        let mut drained = false;
        let waited = {
            let wait = tokio::time::timeout_at(deadline, child.wait());
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    w = &mut wait => break w,
                    _ = &mut pumps, if !drained => drained = true,
                }
            }
        };
        group.kill();
        if !drained {
            let _ = tokio::time::timeout(DRAIN, &mut pumps).await;
        }
        waited
    };
    let status = match status {
        Err(_) => {
            if let Some(log) = log {
                log.line(&format!(
                    "stopped: {what} ran past the build's {}s",
                    budget.as_secs()
                ));
            }
            return Err(BuildError::Timeout {
                what: what.to_string(),
                after: budget,
            });
        }
        Ok(s) => s.map_err(|e| BuildError::io(format!("waiting for {what}"), e))?,
    };
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt as _;
        128 + status.signal().unwrap_or(0)
    });
    Ok(Ran {
        code,
        stdout: kept_out,
        stderr: kept_err,
    })
}

/// Reads `from` to its end: each line to `log`, the first `cap` bytes into `keep`.
/// A line ends at `\n` or `\r` (progress output redraws its line with `\r`).
async fn pump(
    from: Option<impl AsyncRead + Unpin>,
    log: Option<&dyn LogSink>,
    keep: &mut Vec<u8>,
    cap: usize,
) {
    let Some(mut from) = from else { return };
    let mut chunk = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let mut after_cr = false;
    let emit = |line: &mut Vec<u8>| {
        if let Some(log) = log {
            log.line(&String::from_utf8_lossy(line));
        }
        line.clear();
    };
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let room = cap.saturating_sub(keep.len());
        keep.extend_from_slice(&chunk[..n.min(room)]);
        if log.is_none() {
            continue;
        }
        for &b in &chunk[..n] {
            match b {
                b'\n' if after_cr => after_cr = false,
                b'\n' | b'\r' => {
                    after_cr = b == b'\r';
                    emit(&mut line);
                }
                _ => {
                    after_cr = false;
                    line.push(b);
                    if line.len() >= LINE_CAP {
                        emit(&mut line);
                    }
                }
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Orders spawn builds on the runtime: the future must be `Send` (checked by
    /// compiling).
    #[allow(dead_code)]
    fn a_build_can_be_spawned(req: &BuildRequest<'_>, store: &ArtefactStore, log: &dyn LogSink) {
        fn send<T: Send>(_: T) {}
        send(run(req, store, log));
    }

    #[test]
    fn folder_names_stay_plain() {
        assert_eq!(dir_name("shop"), "shop");
        assert_eq!(dir_name("../x y"), "_.._x_y");
        assert_eq!(dir_name("商城"), "__");
    }
}

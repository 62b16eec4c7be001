//! The Salt transport: a release's steps through a team's salt-master, so its minions
//! need no SSH key from opsbot. Each step's script runs with `cmd.run_all`
//! (`python_shell`, wrapped in `timeout` like the SSH steps) on one minion through
//! salt-api's `local` client; the artefact is copied once into the master's file root
//! (`<file_root>/opsbot/<sha256>.tar.gz`), fetched by each minion with `cp.get_file`
//! into the deploy root and checked against its sha256 there before it is unpacked.
//!
//! A minion that does not answer `test.ping` within `[deploy] connect_timeout` fails its
//! host as 未响应 before any step; one that stops answering during a step fails that
//! step the same way. salt-api down or refusing opsbot's login fails the order before
//! its first host ([`SaltTransport::check`]).

use crate::config::{SaltDeployConfig, SaltTarget};
use crate::log::LogSink;
use crate::ssh::{shell_quote, Output, TAIL_LINES};
use crate::transport::{Artefact, HostLink, LinkError};
use async_trait::async_trait;
use opsbot_salt::{MinionReturn, SaltApi, SaltError, Target};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much longer than a script's own time salt waits for its return: the host's
/// `timeout -k 5` kills it 5 s after its time, then the minion sends what it printed.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// Longer lines are cut for the log (a binary file printed by mistake), as over SSH.
const MAX_LINE: usize = 4096;

/// Why a step could not run on a minion, or salt-api could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaltFailure {
    #[error("minion {minion} 未响应")]
    NoAnswer { minion: String },
    #[error("minion {minion} 不在 salt-master 上(id 不存在或其密钥未被接受)")]
    Unknown { minion: String },
    /// The minion answered something other than what the function returns.
    #[error("minion {minion}: {text}")]
    Refused { minion: String, text: String },
    #[error(transparent)]
    Api(#[from] SaltError),
    /// The artefact could not be put where the master serves it.
    #[error("{0}")]
    Stage(String),
}

/// The Salt side of `[deploy.salt]`: the salt-api client (its login cached) and the
/// master's file root.
pub struct SaltTransport {
    api: SaltApi,
    file_root: PathBuf,
    /// How long a minion has to answer `test.ping` (`[deploy] connect_timeout`).
    answer: Duration,
    /// One copy into the file root at a time: hosts of a batch fetch the same file.
    staging: tokio::sync::Mutex<()>,
}

impl SaltTransport {
    /// A transport for `cfg`; no network yet. `answer`: how long a minion has to answer
    /// before it counts as down.
    pub fn new(cfg: &SaltDeployConfig, answer: Duration) -> Result<SaltTransport, SaltError> {
        Ok(SaltTransport {
            api: SaltApi::new(&cfg.api)?,
            file_root: PathBuf::from(&cfg.file_root),
            answer,
            staging: tokio::sync::Mutex::new(()),
        })
    }

    /// Logs in to salt-api: `Err` says why salt cannot be used at all.
    pub async fn check(&self) -> Result<(), String> {
        self.api
            .login()
            .await
            .map_err(|e| format!("无法通过 Salt 发布: {e}"))
    }

    /// A link to `minion` once it answers `test.ping`.
    pub async fn connect(self: &Arc<Self>, minion: &str) -> Result<SaltLink, SaltFailure> {
        let link = SaltLink {
            salt: self.clone(),
            minion: minion.to_string(),
        };
        link.call("test.ping", &[], None, self.answer).await?;
        Ok(link)
    }

    /// The minion ids `target` matches on the master (those that did not answer too:
    /// their hosts fail as 未响应 when released to, rather than being left out unseen).
    pub async fn minions(&self, target: &SaltTarget) -> Result<Vec<String>, SaltError> {
        let got = self
            .api
            .local(&target.to_salt(), "test.ping", &[], None, self.answer)
            .await?;
        Ok(got.into_keys().collect())
    }

    /// Puts the artefact at `<file_root>/opsbot/<sha256>.tar.gz` (once: the name is its
    /// content) and gives its `salt://` URL.
    async fn stage(&self, a: &Artefact) -> Result<String, SaltFailure> {
        if !crate::artefacts::is_sha256(&a.sha256) {
            return Err(SaltFailure::Stage(format!(
                "制品的 sha256 {:?} 无效",
                a.sha256
            )));
        }
        let _one = self.staging.lock().await;
        let dir = self.file_root.join("opsbot");
        let name = format!("{}.tar.gz", a.sha256);
        let dest = dir.join(&name);
        let want = tokio::fs::metadata(&a.path)
            .await
            .map_err(|e| SaltFailure::Stage(format!("读取制品 {} 失败: {e}", a.path.display())))?
            .len();
        let staged = tokio::fs::metadata(&dest).await.map(|m| m.len()).ok();
        if staged != Some(want) {
            let fail = |what: &str, e: std::io::Error| {
                SaltFailure::Stage(format!(
                    "{what} {} 失败(opsbot 需要与 salt-master 共享 [deploy.salt] file_root): {e}",
                    dir.display()
                ))
            };
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| fail("创建", e))?;
            // Copied beside, then renamed: a minion never fetches half a file.
            let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
            tokio::fs::copy(&a.path, &tmp)
                .await
                .map_err(|e| fail("复制制品到", e))?;
            // The master may run as another user: it must be able to read the file.
            use std::os::unix::fs::PermissionsExt as _;
            let _ = tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).await;
            tokio::fs::rename(&tmp, &dest)
                .await
                .map_err(|e| fail("复制制品到", e))?;
        }
        Ok(format!("salt://opsbot/{name}"))
    }
}

/// One minion of a release, reached through salt-api.
pub struct SaltLink {
    salt: Arc<SaltTransport>,
    minion: String,
}

impl SaltLink {
    pub fn minion(&self) -> &str {
        &self.minion
    }

    /// `fun` on this minion alone: its return, or why there is none.
    async fn call(
        &self,
        fun: &str,
        args: &[Value],
        kwargs: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, SaltFailure> {
        let target = Target::List(vec![self.minion.clone()]);
        let mut got = self
            .salt
            .api
            .local(&target, fun, args, kwargs, timeout)
            .await?;
        match got.remove(&self.minion) {
            Some(MinionReturn::Ok(v)) => Ok(v),
            Some(MinionReturn::NoAnswer) => Err(SaltFailure::NoAnswer {
                minion: self.minion.clone(),
            }),
            None => Err(SaltFailure::Unknown {
                minion: self.minion.clone(),
            }),
        }
    }

    /// `cmd.run_all` of `script` in `sh`, killed on the minion at `timeout`.
    async fn run(
        &self,
        script: &str,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, LinkError> {
        let command = format!(
            "timeout -k 5 {:.3} sh -c {}",
            timeout.as_secs_f64(),
            shell_quote(script)
        );
        let started = Instant::now();
        let ret = self
            .call(
                "cmd.run_all",
                &[json!(command)],
                // A failing step is an answer here, not an error for the minion's log.
                Some(json!({"python_shell": true, "ignore_retcode": true})),
                timeout + KILL_GRACE,
            )
            .await?;
        let run = opsbot_salt::response::run_all_of(MinionReturn::Ok(ret)).map_err(|text| {
            SaltFailure::Refused {
                minion: self.minion.clone(),
                text,
            }
        })?;
        if (run.retcode == 124 || run.retcode == 137) && started.elapsed() >= timeout {
            return Err(LinkError::Timeout(timeout));
        }
        // salt gives the two streams apart, at the end: stdout's lines, then stderr's.
        let mut tail: Vec<String> = Vec::new();
        for text in [&run.stdout, &run.stderr] {
            for line in text.lines() {
                let line = cut(line);
                log.line(&line);
                tail.push(line);
            }
        }
        let tail = tail[tail.len().saturating_sub(TAIL_LINES)..].join("\n");
        Ok(Output {
            code: run.retcode,
            tail,
        })
    }
}

#[async_trait]
impl HostLink for SaltLink {
    async fn exec(
        &self,
        script: &str,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, LinkError> {
        self.run(script, timeout, log).await
    }

    async fn exec_with_artefact(
        &self,
        script: &str,
        artefact: &Artefact,
        fetch_to: &str,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, LinkError> {
        let started = Instant::now();
        let url = self.salt.stage(artefact).await?;
        let got = self
            .call(
                "cp.get_file",
                &[json!(url), json!(fetch_to)],
                Some(json!({"makedirs": true})),
                timeout,
            )
            .await?;
        // The destination's path, or "" / false when the master had no such file.
        if got.as_str().is_none_or(str::is_empty) {
            return Err(SaltFailure::Refused {
                minion: self.minion.clone(),
                text: format!(
                    "cp.get_file 未取到 {url}(salt-master 的 file_roots 是否包含 [deploy.salt] file_root?): {got}"
                ),
            }
            .into());
        }
        log.line(&format!("已通过 cp.get_file 取得 {url}"));
        let script = format!(
            "A={a}\nif ! printf '%s  %s\\n' {sha} \"$A\" | sha256sum -c --status; then\n  echo \"$A does not match sha256 {sha}\" >&2\n  rm -f \"$A\"\n  exit 5\nfi\n{script}",
            a = shell_quote(fetch_to),
            sha = artefact.sha256,
        );
        let left = timeout.saturating_sub(started.elapsed());
        self.run(&script, left.max(Duration::from_secs(1)), log)
            .await
    }

    async fn close(self: Box<Self>) {}
}

fn cut(line: &str) -> String {
    if line.len() <= MAX_LINE {
        return line.to_string();
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

//! The steps a release runs on one host, over its [`HostLink`] (SSH or Salt): unpack the
//! artefact into `<root>/releases/<id>/`, run hooks, switch `<root>/current` atomically,
//! check health, prune old releases. Each step is one `sh` script on the host (one
//! multiplexed SSH exec, or one `cmd.run_all`), with every value in it quoted; the
//! layout on the host is
//!
//! ```text
//! <root>/releases/<id>/      one per release, complete or absent
//! <root>/releases/.<id>.tmp  being unpacked (never taken for a release)
//! <root>/releases/.<id>.tmp.tar.gz  the artefact a copying transport (Salt) fetched
//! <root>/current             symlink to releases/<id> (relative), replaced by rename
//! ```

use crate::log::LogSink;
use crate::salt::SaltFailure;
use crate::ssh::{shell_quote, Output, SshError};
use crate::transport::{Artefact, HostLink, LinkError};
use std::sync::Mutex;
use std::time::Duration;

/// Where a project lives on its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The deploy root: an absolute folder other than `/`.
    pub root: String,
}

impl Layout {
    pub fn new(root: impl Into<String>) -> Layout {
        Layout { root: root.into() }
    }

    /// `set -e` and `R=<root>`, the start of every step's script.
    fn prologue(&self) -> String {
        format!("set -e\nR={}\n", shell_quote(&self.root))
    }
}

/// Why a step failed on a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Salt(#[from] SaltFailure),
    #[error("step {step} exited with code {code}: {tail}")]
    Exit {
        step: &'static str,
        code: i32,
        tail: String,
    },
    #[error("no space left on the host's disk: {tail}")]
    DiskFull { tail: String },
    #[error("step {step} did not finish in time and was killed")]
    Timeout { step: &'static str },
    /// A value the step refuses to send (an environment variable's name, …) or an
    /// answer it does not understand.
    #[error("{0}")]
    Invalid(String),
}

/// Steps that only look (current, versions, prune's removal) take at most this.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Marks the lines a step prints for this code to read.
const MARK: &str = "@@opsbot:";

impl StepError {
    /// The host did not answer at all (SSH lost, minion silent): trying the step again
    /// on it cannot help.
    pub fn host_gone(&self) -> bool {
        matches!(
            self,
            StepError::Ssh(_) | StepError::Salt(SaltFailure::NoAnswer { .. })
        )
    }
}

/// Unpacks the artefact (a `.tar.gz`, streamed once, or fetched by the transport to
/// `releases/.<id>.tmp.tar.gz`) with `tar -xzf - -C releases/.<id>.tmp`, then renames
/// that to `releases/<id>`: a half-unpacked release never looks complete, and a failed
/// one leaves nothing behind. Creates the layout. "No space left on device" →
/// [`StepError::DiskFull`]. Uploading an existing id replaces it.
pub async fn upload(
    s: &dyn HostLink,
    l: &Layout,
    id: i64,
    artefact: &Artefact,
    timeout: Duration,
    log: &dyn LogSink,
) -> Result<(), StepError> {
    let script = format!(
        "{}ID={id}\n{}",
        l.prologue(),
        r#"T="$R/releases/.$ID.tmp"
O="$R/releases/.$ID.old.$$"
trap 'rm -rf "$T"; if [ "$A" != - ]; then rm -f "$A"; fi' EXIT
mkdir -p "$R/releases"
rm -rf "$T"
mkdir "$T"
if ! tar -xzf "$A" -C "$T" --no-same-owner; then
  # A full disk shows as "Wrote only N of M bytes" as often as ENOSPC: look at the space.
  free=$(df -Pk "$R/releases" 2>/dev/null | awk 'NR == 2 { print $4 }')
  if [ -n "$free" ] && [ "$free" -lt 1024 ]; then
    echo "No space left on device: $free KiB free in $R/releases" >&2
  fi
  exit 2
fi
if [ -e "$R/releases/$ID" ]; then mv -T "$R/releases/$ID" "$O"; fi
mv -T "$T" "$R/releases/$ID"
rm -rf "$O"
"#
    );
    let fetch_to = format!("{}/releases/.{id}.tmp.tar.gz", l.root);
    let out = s
        .exec_with_artefact(&script, artefact, &fetch_to, timeout, log)
        .await;
    checked("upload", out).map(drop)
}

/// The release `current` points at; `None` when there is no `current`.
pub async fn current(s: &dyn HostLink, l: &Layout) -> Result<Option<i64>, StepError> {
    Ok(state(s, l).await?.0)
}

/// The releases on the host, ascending.
pub async fn versions(s: &dyn HostLink, l: &Layout) -> Result<Vec<i64>, StepError> {
    Ok(state(s, l).await?.1)
}

/// Points `current` at `releases/<id>` by renaming a fresh symlink over it: there is
/// never a moment without `current`. Refuses ([`StepError::Exit`]) when the release is
/// not on the host.
pub async fn switch(
    s: &dyn HostLink,
    l: &Layout,
    id: i64,
    timeout: Duration,
) -> Result<(), StepError> {
    let tmp = format!(".current.tmp.{:08x}", rand::random::<u32>());
    let script = format!(
        "{}ID={id}\nL={tmp}\n{}",
        l.prologue(),
        r#"cd "$R"
if [ ! -d "releases/$ID" ]; then echo "releases/$ID is not on this host" >&2; exit 3; fi
ln -sfn "releases/$ID" "$L"
mv -T "$L" current || { rm -f "$L"; exit 1; }
"#
    );
    let log = crate::log::Collect::default();
    checked("switch", s.exec(&script, timeout, &log).await).map(drop)
}

/// Runs a hook `command` (`sh -c`) in `releases/<id>` (in the deploy root while that
/// release is not on the host yet) with `env` exported; `step` names it in errors.
/// Killed at `timeout` ([`StepError::Timeout`]).
#[allow(clippy::too_many_arguments)]
pub async fn hook(
    s: &dyn HostLink,
    l: &Layout,
    id: i64,
    step: &'static str,
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
    log: &dyn LogSink,
) -> Result<(), StepError> {
    let mut script = format!(
        "{}mkdir -p \"$R\"\ncd \"$R/releases/{id}\" 2>/dev/null || cd \"$R\"\n",
        l.prologue()
    );
    for (name, value) in env {
        if !is_env_name(name) {
            return Err(StepError::Invalid(format!(
                "{name:?} is not an environment variable name"
            )));
        }
        script.push_str(&format!("export {name}={}\n", shell_quote(value)));
    }
    script.push_str(&format!("exec sh -c {}\n", shell_quote(command)));
    checked(step, s.exec(&script, timeout, log).await).map(drop)
}

/// Runs the health `command` in `current`, up to `retries + 1` times `interval` apart,
/// each try killed at `timeout`; the last failure when none succeeds.
pub async fn health_command(
    s: &dyn HostLink,
    l: &Layout,
    command: &str,
    timeout: Duration,
    retries: u32,
    interval: Duration,
    log: &dyn LogSink,
) -> Result<(), StepError> {
    let script = format!(
        "{}cd \"$R/current\"\nexec sh -c {}\n",
        l.prologue(),
        shell_quote(command)
    );
    let mut tries = 0;
    loop {
        match checked("health", s.exec(&script, timeout, log).await) {
            Ok(_) => return Ok(()),
            Err(e) if e.host_gone() => return Err(e),
            Err(e) if tries >= retries => return Err(e),
            Err(_) => {}
        }
        tries += 1;
        // The pause between tries is the check's configured interval, not a guess.
        tokio::time::sleep(interval).await;
    }
}

/// Deletes the oldest releases beyond the newest `keep` (by id), never the one
/// `current` points at nor those in `protect`; returns the ids removed.
pub async fn prune(
    s: &dyn HostLink,
    l: &Layout,
    keep: u32,
    protect: &[i64],
    log: &dyn LogSink,
) -> Result<Vec<i64>, StepError> {
    let (current, ids) = state(s, l).await?;
    let remove = prunable(&ids, keep, current, protect);
    if remove.is_empty() {
        return Ok(remove);
    }
    let list: Vec<String> = remove.iter().map(i64::to_string).collect();
    log.line(&format!("removing releases {}", list.join(" ")));
    let script = format!(
        "{}cd \"$R/releases\"\nrm -rf -- {}\n",
        l.prologue(),
        list.join(" ")
    );
    checked("prune", s.exec(&script, QUERY_TIMEOUT, log).await)?;
    Ok(remove)
}

/// The ids [`prune`] removes from `ids` (ascending).
fn prunable(ids: &[i64], keep: u32, current: Option<i64>, protect: &[i64]) -> Vec<i64> {
    let keep = keep as usize;
    let old = ids.len().saturating_sub(keep);
    ids[..old]
        .iter()
        .copied()
        .filter(|id| Some(*id) != current && !protect.contains(id))
        .collect()
}

/// `current`'s release and the releases present (ascending), in one exec.
pub async fn state(s: &dyn HostLink, l: &Layout) -> Result<(Option<i64>, Vec<i64>), StepError> {
    let script = format!(
        "{}{}",
        l.prologue(),
        r#"if [ -L "$R/current" ]; then printf '@@opsbot:current %s\n' "$(readlink "$R/current")"
elif [ -e "$R/current" ]; then printf '@@opsbot:current ?\n'
else printf '@@opsbot:current\n'; fi
printf '@@opsbot:releases'
if [ -d "$R/releases" ]; then
  for d in "$R"/releases/*; do [ -d "$d" ] && printf ' %s' "${d##*/}"; done
fi
printf '\n'
"#
    );
    let marks = Marks::default();
    checked("state", s.exec(&script, QUERY_TIMEOUT, &marks).await)?;
    let current = marks.get("current").unwrap_or_default();
    let current = match current.as_str() {
        "" => None,
        target => Some(release_id(target).ok_or_else(|| {
            StepError::Invalid(format!(
                "{}/current is not a link to releases/<id> (it is {target})",
                l.root
            ))
        })?),
    };
    let mut ids: Vec<i64> = marks
        .get("releases")
        .unwrap_or_default()
        .split_whitespace()
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|n| n.parse().ok())
        .collect();
    ids.sort_unstable();
    Ok((current, ids))
}

/// `releases/12` (or `/srv/app/releases/12/`) → 12.
fn release_id(target: &str) -> Option<i64> {
    let target = target.trim_end_matches('/');
    let (dir, id) = target.rsplit_once('/')?;
    if dir != "releases" && !dir.ends_with("/releases") {
        return None;
    }
    id.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| id.parse().ok())
        .flatten()
}

fn is_env_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A step's exec result as the step's outcome.
fn checked(step: &'static str, out: Result<Output, LinkError>) -> Result<Output, StepError> {
    match out {
        Err(LinkError::Ssh(SshError::Timeout { .. }) | LinkError::Timeout(_)) => {
            Err(StepError::Timeout { step })
        }
        Err(LinkError::Ssh(e)) => Err(StepError::Ssh(e)),
        Err(LinkError::Salt(e)) => Err(StepError::Salt(e)),
        Ok(o) if o.code == 0 => Ok(o),
        Ok(o) if o.tail.contains("No space left on device") => {
            Err(StepError::DiskFull { tail: o.tail })
        }
        Ok(o) => Err(StepError::Exit {
            step,
            code: o.code,
            tail: o.tail,
        }),
    }
}

/// Keeps the `@@opsbot:<name> <value>` lines a step prints.
#[derive(Default)]
struct Marks(Mutex<Vec<(String, String)>>);

impl LogSink for Marks {
    fn line(&self, text: &str) {
        if let Some(rest) = text.strip_prefix(MARK) {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            self.0
                .lock()
                .expect("marks lock")
                .push((k.to_string(), v.to_string()));
        }
    }
}

impl Marks {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .lock()
            .expect("marks lock")
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_and_never_current_or_protected() {
        let ids = [1, 2, 3, 4, 5, 6, 7];
        assert_eq!(prunable(&ids, 3, Some(7), &[]), vec![1, 2, 3, 4]);
        assert_eq!(prunable(&ids, 3, Some(2), &[]), vec![1, 3, 4]);
        assert_eq!(prunable(&ids, 3, Some(7), &[1, 4]), vec![2, 3]);
        assert_eq!(prunable(&ids, 10, Some(7), &[]), Vec::<i64>::new());
        assert_eq!(prunable(&ids, 0, Some(5), &[]), vec![1, 2, 3, 4, 6, 7]);
        assert_eq!(prunable(&[], 3, None, &[]), Vec::<i64>::new());
    }

    #[test]
    fn current_targets_are_read_as_release_ids() {
        assert_eq!(release_id("releases/12"), Some(12));
        assert_eq!(release_id("/srv/app/releases/7/"), Some(7));
        assert_eq!(release_id("releases/.7.tmp"), None);
        assert_eq!(release_id("elsewhere/7"), None);
        assert_eq!(release_id("?"), None);
    }

    #[test]
    fn env_names_are_checked() {
        assert!(is_env_name("OPSBOT_RELEASE") && is_env_name("_x1"));
        for bad in ["", "1A", "A-B", "A B", "A=B", "$(id)", "A\nB"] {
            assert!(!is_env_name(bad), "{bad:?}");
        }
    }
}

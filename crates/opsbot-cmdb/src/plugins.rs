//! External collectors: every executable in a folder is run with a timeout and must
//! print one JSON object of facts on stdout. Its output lands in the report under the
//! plug-in's name (`plugin.<name>.<key>`), checked like the rest of the report. A
//! plug-in that hangs, crashes, floods or prints garbage becomes a [`Problem`] and the
//! others still run: they all run at once, each in its own process group so a timeout
//! kills whatever it started too.

use crate::facts::{valid_name, Problem, ProblemKind};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How plug-ins are run.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    pub dir: PathBuf,
    pub timeout: Duration,
    /// Output beyond this is refused (the plug-in is killed).
    pub max_output: usize,
}

impl PluginSettings {
    pub fn new(dir: impl Into<PathBuf>) -> PluginSettings {
        PluginSettings {
            dir: dir.into(),
            timeout: Duration::from_secs(10),
            max_output: 256 * 1024,
        }
    }
}

/// What the plug-ins produced: facts by plug-in name, and what went wrong.
#[derive(Debug, Default)]
pub struct PluginOutput {
    pub facts: BTreeMap<String, Value>,
    pub problems: Vec<Problem>,
}

/// The plug-in name of a file: its name without extension (`raid.sh` → `raid`).
fn plugin_name(path: &Path) -> Option<String> {
    Some(path.file_stem()?.to_string_lossy().into_owned())
}

/// Runs every executable in `settings.dir` (sorted by name) at once.
pub async fn run_all(settings: &PluginSettings) -> PluginOutput {
    let mut out = PluginOutput::default();
    let entries = match std::fs::read_dir(&settings.dir) {
        Ok(e) => e,
        Err(e) => {
            out.problems.push(Problem::new(
                "plugins",
                ProblemKind::Unreadable,
                Some(&settings.dir.display().to_string()),
                format!("cannot read the plug-in folder: {e}"),
            ));
            return out;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    let mut runs = Vec::new();
    for path in paths {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file.starts_with('.') || file.ends_with('~') {
            continue;
        }
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            _ => continue,
        };
        let shown = path.display().to_string();
        let Some(name) = plugin_name(&path).filter(|n| valid_name(n)) else {
            out.problems.push(Problem::new(
                "plugins",
                ProblemKind::Skipped,
                Some(&shown),
                "the name must be letters, digits, '-' or '_' (plus an extension)".into(),
            ));
            continue;
        };
        if meta.permissions().mode() & 0o111 == 0 {
            out.problems.push(Problem::new(
                &format!("plugin:{name}"),
                ProblemKind::Skipped,
                Some(&shown),
                "not executable (chmod +x to enable it)".into(),
            ));
            continue;
        }
        if out.facts.contains_key(&name) || runs.iter().any(|(n, _)| n == &name) {
            out.problems.push(Problem::new(
                &format!("plugin:{name}"),
                ProblemKind::Skipped,
                Some(&shown),
                "another plug-in has the same name".into(),
            ));
            continue;
        }
        runs.push((name.clone(), run_one(path, settings)));
    }
    let names: Vec<String> = runs.iter().map(|(n, _)| n.clone()).collect();
    let results = futures::future::join_all(runs.into_iter().map(|(_, f)| f)).await;
    for (name, result) in names.into_iter().zip(results) {
        match result {
            Ok(v) => {
                out.facts.insert(name, v);
            }
            Err((kind, message)) => {
                out.problems
                    .push(Problem::new(&format!("plugin:{name}"), kind, None, message))
            }
        }
    }
    out
}

/// Kills the plug-in's whole process group (it may have started children).
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

async fn run_one(path: PathBuf, settings: &PluginSettings) -> Result<Value, (ProblemKind, String)> {
    let mut child = tokio::process::Command::new(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("OPSBOT_PLUGIN_API", "1")
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| (ProblemKind::Failed, format!("cannot start: {e}")))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let limit = settings.max_output;
    // stderr is drained in its own task (keeping its start) so a chatty plug-in never
    // blocks on it, and so a flood on stdout is noticed as soon as it passes the limit.
    let err_task = tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stderr.read(&mut chunk).await {
                Ok(0) | Err(_) => return kept,
                Ok(n) => {
                    let room = 4096usize.saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
    });
    let work = async {
        let mut out = Vec::new();
        (&mut stdout)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .await
            .map_err(|e| (ProblemKind::Failed, format!("reading its output: {e}")))?;
        if out.len() > limit {
            return Err((
                ProblemKind::Garbage,
                format!("printed more than {limit} bytes"),
            ));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| (ProblemKind::Failed, format!("waiting for it: {e}")))?;
        Ok((status, out))
    };
    let (status, out) = match tokio::time::timeout(settings.timeout, work).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            kill_group(pid);
            return Err(e);
        }
        Err(_) => {
            kill_group(pid);
            return Err((
                ProblemKind::Timeout,
                format!("no answer within {:?}; killed", settings.timeout),
            ));
        }
    };
    // Children it left behind (daemonised helpers) go with it.
    kill_group(pid);
    let err = err_task.await.unwrap_or_default();
    if !status.success() {
        let why = String::from_utf8_lossy(&err);
        let why = why
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let code = match status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".into(),
        };
        return Err((
            ProblemKind::Failed,
            if why.is_empty() {
                code
            } else {
                format!("{code}: {why}")
            },
        ));
    }
    let value: Value = serde_json::from_slice(&out).map_err(|e| {
        let head: String = String::from_utf8_lossy(&out).chars().take(40).collect();
        (
            ProblemKind::Garbage,
            format!("not JSON ({e}); it began {head:?}"),
        )
    })?;
    check(&value).map_err(|m| (ProblemKind::Garbage, m))?;
    Ok(value)
}

/// A plug-in's facts: an object whose keys are names and whose values are scalars,
/// arrays of scalars, or objects of the same (at most 4 levels).
fn check(v: &Value) -> Result<(), String> {
    fn walk(v: &Value, depth: usize, count: &mut usize) -> Result<(), String> {
        match v {
            Value::Object(map) => {
                if depth >= 4 {
                    return Err("nested deeper than 4 levels".into());
                }
                for (k, v) in map {
                    if !valid_name(k) {
                        return Err(format!("key {k:?} must be letters, digits, '-' or '_'"));
                    }
                    walk(v, depth + 1, count)?;
                }
                Ok(())
            }
            Value::Array(items) => {
                if items.iter().any(|i| i.is_object() || i.is_array()) {
                    return Err("arrays may hold only strings, numbers and booleans".into());
                }
                *count += 1;
                Ok(())
            }
            _ => {
                *count += 1;
                Ok(())
            }
        }
    }
    if !v.is_object() {
        return Err("the output must be one JSON object".into());
    }
    let mut count = 0;
    walk(v, 0, &mut count)?;
    if count > crate::facts::MAX_PLUGIN_FACTS {
        return Err(format!(
            "{count} facts (at most {})",
            crate::facts::MAX_PLUGIN_FACTS
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn good_hanging_crashing_and_garbage_plugins() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "raid.sh",
            r#"echo '{"level": 5, "disks": ["sda", "sdb"], "ctl": {"fw": "4.2"}}'"#,
        );
        script(dir.path(), "hang.sh", "sleep 30 & sleep 30");
        script(
            dir.path(),
            "crash.sh",
            "echo 'megacli: not found' >&2; exit 3",
        );
        script(dir.path(), "garbage.sh", "echo 'hello, world'");
        script(dir.path(), "array.sh", "echo '[1,2]'");
        script(dir.path(), "badkey.sh", r#"echo '{"a b": 1}'"#);
        script(
            dir.path(),
            "flood.sh",
            "head -c 400000 /dev/zero | tr '\\0' 'x'",
        );
        std::fs::write(dir.path().join("README"), "not a plug-in").unwrap();
        let mut settings = PluginSettings::new(dir.path());
        settings.timeout = Duration::from_millis(1500);
        let started = Instant::now();
        let out = run_all(&settings).await;
        let elapsed = started.elapsed();
        assert_eq!(out.facts.keys().collect::<Vec<_>>(), ["raid"]);
        assert_eq!(out.facts["raid"]["ctl"]["fw"], "4.2");
        let by = |name: &str| {
            out.problems
                .iter()
                .find(|p| p.collector == format!("plugin:{name}"))
                .unwrap_or_else(|| panic!("no problem for {name}: {:?}", out.problems))
        };
        assert_eq!(by("hang").kind, ProblemKind::Timeout);
        assert_eq!(by("crash").kind, ProblemKind::Failed);
        assert!(by("crash")
            .message
            .contains("exit status 3: megacli: not found"));
        assert_eq!(by("garbage").kind, ProblemKind::Garbage);
        assert!(
            by("garbage").message.contains("hello"),
            "{}",
            by("garbage").message
        );
        assert_eq!(by("array").kind, ProblemKind::Garbage);
        assert_eq!(by("badkey").kind, ProblemKind::Garbage);
        assert_eq!(by("flood").kind, ProblemKind::Garbage);
        assert_eq!(by("README").kind, ProblemKind::Skipped, "not executable");
        // They ran at once: one timeout, not the sum of everything.
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_hanging_plugins_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        script(
            dir.path(),
            "spawner",
            &format!("sleep 60 & echo $! > {}; wait", marker.display()),
        );
        let mut settings = PluginSettings::new(dir.path());
        settings.timeout = Duration::from_millis(500);
        let out = run_all(&settings).await;
        assert_eq!(out.problems[0].kind, ProblemKind::Timeout);
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        // The grandchild is gone once it is reaped; until then it is a zombie.
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = state
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                .is_some_and(|s| s != "Z");
            if !alive {
                break;
            }
            assert!(Instant::now() < deadline, "child {pid} still running");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn a_missing_folder_is_a_problem() {
        let out = run_all(&PluginSettings::new("/nonexistent/opsbot-plugins")).await;
        assert!(out.facts.is_empty());
        assert_eq!(out.problems[0].kind, ProblemKind::Unreadable);
    }
}

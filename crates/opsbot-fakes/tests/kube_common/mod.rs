//! Helpers for the stand-in Kubernetes API server's tests: running kubectl and python
//! against it, and waiting on its state with a deadline.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use opsbot_fakes::kube::FakeKube;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};

/// How long any one client command may take before the test fails.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// A finished command.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// The lines of a table, each split on whitespace.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }

    #[track_caller]
    pub fn success(self) -> Self {
        assert!(
            self.ok,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn failure(self) -> Self {
        assert!(
            !self.ok,
            "command succeeded but should not:\nstdout: {}",
            self.stdout
        );
        self
    }
}

async fn finish(mut cmd: Command) -> Out {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(COMMAND_LIMIT, cmd.output())
        .await
        .expect("command finished in time")
        .expect("command ran");
    Out {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// kubectl with its own kubeconfig and cache directory.
pub struct Kubectl {
    bin: PathBuf,
    dir: TempDir,
    config: PathBuf,
}

impl Kubectl {
    /// None (a skip) when kubectl is not installed.
    pub fn new(fake: &FakeKube, token: &str) -> Option<Kubectl> {
        let bin = opsbot_testkit::kubectl()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("kubeconfig");
        fake.write_kubeconfig(&config, "fake", token);
        Some(Kubectl { bin, dir, config })
    }

    /// The same kubectl with another user's token.
    pub fn with_token(&self, fake: &FakeKube, token: &str) -> Kubectl {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("kubeconfig");
        fake.write_kubeconfig(&config, "fake", token);
        Kubectl {
            bin: self.bin.clone(),
            dir,
            config,
        }
    }

    pub fn config(&self) -> &Path {
        &self.config
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.config)
            .env("HOME", self.dir.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Out {
        finish(self.command(args)).await
    }

    /// A long-running kubectl (a watch) whose stdout the test reads.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd.spawn().expect("kubectl started")
    }
}

/// Reads `child`'s stdout until `done` holds for what was read so far, or fails the
/// test at the deadline. Returns what was read.
pub async fn read_until(child: &mut Child, what: &str, done: impl Fn(&str) -> bool) -> String {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + COMMAND_LIMIT;
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if done(&text) {
            return text;
        }
        match tokio::time::timeout_at(deadline, stdout.read(&mut buf)).await {
            Err(_) => panic!("no {what} in time; read so far:\n{text}"),
            Ok(Ok(0)) => {
                let mut err = String::new();
                if let Some(e) = child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err).await;
                }
                panic!("stream ended before {what}; read:\n{text}\nstderr: {err}")
            }
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => panic!("reading the watch: {e}"),
        }
    }
}

/// Debian's python3 with the kubernetes client, running `script` with `args`.
pub struct Python {
    bin: PathBuf,
}

impl Python {
    /// None (a skip) when /usr/bin/python3 cannot import kubernetes.
    pub fn new() -> Option<Python> {
        opsbot_testkit::python_kubernetes().map(|bin| Python { bin })
    }

    /// Runs `script`; its last stdout line must be a JSON object, which is returned.
    pub async fn run(&self, script: &str, args: &[&str]) -> Value {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c").arg(script).args(args);
        let out = finish(cmd).await;
        assert!(
            out.ok,
            "python failed:\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        let last = out.stdout.lines().last().unwrap_or("");
        serde_json::from_str(last).unwrap_or_else(|e| {
            panic!(
                "python's last line is not JSON ({e}): {}\nstderr: {}",
                out.stdout, out.stderr
            )
        })
    }
}

/// Waits until `done` holds for the fake, or fails the test naming `what`.
pub async fn wait_for(fake: &FakeKube, what: &str, done: impl Fn(&FakeKube) -> bool) {
    let deadline = tokio::time::Instant::now() + COMMAND_LIMIT;
    while !done(fake) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True when deployment `ns/name` has `replicas` desired, updated and ready.
pub fn deployment_ready(fake: &FakeKube, ns: &str, name: &str, replicas: i64) -> bool {
    fake.deployment(ns, name).is_some_and(|d| {
        d["spec"]["replicas"] == replicas
            && d["status"]["readyReplicas"].as_i64().unwrap_or(0) == replicas
            && d["status"]["updatedReplicas"].as_i64().unwrap_or(0) == replicas
            && d["status"]["replicas"].as_i64().unwrap_or(0) == replicas
    })
}

/// Names of a list's items.
pub fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

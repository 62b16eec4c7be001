//! A release order's run is fenced: an instance that stood still (SIGSTOP, a long
//! pause) while another instance took its work over wakes up and touches no further
//! host, writes nothing over the new owner's state and says nothing twice.
//!
//! Two `Deploys` on one SQLite store play the two instances. The hosts are folders on
//! this machine reached through a stand-in `ssh` (`ssh_command`), one per instance, that
//! runs each step script locally and logs which instance ran a command on which host;
//! a `before_host` hook waits for a gate file, so the first instance is held mid-host
//! while the other acts, as long as the test wants and no longer.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_core::chat::JobReport;
use opsbot_deploy::model::OrderState;
use opsbot_deploy::{DeployConfig, Deploys};
use opsbot_store::deploy::{BuildEnd, NewBuild, NewHostRun, NewOrder};
use opsbot_store::{OutboxQuery, Store};
use sha2::Digest as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOSTS: [&str; 3] = ["h1", "h2", "h3"];
const WAIT: Duration = Duration::from_secs(30);

struct Quiet;

impl JobReport for Quiet {
    fn job(&self) -> u64 {
        0
    }
    fn note(&self, _percent: u8, _text: String) {}
}

/// A stand-in for OpenSSH: the master (`-M`) prints what its `LocalCommand` would and
/// waits to be killed; a command (the last argument, after the address) runs with the
/// local `sh`, its stdin passed through, after a line `<who> <address>` in `log`.
fn fake_ssh(dir: &Path, who: &str, log: &Path) -> PathBuf {
    let path = dir.join(format!("ssh-{who}"));
    let script = format!(
        r#"#!/bin/sh
master=0 ready= prev= last=
for a in "$@"; do
  case "$a" in
    -M) master=1 ;;
    LocalCommand=echo\ *) ready=${{a#LocalCommand=echo }} ;;
  esac
  prev=$last last=$a
done
if [ "$master" = 1 ]; then echo "$ready"; exec sleep 600; fi
echo "{who} $prev" >> "{log}"
exec sh -c "$last"
"#,
        log = log.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

struct World {
    store: Arc<dyn Store>,
    a: Arc<Deploys>,
    b: Arc<Deploys>,
    dir: PathBuf,
    /// One line per command an instance ran: `a h1`, `b h2`, …
    commands: PathBuf,
    /// `<gates>/<host>` lets that host's `before_host` hook finish.
    gates: PathBuf,
    _tmp: tempfile::TempDir,
}

fn config(dir: &Path, ssh: &Path, gates: &Path) -> DeployConfig {
    let text = format!(
        r#"
data_dir = "{data}"
ssh_command = "{ssh}"
connect_timeout = "3s"
step_timeout = "30s"

[[projects]]
name = "app"
hosts = ["h1", "h2", "h3"]
deploy_root = "{roots}/{{host}}/app"
repo = {{ kind = "git", url = "file:///nowhere" }}

[projects.hooks]
before_host = ["while [ ! -e {gates}/$OPSBOT_HOST ]; do sleep 0.02; done"]

[projects.strategy]
parallelism = 1
"#,
        data = dir.join("deploy").display(),
        ssh = ssh.display(),
        roots = dir.join("hosts").display(),
        gates = gates.display(),
    );
    let cfg: DeployConfig = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    cfg
}

impl World {
    async fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let commands = dir.join("commands.log");
        let gates = dir.join("gates");
        std::fs::create_dir_all(&gates).unwrap();
        let store = opsbot_store::connect(&format!("sqlite://{}", dir.join("o.db").display()))
            .await
            .unwrap();
        let utc = || opsbot_core::Zone::parse("UTC").unwrap();
        let instance = |who: &str| {
            let cfg = config(&dir, &fake_ssh(&dir, who, &commands), &gates);
            Deploys::new(cfg, store.clone(), format!("instance-{who}"), utc())
        };
        World {
            a: instance("a"),
            b: instance("b"),
            store,
            dir,
            commands,
            gates,
            _tmp: tmp,
        }
    }

    /// A succeeded build of `app` whose artefact holds `index.html`.
    async fn build(&self) -> i64 {
        let data = self.dir.join("deploy");
        let stage = data.join("src");
        std::fs::create_dir_all(&stage).unwrap();
        std::fs::write(stage.join("index.html"), "v1\n").unwrap();
        let tgz = data.join("v1.tar.gz");
        let ok = Command::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(&stage)
            .arg(".")
            .status()
            .unwrap()
            .success();
        assert!(ok, "tar");
        let bytes = std::fs::read(&tgz).unwrap();
        let sha = format!("{:x}", sha2::Sha256::digest(&bytes));
        let path = opsbot_deploy::artefacts::ArtefactStore::new(data.join("artefacts")).path(&sha);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(&tgz, &path).unwrap();
        let new = NewBuild {
            project: "app".into(),
            reference: "main".into(),
            user: "alice".into(),
        };
        let id = self.store.build_create(&new, "test").await.unwrap();
        let end = BuildEnd {
            state: "succeeded".into(),
            revision: "v1".into(),
            artefact: Some(sha),
            artefact_size: Some(bytes.len() as i64),
            changelog: String::new(),
            error: None,
        };
        assert!(self.store.build_finish(id, &end).await.unwrap());
        id
    }

    /// A release order to the three hosts (one batch, one host at a time), asked by
    /// alice in a WeCom app so that what the order says reaches the outbox.
    async fn order(&self) -> i64 {
        let build = self.build().await;
        let order = NewOrder {
            project: "app".into(),
            kind: "release".into(),
            build: Some(build),
            version: None,
            state: OrderState::Ready.as_str().into(),
            user: "alice".into(),
            channel: "wecom:app/ops".into(),
            chat: None,
            batches: 1,
            plan: "{}".into(),
            expires_at: None,
            hosts: HOSTS
                .iter()
                .map(|h| NewHostRun {
                    host: h.to_string(),
                    address: h.to_string(),
                    batch: 0,
                })
                .collect(),
        };
        self.store.order_create(&order).await.unwrap()
    }

    fn run(&self, d: &Arc<Deploys>, id: i64) -> tokio::task::JoinHandle<Result<String, String>> {
        tokio::spawn(opsbot_deploy::release::run(d.clone(), id, Arc::new(Quiet)))
    }

    /// The commands instance `who` ran, as `who host` lines.
    fn commands_of(&self, who: &str) -> Vec<String> {
        std::fs::read_to_string(&self.commands)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&format!("{who} ")))
            .map(str::to_string)
            .collect()
    }

    fn open_gates(&self) {
        for h in HOSTS {
            std::fs::write(self.gates.join(h), "").unwrap();
        }
    }

    /// host → (state, step) of order `id`.
    async fn hosts(&self, id: i64) -> Vec<(String, String, String)> {
        let runs = self.store.host_runs(id).await.unwrap();
        runs.into_iter()
            .map(|h| (h.host, h.state, h.step))
            .collect()
    }

    /// Waits until host `host` of order `id` is at step `step`.
    async fn wait_step(&self, id: i64, host: &str, step: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let hosts = self.hosts(id).await;
            if hosts.iter().any(|(h, _, s)| h == host && s == step) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{host} never reached {step}: {hosts:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything queued for the asker, oldest first.
    async fn told(&self) -> Vec<String> {
        let q = OutboxQuery {
            channel_prefix: Some("wecom:app/ops".into()),
            ..OutboxQuery::default()
        };
        let items = self.store.outbox_list(&q).await.unwrap();
        items.into_iter().rev().map(|i| i.body).collect()
    }

    /// Where `current` points on `host`.
    fn current(&self, host: &str) -> String {
        let link = self.dir.join("hosts").join(host).join("app/current");
        std::fs::read_link(link)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

async fn ended(run: tokio::task::JoinHandle<Result<String, String>>) -> Result<String, String> {
    tokio::time::timeout(WAIT, run)
        .await
        .expect("the run ended")
        .unwrap()
}

/// Instance A is held on h1's hook; instance B finds it dead (its heartbeat stale),
/// interrupts the order and runs it to the end. When A wakes it runs nothing more on
/// any host, and the order, its hosts and what the asker heard are B's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_taken_over_by_another_instance_touches_no_further_host() {
    let w = World::new().await;
    let id = w.order().await;
    let a = w.run(&w.a, id);
    w.wait_step(id, "h1", "before_host").await;

    // B's sweep found A's order orphaned.
    let orphan = w.store.order_get(id).await.unwrap().unwrap();
    assert_eq!(orphan.owner.as_deref(), Some("instance-a"));
    opsbot_deploy::release::interrupt(&w.b, &orphan).await;
    let ran_by_a = w.commands_of("a");
    assert!(ran_by_a.iter().all(|l| l == "a h1"), "{ran_by_a:?}");

    // B resumes it (继续), and A's hook is let go.
    let b = w.run(&w.b, id);
    w.open_gates();
    let from_b = ended(b).await;
    let from_a = ended(a).await;

    assert!(from_b.is_ok(), "{from_b:?}");
    let why = from_a.unwrap_err();
    assert!(why.contains("其他实例接管"), "{why}");
    assert_eq!(
        w.commands_of("a"),
        ran_by_a,
        "A ran nothing after the takeover"
    );
    for h in HOSTS {
        assert!(
            w.commands_of("b").contains(&format!("b {h}")),
            "B deployed {h}"
        );
        assert!(w.current(h).ends_with(&format!("releases/{id}")), "{h}");
    }
    let order = w.store.order_get(id).await.unwrap().unwrap();
    assert_eq!(order.state, OrderState::Succeeded.as_str());
    assert_eq!(order.owner, None);
    for (h, state, step) in w.hosts(id).await {
        assert_eq!(
            (state.as_str(), step.as_str()),
            ("succeeded", "done"),
            "{h}"
        );
    }
    // Started (A), interrupted (B), succeeded (B): once each, nothing from A after.
    let told = w.told().await;
    assert_eq!(told.len(), 3, "{told:#?}");
    assert!(told[0].contains("开始"), "{told:#?}");
    assert!(told[1].contains("已中断"), "{told:#?}");
    assert!(told[2].contains("✅"), "{told:#?}");
}

/// Only the project's lease is lost (it ran out while A stood still and another
/// holder took it): A stops before its next step, and since nobody took the order it
/// marks it 已中断 itself, once, its other hosts untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lease_stops_and_interrupts_its_own_order() {
    let w = World::new().await;
    let id = w.order().await;
    let a = w.run(&w.a, id);
    w.wait_step(id, "h1", "before_host").await;

    w.store
        .lease_release("deploy:app", "instance-a")
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    let thief = w.store.lease_take("deploy:app", "instance-b", hour).await;
    assert!(thief.unwrap().is_some());
    let ran_by_a = w.commands_of("a");
    w.open_gates();

    let why = ended(a).await.unwrap_err();
    assert!(why.contains("已中断"), "{why}");
    assert_eq!(
        w.commands_of("a"),
        ran_by_a,
        "no step after the lease was lost"
    );
    assert!(w.current("h1").is_empty(), "h1 never switched");
    let order = w.store.order_get(id).await.unwrap().unwrap();
    assert_eq!(order.state, OrderState::Interrupted.as_str());
    assert_eq!(order.owner, None);
    let hosts = w.hosts(id).await;
    assert_eq!(hosts[0].1, "interrupted", "{hosts:?}");
    assert!(hosts[1..].iter().all(|h| h.1 == "pending"), "{hosts:?}");
    let told = w.told().await;
    assert_eq!(told.len(), 2, "started, interrupted: {told:#?}");
    assert!(told[1].contains("已中断"), "{told:#?}");
}

//! Release orders through Salt against a real salt-master, salt-api and three minions
//! ([`opsbot_testkit::salt::SaltLab`]), run by `release::run` as `opsbot serve` runs
//! them: the artefact staged in the master's file root and fetched by each minion, the
//! same `releases/<id>` + atomic `current` layout, hooks and health checks as over SSH,
//! a failed health check switched back, a rollback, a stopped minion failing alone. The
//! minions share this machine, so each has its own deploy root (`{host}` in it).
//! salt-api unreachable or refusing the login fails the order before any host.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_core::chat::JobReport;
use opsbot_deploy::model::OrderState;
use opsbot_deploy::{DeployConfig, Deploys, Project};
use opsbot_store::deploy::{BuildEnd, LogOf, NewBuild, NewHostRun, NewOrder};
use opsbot_store::Store;
use opsbot_testkit::salt::SaltLab;
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const MINIONS: [&str; 3] = ["m1", "m2", "m3"];

struct Quiet;

impl JobReport for Quiet {
    fn job(&self) -> u64 {
        0
    }
    fn note(&self, _percent: u8, _text: String) {}
}

/// The opsbot side: a store, an artefact store and the project `app` (transport salt).
struct Bench {
    store: Arc<dyn Store>,
    deploys: Arc<Deploys>,
    data: PathBuf,
    /// Each host's deploy root is `<roots>/<minion>/app`.
    roots: PathBuf,
    _dir: tempfile::TempDir,
}

/// `[deploy.salt]` plus the project, as a configuration file has them.
fn config(dir: &Path, api_url: &str, password: &str, file_root: &Path) -> DeployConfig {
    let roots = dir.join("hosts");
    let text = format!(
        r#"
data_dir = "{data}"
connect_timeout = "3s"
step_timeout = "60s"

[salt]
file_root = "{file_root}"
api = {{ url = "{api_url}", eauth = "file", username = "opsbot", password = "{password}", timeout = "10s" }}

[[projects]]
name = "app"
transport = "salt"
hosts = ["m1", "m2", "m3"]
deploy_root = "{roots}/{{host}}/app"
keep_versions = 1
repo = {{ kind = "git", url = "file:///nowhere" }}

[projects.hooks]
before_host = ["test -f index.html && echo \"before $OPSBOT_HOST\" > before-ran"]
after_host = ["echo \"$OPSBOT_HOST $OPSBOT_RELEASE\" > after-ran"]

[projects.health]
# Healthy unless the deploy root holds a file `sick` (it runs in <root>/releases/<id>).
command = "if [ -e ../../sick ]; then echo \"sick on purpose\" >&2; exit 7; fi"
retries = 1
interval = "100ms"

[projects.strategy]
parallelism = 3
stop_on_failure = false
max_failed = 3
"#,
        data = dir.join("deploy").display(),
        file_root = file_root.display(),
        roots = roots.display(),
    );
    let cfg: DeployConfig = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    cfg
}

impl Bench {
    async fn new(api_url: &str, password: &str, file_root: &Path) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), api_url, password, file_root);
        let store = opsbot_store::connect(&format!(
            "sqlite://{}",
            dir.path().join("opsbot.db").display()
        ))
        .await
        .unwrap();
        let deploys = Deploys::new(
            cfg,
            store.clone(),
            "salt-test".into(),
            opsbot_core::Zone::parse("UTC").unwrap(),
        );
        Bench {
            store,
            deploys,
            data: dir.path().join("deploy"),
            roots: dir.path().join("hosts"),
            _dir: dir,
        }
    }

    fn root(&self, minion: &str) -> PathBuf {
        self.roots.join(minion).join("app")
    }

    async fn project(&self) -> Project {
        self.deploys.project("app").await.unwrap().unwrap()
    }

    /// A succeeded build of `app` whose artefact holds `index.html` = `version`.
    async fn build(&self, version: &str) -> i64 {
        let stage = self.data.join(format!("src-{version}"));
        std::fs::create_dir_all(&stage).unwrap();
        std::fs::write(stage.join("index.html"), format!("{version}\n")).unwrap();
        let tgz = self.data.join(format!("{version}.tar.gz"));
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
        let path =
            opsbot_deploy::artefacts::ArtefactStore::new(self.data.join("artefacts")).path(&sha);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(&tgz, &path).unwrap();
        let id = self
            .store
            .build_create(
                &NewBuild {
                    project: "app".into(),
                    reference: "main".into(),
                    user: "test".into(),
                },
                "test",
            )
            .await
            .unwrap();
        assert!(self
            .store
            .build_finish(
                id,
                &BuildEnd {
                    state: "succeeded".into(),
                    revision: version.into(),
                    artefact: Some(sha),
                    artefact_size: Some(bytes.len() as i64),
                    changelog: String::new(),
                    error: None,
                },
            )
            .await
            .unwrap());
        id
    }

    /// An order of `kind` to `hosts` (one batch), run to its end: its final state.
    async fn order(
        &self,
        kind: &str,
        build: i64,
        version: Option<i64>,
        hosts: &[&str],
    ) -> (i64, String) {
        let id = self
            .store
            .order_create(&NewOrder {
                project: "app".into(),
                kind: kind.into(),
                build: Some(build),
                version,
                state: OrderState::Ready.as_str().into(),
                user: "test".into(),
                channel: "console".into(),
                chat: None,
                batches: 1,
                plan: "{}".into(),
                expires_at: None,
                hosts: hosts
                    .iter()
                    .map(|h| NewHostRun {
                        host: h.to_string(),
                        address: h.to_string(),
                        batch: 0,
                    })
                    .collect(),
            })
            .await
            .unwrap();
        let _ = opsbot_deploy::release::run(self.deploys.clone(), id, Arc::new(Quiet)).await;
        let state = self.store.order_get(id).await.unwrap().unwrap().state;
        (id, state)
    }

    /// host → (state, step, error) of order `id`.
    async fn hosts(&self, id: i64) -> Vec<(String, String, String, String)> {
        self.store
            .host_runs(id)
            .await
            .unwrap()
            .into_iter()
            .map(|h| (h.host, h.state, h.step, h.error.unwrap_or_default()))
            .collect()
    }

    async fn log(&self, id: i64, host: &str) -> String {
        self.store
            .log_read(LogOf::Order(id, Some(host)), 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Where `current` points on `minion` (`releases/<id>`).
    fn current(&self, minion: &str) -> String {
        std::fs::read_link(self.root(minion).join("current"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn releases(&self, minion: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root(minion).join("releases"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn served(&self, minion: &str) -> String {
        std::fs::read_to_string(self.root(minion).join("current/index.html")).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_rollback_and_failures_through_salt() {
    let Some(lab) = SaltLab::start("deploy_salt", &MINIONS) else {
        return;
    };
    let b = Bench::new(&lab.api_url(), lab.password(), &lab.file_root()).await;
    assert_eq!(
        b.project().await.transport,
        opsbot_deploy::config::TransportKind::Salt
    );

    // A release to the three minions: the artefact staged once, each host with the
    // release unpacked, current → it, both hooks run there with the host's variables.
    let v1 = b.build("v1").await;
    let (o1, state) = b.order("release", v1, None, &MINIONS).await;
    assert_eq!(state, "成功", "{:?}", b.hosts(o1).await);
    let sha = b
        .store
        .build_get(v1)
        .await
        .unwrap()
        .unwrap()
        .artefact
        .unwrap();
    assert!(lab
        .file_root()
        .join(format!("opsbot/{sha}.tar.gz"))
        .is_file());
    for m in MINIONS {
        assert_eq!(b.current(m), format!("releases/{o1}"), "{m}");
        assert_eq!(b.releases(m), [o1.to_string()], "{m}: no temp files left");
        assert_eq!(b.served(m), "v1\n");
        let rel = b.root(m).join(format!("releases/{o1}"));
        assert_eq!(
            std::fs::read_to_string(rel.join("before-ran")).unwrap(),
            format!("before {m}\n")
        );
        assert_eq!(
            std::fs::read_to_string(rel.join("after-ran")).unwrap(),
            format!("{m} {o1}\n")
        );
        let log = b.log(o1, m).await;
        assert!(log.contains("cp.get_file"), "{m}: {log}");
    }
    let deployed = b.store.deployed("app").await.unwrap();
    assert_eq!(deployed.len(), 3);
    assert!(deployed.iter().all(|d| d.version == o1));

    // v2 with m2 unhealthy: m2 fails its health check (exit 7 and stderr in its log)
    // and is switched back to v1; the others run v2.
    std::fs::write(b.root("m2").join("sick"), "").unwrap();
    let v2 = b.build("v2").await;
    let (o2, state) = b.order("release", v2, None, &MINIONS).await;
    assert_eq!(state, "部分失败", "{:?}", b.hosts(o2).await);
    let runs = b.store.host_runs(o2).await.unwrap();
    let m2 = runs.iter().find(|h| h.host == "m2").unwrap();
    assert_eq!((m2.state.as_str(), m2.step.as_str()), ("failed", "health"));
    assert_eq!(m2.exit_code, Some(7));
    let err = m2.error.clone().unwrap();
    assert!(err.contains(&format!("已切回 releases/{o1}")), "{err}");
    assert!(b.log(o2, "m2").await.contains("sick on purpose"));
    assert_eq!(b.current("m2"), format!("releases/{o1}"));
    assert_eq!(b.served("m2"), "v1\n");
    for m in ["m1", "m3"] {
        assert_eq!(b.current(m), format!("releases/{o2}"), "{m}");
        assert_eq!(b.served(m), "v2\n");
        assert_eq!(b.releases(m), [o1.to_string(), o2.to_string()]);
    }
    std::fs::remove_file(b.root("m2").join("sick")).unwrap();

    // Rollback to v1: a re-link where the release is still there (all three).
    let (o3, state) = b.order("rollback", v1, Some(o1), &MINIONS).await;
    assert_eq!(state, "成功", "{:?}", b.hosts(o3).await);
    for m in MINIONS {
        assert_eq!(b.current(m), format!("releases/{o1}"), "{m}");
        assert_eq!(b.served(m), "v1\n");
        assert!(b.log(o3, m).await.contains("直接切换"), "{m}");
    }

    // A stopped minion fails alone, as 未响应; the others take the release, and the
    // releases beyond keep_versions = 1 go, but never the previous one (v1, o1).
    lab.stop_minion("m3");
    let (o4, state) = b.order("release", v2, None, &MINIONS).await;
    assert_eq!(state, "部分失败", "{:?}", b.hosts(o4).await);
    let hosts = b.hosts(o4).await;
    let m3 = hosts.iter().find(|h| h.0 == "m3").unwrap();
    assert_eq!((m3.1.as_str(), m3.2.as_str()), ("failed", "connect"));
    assert!(m3.3.contains("minion m3 未响应"), "{m3:?}");
    for m in ["m1", "m2"] {
        assert_eq!(b.current(m), format!("releases/{o4}"), "{m}");
        assert_eq!(b.served(m), "v2\n");
        assert_eq!(b.releases(m), [o1.to_string(), o4.to_string()], "{m}");
    }
    assert_eq!(b.current("m3"), format!("releases/{o1}"), "untouched");

    // The project's hosts by target: salt lists the stopped minion too (it fails when
    // released to rather than being left out unseen).
    let mut p = b.project().await;
    p.hosts.clear();
    p.salt_target = Some(opsbot_deploy::config::SaltTarget::Glob("m*".into()));
    let listed: Vec<String> = b
        .deploys
        .hosts(&p)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(listed, MINIONS);

    // salt-api refusing opsbot's login: the order fails at once with the reason, its
    // hosts 未执行 and untouched.
    let refused = Bench::new(&lab.api_url(), "wrong password", &lab.file_root()).await;
    let v = refused.build("v1").await;
    let (o, state) = refused.order("release", v, None, &["m1"]).await;
    assert_eq!(state, "失败");
    let reason = refused.store.order_get(o).await.unwrap().unwrap().reason;
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("无法通过 Salt 发布") && reason.contains("refused the login"),
        "{reason}"
    );
    assert_eq!(refused.hosts(o).await[0].1, "skipped");
    assert!(
        !refused.root("m1").exists(),
        "nothing was done on the minion"
    );
}

/// salt-api refusing the login, or not listening at all: the order fails at once with
/// the reason, its hosts 未执行 (nothing was done to them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salt_api_down_or_refusing_fails_the_order_before_any_host() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let files = tempfile::tempdir().unwrap();
    let b = Bench::new(&format!("http://127.0.0.1:{closed}"), "pw", files.path()).await;
    let v1 = b.build("v1").await;
    let (o, state) = b.order("release", v1, None, &MINIONS).await;
    assert_eq!(state, "失败");
    let order = b.store.order_get(o).await.unwrap().unwrap();
    let reason = order.reason.unwrap_or_default();
    assert!(
        reason.contains("无法通过 Salt 发布") && reason.contains("unreachable"),
        "{reason}"
    );
    for (host, state, _, _) in b.hosts(o).await {
        assert_eq!(state, "skipped", "{host}");
    }
}

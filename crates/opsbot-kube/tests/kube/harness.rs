//! A cluster for a test: the fake API server, seeded; opsbot-kube connected to it
//! through a kubeconfig file, watches running; a SQLite store for the history; a
//! caller with a scope rule; and helpers to run chat commands and their jobs.

use opsbot_core::chat::{Answer, Call, ChatCommands, JobReport, Requester};
use opsbot_core::Zone;
use opsbot_fakes::kube::FakeKube;
use opsbot_kube::{Config, Kube, KubeCommands, Settings, Watches, COMMANDS};
use opsbot_store::Store;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PROVIDER: &str = "k8s";
pub const CLUSTER: &str = "prod";

pub struct Fixture {
    pub fake: FakeKube,
    pub kube: Arc<Kube>,
    pub store: Arc<dyn Store>,
    pub commands: KubeCommands,
    pub watches: Option<Watches>,
    _dir: tempfile::TempDir,
    config: Config,
    extra: String,
}

/// The subsystem for `config`; a test's rollouts wait 20 s unless it sets its own.
async fn connect(config: &Config, store: &Arc<dyn Store>, extra: &str) -> Arc<Kube> {
    let kube = Kube::connect(
        &[(PROVIDER.to_string(), config.clone())],
        store.clone(),
        store.clone(),
    )
    .await
    .unwrap();
    let mut settings = config.settings();
    if !extra.contains("rollout_timeout") {
        settings = settings.with_rollout_timeout(Duration::from_secs(20));
    }
    Arc::new(kube.with_settings(settings))
}

/// The estate most tests use: namespaces payments and web, two nodes, a Deployment
/// `api` (2 × api:1.0) in payments, `web` (3) in web, a StatefulSet `db` (1) in payments.
pub fn seed(fake: &FakeKube) {
    fake.set_pod_ready_delay(Duration::from_millis(50));
    fake.add_node("node-1", true, "8", "32Gi");
    fake.add_node("node-2", true, "4", "16Gi");
    fake.add_namespace("payments");
    fake.add_namespace("web");
    fake.add_deployment("payments", "api", 2, "registry.local/api:1.0");
    fake.add_deployment("web", "web", 3, "registry.local/web:1.0");
    fake.add_statefulset("payments", "db", 1, "registry.local/db:1.0");
}

/// The section as a user writes it, with the kubeconfig the fake wrote.
pub fn section(fake: &FakeKube, dir: &std::path::Path, token: &str, extra: &str) -> Config {
    let path = dir.join(format!("kubeconfig-{}", &token[..4.min(token.len())]));
    fake.write_kubeconfig(&path, "ctx", token);
    let text = format!(
        "cluster = \"{CLUSTER}\"\nkubeconfig = \"{}\"\ncontext = \"ctx\"\n{extra}",
        path.display()
    );
    toml::from_str(&text).unwrap()
}

impl Fixture {
    pub async fn start() -> Fixture {
        Fixture::with(seed, "", None).await
    }

    /// A fixture seeded by `seeding`, its section with `extra` keys, connecting with
    /// `token` (the admin's when `None`).
    pub async fn with(seeding: impl Fn(&FakeKube), extra: &str, token: Option<&str>) -> Fixture {
        let fake = FakeKube::start().await;
        seeding(&fake);
        let dir = tempfile::tempdir().unwrap();
        let store =
            opsbot_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
                .await
                .unwrap();
        let token = token.map_or_else(|| fake.admin_token(), str::to_string);
        let config = section(&fake, dir.path(), &token, extra);
        let kube = connect(&config, &store, extra).await;
        let watches = Some(kube.start());
        Fixture {
            commands: KubeCommands::new(kube.clone()),
            fake,
            kube,
            store,
            watches,
            _dir: dir,
            config,
            extra: extra.to_string(),
        }
    }

    /// Stops this opsbot's watches (as a process that ends) and starts a new one on
    /// the same store and cluster.
    pub async fn restart(&mut self) {
        self.watches = None;
        self.kube = connect(&self.config, &self.store, &self.extra).await;
        self.commands = KubeCommands::new(self.kube.clone());
        self.watches = Some(self.kube.start());
    }

    /// Waits until the cluster is live and `check` holds on the pool.
    pub async fn until(&self, what: &str, check: impl Fn(&Kube) -> bool) {
        until(what, || check(&self.kube)).await
    }

    pub async fn live(&self) {
        self.until("the cluster is live", |k| {
            k.clusters()
                .iter()
                .all(|c| matches!(c.health, opsbot_kube::pool::Health::Live { .. }))
        })
        .await;
    }

    /// The pool's workload `ns/name`.
    pub fn workload(&self, ns: &str, name: &str) -> Option<opsbot_kube::pool::Workload> {
        self.kube
            .workloads(Some(ns), &|_| true)
            .into_iter()
            .map(|r| r.workload)
            .find(|w| w.name == name)
    }

    pub async fn run(&self, who: &Who, line: &str) -> Outcome {
        run(&self.commands, who, line).await
    }

    pub async fn plan(&self, who: &Who, line: &str) -> Result<Option<String>, Answer> {
        let (command, args) = parse(line);
        let zone = Zone::parse("UTC").unwrap();
        let call = Call {
            command,
            args: &args,
            caller: who,
            zone: &zone,
        };
        self.commands.plan(call).await
    }
}

/// Polls `check` until it holds, failing after 20 s: a condition with a deadline,
/// never a sleep for luck.
pub async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a caller may run a command on a scope.
type Rule = dyn Fn(&str, &str) -> bool + Send + Sync;

/// A caller allowed by a rule on (command, scope).
pub struct Who {
    pub user: String,
    pub rule: Box<Rule>,
}

impl Who {
    pub fn admin() -> Who {
        Who {
            user: "alice".into(),
            rule: Box::new(|_, _| true),
        }
    }

    /// May act only below `prefix` (`k8s/prod/web/`).
    pub fn under(prefix: &'static str) -> Who {
        Who {
            user: "bob".into(),
            rule: Box::new(move |_, scope| scope.starts_with(prefix)),
        }
    }
}

impl Requester for Who {
    fn user(&self) -> &str {
        &self.user
    }
    fn may_at(&self, command: &str, scope: &str) -> bool {
        (self.rule)(command, scope)
    }
}

/// How a command ended: its answer's kind and text, and a job's progress notes.
#[derive(Debug)]
pub enum Outcome {
    Done(String),
    Invalid(String),
    Failed(String),
    JobOk {
        summary: String,
        text: String,
        notes: Vec<String>,
    },
    JobErr {
        text: String,
        notes: Vec<String>,
    },
}

impl Outcome {
    pub fn text(&self) -> &str {
        match self {
            Outcome::Done(t) | Outcome::Invalid(t) | Outcome::Failed(t) => t,
            Outcome::JobOk { text, .. } | Outcome::JobErr { text, .. } => text,
        }
    }
}

#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl JobReport for Notes {
    fn job(&self) -> u64 {
        1
    }
    fn note(&self, _percent: u8, text: String) {
        self.0.lock().unwrap().push(text);
    }
}

/// `命令:a,b` → the declaration and its arguments, as the engine splits them.
fn parse(line: &str) -> (&'static opsbot_core::ChatCommand, Vec<String>) {
    let (name, rest) = line.split_once(':').unwrap_or((line, ""));
    let command = COMMANDS.iter().find(|c| c.is_named(name)).unwrap();
    let args = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(',').map(|a| a.trim().to_string()).collect()
    };
    (command, args)
}

pub async fn run(commands: &KubeCommands, who: &Who, line: &str) -> Outcome {
    let (command, args) = parse(line);
    commands.check(command, &args).unwrap();
    let zone = Zone::parse("UTC").unwrap();
    let call = Call {
        command,
        args: &args,
        caller: who,
        zone: &zone,
    };
    match commands.run(call).await {
        Answer::Done(t) => Outcome::Done(t),
        Answer::Invalid(t) => Outcome::Invalid(t),
        Answer::Failed(t) => Outcome::Failed(t),
        Answer::Job { summary, work } => {
            let notes = Arc::new(Notes::default());
            let result = work(notes.clone()).await;
            let notes = notes.0.lock().unwrap().clone();
            match result {
                Ok(text) => Outcome::JobOk {
                    summary,
                    text,
                    notes,
                },
                Err(text) => Outcome::JobErr { text, notes },
            }
        }
    }
}

/// Settings for a section with `extra` keys (config tests).
pub fn settings(extra: &str) -> Settings {
    let c: Config = toml::from_str(&format!("kubeconfig = \"/dev/null\"\n{extra}")).unwrap();
    c.settings()
}

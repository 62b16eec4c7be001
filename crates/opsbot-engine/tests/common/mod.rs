//! Test harness: a real engine on a temporary SQLite store with the sim provider.

#![allow(dead_code)]

use opsbot_core::{JobState, Policy, Role};
use opsbot_engine::{Engine, EngineSettings, Incoming, Reply, ReplySink, Response};
use opsbot_sim::SimProvider;
use opsbot_store::{SessionStore, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub const ADMIN: &str = "admin";

pub struct Harness {
    pub engine: Engine,
    pub store: Arc<dyn Store>,
    pub sessions: Arc<dyn SessionStore>,
    pub dir: tempfile::TempDir,
}

pub fn admin_policy() -> Policy {
    policy(
        vec![role("admin", &["*"], &["*"])],
        &[(ADMIN, &["admin"])],
        &[],
    )
}

pub fn role(name: &str, commands: &[&str], scopes: &[&str]) -> Role {
    Role {
        name: name.into(),
        commands: commands.iter().map(|s| s.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn policy(roles: Vec<Role>, users: &[(&str, &[&str])], chats: &[(&str, &[&str])]) -> Policy {
    let map = |list: &[(&str, &[&str])]| -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    };
    Policy::new(roles, map(users), map(chats)).unwrap()
}

pub async fn harness(policy: Policy) -> Harness {
    harness_with(policy, EngineSettings::default(), None).await
}

pub async fn harness_with(
    policy: Policy,
    settings: EngineSettings,
    sessions: Option<Arc<dyn SessionStore>>,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/opsbot.db", dir.path().display());
    let store = opsbot_store::connect(&url).await.unwrap();
    let sessions = match sessions {
        Some(s) => s,
        None => opsbot_store::connect_sessions("memory", None)
            .await
            .unwrap(),
    };
    let engine = engine_on(&store, &sessions, policy, settings).await;
    Harness {
        engine,
        store,
        sessions,
        dir,
    }
}

pub async fn engine_on(
    store: &Arc<dyn Store>,
    sessions: &Arc<dyn SessionStore>,
    policy: Policy,
    settings: EngineSettings,
) -> Engine {
    let sim = Arc::new(SimProvider::new("sim", store.clone(), 0.01));
    let engine = Engine::new(store.clone(), sessions.clone(), vec![sim], policy, settings)
        .await
        .unwrap();
    engine.ensure_synced().await.unwrap();
    engine
}

pub fn msg(user: &str, text: &str) -> Incoming {
    Incoming {
        channel: "test".into(),
        user: user.into(),
        chat: None,
        text: text.into(),
        assume_yes: false,
    }
}

/// Collects job replies.
pub struct Collector {
    pub tx: mpsc::UnboundedSender<Reply>,
    pub rx: mpsc::UnboundedReceiver<Reply>,
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Collector { tx, rx }
    }

    pub fn sink(&self) -> Arc<dyn ReplySink> {
        Arc::new(self.tx.clone())
    }

    /// Every reply up to and including the job's final one (deadline 30 s).
    pub async fn until_done(&mut self) -> (Vec<Reply>, JobState) {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let reply = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .expect("job did not finish within 30 s")
                .expect("sink closed");
            let done = reply.finished;
            seen.push(reply);
            if let Some(state) = done {
                return (seen, state);
            }
        }
    }
}

impl Harness {
    pub async fn say(&self, user: &str, text: &str) -> Response {
        self.engine
            .handle(msg(user, text), Arc::new(opsbot_engine::Discard))
            .await
    }

    /// Sends `text`, and when it becomes a job, waits for the job's end.
    pub async fn run(&self, user: &str, text: &str) -> (Response, Vec<Reply>, Option<JobState>) {
        let mut c = Collector::new();
        let r = self.engine.handle(msg(user, text), c.sink()).await;
        if r.job().is_some() {
            let (replies, state) = c.until_done().await;
            (r, replies, Some(state))
        } else {
            (r, Vec::new(), None)
        }
    }

    pub async fn vm(&self, name: &str) -> Option<opsbot_core::Vm> {
        let pool = self.store.load_pool().await.unwrap();
        pool.inventory.vms.into_iter().find(|v| v.name == name)
    }
}

//! Three `opsbot serve` instances on one store, as behind a load balancer: a mixed load
//! (WeCom callbacks with read commands and jobs confirmed through ANOTHER instance,
//! alerts, REST API actions), one instance SIGKILLed and one SIGSTOPped past the leases
//! (jobs' `stale_after`, the outbox delivery lease) and then resumed. Checked from
//! outside, waiting on conditions:
//! - every accepted command ran exactly once (one job per asked operation, one audit
//!   row per accepted message, each simulated VM changed at most once);
//! - every reply and alert notice reached WeCom once (no (recipient, text) twice, none
//!   swallowed, outbox rows all sent, none queued twice);
//! - no job is left running;
//! - no work completed by a fenced-out instance: a job once marked interrupted stays
//!   so, its VM unchanged and no "done" for it, and the frozen instance's claimed outbox
//!   items, taken over after the lease, were not sent twice.
//!
//! PostgreSQL (`OPSBOT_TEST_POSTGRES_URL`) and MySQL/MariaDB (`OPSBOT_TEST_MYSQL_URL`),
//! both with Redis sessions (`OPSBOT_TEST_REDIS_URL`: a confirmation typed to another
//! instance needs the shared session). Without a service the test skips, unless
//! `OPSBOT_TEST_REQUIRE_SERVICES=1`.
//!
//! The throughput comparison (one instance vs three behind the round-robin proxy) is a
//! benchmark run by hand:
//! `cargo test -p opsbot --release --test instances -- --ignored --nocapture bench`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_core::JobState;
use opsbot_fakes::{build_callback_post, decrypt_mp_reply, push_callback, FakeWecom};
use opsbot_store::{AuditQuery, JobQuery, OutboxQuery, OutboxState, Store};
use opsbot_wecom::WecomCrypto;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");
const CORP: &str = "ww1436e0e65a779aee";
const AGENT: i64 = 1000002;
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const ALERT_TOKEN: &str = "generic-secret-token";
/// WeCom gives up on a callback after about 5 s and sends it again (same MsgId).
const WECOM_WAIT: Duration = Duration::from_secs(5);
/// The simulator's delays times this: a power-off takes 6 s, a power-on 9.6 s, long
/// enough for an instance to die or freeze in the middle of one.
const TIME_SCALE: u32 = 12;
/// Jobs' heartbeat lease; the outbox lease is 8.8 s (4 × the 2 s API timeout, + 10 %).
const STALE_AFTER: &str = "3s";

// ---------------------------------------------------------------------------------
// The store under test.

/// A fresh database on the test server, dropped at the end.
enum Database {
    Postgres { admin: String, name: String },
    Mysql { args: Vec<String>, name: String },
}

/// Splits `scheme://user[:password]@host:port/db` into (user, password, host, port).
fn url_parts(url: &str, default_port: u16) -> (String, Option<String>, String, u16) {
    let rest = url.split("://").nth(1).unwrap_or_default();
    let (auth, host) = rest.rsplit_once('@').unwrap_or(("root", rest));
    let (user, password) = match auth.split_once(':') {
        Some((u, p)) => (u.to_string(), Some(p.to_string())),
        None => (auth.to_string(), None),
    };
    let host = host.split('/').next().unwrap_or_default();
    let (h, p) = host.rsplit_once(':').unwrap_or((host, ""));
    (
        user,
        password,
        h.to_string(),
        p.parse().unwrap_or(default_port),
    )
}

fn fresh_name(kind: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "opsbot_multi_{kind}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

impl Database {
    async fn postgres() -> Option<Database> {
        let admin = std::env::var("OPSBOT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let (_, _, host, port) = url_parts(&admin, 5432);
        if let Err(e) = TcpStream::connect((host.as_str(), port)).await {
            return opsbot_testkit::skip(
                format!("PostgreSQL unreachable ({e})"),
                opsbot_testkit::fix::POSTGRES,
            );
        }
        let name = fresh_name("pg");
        let out = Command::new("psql")
            .args([&admin, "-q", "-c", &format!("CREATE DATABASE {name}")])
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Database::Postgres { admin, name }),
            Ok(o) => opsbot_testkit::skip(
                String::from_utf8_lossy(&o.stderr),
                opsbot_testkit::fix::POSTGRES,
            ),
            Err(e) => opsbot_testkit::skip(format!("psql: {e}"), opsbot_testkit::fix::PSQL),
        }
    }

    async fn mysql() -> Option<Database> {
        let admin = std::env::var("OPSBOT_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        let (user, password, host, port) = url_parts(&admin, 3306);
        if let Err(e) = TcpStream::connect((host.as_str(), port)).await {
            return opsbot_testkit::skip(
                format!("MySQL unreachable ({e})"),
                opsbot_testkit::fix::MARIADB,
            );
        }
        let mut args = vec![
            "-h".to_string(),
            host,
            "-P".into(),
            port.to_string(),
            "-u".into(),
            user,
        ];
        if let Some(p) = password {
            args.push(format!("-p{p}"));
        }
        let name = fresh_name("my");
        let out = Command::new("mysql")
            .args(&args)
            .args(["-e", &format!("CREATE DATABASE {name}")])
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Database::Mysql { args, name }),
            Ok(o) => opsbot_testkit::skip(
                String::from_utf8_lossy(&o.stderr),
                opsbot_testkit::fix::MARIADB,
            ),
            Err(e) => opsbot_testkit::skip(format!("mysql: {e}"), opsbot_testkit::fix::MARIADB),
        }
    }

    fn url(&self) -> String {
        match self {
            Database::Postgres { admin, name } => {
                let (user, password, host, port) = url_parts(admin, 5432);
                let auth = password.map_or(user.clone(), |p| format!("{user}:{p}"));
                format!("postgres://{auth}@{host}:{port}/{name}")
            }
            Database::Mysql { name, .. } => {
                let admin = std::env::var("OPSBOT_TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
                let (user, password, host, port) = url_parts(&admin, 3306);
                let auth = password.map_or(user.clone(), |p| format!("{user}:{p}"));
                format!("mysql://{auth}@{host}:{port}/{name}")
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = match self {
            Database::Postgres { admin, name } => Command::new("psql")
                .args([
                    admin.as_str(),
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .output(),
            Database::Mysql { args, name } => Command::new("mysql")
                .args(args.iter())
                .args(["-e", &format!("DROP DATABASE IF EXISTS {name}")])
                .output(),
        };
    }
}

async fn redis_url(what: &str) -> Option<String> {
    let url = std::env::var("OPSBOT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into());
    let (_, _, host, port) = url_parts(&url, 6379);
    match TcpStream::connect((host.as_str(), port)).await {
        Ok(_) => Some(url),
        Err(e) => opsbot_testkit::skip(
            format!("{what}: Redis unreachable ({e})"),
            opsbot_testkit::fix::REDIS,
        ),
    }
}

// ---------------------------------------------------------------------------------
// TCP plumbing: the round-robin balancer and a WeCom link that can be stalled.

/// Copies between a client and one of `targets`, round robin, until dropped.
struct Balancer {
    port: u16,
    accept: AbortHandle,
}

impl Balancer {
    async fn start(targets: Vec<u16>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let next = AtomicUsize::new(0);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                let target = targets[next.fetch_add(1, Ordering::Relaxed) % targets.len()];
                tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = up.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    }
                });
            }
        })
        .abort_handle();
        Balancer { port, accept }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One instance's way to WeCom. Stalled, it cuts open connections and holds new ones
/// unanswered (requests never reach WeCom); released, it drops what it held and
/// forwards again.
struct Link {
    port: u16,
    stalled: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    accept: AbortHandle,
}

impl Link {
    async fn start(target: String) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, c, h) = (stalled.clone(), conns.clone(), held.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if s.load(Ordering::SeqCst) {
                    h.lock().unwrap().push(client);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Link {
            port,
            stalled,
            conns,
            held,
            accept,
        }
    }

    fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn release(&self) {
        self.held.lock().unwrap().clear();
        self.stalled.store(false, Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stall();
        self.accept.abort();
    }
}

// ---------------------------------------------------------------------------------
// The instances.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Health {
    Up,
    Killed,
    Stopped,
}

/// One `opsbot serve`, killed when the test ends however it ends.
struct Instance {
    child: Child,
    port: u16,
    log: PathBuf,
    health: Mutex<Health>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn health(&self) -> Health {
        *self.health.lock().unwrap()
    }

    fn set_health(&self, h: Health) {
        *self.health.lock().unwrap() = h;
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

struct Setup<'a> {
    dir: &'a Path,
    store_url: String,
    redis_url: String,
    users: Vec<String>,
}

impl Setup<'_> {
    fn config(&self, name: &str, api_base: &str) -> PathBuf {
        let users = self
            .users
            .iter()
            .map(|u| format!("[[users]]\nid = \"{u}\"\nroles = [\"admin\"]\n"))
            .collect::<String>();
        let members = self
            .users
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"
[store]
url = "{store}"
[sessions]
backend = "redis"
url = "{redis}"
[jobs]
stale_after = "{STALE_AFTER}"
[chat]
confirm = ["开机", "关机"]
buttons = false
[wecom]
api_timeout = "2s"
delivery_lease = "8s"
[[wecom.apps]]
name = "ops"
corp_id = "{CORP}"
agent_id = {AGENT}
secret = "secret-ops"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base = "{api_base}"
[[providers]]
name = "sim"
kind = "sim"
time_scale = {TIME_SCALE}
[[roles]]
name = "admin"
commands = ["*"]
{users}
[alerts]
group_wait = "1s"
group_interval = "1h"
group_lease = "3s"
[alerts.sources.generic]
token = "{ALERT_TOKEN}"
[alerts.default]
app = "ops"
users = [{members}]
group_by = ["name"]
cards = false
"#,
                store = self.store_url,
                redis = self.redis_url,
            ),
        )
        .unwrap();
        path
    }
}

fn opsbot(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).env("HOME", dir).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("OPSBOT_") {
            c.env_remove(k);
        }
    }
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `opsbot serve` with `config` (the working directory, and so the secret key
/// file, shared by all) without waiting for it.
fn spawn(dir: &Path, config: &Path, name: &str) -> Instance {
    let port = free_port();
    let log = dir.join(format!("{name}.log"));
    let child = opsbot(dir)
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Instance {
        child,
        port,
        log,
        health: Mutex::new(Health::Up),
    }
}

async fn wait_healthy(i: &Instance) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("http://127.0.0.1:{}/healthz", i.port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "serve never answered: {}",
            i.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds, or fails with `what` after `within`.
async fn until<F, Fut>(within: Duration, what: impl Fn() -> String, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{}", what());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------
// The load and what was accepted.

/// A callback WeCom got a 200 for, and what the passive reply said.
#[derive(Debug, Clone)]
struct Accepted {
    user: String,
    text: String,
    passive: String,
}

struct Cluster {
    instances: Vec<Instance>,
    fake: FakeWecom,
    crypto: WecomCrypto,
    http: reqwest::Client,
    msg_ids: AtomicU64,
    accepted: Mutex<Vec<Accepted>>,
    /// Alerts an instance answered 200 for.
    alerts: Mutex<Vec<String>>,
    /// (VM id, VM name) of API actions answered 202.
    api_jobs: Mutex<Vec<(i64, String)>>,
}

impl Cluster {
    fn port(&self, i: usize) -> u16 {
        self.instances[i].port
    }

    /// The instances after `first` in turn (first included): where a load balancer
    /// would send WeCom's next try.
    fn order(&self, first: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.instances.len()).map(move |k| (first + k) % self.instances.len())
    }

    /// Sends `text` from `user` to instance `to` as WeCom does: on an error or no answer
    /// within 5 s the same message (same MsgId) goes again, to the next instance. The
    /// passive reply's text when some instance answered 200.
    async fn say(&self, to: usize, user: &str, text: &str) -> Option<String> {
        let msg_id = 7_000_000 + self.msg_ids.fetch_add(1, Ordering::SeqCst);
        let now = chrono::Utc::now().timestamp().to_string();
        let xml = format!(
            "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT}</AgentID></xml>"
        );
        let post = build_callback_post(&self.crypto, AGENT, &xml, b"0123456789abcdef", &now, "77");
        for i in self.order(to).take(3) {
            let url = format!("http://127.0.0.1:{}/wecom/ops/callback", self.port(i));
            let Ok(Ok(out)) = tokio::time::timeout(WECOM_WAIT, push_callback(&url, &post)).await
            else {
                continue;
            };
            if out.status != 200 {
                continue;
            }
            let passive = if out.body.is_empty() {
                String::new()
            } else {
                let xml = decrypt_mp_reply(&self.crypto, &out.body).unwrap();
                between(&xml, "<Content><![CDATA[", "]]></Content>").to_string()
            };
            self.accepted.lock().unwrap().push(Accepted {
                user: user.into(),
                text: text.into(),
                passive: passive.clone(),
            });
            return Some(passive);
        }
        None
    }

    /// Posts a generic alert to instance `to` (the next ones on failure, as a sender
    /// behind a balancer would retry).
    async fn alert(&self, to: usize, name: &str) {
        let body = format!(r#"{{"name":"{name}","endpoint":"host-{name}","severity":"warning"}}"#);
        for i in self.order(to).take(3) {
            if self.instances[i].health() != Health::Up {
                continue;
            }
            let r = self
                .http
                .post(format!("http://127.0.0.1:{}/alerts/generic", self.port(i)))
                .bearer_auth(ALERT_TOKEN)
                .header("content-type", "application/json")
                .body(body.clone())
                .timeout(WECOM_WAIT)
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 200) {
                self.alerts.lock().unwrap().push(name.into());
                return;
            }
        }
    }

    /// A REST power action on a VM through instance `to` (an API call is not retried:
    /// it is not idempotent).
    async fn api(&self, to: usize, token: &str, vm: &SimVm, action: &str) {
        let r = self
            .http
            .post(format!(
                "http://127.0.0.1:{}/api/v1/vms/sim/{}/actions",
                self.port(to),
                vm.id
            ))
            .bearer_auth(token)
            .json(&serde_json::json!({ "action": action }))
            .timeout(WECOM_WAIT)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        assert_eq!(status, 202, "{action} {}: {body}", vm.name);
        let job = body["job"].as_i64().unwrap();
        self.api_jobs.lock().unwrap().push((job, vm.name.clone()));
    }

    /// Asks for a power operation on one instance and confirms it on another: the job
    /// runs on the confirming instance.
    async fn job(&self, ask_on: usize, confirm_on: usize, user: &str, text: &str) -> bool {
        let Some(prompt) = self.say(ask_on, user, text).await else {
            return false;
        };
        if prompt.is_empty() {
            // Answered late (past the ack budget): the prompt comes as a message, and
            // only then is there something to confirm.
            let asked = || {
                delivered(&self.fake)
                    .iter()
                    .any(|(u, t)| u == &user.to_lowercase() && t.contains("即将执行"))
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while !asked() {
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        } else if !prompt.contains("确认") {
            return false;
        }
        self.say(confirm_on, user, "确认").await.is_some()
    }
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let Some(start) = s.find(open).map(|i| i + open.len()) else {
        return "";
    };
    let end = s[start..].find(close).map_or(s.len(), |e| start + e);
    &s[start..end]
}

/// Outbox items the process `pid` holds a live claim on (owner ids are
/// `host-<pid>-<random>`).
async fn claimed_by(store: &Arc<dyn Store>, pid: u32) -> Vec<opsbot_store::OutboxItem> {
    store
        .outbox_list(&OutboxQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|i| {
            i.state == OutboxState::Pending
                && i.claim.as_ref().is_some_and(|c| {
                    c.owner.contains(&format!("-{pid}-")) && c.until > chrono::Utc::now()
                })
        })
        .collect()
}

#[derive(Debug, Clone)]
struct SimVm {
    id: String,
    name: String,
    on: bool,
}

/// The simulated estate as stored (every instance's sim reads and writes this blob).
async fn sim_vms(store: &Arc<dyn Store>) -> BTreeMap<String, SimVm> {
    let json = store
        .get_state("sim:sim")
        .await
        .unwrap()
        .unwrap_or_default();
    let state: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let mut out = BTreeMap::new();
    for v in state["inventory"]["vms"].as_array().into_iter().flatten() {
        if v["template"].as_bool() == Some(true) {
            continue;
        }
        let name = v["name"].as_str().unwrap_or_default().to_string();
        out.insert(
            name.clone(),
            SimVm {
                id: v["id"].as_str().unwrap_or_default().to_string(),
                name,
                on: v["power"] == "powered_on",
            },
        );
    }
    out
}

/// Every app message WeCom took: (recipient, text), one per recipient.
/// How many of `messages` told job `j`'s asker how it ended (the engine's words:
/// ✅ done, ❌ failed, 🚫 cancelled, ⚠ interrupted).
fn endings_told(messages: &[(String, String)], j: &opsbot_core::JobRecord) -> usize {
    let id = format!("#{}", j.id.0);
    messages
        .iter()
        .filter(|(u, t)| {
            u == &j.user.to_lowercase()
                && ["✅", "❌", "🚫", "⚠"]
                    .iter()
                    .any(|mark| t.starts_with(&format!("{mark} {id} ")))
        })
        .count()
}

fn delivered(fake: &FakeWecom) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in fake.sent_to("message/send") {
        let b = &m.body;
        let text = [
            &b["text"]["content"],
            &b["markdown"]["content"],
            &b["textcard"]["description"],
            &b["template_card"]["main_title"]["title"],
        ]
        .iter()
        .find_map(|v| v.as_str())
        .map_or_else(|| b.to_string(), str::to_string);
        for user in b["touser"].as_str().unwrap_or_default().split('|') {
            if !user.is_empty() {
                out.push((user.to_lowercase(), text.clone()));
            }
        }
    }
    out
}

fn is_ascii_name(n: &str) -> bool {
    n.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

// ---------------------------------------------------------------------------------
// The test.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgres_survive_a_kill_and_a_freeze() {
    let Some(redis) = redis_url("three instances on PostgreSQL").await else {
        return;
    };
    let Some(db) = Database::postgres().await else {
        return;
    };
    three_instances(&db, &redis, "pg").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_mysql_survive_a_kill_and_a_freeze() {
    let Some(redis) = redis_url("three instances on MySQL").await else {
        return;
    };
    let Some(db) = Database::mysql().await else {
        return;
    };
    three_instances(&db, &redis, "my").await;
}

async fn three_instances(db: &Database, redis: &str, tag: &'static str) {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", AGENT);
    // Users distinct per test: the two tests may share one Redis for their sessions.
    let nonce = std::process::id() % 10_000;
    // Users 0-5 ask for jobs (one pending confirmation each at a time), 6-8 read.
    let users: Vec<String> = (0..9).map(|i| format!("{tag}{nonce}u{i}")).collect();
    fake.add_users(&users.iter().map(String::as_str).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        dir: dir.path(),
        store_url: db.url(),
        redis_url: redis.into(),
        users: users.clone(),
    };
    // Instance 2 reaches WeCom through a link the test can stall: it then holds claimed
    // outbox items whose sends hang when it is frozen.
    let link = Link::start(fake.base_url().trim_start_matches("http://").to_string()).await;
    let direct = setup.config("direct", &fake.base_url());
    let linked = setup.config("linked", &format!("http://127.0.0.1:{}", link.port));

    // The first instance migrates the store and makes the secret key all share.
    let first = spawn(dir.path(), &direct, "serve0");
    wait_healthy(&first).await;
    let token = {
        let o = opsbot(dir.path())
            .args(["token", "create", "--config"])
            .arg(&direct)
            .args(["--user", &users[5]])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let (second, third) = (
        spawn(dir.path(), &direct, "serve1"),
        spawn(dir.path(), &linked, "serve2"),
    );
    wait_healthy(&second).await;
    wait_healthy(&third).await;
    let cluster = Arc::new(Cluster {
        instances: vec![first, second, third],
        fake,
        crypto: WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap(),
        http: reqwest::Client::new(),
        msg_ids: AtomicU64::new(0),
        accepted: Mutex::default(),
        alerts: Mutex::default(),
        api_jobs: Mutex::default(),
    });
    let store = opsbot_store::connect(&db.url()).await.unwrap();

    // The estate as it was: which VMs are on, to tell later what each job changed.
    let before = sim_vms(&store).await;
    let names = |on: bool| -> Vec<SimVm> {
        before
            .values()
            .filter(|v| v.on == on && is_ascii_name(&v.name))
            .cloned()
            .collect()
    };
    let (on_vms, off_vms) = (names(true), names(false));
    assert!(
        on_vms.len() >= 30 && off_vms.len() >= 5,
        "{} on, {} off",
        on_vms.len(),
        off_vms.len()
    );
    // Jobs: 开机 of off VMs and 关机 of on ones, each VM once; API actions and reads
    // on others, so a VM's final state tells which operation ran.
    let mut chat_jobs: Vec<(String, String)> = Vec::new(); // (text, VM name)
    for (k, vm) in off_vms.iter().take(5).enumerate() {
        chat_jobs.push((format!("开机:{}", vm.name), vm.name.clone()));
        let off = &on_vms[k];
        chat_jobs.push((format!("关机:{}", off.name), off.name.clone()));
    }
    let api_vms: Vec<SimVm> = on_vms[5..10].to_vec();
    let read_vms: Vec<SimVm> = on_vms[10..30].to_vec();
    let user_of = |k: usize| users[k % 6].clone();
    let reader = |k: usize| users[6 + k % 3].clone();
    let mut seen_interrupted: BTreeSet<i64> = BTreeSet::new();

    // Phase A, all three up: reads, alerts and API actions through every instance.
    let mut tasks = Vec::new();
    for (k, vm) in read_vms.iter().take(8).enumerate() {
        let (c, u, t) = (cluster.clone(), reader(k), format!("查:{}", vm.name));
        tasks.push(tokio::spawn(async move {
            c.say(k % 3, &u, &t).await;
        }));
    }
    for k in 0..4 {
        let c = cluster.clone();
        tasks.push(tokio::spawn(async move {
            c.alert(k % 3, &format!("{tag}-alert-{k:02}")).await;
        }));
    }
    for t in tasks.drain(..) {
        t.await.unwrap();
    }
    cluster.api(0, &token, &api_vms[0], "power_off").await;
    cluster.api(1, &token, &api_vms[1], "power_off").await;

    // Then six jobs, each asked on one instance and confirmed on the next (jobs 0 and
    // 3 run on instance 1, 1 and 4 on instance 2), while instance 2's way to WeCom
    // stalls and alerts reach it: it claims their notices and its sends hang. Frozen
    // then, it holds those claims past their lease.
    link.stall();
    for (k, (text, _)) in chat_jobs.iter().take(6).enumerate() {
        let (c, u, t) = (cluster.clone(), user_of(k), text.clone());
        tasks.push(tokio::spawn(async move {
            assert!(c.job(k % 3, (k + 1) % 3, &u, &t).await, "{t} not started");
        }));
    }
    for k in 4..7 {
        cluster.alert(2, &format!("{tag}-alert-{k:02}")).await;
    }
    for t in tasks.drain(..) {
        t.await.unwrap();
    }
    let pid2 = cluster.instances[2].pid();
    let hold_deadline = Instant::now() + Duration::from_secs(10);
    let held_by_2 = loop {
        let held = claimed_by(&store, pid2).await;
        if !held.is_empty() || Instant::now() > hold_deadline {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "instance 2 (pid {pid2}) holds {} claimed outbox items when frozen: {:?}",
        held_by_2.len(),
        held_by_2.iter().map(|i| i.id).collect::<Vec<_>>()
    );

    // The jobs on instances 1 and 2 are running (asked and confirmed above).
    let running = |store: Arc<dyn Store>| async move {
        store
            .jobs(&JobQuery {
                state: Some(JobState::Running),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
    };
    let running_at_fault: Vec<i64> = running(store.clone())
        .await
        .iter()
        .map(|j| j.id.0)
        .collect();
    eprintln!("running when instance 1 is killed and 2 frozen: {running_at_fault:?}");

    // The faults: instance 1 killed outright, instance 2 frozen.
    cluster.instances[1].signal("-KILL");
    cluster.instances[2].signal("-STOP");
    cluster.instances[1].set_health(Health::Killed);
    cluster.instances[2].set_health(Health::Stopped);

    // Phase B, one instance up: reads (some sent to the dead and the frozen instance
    // first, as a balancer that has not noticed yet would), two jobs, alerts, API.
    for (k, vm) in read_vms[8..14].iter().enumerate() {
        let (c, u, t) = (cluster.clone(), reader(k), format!("查:{}", vm.name));
        tasks.push(tokio::spawn(async move {
            c.say(k % 3, &u, &t).await;
        }));
    }
    for (k, (text, _)) in chat_jobs.iter().enumerate().take(8).skip(6) {
        let (c, u, t) = (cluster.clone(), user_of(k), text.clone());
        tasks.push(tokio::spawn(async move {
            assert!(c.job(0, 0, &u, &t).await, "{t} not started");
        }));
    }
    for k in 7..9 {
        let c = cluster.clone();
        tasks.push(tokio::spawn(async move {
            c.alert(0, &format!("{tag}-alert-{k:02}")).await;
        }));
    }
    for t in tasks.drain(..) {
        t.await.unwrap();
    }
    cluster.api(0, &token, &api_vms[2], "power_off").await;
    cluster.api(0, &token, &api_vms[3], "power_off").await;

    // Past the leases: the dead and the frozen instances' jobs are interrupted by
    // instance 0, and the frozen one's outbox claims have run out.
    let faulted: Vec<i64> = running_at_fault.clone();
    until(
        Duration::from_secs(60),
        || "the dead and frozen instances' jobs were never interrupted".into(),
        || {
            let store = store.clone();
            let faulted = faulted.clone();
            async move {
                let mut all = true;
                for id in &faulted {
                    let j = store.job(opsbot_core::JobId(*id)).await.unwrap().unwrap();
                    all &= j.state != JobState::Running;
                }
                all
            }
        },
    )
    .await;
    for id in &faulted {
        let j = store.job(opsbot_core::JobId(*id)).await.unwrap().unwrap();
        if j.state == JobState::Interrupted {
            seen_interrupted.insert(*id);
        }
    }
    until(
        Duration::from_secs(60),
        || "the frozen instance's outbox claims never ran out".into(),
        || {
            let store = store.clone();
            async move { claimed_by(&store, pid2).await.is_empty() }
        },
    )
    .await;
    // ...and were taken over and sent by instance 0 while instance 2 was frozen.
    let held_ids: Vec<i64> = held_by_2.iter().map(|i| i.id).collect();
    until(
        Duration::from_secs(60),
        || format!("the frozen instance's items {held_ids:?} were never sent by another"),
        || {
            let (store, held_ids) = (store.clone(), held_ids.clone());
            async move {
                let sent = store
                    .outbox_list(&OutboxQuery {
                        state: Some(OutboxState::Sent),
                        limit: 1000,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                held_ids.iter().all(|id| sent.iter().any(|i| i.id == *id))
            }
        },
    )
    .await;

    // Instance 2 wakes: its sends fail at once (the link drops them), its jobs'
    // pauses are over.
    link.release();
    cluster.instances[2].signal("-CONT");
    cluster.instances[2].set_health(Health::Up);

    // Phase C, instances 0 and 2: jobs confirmed across them, reads, alerts, API.
    for (n, k) in (8..10).enumerate() {
        let (c, u, t) = (cluster.clone(), user_of(k), chat_jobs[k].0.clone());
        let (ask, confirm) = if n == 0 { (0, 2) } else { (2, 0) };
        tasks.push(tokio::spawn(async move {
            assert!(c.job(ask, confirm, &u, &t).await, "{t} not started");
        }));
    }
    for (k, vm) in read_vms[14..20].iter().enumerate() {
        let (c, u, t) = (cluster.clone(), reader(k), format!("查:{}", vm.name));
        tasks.push(tokio::spawn(async move {
            c.say(if k % 2 == 0 { 0 } else { 2 }, &u, &t).await;
        }));
    }
    for k in 9..11 {
        let c = cluster.clone();
        tasks.push(tokio::spawn(async move {
            c.alert(
                if k % 2 == 0 { 0 } else { 2 },
                &format!("{tag}-alert-{k:02}"),
            )
            .await;
        }));
    }
    for t in tasks.drain(..) {
        t.await.unwrap();
    }
    cluster.api(2, &token, &api_vms[4], "power_off").await;

    // Quiet: no job running, nothing left to send. Instance 2 answering a last
    // command shows it is past its freeze.
    assert!(cluster.say(2, &users[6], "概况").await.is_some());
    until(
        Duration::from_secs(90),
        || "the load never settled (jobs running, outbox items unsent, alert groups open or an ended job's asker not told)".into(),
        || {
            let store = store.clone();
            let messages = delivered(&cluster.fake);
            async move {
                let jobs = store
                    .jobs(&JobQuery {
                        limit: 1000,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let busy = jobs.iter().any(|j| j.state == JobState::Running);
                // A job's row says it ended a moment before its asker's notice is
                // queued: an ended chat job without a delivered ending is not settled.
                let untold = jobs
                    .iter()
                    .filter(|j| j.state != JobState::Running && j.channel.starts_with("wecom"))
                    .filter(|j| endings_told(&messages, j) == 0)
                    .count();
                let unsent = store
                    .outbox_list(&OutboxQuery {
                        limit: 1000,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|i| matches!(i.state, OutboxState::Pending | OutboxState::Held))
                    .count();
                // A group claimed by the killed or frozen instance is sent by another
                // once its claim runs out.
                let open_groups = store.alert_notice_groups().await.unwrap().len();
                !busy && unsent == 0 && open_groups == 0 && untold == 0
            }
        },
    )
    .await;

    // -----------------------------------------------------------------------------
    // The checks. Every failure is collected, so one run reports them all.
    let mut failures: Vec<String> = Vec::new();
    let accepted = cluster.accepted.lock().unwrap().clone();
    let alerts = cluster.alerts.lock().unwrap().clone();
    let api_jobs = cluster.api_jobs.lock().unwrap().clone();
    let jobs = store
        .jobs(&JobQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let after = sim_vms(&store).await;
    let messages = delivered(&cluster.fake);
    let outbox = store
        .outbox_list(&OutboxQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let audit = store
        .audit_log(&AuditQuery {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();

    // No job left running.
    for j in &jobs {
        if j.state == JobState::Running {
            failures.push(format!("job #{} still running: {}", j.id.0, j.text));
        }
    }

    // Every accepted command ran once: one job per operation asked (chat and API).
    let mut jobs_by_vm: HashMap<String, Vec<&opsbot_core::JobRecord>> = HashMap::new();
    for j in &jobs {
        let vm = j
            .text
            .rsplit([':', ' ', '：', '/'])
            .next()
            .unwrap_or_default()
            .to_string();
        jobs_by_vm.entry(vm).or_default().push(j);
    }
    let asked: Vec<(String, bool)> = chat_jobs
        .iter()
        .map(|(text, vm)| (vm.clone(), text.starts_with("开机")))
        .chain(api_jobs.iter().map(|(_, vm)| (vm.clone(), false)))
        .collect();
    for (vm, _) in &asked {
        let n = jobs_by_vm.get(vm).map_or(0, Vec::len);
        if n != 1 {
            failures.push(format!(
                "{vm}: {n} jobs for one accepted operation: {:?}",
                jobs_by_vm.get(vm)
            ));
        }
    }
    // ...and changed its VM only if it succeeded; a job once interrupted stays so and
    // its VM is as it was (no work completed by a fenced-out instance).
    for (vm, power_on) in &asked {
        let Some(job) = jobs_by_vm.get(vm).and_then(|j| j.first()) else {
            continue;
        };
        let was = before.get(vm).map(|v| v.on);
        let now = after.get(vm).map(|v| v.on);
        let interrupted_once = seen_interrupted.contains(&job.id.0);
        if interrupted_once && job.state != JobState::Interrupted {
            failures.push(format!(
                "job #{} ({}) was interrupted, then ended {:?} (\"{}\"): a fenced-out instance completed it",
                job.id.0, job.text, job.state, job.message
            ));
        }
        match job.state {
            JobState::Succeeded if now != Some(*power_on) => failures.push(format!(
                "job #{} ({}) succeeded but {vm} is {:?}",
                job.id.0, job.text, now
            )),
            JobState::Interrupted | JobState::Failed | JobState::Cancelled if now != was => {
                failures.push(format!(
                    "job #{} ({}) ended {:?} but {vm} changed from on={:?} to on={:?}{}",
                    job.id.0,
                    job.text,
                    job.state,
                    was,
                    now,
                    if interrupted_once {
                        ": work completed after the job was interrupted (fenced-out instance)"
                    } else {
                        ""
                    }
                ))
            }
            _ => {}
        }
    }
    // Every accepted message is audited once.
    let mut audited: HashMap<(String, String), usize> = HashMap::new();
    for a in &audit {
        *audited.entry((a.user.clone(), a.text.clone())).or_default() += 1;
    }
    let mut sent_texts: HashMap<(String, String), usize> = HashMap::new();
    for a in &accepted {
        *sent_texts
            .entry((a.user.clone(), a.text.clone()))
            .or_default() += 1;
    }
    for ((user, text), n) in &sent_texts {
        // A job's command is audited when asked, when confirmed and when interrupted:
        // that it ran once is the one-job-per-operation check above.
        if text == "确认" || text.starts_with("开机") || text.starts_with("关机") {
            continue;
        }
        let got = audited
            .get(&(user.clone(), text.clone()))
            .copied()
            .unwrap_or(0);
        if got != *n {
            failures.push(format!(
                "{user} sent {text:?} {n} time(s) (accepted), audited {got} time(s)"
            ));
        }
    }

    // Every reply and notice delivered once: no (recipient, text) twice, none swallowed.
    let mut copies: HashMap<&(String, String), usize> = HashMap::new();
    for m in &messages {
        *copies.entry(m).or_default() += 1;
    }
    for ((user, text), n) in &copies {
        if *n > 1 {
            failures.push(format!("delivered {n} times to {user}: {text:?}"));
        }
    }
    for d in cluster.fake.dropped() {
        failures.push(format!(
            "WeCom swallowed a message to {} (rate limit)",
            d.user
        ));
    }
    let told = |user: &str, needle: &str| -> usize {
        messages
            .iter()
            .filter(|(u, t)| u == &user.to_lowercase() && t.contains(needle))
            .count()
    };
    // A read command's answer: in the passive reply, or later by message if it was late.
    for a in &accepted {
        if let Some(vm) = a.text.strip_prefix("查:") {
            if !a.passive.contains(vm) && told(&a.user, vm) == 0 {
                failures.push(format!("{} never got an answer to {}", a.user, a.text));
            }
        }
    }
    // Each job's asker hears how it ended exactly once (the engine's words: ✅ done,
    // ❌ failed, 🚫 cancelled, ⚠ interrupted).
    for j in &jobs {
        let endings = endings_told(&messages, j);
        if j.channel.starts_with("wecom") && endings != 1 {
            failures.push(format!(
                "job #{} ({}, {:?}): its asker {} was told how it ended {endings} times",
                j.id.0, j.text, j.state, j.user
            ));
        }
    }
    // Each accepted alert reaches every member of its route once.
    for name in &alerts {
        for u in &users {
            let n = told(u, name);
            if n != 1 {
                failures.push(format!("alert {name}: {n} notices to {u}"));
            }
        }
    }
    // The outbox: everything sent, nothing dead, nothing queued twice.
    let mut queued: HashMap<(&str, &str), usize> = HashMap::new();
    for i in &outbox {
        *queued.entry((&i.target, &i.body)).or_default() += 1;
        if i.state != OutboxState::Sent {
            failures.push(format!(
                "outbox item {} is {:?} ({:?}): {}",
                i.id, i.state, i.last_error, i.body
            ));
        }
    }
    for ((target, body), n) in &queued {
        if *n > 1 {
            failures.push(format!("queued {n} times for {target}: {body}"));
        }
    }
    // The frozen instance's claimed items: sent once by another, not again by it.
    for item in &held_by_2 {
        let first_line = item.body.lines().next().unwrap_or_default().to_string();
        let n = messages
            .iter()
            .filter(|(_, t)| t.contains(&first_line))
            .count();
        let members = users.len();
        if n > members {
            failures.push(format!(
                "item {} claimed by the frozen instance was delivered {n} times: {first_line}",
                item.id
            ));
        }
    }

    eprintln!(
        "{} callbacks accepted, {} alerts, {} API jobs, {} jobs in all ({} interrupted), {} messages delivered",
        accepted.len(),
        alerts.len(),
        api_jobs.len(),
        jobs.len(),
        jobs.iter().filter(|j| j.state == JobState::Interrupted).count(),
        messages.len()
    );
    if !failures.is_empty() {
        eprintln!("--- jobs ---");
        for j in &jobs {
            eprintln!(
                "#{} {} {} {:?} {}: {}",
                j.id.0, j.user, j.channel, j.state, j.text, j.message
            );
        }
        eprintln!("--- delivered ---");
        for (u, t) in &messages {
            eprintln!("{u}: {}", t.replace('\n', " ⏎ "));
        }
        for (i, inst) in cluster.instances.iter().enumerate() {
            let log = inst.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- instance {i} (pid {}, {:?}) log tail ---\n{}",
                inst.pid(),
                inst.health(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        panic!(
            "{} check(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------
// The benchmark (by hand): one instance against three behind the round-robin balancer.

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// `概况` callbacks with distinct MsgIds from 64 connections through `port` for
/// `window` after a warm-up; (callbacks answered 200 in the window, CPU of `pids`).
async fn hammer(port: u16, pids: &[u32], users: &[String], window: Duration) -> (u64, Duration) {
    const CONNECTIONS: usize = 64;
    let crypto = WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap();
    // Built before the clock starts: encryption is WeCom's work, not opsbot's.
    let per_conn = 800;
    let now = chrono::Utc::now().timestamp().to_string();
    let posts: Vec<Vec<opsbot_fakes::CallbackPost>> = (0..CONNECTIONS)
        .map(|c| {
            (0..per_conn)
                .map(|n| {
                    let msg_id = 90_000_000 + c * per_conn + n;
                    let user = &users[c % users.len()];
                    let xml = format!(
                        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[概况]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT}</AgentID></xml>"
                    );
                    build_callback_post(&crypto, AGENT, &xml, b"0123456789abcdef", &now, "1")
                })
                .collect()
        })
        .collect();
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let url = format!("http://127.0.0.1:{port}/wecom/ops/callback");
    let tasks: Vec<_> = posts
        .into_iter()
        .map(|mine| {
            let (counting, stop, done, url) =
                (counting.clone(), stop.clone(), done.clone(), url.clone());
            tokio::spawn(async move {
                // One client, one kept-alive connection per task.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                for post in mine {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let ok = client
                        .post(format!("{url}?{}", post.query))
                        .header("content-type", "text/xml")
                        .body(post.body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    if ok && counting.load(Ordering::Relaxed) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await; // warm-up: connections, caches
    let cpu0: Duration = pids.iter().map(|p| cpu_time(*p)).sum();
    counting.store(true, Ordering::SeqCst);
    tokio::time::sleep(window).await;
    counting.store(false, Ordering::SeqCst);
    let cpu1: Duration = pids.iter().map(|p| cpu_time(*p)).sum();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    (done.load(Ordering::SeqCst), cpu1.saturating_sub(cpu0))
}

/// By hand, on an otherwise idle machine:
/// `cargo test -p opsbot --release --test instances -- --ignored --nocapture bench`.
/// Prints callbacks/s and CPU per callback for one instance and for three behind the
/// balancer, on one PostgreSQL (and Redis sessions, as the three need).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run by hand with --ignored --nocapture"]
async fn bench_one_instance_against_three_on_postgres() {
    let Some(redis) = redis_url("benchmark").await else {
        return;
    };
    let window = Duration::from_secs(
        std::env::var("OPSBOT_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", AGENT);
    let users: Vec<String> = (0..8).map(|i| format!("bench{i}")).collect();
    fake.add_users(&users.iter().map(String::as_str).collect::<Vec<_>>());
    let mut results = Vec::new();
    for n in [1usize, 3] {
        let Some(db) = Database::postgres().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup {
            dir: dir.path(),
            store_url: db.url(),
            redis_url: redis.clone(),
            users: users.clone(),
        };
        let config = setup.config("bench", &fake.base_url());
        let first = spawn(dir.path(), &config, "serve0");
        wait_healthy(&first).await;
        let mut instances = vec![first];
        for i in 1..n {
            instances.push(spawn(dir.path(), &config, &format!("serve{i}")));
        }
        for i in &instances {
            wait_healthy(i).await;
        }
        let balancer = Balancer::start(instances.iter().map(|i| i.port).collect()).await;
        let pids: Vec<u32> = instances.iter().map(Instance::pid).collect();
        let (count, cpu) = hammer(balancer.port, &pids, &users, window).await;
        let per_s = count as f64 / window.as_secs_f64();
        let cpu_us = cpu.as_micros() as f64 / count.max(1) as f64;
        eprintln!(
            "{n} instance(s): {count} callbacks in {window:?} = {per_s:.0}/s, {cpu_us:.0} µs CPU each (opsbot processes only)"
        );
        results.push(per_s);
        drop(balancer);
        drop(instances);
    }
    eprintln!(
        "three instances serve {:.0} % of what one serves",
        100.0 * results[1] / results[0].max(1.0)
    );
}

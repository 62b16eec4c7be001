//! `opsbot serve` on PostgreSQL with bad input and an outage: one bad alert among many
//! sent at the same moment never takes the others down (a NUL character is stored
//! cleaned; an alert the database itself refuses gets a 400 alone), a smart-robot
//! message with a NUL is answered like any other, and a store outage answers 503 with
//! a body that names no URL, host or database (the log has them).
//!
//! Needs the PostgreSQL server of `OPSBOT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `psql`; without them the tests
//! skip, unless `OPSBOT_TEST_REQUIRE_SERVICES=1` (CI), where they fail.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_fakes::{
    aibot_refresh_json, aibot_text_json, build_aibot_post, decrypt_aibot_reply,
    push_aibot_callback, FakeWecom,
};
use opsbot_wecom::WecomCrypto;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");
const CORP: &str = "ww1436e0e65a779aee";
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

/// Skips `what` visibly (one stderr line) or, in CI, fails it.
fn skip(what: &str, why: impl std::fmt::Display) {
    let _: Option<()> = opsbot_testkit::skip(
        format!("{what}: PostgreSQL unreachable ({why})"),
        opsbot_testkit::fix::POSTGRES,
    );
}

/// A fresh database on the test server, dropped at the end.
struct Database {
    admin: String,
    /// host:port of the server.
    server: String,
    user: String,
    name: String,
}

impl Database {
    async fn create(what: &str) -> Option<Database> {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = std::env::var("OPSBOT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let rest = admin.split("://").nth(1).unwrap_or_default();
        let (user, host) = rest.split_once('@').unwrap_or(("postgres", rest));
        let server = host
            .split('/')
            .next()
            .unwrap_or("127.0.0.1:5432")
            .to_string();
        let user = user.split(':').next().unwrap_or("postgres").to_string();
        if let Err(e) = TcpStream::connect(&server).await {
            skip(what, e);
            return None;
        }
        let db = Database {
            name: format!(
                "opsbot_alerts_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
            admin,
            server,
            user,
        };
        if let Err(e) = db.psql_admin(&format!("CREATE DATABASE {}", db.name)) {
            skip(what, e);
            return None;
        }
        Some(db)
    }

    /// The URL of this database through `server` (host:port).
    fn url_via(&self, server: &str) -> String {
        format!("postgres://{}@{server}/{}", self.user, self.name)
    }

    fn psql_on(&self, url: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args([url, "-q", "-t", "-A", "-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn psql_admin(&self, sql: &str) -> Result<String, String> {
        self.psql_on(&self.admin, sql)
    }

    fn psql(&self, sql: &str) -> String {
        self.psql_on(&self.url_via(&self.server), sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.psql_admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Forwards 127.0.0.1:port to `target` until cut; a cut drops every open connection
/// and refuses new ones, as a crashed server or a broken network would.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (c, k) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                k.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            port,
            cut,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `opsbot serve`, killed when the test ends however it ends.
struct Serve {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    async fn start(dir: &Path, store_url: &str, api_base: &str) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("opsbot.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "{store_url}"
[[providers]]
name = "sim"
kind = "sim"
[[wecom.apps]]
name = "ops"
corp_id = "{CORP}"
agent_id = 1000002
secret = "secret-ops"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base = "{api_base}"
[[wecom.bots]]
name = "ops"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base = "{api_base}"
[[roles]]
name = "admin"
commands = ["*"]
[[users]]
id = "zhangsan"
roles = ["admin"]
[alerts]
group_wait = "1h"
[alerts.sources.generic]
token = "generic-secret-token"
[alerts.default]
app = "ops"
users = ["zhangsan"]
"#
            ),
        )
        .unwrap();
        let log = dir.join("serve.log");
        let mut c = Command::new(BIN);
        c.current_dir(dir).env("HOME", dir).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("OPSBOT_") {
                c.env_remove(k);
            }
        }
        let child = c
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let serve = Serve { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "serve never answered: {}",
                serve.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        serve
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Posts one generic alert (raw JSON) and returns status and body.
    async fn alert(&self, json: String) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/alerts/generic", self.port))
            .bearer_auth("generic-secret-token")
            .header("content-type", "application/json")
            .body(json)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_alert_among_forty_good_ones_takes_nothing_down() {
    let Some(db) = Database::create("alert poison test").await else {
        return;
    };
    let fake = FakeWecom::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let serve = Arc::new(Serve::start(dir.path(), &db.url_via(&db.server), &fake.base_url()).await);
    // A poison for a reason nobody foresaw: the database itself refuses this name.
    db.psql("CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN IF NEW.name = 'refused' THEN RAISE EXCEPTION 'refused' USING ERRCODE = '23514'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql");
    db.psql("CREATE TRIGGER refuse_poison BEFORE INSERT ON alert FOR EACH ROW EXECUTE FUNCTION refuse_poison()");

    // 40 good alerts, one with a NUL in its name and one the database refuses, all
    // released at the same moment so they share group commits.
    let mut bodies: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("good-{i:02}"),
                format!(r#"{{"name":"good-{i:02}","endpoint":"web-{i:02}","severity":"warning"}}"#),
            )
        })
        .collect();
    bodies.push((
        "nul".into(),
        r#"{"name":"poison\u0000","endpoint":"web-nul","severity":"warning"}"#.into(),
    ));
    bodies.push((
        "refused".into(),
        r#"{"name":"refused","endpoint":"web-bad","severity":"warning"}"#.into(),
    ));
    let start = Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|(what, body)| {
            let (serve, start) = (serve.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let (status, answer) = serve.alert(body).await;
                (what, status, answer)
            })
        })
        .collect();
    let mut refused_good = Vec::new();
    let mut refused = None;
    for t in tasks {
        let (what, status, answer) = t.await.unwrap();
        match what.as_str() {
            "refused" => refused = Some((status, answer)),
            _ if status != 200 => refused_good.push(format!("{what}: {status} {answer}")),
            _ => {}
        }
    }
    assert!(
        refused_good.is_empty(),
        "{} good alerts refused:\n{}",
        refused_good.len(),
        refused_good.join("\n")
    );
    let (status, answer) = refused.unwrap();
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "unstorable", "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains("rule of the database"), "{message}");
    assert_eq!(db.psql("SELECT count(*) FROM alert"), "41");
    assert_eq!(
        db.psql("SELECT name FROM alert WHERE endpoint = 'web-nul'"),
        "poison\u{FFFD}",
        "the NUL is stored as U+FFFD"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_answers_503_naming_no_database() {
    let Some(db) = Database::create("store outage test").await else {
        return;
    };
    let proxy = Proxy::start(db.server.clone()).await;
    let fake = FakeWecom::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let via = format!("127.0.0.1:{}", proxy.port);
    let serve = Serve::start(dir.path(), &db.url_via(&via), &fake.base_url()).await;
    let alert = |i: usize| format!(r#"{{"name":"outage-{i}","endpoint":"web-01"}}"#);
    let (status, answer) = serve.alert(alert(0)).await;
    assert_eq!(status, 200, "{answer}");

    proxy.cut();
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let (status, answer) = serve.alert(alert(1)).await;
        if status == 503 {
            break answer;
        }
        assert!(Instant::now() < deadline, "still {status} {answer}");
    };
    assert_eq!(answer["error"], "store_unavailable", "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains("postgres unavailable"), "{message}");
    for secret in ["://", "127.0.0.1", &proxy.port.to_string(), &db.name] {
        assert!(!message.contains(secret), "{secret:?} in {message}");
    }
    // The operator finds the detail in the log.
    let log = serve.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("the store is unavailable") && l.contains(&db.name)),
        "{log}"
    );
}

/// One signed robot callback; the decrypted answer, if any.
async fn robot(serve: &Serve, plaintext: &str) -> Option<serde_json::Value> {
    let crypto = WecomCrypto::new(TOKEN, AES_KEY, "").unwrap();
    let now = chrono::Utc::now().timestamp().to_string();
    let post = build_aibot_post(&crypto, plaintext, b"0123456789abcdef", &now, &now);
    let url = format!("http://127.0.0.1:{}/wecom/bot/ops/callback", serve.port);
    let out = push_aibot_callback(&url, &post).await.unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    (!out.body.is_empty()).then(|| decrypt_aibot_reply(&crypto, &out.body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_message_with_a_nul_is_answered() {
    let Some(db) = Database::create("robot NUL test").await else {
        return;
    };
    let fake = FakeWecom::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &db.url_via(&db.server), &fake.base_url()).await;
    // The message id is the stream's key: PostgreSQL cannot store it as sent.
    let msg = "msg\u{0}nul";
    let response_url = format!("{}/cgi-bin/aibot/response?response_code=x", fake.base_url());
    let ack = robot(
        &serve,
        &aibot_text_json(msg, None, "zhangsan", "概况", &response_url),
    )
    .await
    .expect("acknowledged with a stream");
    let stream = ack["stream"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let content = loop {
        let reply = robot(
            &serve,
            &aibot_refresh_json("refresh-1", None, "zhangsan", &stream),
        )
        .await
        .expect("a refresh is answered");
        if reply["stream"]["finish"] == true {
            break reply["stream"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        assert!(
            Instant::now() < deadline,
            "never finished: {reply}\n{}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(content.contains("虚拟机"), "{content}");
    // WeCom's retry of the same message finds its stream: nothing runs twice.
    assert!(robot(
        &serve,
        &aibot_text_json(msg, None, "zhangsan", "概况", &response_url)
    )
    .await
    .is_some_and(|again| again["stream"]["id"] == stream.as_str()));
    assert!(
        !serve.log_text().contains("cannot record"),
        "{}",
        serve.log_text()
    );
    assert_eq!(db.psql("SELECT msg_id FROM bot_stream"), "msg\u{FFFD}nul");
}

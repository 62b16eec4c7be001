//! Jobs of a process that dies, with the real binary: `opsbot serve` is killed (SIGKILL)
//! in the middle of a long clone asked for in WeCom and started again at once, before
//! the job's heartbeat is stale. The running instance notices the job within its sweep
//! period (no further restart), records it interrupted, and the asker hears of it in
//! WeCom through the outbox.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_core::JobState;
use opsbot_fakes::{build_callback_post, push_callback, FakeWecom};
use opsbot_store::{OutboxQuery, OutboxState, Store};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");
const CORP: &str = "ww1436e0e65a779aee";
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

/// A server child, killed if the test ends early.
struct Serve {
    child: Child,
    port: u16,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts `opsbot serve` in `dir` with `config` and waits until it answers.
    fn start(dir: &Path, config: &Path) -> Serve {
        let port = free_port();
        let mut c = Command::new(BIN);
        c.current_dir(dir).env("HOME", dir).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("OPSBOT_") {
                c.env_remove(k);
            }
        }
        let child = c
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let serve = Serve { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !serve.healthy() {
            assert!(Instant::now() < deadline, "serve never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        serve
    }

    fn healthy(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        use std::io::Write;
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .is_err()
        {
            return false;
        }
        let mut body = String::new();
        s.read_to_string(&mut body).is_ok() && body.starts_with("HTTP/1.1 200")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `check` holds, or fails with `what` after `within`.
async fn until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn job_state(store: &Arc<dyn Store>, id: i64) -> Option<(JobState, u8)> {
    store
        .job(opsbot_core::JobId(id))
        .await
        .unwrap()
        .map(|j| (j.state, j.progress))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_servers_job_is_interrupted_by_the_running_one_and_the_asker_told() {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret", 1000002);
    fake.add_users(&["zhangsan"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opsbot.toml");
    // A clone a hundred times slower than the simulator's (minutes); no confirmation.
    std::fs::write(
        &config,
        format!(
            r#"
[store]
url = "sqlite://data/opsbot.db"
[jobs]
stale_after = "6s"
[chat]
confirm = []
[[wecom.apps]]
name = "ops"
corp_id = "{CORP}"
agent_id = 1000002
secret = "secret"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base = "{}"
[[providers]]
name = "sim"
kind = "sim"
time_scale = 100
[[roles]]
name = "admin"
commands = ["*"]
[[users]]
id = "zhangsan"
roles = ["admin"]
"#,
            fake.base_url()
        ),
    )
    .unwrap();

    let mut first = Serve::start(dir.path(), &config);
    let crypto = opsbot_wecom::WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap();
    let now = chrono::Utc::now().timestamp().to_string();
    let xml = format!("<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[克隆:1,长任务,10.96.0.10]]></Content><MsgId>1</MsgId><AgentID>1000002</AgentID></xml>");
    let post = build_callback_post(&crypto, 1000002, &xml, b"0123456789abcdef", &now, "5");
    let out = push_callback(
        &format!("http://127.0.0.1:{}/wecom/ops/callback", first.port),
        &post,
    )
    .await
    .unwrap();
    assert_eq!(out.status, 200, "{}", out.body);

    let store = opsbot_store::connect(&format!("sqlite://{}/data/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    until(
        Duration::from_secs(30),
        "the clone never started",
        || async { matches!(job_state(&store, 1).await, Some((JobState::Running, p)) if p > 0) },
    )
    .await;

    // Killed outright: no graceful stop records anything.
    first.signal("-KILL");
    first.wait_exit();
    drop(first);
    let second = Serve::start(dir.path(), &config);

    until(
        Duration::from_secs(60),
        "the dead process's job was never marked interrupted by the running instance",
        || async { matches!(job_state(&store, 1).await, Some((JobState::Interrupted, _))) },
    )
    .await;
    let told = |fake: &FakeWecom| {
        fake.sent_to("message/send")
            .into_iter()
            .filter(|m| {
                let body = m.body.to_string();
                body.contains("#1 已中断") && body.contains("zhangsan")
            })
            .count()
    };
    until(
        Duration::from_secs(30),
        "the asker was never told in WeCom",
        || async { told(&fake) > 0 },
    )
    .await;
    let notices: Vec<_> = store
        .outbox_list(&OutboxQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.body.contains("已中断"))
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    until(
        Duration::from_secs(30),
        "the notice was never marked sent",
        || async {
            store
                .outbox_list(&OutboxQuery {
                    state: Some(OutboxState::Sent),
                    ..Default::default()
                })
                .await
                .unwrap()
                .iter()
                .any(|i| i.id == notices[0].id)
        },
    )
    .await;

    let mut second = second;
    second.signal("-TERM");
    assert!(second.wait_exit().success());
    assert_eq!(told(&fake), 1, "told once");
    let job = store.job(opsbot_core::JobId(1)).await.unwrap().unwrap();
    assert!(job.message.contains("已中断"), "{}", job.message);
}

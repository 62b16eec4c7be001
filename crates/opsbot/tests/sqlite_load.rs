//! One `opsbot serve` on one SQLite file under a mixed write load, as in production:
//! alerts over HTTP, WeCom callbacks (commands that audit, run jobs and queue replies),
//! agent reports, the scheduled sync every second, and CLI processes beside it
//! (`opsbot sync`, `opsbot chat -c`, `opsbot token create`) writing the same file.
//! Every request is accepted (no 503), every CLI run succeeds, and the log never says
//! `database is locked`: every writer waits its turn.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_fakes::{build_callback_post, push_callback, FakeWecom};
use opsbot_wecom::WecomCrypto;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");
const CORP: &str = "ww1436e0e65a779aee";
const AGENT: i64 = 1000002;
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

/// A process that is killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path, port: u16, api_base: &str) -> PathBuf {
    let path = dir.join("opsbot.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "sqlite://{db}"
[[providers]]
name = "sim"
kind = "sim"
sync_interval = "1s"
[[wecom.apps]]
name = "ops"
corp_id = "{CORP}"
agent_id = {AGENT}
secret = "secret-ops"
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
group_wait = "1s"
group_interval = "2s"
[alerts.sources.generic]
token = "generic-secret-token"
[alerts.default]
app = "ops"
users = ["zhangsan"]
[cmdb]
max_report_bytes = 1048576
"#,
            db = dir.join("opsbot.db").display()
        ),
    )
    .unwrap();
    path
}

/// A text message from zhangsan as WeCom encrypts and signs it.
fn callback(crypto: &WecomCrypto, content: &str, msg_id: u64) -> opsbot_fakes::CallbackPost {
    let now = chrono::Utc::now().timestamp().to_string();
    let xml = format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT}</AgentID></xml>"
    );
    build_callback_post(crypto, AGENT, &xml, b"0123456789abcdef", &now, "1320562132")
}

/// A CMDB report of the fixture server as `host`, with one fact changed per round.
fn report(base: &opsbot_cmdb::Report, host: &str, round: usize) -> Vec<u8> {
    let mut r = base.clone();
    r.identity = host.into();
    r.hostname = host.into();
    if let Some(os) = r.os.as_mut() {
        os.kernel = format!("6.1.0-{round}-amd64");
    }
    serde_json::to_vec(&r).unwrap()
}

/// Every answer that was not a success, as `what: status body`.
type Failures = Arc<Mutex<Vec<String>>>;

async fn check(failures: &Failures, what: String, r: reqwest::Result<reqwest::Response>) {
    match r {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            failures
                .lock()
                .unwrap()
                .push(format!("{what}: {status} {body}"));
        }
        Err(e) => failures.lock().unwrap().push(format!("{what}: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_write_load_on_one_sqlite_file_is_never_refused() {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", AGENT);
    fake.add_users(&["zhangsan"]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, &fake.base_url());
    let token = |host: &str| {
        let o = opsbot(dir.path())
            .args(["token", "create", "--config"])
            .arg(&cfg)
            .args(["--agent", "--host", host])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let hosts: Vec<(String, String)> = ["load-01", "load-02"]
        .iter()
        .map(|h| (h.to_string(), token(h)))
        .collect();

    let log = dir.path().join("serve.log");
    let _serve = Proc(
        opsbot(dir.path())
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "serve never answered: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let failures: Failures = Arc::default();
    let mut load = Vec::new();
    // Alerts: 4 senders, each new alerts and repeats of its own.
    for w in 0..4 {
        let (http, base, failures) = (http.clone(), base.clone(), failures.clone());
        load.push(tokio::spawn(async move {
            for i in 0..30 {
                let name = format!("load-{w}-{}", i % 20);
                let r = http
                    .post(format!("{base}/alerts/generic"))
                    .bearer_auth("generic-secret-token")
                    .json(&serde_json::json!({"name": name, "endpoint": format!("web-{w}"), "severity": "warning"}))
                    .send()
                    .await;
                check(&failures, format!("alert {name}"), r).await;
            }
        }));
    }
    // WeCom callbacks: commands that read, audit, run jobs and queue replies.
    let crypto = Arc::new(WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap());
    for w in 0..4u64 {
        let (crypto, base, failures) = (crypto.clone(), base.clone(), failures.clone());
        load.push(tokio::spawn(async move {
            let url = format!("{base}/wecom/ops/callback");
            for i in 0..20u64 {
                let content = match i % 4 {
                    0 => format!("开机:web-0{}", w + 1),
                    1 => "虚拟机".to_string(),
                    _ => "概况".to_string(),
                };
                let msg_id = 7_000_000 + w * 1000 + i;
                match push_callback(&url, &callback(&crypto, &content, msg_id)).await {
                    Ok(o) if o.status == 200 => {}
                    Ok(o) => failures
                        .lock()
                        .unwrap()
                        .push(format!("callback {msg_id}: {} {}", o.status, o.body)),
                    Err(e) => failures
                        .lock()
                        .unwrap()
                        .push(format!("callback {msg_id}: {e}")),
                }
            }
        }));
    }
    // Agent reports, one host per token.
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../opsbot-cmdb/tests/fixtures/server");
    let collected = Arc::new(opsbot_cmdb::collect::collect(
        &opsbot_cmdb::source::FsSource::at(fixture),
        &[],
        None,
    ));
    for (host, token) in hosts {
        let (http, base, failures, collected) = (
            http.clone(),
            base.clone(),
            failures.clone(),
            collected.clone(),
        );
        load.push(tokio::spawn(async move {
            for round in 0..15 {
                let r = http
                    .post(format!("{base}/api/v1/agent/report"))
                    .bearer_auth(&token)
                    .body(report(&collected, &host, round))
                    .send()
                    .await;
                check(&failures, format!("report {host} {round}"), r).await;
            }
        }));
    }
    // Other processes on the same file meanwhile.
    let cli = |args: &[&str]| {
        opsbot(dir.path())
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let beside = vec![
        ("sync", cli(&["sync"])),
        (
            "chat 概况",
            cli(&["chat", "--user", "zhangsan", "-c", "概况"]),
        ),
        (
            "chat 虚拟机",
            cli(&["chat", "--user", "zhangsan", "-c", "虚拟机"]),
        ),
        ("token", cli(&["token", "create", "--agent"])),
    ];

    for task in load {
        task.await.unwrap();
    }
    let mut cli_failures = Vec::new();
    for (what, child) in beside {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let said = text(&out);
        if !out.status.success() || said.contains("存储暂不可用") || said.contains("locked") {
            cli_failures.push(format!("{what}: {:?} {said}", out.status.code()));
        }
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} requests refused:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cli_failures.is_empty(), "{}", cli_failures.join("\n"));
    let log = std::fs::read_to_string(&log).unwrap();
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("database is locked") || l.contains("unavailable"))
        .collect();
    assert!(
        bad.is_empty(),
        "the log reports store trouble:\n{}",
        bad.join("\n")
    );
}

//! The alert gateway end to end, as it runs in production: `opsbot serve` as a
//! subprocess, a real Prometheus Alertmanager (Debian `prometheus-alertmanager`)
//! posting to it, Open-Falcon and Zabbix payloads in their real wire formats, and
//! delivery to the fake WeCom over HTTP. Also: a SIGKILL in the middle of a burst
//! loses nothing that was accepted, a burst of 1,000 alerts for one route becomes
//! a handful of WeCom messages, and an alert card's automatic remediation runs on the
//! simulated cluster as the service identity.
//!
//! The Alertmanager binary is found through `OPSBOT_ALERTMANAGER` (default
//! `/usr/bin/prometheus-alertmanager`); without it the test skips with one line on
//! stderr, unless `OPSBOT_TEST_REQUIRE_SERVICES=1` (CI), where it fails.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_fakes::{FakeWecom, RecordedMessage};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");
const CORP: &str = "ww1436e0e65a779aee";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

/// A process that is killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// opsbot in `dir` with a clean `OPSBOT_*` environment.
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

fn app(name: &str, agent: i64, api_base: &str) -> String {
    format!(
        r#"
[[wecom.apps]]
name = "{name}"
corp_id = "{CORP}"
agent_id = {agent}
secret = "secret-{name}"
token = "QDG6eK"
encoding_aes_key = "{AES_KEY}"
api_base = "{api_base}"
"#
    )
}

const PEOPLE: &str = r#"
[[providers]]
name = "sim"
kind = "sim"
[[roles]]
name = "oncall"
commands = ["告警", "确认", "静默", "概况"]
[[roles]]
name = "viewer"
commands = ["概况"]
[[users]]
id = "zhangsan"
roles = ["oncall"]
[[users]]
id = "lisi"
roles = ["viewer"]
"#;

/// Writes `config` and starts `opsbot serve` on it; returns once /healthz answers.
async fn serve(dir: &Path, name: &str, config: &str) -> (Proc, u16, PathBuf) {
    let path = dir.join(name);
    std::fs::write(&path, config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = opsbot(dir)
        .args(["serve", "--config", path.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let child = Proc(child);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = format!("http://127.0.0.1:{port}/healthz");
        if client.get(&url).send().await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve never answered: {}",
            std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, port, path)
}

fn chat(dir: &Path, config: &Path, text: &str) -> String {
    let out = opsbot(dir)
        .args(["chat", "--config", config.to_str().unwrap()])
        .args(["--user", "zhangsan", "-c", text])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The text of a recorded WeCom message (text or markdown), or what a template card
/// shows (title, its grey line, sub title, key/value rows), a line each.
fn content(m: &RecordedMessage) -> String {
    let kind = m.body["msgtype"].as_str().unwrap_or("");
    if kind == "template_card" {
        let card = &m.body["template_card"];
        let mut lines: Vec<String> = [
            &card["main_title"]["title"],
            &card["main_title"]["desc"],
            &card["sub_title_text"],
        ]
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
        for row in card["horizontal_content_list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            lines.push(format!(
                "{}: {}",
                row["keyname"].as_str().unwrap_or(""),
                row["value"].as_str().unwrap_or("")
            ));
        }
        return lines.join("\n");
    }
    m.body[kind]["content"].as_str().unwrap_or("").to_string()
}

/// Waits until some message satisfies `pred`, and returns it.
async fn message_where(
    fake: &FakeWecom,
    what: &str,
    pred: impl Fn(&RecordedMessage) -> bool,
) -> RecordedMessage {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = fake.sent().into_iter().find(|m| pred(m)) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "no WeCom message {what}; got {:#?}",
            fake.sent().iter().map(content).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A real Alertmanager in `dir/am` posting every alert to opsbot on `port`
/// within seconds; returns once it is ready, with its port.
async fn alertmanager(am_bin: &Path, dir: &Path, port: u16) -> (Proc, u16) {
    let am_port = free_port();
    let am_dir = dir.join("am");
    std::fs::create_dir_all(am_dir.join("data")).unwrap();
    std::fs::write(
        am_dir.join("am.yml"),
        format!(
            r#"
route:
  receiver: opsbot
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: opsbot
    webhook_configs:
      - url: 'http://127.0.0.1:{port}/alerts/alertmanager'
        send_resolved: true
        http_config:
          authorization:
            credentials: am-secret-token
"#
        ),
    )
    .unwrap();
    let am = Proc(
        Command::new(am_bin)
            .arg(format!("--config.file={}", am_dir.join("am.yml").display()))
            .arg(format!("--storage.path={}", am_dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(am_dir.join("am.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("http://127.0.0.1:{am_port}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "Alertmanager never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (am, am_port)
}

async fn post_to_alertmanager(port: u16, alerts: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alertmanager_fires_acks_and_resolves_through_wecom() {
    let Some(am_bin) = opsbot_testkit::alertmanager() else {
        return;
    };
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", 1000002);
    fake.add_users(&["zhangsan", "lisi"]);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
{}
[alerts]
group_wait = "1s"
group_interval = "2s"
timezone = "+08:00"
[alerts.sources.alertmanager]
token = "am-secret-token"
[[alerts.routes]]
name = "critical"
severity = ["critical"]
app = "ops"
users = ["zhangsan"]
[alerts.default]
app = "ops"
users = ["lisi"]
{PEOPLE}"#,
        app("ops", 1000002, &fake.base_url())
    );
    let (_opsbot, port, cfg) = serve(dir.path(), "opsbot.toml", &config).await;

    let (am, am_port) = alertmanager(&am_bin, dir.path(), port).await;

    let labels = serde_json::json!({"alertname": "HighCPU", "instance": "web-01:9100", "severity": "critical", "job": "node"});
    let started = chrono::Utc::now().to_rfc3339();
    post_to_alertmanager(
        am_port,
        serde_json::json!([{"labels": labels, "annotations": {"summary": "CPU > 90% on web-01"}, "startsAt": started}]),
    )
    .await;
    let fired = message_where(&fake, "about HighCPU", |m| content(m).contains("HighCPU")).await;
    assert_eq!(fired.endpoint, "message/send");
    assert_eq!(fired.body["touser"], "zhangsan", "the critical route");
    let text = content(&fired);
    assert!(text.contains("CPU > 90% on web-01"), "{text}");

    // From chat: the firing list, then an acknowledgement that the route hears of.
    let listed = chat(dir.path(), &cfg, "告警");
    assert!(listed.contains("HighCPU @web-01:9100"), "{listed}");
    let id: String = listed
        .split('#')
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let acked = chat(dir.path(), &cfg, &format!("确认:{id}"));
    assert!(
        acked.contains("已确认告警") && acked.contains("critical"),
        "{acked}"
    );
    message_where(&fake, "telling who acked", |m| {
        content(m).contains(&format!("#{id} HighCPU @web-01:9100 已由 zhangsan 确认"))
    })
    .await;
    let overview = chat(dir.path(), &cfg, "概况");
    assert!(overview.contains("🔥 1 条正在发生"), "{overview}");

    // Resolved in Alertmanager: the resolved notice arrives, the list empties.
    post_to_alertmanager(
        am_port,
        serde_json::json!([{"labels": labels, "annotations": {"summary": "CPU > 90% on web-01"}, "startsAt": started, "endsAt": chrono::Utc::now().to_rfc3339()}]),
    )
    .await;
    let resolved = message_where(&fake, "about the recovery", |m| {
        content(m).contains("已恢复")
    })
    .await;
    assert!(
        content(&resolved).contains("HighCPU"),
        "{}",
        content(&resolved)
    );
    let listed = chat(dir.path(), &cfg, "告警");
    assert!(listed.contains("共 0 个"), "{listed}");
    drop(am);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openfalcon_and_zabbix_in_their_wire_formats() {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", 1000002);
    fake.add_app(CORP, "secret-cpu", 1000003);
    fake.add_users(&["zhangsan", "lisi", "admin"]);
    let dir = tempfile::tempdir().unwrap();
    // Seed 002: one WeCom app per alarm type, to the people Open-Falcon names.
    let config = format!(
        r#"
{}{}
[alerts]
group_wait = "1s"
group_interval = "1s"
timezone = "+08:00"
[alerts.sources.openfalcon]
allow_ips = ["127.0.0.1"]
[alerts.sources.zabbix]
token = "zabbix-secret-token"
[[alerts.routes]]
name = "cpu"
labels = {{ type = "cpu" }}
app = "cpu"
alert_recipients = true
[alerts.default]
app = "ops"
users = ["admin"]
alert_recipients = true
{PEOPLE}"#,
        app("ops", 1000002, &fake.base_url()),
        app("cpu", 1000003, &fake.base_url())
    );
    let (opsbot, port, _cfg) = serve(dir.path(), "opsbot.toml", &config).await;
    let client = reqwest::Client::new();
    let url = |s: &str| format!("http://127.0.0.1:{port}/alerts/{s}");

    // Exactly what falcon-plus's im_sender posts (beego httplib: a form body).
    let content = "[P0][PROBLEM][host01][][cpu*CPU 使用率过高 all(#3) cpu.idle  9.5<=10][O1 2017-06-15 10:20:00]";
    let r = client
        .post(url("openfalcon"))
        .form(&[("tos", "zhangsan,lisi"), ("content", content)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let m = message_where(&fake, "from the cpu app", |m| m.body["agentid"] == 1000003).await;
    assert_eq!(m.body["touser"], "zhangsan|lisi");
    let text = content_of(&m);
    assert!(
        text.contains("CPU 使用率过高 @host01") && text.contains("P0"),
        "{text}"
    );

    // A content falcon forks might send that is not the falcon format: kept, and sent
    // by the default route, saying so. GET with a query works too.
    let r = client
        .get(url("openfalcon"))
        .query(&[("tos", "lisi"), ("content", "机房 A 断电")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let m = message_where(&fake, "about the unparsed alarm", |m| {
        content_of(m).contains("未能解析")
    })
    .await;
    assert_eq!(m.body["agentid"], 1000002);
    assert_eq!(m.body["touser"], "admin|lisi");
    assert!(content_of(&m).contains("机房 A 断电"));

    // Zabbix's webhook script: the problem, then its recovery.
    let problem = serde_json::json!({"to": "zhangsan", "subject": "Problem: Disk space is low on db-01", "message": "Free disk space is less than 10% on volume /data", "event_id": "4711", "event_value": "1", "event_severity": "High", "event_update_status": "0", "host": "db-01", "trigger_id": "23456", "event_source": "0", "event_tags": "[{\"tag\":\"component\",\"value\":\"storage\"}]", "url": "{$ZABBIX.URL}"});
    let r = client
        .post(url("zabbix"))
        .bearer_auth("zabbix-secret-token")
        .json(&problem)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    message_where(&fake, "about the Zabbix problem", |m| {
        content_of(m).contains("Disk space is low") && m.body["touser"] == "admin|zhangsan"
    })
    .await;
    let mut recovery = problem.clone();
    recovery["event_value"] = "0".into();
    recovery["subject"] = "Resolved: Disk space is low on db-01".into();
    let r = client
        .post(url("zabbix"))
        .header("X-Opsbot-Token", "zabbix-secret-token")
        .json(&recovery)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    message_where(&fake, "about the Zabbix recovery", |m| {
        content_of(m).contains("Resolved: Disk space is low on db-01 @db-01 已恢复")
    })
    .await;

    // Refusals are clear and store nothing.
    let r = client
        .post(url("zabbix"))
        .json(&problem)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    let r = client.post(url("nagios")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .post(url("zabbix"))
        .bearer_auth("zabbix-secret-token")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not valid JSON"));
    let r = client
        .post(url("openfalcon"))
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // SIGTERM: the gateway's writer and grouping task stop with the server.
    let mut opsbot = opsbot;
    let ok = Command::new("kill")
        .args(["-TERM", &opsbot.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = opsbot.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

fn content_of(m: &RecordedMessage) -> String {
    content(m)
}

/// Posts `n` single-alert requests named `burst-<i>` from `workers` tasks; records
/// which were accepted (2xx) until the server goes away.
async fn burst(
    port: u16,
    n: usize,
    workers: usize,
    accepted: std::sync::Arc<std::sync::Mutex<BTreeSet<String>>>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, accepted) = (client.clone(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(workers) {
                let name = format!("burst-{i:04}");
                let sent = client
                    .post(format!("http://127.0.0.1:{port}/alerts/generic"))
                    .bearer_auth("generic-secret-token")
                    .json(&serde_json::json!({"name": name, "endpoint": "web", "severity": "warning"}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        accepted.lock().unwrap().insert(name);
                    }
                    Ok(r) if r.status().as_u16() == 503 => {}
                    Ok(r) => panic!("{name}: {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn burst_config(api_base: &str, group_wait: &str, template: bool) -> String {
    let template = if template {
        "text_template = \"\"\"\n{% for a in firing %}\n{{ a.name }}\n{% endfor %}\"\"\""
    } else {
        ""
    };
    format!(
        r#"
{}
[alerts]
group_wait = "{group_wait}"
group_interval = "5s"
[alerts.sources.generic]
token = "generic-secret-token"
[alerts.default]
app = "ops"
users = ["zhangsan"]
# Counted in the text of the messages: no cards.
cards = false
{template}
{PEOPLE}"#,
        app("ops", 1000002, api_base)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_loses_nothing_accepted() {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", 1000002);
    fake.add_users(&["zhangsan"]);
    let dir = tempfile::tempdir().unwrap();
    // First life: groups wait an hour, so nothing is sent before the kill.
    let (mut first, port, _) = serve(
        dir.path(),
        "first.toml",
        &burst_config(&fake.base_url(), "1h", true),
    )
    .await;
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let load = tokio::spawn(burst(port, 600, 8, accepted.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() < 150 {
        assert!(Instant::now() < deadline, "the burst never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.0.kill().unwrap(); // SIGKILL: no shutdown, no flush
    first.0.wait().unwrap();
    load.await.unwrap();
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= 150 && accepted.len() < 600,
        "killed mid-burst: {}",
        accepted.len()
    );
    assert!(fake.sent().is_empty(), "nothing was sent before the kill");

    // Second life on the same store: the open group is found and sent, once.
    let (_second, _, _) = serve(
        dir.path(),
        "second.toml",
        &burst_config(&fake.base_url(), "1s", true),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        for m in fake.sent_to("message/send") {
            for line in content(&m).lines().filter(|l| l.starts_with("burst-")) {
                *names.entry(line.to_string()).or_default() += 1;
            }
        }
        if accepted.iter().all(|a| names.contains_key(a)) {
            break names;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart {} of {} accepted alerts were delivered",
            accepted.iter().filter(|a| names.contains_key(*a)).count(),
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Accepted ⊆ delivered; anything more was committed but its answer lost in the
    // kill. Each exactly once.
    assert!(
        delivered.values().all(|&n| n == 1),
        "duplicates: {delivered:?}"
    );
    assert!(
        delivered.len() - accepted.len() <= 8 * 2,
        "at most the requests in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_alerts_is_a_handful_of_messages() {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", 1000002);
    fake.add_users(&["zhangsan"]);
    let dir = tempfile::tempdir().unwrap();
    let (_opsbot, port, _) = serve(
        dir.path(),
        "opsbot.toml",
        &burst_config(&fake.base_url(), "3s", false),
    )
    .await;
    let started = Instant::now();
    let client = reqwest::Client::new();
    // 100 requests of 10 alerts each, 10 at a time.
    let mut tasks = Vec::new();
    for w in 0..10 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..10 {
                let alerts: Vec<serde_json::Value> = (0..10)
                    .map(|i| serde_json::json!({"name": format!("disk-{w}-{r}-{i}"), "endpoint": format!("host-{w}{r}{i}"), "severity": "warning"}))
                    .collect();
                let resp = client
                    .post(format!("http://127.0.0.1:{port}/alerts/generic"))
                    .bearer_auth("generic-secret-token")
                    .json(&serde_json::json!({ "alerts": alerts }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counted = |fake: &FakeWecom| -> usize {
        fake.sent_to("message/send")
            .iter()
            .filter_map(|m| {
                let text = content(m);
                let n = text
                    .split("【告警】")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse::<usize>()
                    .ok()?;
                Some(n)
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while counted(&fake) < 1000 {
        assert!(
            Instant::now() < deadline,
            "only {} of 1000 announced",
            counted(&fake)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let messages = fake.sent_to("message/send").len();
    eprintln!(
        "1000 alerts → {messages} WeCom messages, the last {:.1} s after the first alert was posted",
        started.elapsed().as_secs_f64()
    );
    assert!(messages <= 5, "{messages} messages");
    assert_eq!(counted(&fake), 1000, "every alert announced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_errors_are_retried_later_or_dead_lettered_and_listed_in_chat() {
    use opsbot_fakes::Fault;
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", 1000002);
    fake.add_users(&["zhangsan"]);
    fake.add_robot_key("robot-key-1");
    fake.push_fault(
        "webhook/send",
        Fault::Json(serde_json::json!({"errcode": 45009, "errmsg": "api freq out of limit"})),
    );
    fake.set_trusted_ips(Some(vec!["10.9.9.9".parse().unwrap()]));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
{}
[alerts]
group_wait = "1s"
group_interval = "1s"
[alerts.sources.generic]
token = "generic-secret-token"
[[alerts.robots]]
name = "team"
key = "robot-key-1"
api_base = "{}"
[[alerts.routes]]
name = "team"
robots = ["team"]
continue = true
[[alerts.routes]]
name = "ghosts"
app = "ops"
users = ["ghost"]
[alerts.default]
app = "ops"
users = ["zhangsan"]
{PEOPLE}"#,
        app("ops", 1000002, &fake.base_url()),
        fake.base_url()
    );
    let (_opsbot, port, cfg) = serve(dir.path(), "opsbot.toml", &config).await;
    let post = |name: &'static str| {
        let client = reqwest::Client::new();
        async move {
            let r = client
                .post(format!("http://127.0.0.1:{port}/alerts/generic"))
                .bearer_auth("generic-secret-token")
                .json(&serde_json::json!({"name": name}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let dead_letters_show = |needle: &'static str| {
        let (dir, cfg) = (dir.path().to_path_buf(), cfg.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let listed = chat(&dir, &cfg, "告警:死信");
                if listed.contains(needle) {
                    return listed;
                }
                assert!(
                    Instant::now() < deadline,
                    "no dead letter with {needle}: {listed}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // 60020: opsbot's address is not trusted: dead at once, naming the address.
    post("UntrustedIp").await;
    let listed = dead_letters_show("60020").await;
    assert!(
        listed.contains("127.0.0.1") && listed.contains("企业可信IP"),
        "{listed}"
    );
    // 81013: nobody the message is for exists: dead at once.
    fake.set_trusted_ips(None);
    post("NoSuchUser").await;
    let listed = dead_letters_show("81013").await;
    assert!(listed.contains("ops → ghost"), "{listed}");
    assert!(listed.contains("共 2 个"), "{listed}");
    // The same through the REST API, with the chat's permission for 告警.
    let token = |user: &str| {
        let out = opsbot(dir.path())
            .args([
                "token",
                "create",
                "--config",
                cfg.to_str().unwrap(),
                "--user",
                user,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let api = reqwest::Client::new();
    let get = |path: &str, token: &str| {
        api.get(format!("http://127.0.0.1:{port}/api/v1/{path}"))
            .bearer_auth(token)
            .send()
    };
    let zhangsan = token("zhangsan");
    let r = get("alerts?status=firing", &zhangsan).await.unwrap();
    assert_eq!(r.status(), 200);
    let page: serde_json::Value = r.json().await.unwrap();
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        names.contains(&"UntrustedIp") && names.contains(&"NoSuchUser"),
        "{page}"
    );
    let first = page["items"][0]["id"].as_i64().unwrap();
    let r = get(&format!("alerts/{first}"), &zhangsan).await.unwrap();
    assert_eq!(r.status(), 200);
    let one: serde_json::Value = r.json().await.unwrap();
    assert_eq!(one["alert"]["id"], first);
    assert!(one["payload"].is_object(), "{one}");
    let r = get("dead-letters", &zhangsan).await.unwrap();
    assert_eq!(r.status(), 200);
    let dead: serde_json::Value = r.json().await.unwrap();
    let errors: Vec<&str> = dead["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["last_error"].as_str())
        .collect();
    assert!(
        errors.len() == 2
            && errors.iter().any(|e| e.contains("60020"))
            && errors.iter().any(|e| e.contains("81013")),
        "{dead}"
    );
    assert_eq!(
        get("alerts?status=open", &zhangsan).await.unwrap().status(),
        400
    );
    assert_eq!(get("alerts/999999", &zhangsan).await.unwrap().status(), 404);
    let lisi = token("lisi");
    assert_eq!(get("alerts", &lisi).await.unwrap().status(), 403);
    assert_eq!(get("dead-letters", &lisi).await.unwrap().status(), 403);
    // 45009 on the robot: kept, retried no sooner than a minute later.
    let store = opsbot_store::connect(&format!("sqlite://{}/data/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        let pending = store
            .outbox_list(&opsbot_store::OutboxQuery {
                state: Some(opsbot_store::OutboxState::Pending),
                channel_prefix: Some("wecom:robot/".into()),
                limit: 0,
            })
            .await
            .unwrap();
        if let Some(item) = pending.into_iter().find(|i| i.attempts == 1) {
            break item;
        }
        assert!(
            Instant::now() < deadline,
            "the robot message was not retried"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        waiting
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("45009"),
        "{waiting:?}"
    );
    assert!(
        waiting.next_attempt_at - waiting.updated_at >= chrono::Duration::seconds(59),
        "45009 waits the minute out: {waiting:?}"
    );
    assert_eq!(fake.request_count("webhook/send"), 1, "no hot retry");
}

/// The first alert card in the outbox of channel `wecom:ops` (whatever became of its
/// delivery), waited for.
async fn queued_card(store: &dyn opsbot_store::Store) -> opsbot_core::Card {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let items = store
            .outbox_list(&opsbot_store::OutboxQuery {
                state: None,
                channel_prefix: Some("wecom:ops".into()),
                limit: 0,
            })
            .await
            .unwrap();
        let card = items.iter().find_map(|i| {
            match serde_json::from_str::<opsbot_core::notice::Body>(&i.body).ok()? {
                opsbot_core::notice::Body::Card { card } => Some(card),
                _ => None,
            }
        });
        if let Some(card) = card {
            return card;
        }
        assert!(
            Instant::now() < deadline,
            "no alert card queued: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_alert_becomes_a_card_and_its_remediation_runs_as_the_service_identity()
{
    use opsbot_core::{Action, JobId, JobState};
    let Some(am_bin) = opsbot_testkit::alertmanager() else {
        return;
    };
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", 1000002);
    fake.add_users(&["zhangsan", "lisi"]);
    let dir = tempfile::tempdir().unwrap();
    // web-04 of the simulated cluster is powered off; an alert that it is down powers
    // it on at once, as the service identity, and offers a reboot to the on-call.
    let config = format!(
        r#"
{}
[alerts]
group_wait = "1s"
group_interval = "2s"
timezone = "+08:00"
remediation_user = "opsbot-auto"
[alerts.sources.alertmanager]
token = "am-secret-token"
[alerts.default]
app = "ops"
users = ["zhangsan"]
[[alerts.remediations]]
name = "power-on"
alertname = ["InstanceDown"]
command = "开机:{{{{ labels.vm }}}}"
mode = "auto"
[[alerts.remediations]]
name = "reboot"
alertname = ["InstanceDown"]
command = "重启:{{{{ labels.vm }}}}"
label = "重启 {{{{ labels.vm }}}}"
roles = ["oncall"]
{PEOPLE}
[[roles]]
name = "remediator"
commands = ["开机"]
[[users]]
id = "opsbot-auto"
roles = ["remediator"]
"#,
        app("ops", 1000002, &fake.base_url())
    );
    let (_opsbot, port, cfg) = serve(dir.path(), "opsbot.toml", &config).await;
    let (am, am_port) = alertmanager(&am_bin, dir.path(), port).await;
    post_to_alertmanager(
        am_port,
        serde_json::json!([{"labels": {"alertname": "InstanceDown", "instance": "web-04:9100", "vm": "web-04", "severity": "critical", "job": "node"}, "annotations": {"summary": "web-04 does not answer"}, "startsAt": chrono::Utc::now().to_rfc3339()}]),
    )
    .await;

    let store = opsbot_store::connect(&format!("sqlite://{}/data/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let card = queued_card(store.as_ref()).await;
    let listed = chat(dir.path(), &cfg, "告警");
    let id: i64 = listed
        .split('#')
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    assert_eq!(card.source, "opsbot 告警");
    assert_eq!(card.title, "🔴 InstanceDown @web-04:9100");
    let actions: Vec<(&str, &Action)> = card
        .buttons
        .iter()
        .map(|b| (b.text.as_str(), &b.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("确认", &Action::run(format!("确认:{id}"))),
            ("静默 1 小时", &Action::run(format!("静默:#{id},1h"))),
            (
                "静默 今天",
                &Action::SilenceToday {
                    matcher: format!("#{id}")
                }
            ),
            (
                "重启 web-04",
                &Action::Run {
                    command: "重启:web-04".into(),
                    roles: vec!["oncall".into()]
                }
            ),
        ]
    );
    // The keys are the server's: signed with the card sub-key of its secret key.
    let secret = opsbot_auth::secret::load(
        &opsbot_auth::KeySource::from_env_or(dir.path().join("data/opsbot.key")),
        store.as_ref(),
    )
    .await
    .unwrap();
    let keys = opsbot_core::CardKeys::new(secret.derive(opsbot_auth::Purpose::Cards));
    let now = chrono::Utc::now().timestamp();
    for b in &card.buttons {
        assert_eq!(keys.verify(&card.task_id, b, now), Ok(()), "{}", b.text);
    }
    // Automatic remediation ran, once, and the card says so with its job.
    let announced = card
        .sub_title
        .lines()
        .find(|l| l.starts_with("🤖 已自动执行 开机:web-04 (#"))
        .unwrap_or_else(|| panic!("{}", card.sub_title));
    let job: i64 = announced
        .trim_start_matches("🤖 已自动执行 开机:web-04 (#")
        .trim_end_matches(')')
        .parse()
        .unwrap();
    assert!(card.text.contains(announced), "{}", card.text);
    assert!(
        card.text
            .ends_with(&format!("可发送: 确认:{id} · 静默:#{id},1h · 重启:web-04")),
        "{}",
        card.text
    );
    // As the service identity, on channel `alerts`, audited and run as a job.
    let audit = store
        .audit_log(&opsbot_store::AuditQuery {
            user: Some("opsbot-auto".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!(
        (
            audit[0].channel.as_str(),
            audit[0].text.as_str(),
            audit[0].job_id
        ),
        ("alerts", "开机:web-04", Some(job))
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let record = store.job(JobId(job)).await.unwrap().unwrap();
        assert_eq!(record.user, "opsbot-auto");
        if record.state == JobState::Succeeded {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the power-on job did not succeed: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runs = store
        .remediation_runs("power-on", chrono::Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].job, Some(job));
    // The on-call got it at WeCom: the card, or its text form where cards do not
    // render yet.
    let sent = message_where(&fake, "with the alert card", |m| {
        m.body["msgtype"] == "template_card" || content(m).contains("🤖 已自动执行 开机:web-04")
    })
    .await;
    assert_eq!(sent.body["touser"], "zhangsan");
    drop(am);
}

/// Writes `card` (the JSON WeCom received, or a member's copy after updates) as a
/// self-contained HTML page under `$OPSBOT_CARD_SHOTS`, for the README's screenshots
/// (`scripts/card-screenshots.sh`); nothing without the variable.
fn card_shot(name: &str, card: &serde_json::Value) {
    if let Some(dir) = std::env::var_os("OPSBOT_CARD_SHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.json")), card.to_string()).unwrap();
        std::fs::write(
            dir.join(format!("{name}.html")),
            opsbot_fakes::card_html(card),
        )
        .unwrap();
    }
}

/// The callback key of the button reading `text` in a member's copy of a card.
fn key_of(card: &serde_json::Value, text: &str) -> String {
    card["button_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["text"] == text)
        .unwrap_or_else(|| panic!("no button {text:?} on {card}"))["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A real Alertmanager alert → a card at WeCom → taps, as WeCom encrypts and signs
/// them, on the callback of `opsbot serve`: a member without the permission is refused
/// and changes nothing; two on-call engineers tapping 确认 at once acknowledge it once
/// and the second is told who did; the remediation button runs once as the clicker;
/// every member's card then shows who acted; a replayed tap runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_card_buttons_run_once_as_the_clicker() {
    use opsbot_fakes::PassiveReply;
    let Some(am_bin) = opsbot_testkit::alertmanager() else {
        return;
    };
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret-ops", 1000002);
    fake.add_users(&["zhangsan", "lisi", "wangwu"]);
    fake.set_callback(
        1000002,
        opsbot_wecom::WecomCrypto::new("QDG6eK", AES_KEY, CORP).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
{}
[alerts]
group_wait = "1s"
group_interval = "2s"
timezone = "+08:00"
[alerts.sources.alertmanager]
token = "am-secret-token"
[alerts.default]
app = "ops"
users = ["zhangsan", "lisi", "wangwu"]
[[alerts.remediations]]
name = "reboot"
alertname = ["HighLoad"]
command = "重启:{{{{ labels.vm }}}}"
label = "重启 {{{{ labels.vm }}}}"
roles = ["oncall"]
{PEOPLE}
[[roles]]
name = "rebooter"
commands = ["重启"]
[[users]]
id = "wangwu"
roles = ["oncall", "rebooter"]
"#,
        app("ops", 1000002, &fake.base_url())
    );
    let (_opsbot, port, _cfg) = serve(dir.path(), "opsbot.toml", &config).await;
    let callback = format!("http://127.0.0.1:{port}/wecom/ops/callback");
    let (am, am_port) = alertmanager(&am_bin, dir.path(), port).await;
    post_to_alertmanager(
        am_port,
        serde_json::json!([{"labels": {"alertname": "HighLoad", "instance": "web-01:9100", "vm": "web-01", "severity": "critical"}, "annotations": {"summary": "load 31 on 8 cores"}, "startsAt": chrono::Utc::now().to_rfc3339()}]),
    )
    .await;
    let sent = message_where(&fake, "with the alert card", |m| {
        m.body["msgtype"] == "template_card"
    })
    .await;
    let task = sent.body["template_card"]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let fresh = fake.card_as_seen(&task, "zhangsan").unwrap();
    card_shot("alert-card", &fresh);
    let store = opsbot_store::connect(&format!("sqlite://{}/data/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let taps = |user: &str| {
        let store = store.clone();
        let user = user.to_string();
        async move {
            store
                .audit_log(&opsbot_store::AuditQuery {
                    user: Some(user),
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .filter(|a| a.text.starts_with("卡片按钮"))
                .collect::<Vec<_>>()
        }
    };

    // lisi (viewer) taps the reboot: ⛔, nothing claimed, nothing changed.
    let reboot = key_of(&fresh, "重启 web-01");
    let click = fake.click(1000002, "lisi", &task, &reboot).unwrap();
    let out = click.push(&callback).await.unwrap();
    assert_eq!(out.status, 200);
    match fake.apply_passive_reply(&click, &out.body).unwrap() {
        PassiveReply::Text(t) => assert!(t.contains('⛔'), "{t}"),
        other => panic!("a refused tap is a message, not {other:?}"),
    }
    assert_eq!(fake.card_as_seen(&task, "lisi").unwrap(), fresh);
    let refused = taps("lisi").await;
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0].result, opsbot_core::AuditResult::Denied);

    // zhangsan and wangwu tap 确认 at the same moment: one acknowledgement.
    let ack = key_of(&fresh, "确认");
    let a = fake.click(1000002, "zhangsan", &task, &ack).unwrap();
    let b = fake.click(1000002, "wangwu", &task, &ack).unwrap();
    let (ra, rb) = tokio::join!(a.push(&callback), b.push(&callback));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let pa = fake.apply_passive_reply(&a, &ra.body).unwrap();
    let pb = fake.apply_passive_reply(&b, &rb.body).unwrap();
    // The winner's tap changes the card for everyone; the other is told who acted.
    let (winner, told) = match (&pa, &pb) {
        (PassiveReply::Nothing, PassiveReply::Text(t)) => ("zhangsan", t),
        (PassiveReply::Text(t), PassiveReply::Nothing) => ("wangwu", t),
        _ => panic!("one acts, one is told: {pa:?} {pb:?}"),
    };
    // Told who, whether the action is still under way (处理中) or done.
    assert!(told.starts_with(&format!("已由 {winner} ")), "{told}");
    let acks: usize = [taps("zhangsan").await, taps("wangwu").await]
        .iter()
        .flatten()
        .filter(|a| a.command.as_deref().is_some_and(|c| c.starts_with("确认:")))
        .count();
    assert_eq!(acks, 1, "one acknowledgement ran");
    let firing = store
        .alerts_list(&opsbot_store::alerts::AlertQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(firing[0].ack_by.as_deref(), Some(winner));

    // Everyone's card now says who acknowledged it; the other buttons stay live and
    // keep their keys.
    let acked = format!("已由 {winner} 确认");
    let deadline = Instant::now() + Duration::from_secs(30);
    let now = loop {
        let seen = fake.card_as_seen(&task, "wangwu").unwrap();
        if seen.to_string().contains(&acked) {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "the card was not updated: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        key_of(&now, "重启 web-01"),
        reboot,
        "the rest keep their keys"
    );

    // wangwu runs the remediation: one reboot job, as wangwu, which succeeds.
    let click = fake.click(1000002, "wangwu", &task, &reboot).unwrap();
    let out = click.push(&callback).await.unwrap();
    // A figure for the closing notes, not an assertion: WeCom waits 5 s at most.
    eprintln!("the reboot tap was answered in {:?}", out.elapsed);
    assert_eq!(
        fake.apply_passive_reply(&click, &out.body).unwrap(),
        PassiveReply::Nothing
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let seen = fake.card_as_seen(&task, "wangwu").unwrap();
        let ran = seen["button_list"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"].as_str())
            .find(|t| t.starts_with("已由 wangwu 执行 #"))
            .map(str::to_string);
        if let Some(ran) = ran {
            break ran;
        }
        assert!(
            Instant::now() < deadline,
            "the reboot is not on the card: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let job: i64 = done
        .trim_start_matches("已由 wangwu 执行 #")
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let record = store.job(opsbot_core::JobId(job)).await.unwrap().unwrap();
        assert_eq!(
            (record.user.as_str(), record.command.as_str()),
            ("wangwu", "重启")
        );
        if record.state == opsbot_core::JobState::Succeeded {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reboot did not finish: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Replayed as it was: WeCom's retry of the same delivery runs nothing.
    let again = click.push(&callback).await.unwrap();
    assert_eq!(again.status, 200);
    let reboots = taps("wangwu")
        .await
        .into_iter()
        .filter(|a| a.command.as_deref() == Some("重启:web-01"))
        .count();
    assert_eq!(reboots, 1);

    // Everyone's copy now says who acted (update_template_card, atall, with the codes
    // of the taps); lisi, who only tapped in vain, sees it too.
    let deadline = Instant::now() + Duration::from_secs(30);
    let settled = loop {
        let seen = fake.card_as_seen(&task, "lisi").unwrap();
        let texts: Vec<String> = seen["button_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["text"].as_str().unwrap_or_default().to_string())
            .collect();
        if texts
            .iter()
            .any(|t| t.starts_with(&format!("已由 {winner}")))
            && texts.iter().any(|t| t == &done)
        {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "the card was not updated: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(fake.card_updates().iter().any(|u| u.atall));
    card_shot("alert-card-after", &settled);
    drop(am);
}

//! The `opsbot` binary as scripts and operators use it: embedded defaults, one-shot
//! chat with exit codes, persistence between invocations, config errors, serve with
//! graceful shutdown, and SIGTERM during a job.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");

/// Runs opsbot in `dir` with a clean `OPSBOT_*` environment.
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

fn chat(dir: &Path, args: &[&str]) -> Output {
    opsbot(dir).arg("chat").args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn overview_on_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let o = chat(dir.path(), &["-c", "概况"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("【资源概况】") && text(&o).contains("虚拟机 48"),
        "{}",
        text(&o)
    );
    assert!(
        dir.path().join("data/opsbot.db").exists(),
        "SQLite under ./data"
    );
}

#[test]
fn interactive_banner_names_the_store_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = opsbot(dir.path())
        .arg("chat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // End of input ends the session, like Ctrl-D.
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let banner = out.lines().next().unwrap_or_default();
    let db = dir.path().join("data/opsbot.db");
    assert!(
        banner.contains(&format!("存储 SQLite {}", db.display())),
        "{}",
        text(&o)
    );

    // Another store is named by its URL, never with its password (here: in the
    // error of a store that cannot be reached).
    let cfg = dir.path().join("pg.toml");
    std::fs::write(
        &cfg,
        "[store]\nurl = \"postgres://ops:s3cret@127.0.0.1:1/opsbot\"\n",
    )
    .unwrap();
    let o = opsbot(dir.path())
        .args(["chat", "--config", cfg.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("127.0.0.1:1") && !text(&o).contains("s3cret"),
        "{}",
        text(&o)
    );
}

#[test]
fn filters_and_services_on_the_console() {
    let dir = tempfile::tempdir().unwrap();
    // The overview's warning names the command that answers "which VMs were on it".
    let o = chat(dir.path(), &["-c", "概况"]);
    assert!(
        text(&o).contains("虚拟机:主机=esxi-dr-02 查看其上 1 台虚拟机"),
        "{}",
        text(&o)
    );
    let o = chat(dir.path(), &["-c", "虚拟机:主机=esxi-dr-02"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("共 1 个") && text(&o).contains("dr-backup"),
        "{}",
        text(&o)
    );
    let o = chat(dir.path(), &["-c", "vms:off,cluster=Cluster-Prod"]);
    assert!(text(&o).contains("共 3 个"), "{}", text(&o));
    // A filter the list does not take is bad input.
    let o = chat(dir.path(), &["-c", "主机:标签=env:prod"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = chat(dir.path(), &["-c", "服务:finance"]);
    assert!(
        text(&o).contains("db-pg-01") && text(&o).contains("财务系统"),
        "{}",
        text(&o)
    );
    // `[pool] service_tag` picks the tag services are read from.
    let o = opsbot(dir.path())
        .args(["chat", "-c", "服务"])
        .env("OPSBOT_POOL__SERVICE_TAG", "env")
        .output()
        .unwrap();
    assert!(
        text(&o).contains("【服务列表】共 3 个") && text(&o).contains("prod "),
        "{}",
        text(&o)
    );
}

#[test]
fn seed_clone_persists_between_invocations_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let o = chat(dir.path(), &["-c", "克隆:2,工具柜管理系统,192.168.2.182"]);
    assert_eq!(o.status.code(), Some(4), "needs confirmation: {}", text(&o));
    assert!(text(&o).contains("--yes"), "{}", text(&o));

    let o = chat(
        dir.path(),
        &["--yes", "-c", "克隆:2,工具柜管理系统,192.168.2.182"],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("已受理 #") && out.contains("正在克隆磁盘") && out.contains("克隆完成"),
        "{out}"
    );

    let o = chat(dir.path(), &["-c", "查:工具柜管理系统"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o).contains("IP: 192.168.2.182"),
        "the next process sees the clone: {}",
        text(&o)
    );

    let o = chat(dir.path(), &["-c", "关机:no-such-vm"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = chat(dir.path(), &["-c", "开机:web-01"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "already on is a failure: {}",
        text(&o)
    );
    let o = chat(dir.path(), &["--user", "intruder", "-c", "概况"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[test]
fn config_errors_name_file_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("opsbot.toml");
    std::fs::write(&cfg, "[sessions]\nbackend = \"memcache\"\n").unwrap();
    let o = chat(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "-c", "概况"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("opsbot.toml") && err.contains("sessions.backend") && err.contains("memcache"),
        "{err}"
    );

    let o = opsbot(dir.path())
        .args(["chat", "-c", "概况"])
        .env("OPSBOT_SESSIONS__TTL_SECS", "soon")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("sessions.ttl_secs"),
        "env overrides are validated too: {}",
        text(&o)
    );
}

#[test]
fn config_file_with_roles_and_env_override() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("opsbot.toml");
    std::fs::write(
        &cfg,
        r#"
[store]
url = "sqlite://ignored.db"
[[providers]]
name = "vc1"
kind = "sim"
time_scale = 0.01
[[roles]]
name = "operator"
commands = ["概况", "查", "poweroff", "帮助"]
scopes = ["vc1/DC0/**"]
[[users]]
id = "zhangsan"
roles = ["operator"]
"#,
    )
    .unwrap();
    let run = |user: &str, line: &str| {
        opsbot(dir.path())
            .args([
                "chat",
                "--config",
                cfg.to_str().unwrap(),
                "--user",
                user,
                "--yes",
                "-c",
                line,
            ])
            .env("OPSBOT_STORE__URL", "sqlite://data/override.db")
            .output()
            .unwrap()
    };
    let o = run("zhangsan", "概况");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        dir.path().join("data/override.db").exists() && !dir.path().join("ignored.db").exists()
    );
    let o = run("zhangsan", "关机:web-01");
    assert_eq!(
        o.status.code(),
        Some(0),
        "alias poweroff grants 关机: {}",
        text(&o)
    );
    let o = run("zhangsan", "关机:dr-db-mysql-01");
    assert_eq!(
        o.status.code(),
        Some(2),
        "DC1 is out of scope, so not found (as a VM that does not exist): {}",
        text(&o)
    );
    assert!(!text(&o).contains("DC1"), "{}", text(&o));
    let o = run("zhangsan", "开机:web-01");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = run("lisi", "概况");
    assert_eq!(o.status.code(), Some(3), "default deny: {}", text(&o));
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // `| head -1` closes its end after a line; here the reader is gone before opsbot
    // writes anything, so every write meets a closed pipe.
    for args in [&["-c", "虚拟机"][..], &["--yes", "-c", "开机:web-04"][..]] {
        let mut child = opsbot(dir.path())
            .arg("chat")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // The job was not cut short by the closed pipe.
    let o = chat(dir.path(), &["-c", "查:web-04"]);
    assert!(text(&o).contains("【web-04】开机"), "{}", text(&o));
}

#[test]
fn logs_are_plain_text_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let o = opsbot(dir.path())
        .args(["chat", "-c", "概况"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("INFO"), "there are logs: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes in a pipe: {err:?}"
    );
}

#[test]
fn ping_allow_and_timezone_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    // Default: only VMs; an address outside the pool is refused, and says why.
    let o = chat(dir.path(), &["-c", "ping:127.0.0.2"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("ping_allow"), "{}", text(&o));

    let cfg = dir.path().join("opsbot.toml");
    let write = |chat: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[chat]\n{chat}\n[[providers]]\nname = \"sim\"\nkind = \"sim\"\ntime_scale = 0.01\n\
                 [[roles]]\nname = \"admin\"\ncommands = [\"*\"]\n[[users]]\nid = \"ops\"\nroles = [\"admin\"]\n"
            ),
        )
        .unwrap();
    };
    let run = |line: &str| {
        opsbot(dir.path())
            .args([
                "chat",
                "--config",
                cfg.to_str().unwrap(),
                "--user",
                "ops",
                "-c",
                line,
            ])
            .output()
            .unwrap()
    };
    write("ping_allow = [\"127.0.0.0/8\"]\ntimezone = \"Asia/Kolkata\"");
    let o = run("ping:127.0.0.2");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("127.0.0.2 可达"), "{}", text(&o));
    let o = run("任务");
    assert!(text(&o).contains("时间 UTC+5:30"), "{}", text(&o));

    for (chat, key) in [
        ("timezone = \"Mars/Olympus\"", "chat.timezone"),
        ("ping_allow = [\"10.0.0.0/33\"]", "chat.ping_allow[0]"),
    ] {
        write(chat);
        let o = run("概况");
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(key), "{key}: {}", text(&o));
    }
}

#[test]
fn sync_prints_counts_and_elapsed() {
    let dir = tempfile::tempdir().unwrap();
    let o = opsbot(dir.path()).arg("sync").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("sim: 数据中心 2 集群 3 主机 8 虚拟机 48 模板 4 存储 5 网络 7"),
        "{out}"
    );
    assert!(out.trim_end().ends_with(" ms"), "{out}");
    assert!(out.contains(",耗时 "), "{out}");
    let o = opsbot(dir.path())
        .args(["sync", "--provider", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("配置中没有名为 \"nope\" 的 provider"),
        "{}",
        text(&o)
    );
}

#[test]
fn agent_refuses_bad_arguments_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = opsbot(dir.path()).arg("agent").args(args).output().unwrap();
        (o.status.code(), text(&o))
    };
    let (code, out) = run(&["--once"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("--server is required"), "{out}");
    let (code, out) = run(&["--once", "--server", "http://127.0.0.1:1"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("opsbot token create --agent"), "{out}");
    let (_, out) = run(&["--once", "--server", "ftp://x", "--token", "t"]);
    assert!(out.contains("must start with https://"), "{out}");
    let (_, out) = run(&[
        "--once",
        "--server",
        "http://x",
        "--token",
        "t",
        "--interval",
        "soon",
    ]);
    assert!(out.contains("--interval"), "{out}");
    let (_, out) = run(&[
        "--once",
        "--server",
        "http://x",
        "--token",
        "t",
        "--disable",
        "gpu",
    ]);
    assert!(
        out.contains("unknown collector") && out.contains("nics"),
        "{out}"
    );
}

#[test]
fn token_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let o = opsbot(dir.path())
        .args(["token", "create", "--user", "local", "--ttl", "7d"])
        .args(["--allow-ip", "10.0.0.0/8", "--label", "部署脚本"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        token.starts_with("ob2.api."),
        "stdout is the token alone: {token}"
    );
    let id = token.split('.').nth(2).unwrap().to_string();

    let o = opsbot(dir.path()).args(["token", "list"]).output().unwrap();
    let listed = text(&o);
    assert!(
        listed.contains(&id) && listed.contains("active"),
        "{listed}"
    );
    assert!(
        listed.contains("10.0.0.0/8") && listed.contains("部署脚本"),
        "{listed}"
    );
    assert!(
        !listed.contains(token.rsplit('.').next().unwrap()),
        "never the secret"
    );

    let o = opsbot(dir.path())
        .args(["token", "revoke", &id])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = opsbot(dir.path()).args(["token", "list"]).output().unwrap();
    assert!(text(&o).contains("revoked"), "{}", text(&o));
    let o = opsbot(dir.path())
        .args(["token", "revoke", &id])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    let o = opsbot(dir.path())
        .args(["token", "create", "--agent", "--host", "web-01"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ob2.agent."));
}

#[test]
fn token_create_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (&["--user", "nobody"][..], "no [[users]] entry"),
        (
            &["--user", "local", "--ttl", "forever"][..],
            "--ttl forever",
        ),
        (
            &["--user", "local", "--allow-ip", "10.0.0.0/33"][..],
            "not an address",
        ),
    ] {
        let o = opsbot(dir.path())
            .args(["token", "create"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
        assert!(o.stdout.is_empty(), "no token printed");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn serve_answers_healthz_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = opsbot(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        if let Some(b) = http_get(port, "/healthz") {
            break b;
        }
        assert!(Instant::now() < deadline, "serve never answered");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        body.starts_with("HTTP/1.1 200") && body.contains("\"status\":\"ok\""),
        "{body}"
    );
    let ready = http_get(port, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "graceful stop exits 0: {status:?}");
}

#[test]
fn sigterm_during_a_job_records_it_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = opsbot(dir.path())
        .args(["chat", "--yes", "-c", "克隆:1,被打断,10.96.0.10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the job reports progress, then stop the process.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().expect("output ended before progress").unwrap();
        let progress = line.contains("正在克隆磁盘");
        seen.push(line);
        if progress {
            break;
        }
    }
    sigterm(&child);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{seen:?} {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("已中断")),
        "the user is told: {rest:?}"
    );
    let o = chat(dir.path(), &["-c", "任务:1"]);
    assert!(
        text(&o).contains("状态: 已中断"),
        "recorded, not left running: {}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_wecom_callbacks_from_its_config() {
    use opsbot_fakes::{build_callback_post, push_callback, FakeWecom};
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app("ww1436e0e65a779aee", "secret", 1000002);
    fake.add_users(&["zhangsan"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("opsbot.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[wecom.apps]]
name = "ops"
corp_id = "ww1436e0e65a779aee"
agent_id = 1000002
secret = "secret"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
api_base = "{}"
[[providers]]
name = "sim"
kind = "sim"
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
    let port = free_port();
    let mut child = opsbot(dir.path())
        .args([
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(port, "/healthz").is_none() {
        assert!(Instant::now() < deadline, "serve never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let crypto = opsbot_wecom::WecomCrypto::new(
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "ww1436e0e65a779aee",
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let xml = format!("<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[开机:web-04]]></Content><MsgId>1</MsgId><AgentID>1000002</AgentID></xml>");
    let post = build_callback_post(&crypto, 1000002, &xml, b"0123456789abcdef", &now, "5");
    let out = push_callback(
        &format!("http://127.0.0.1:{port}/wecom/ops/callback"),
        &post,
    )
    .await
    .unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        out.body.contains("<Encrypt>") && out.body.contains("<MsgSignature>"),
        "an encrypted passive reply: {}",
        out.body
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fake
        .sent_to("message/send")
        .iter()
        .any(|m| m.body.to_string().contains("web-04 已开机"))
    {
        assert!(
            Instant::now() < deadline,
            "the job's result never reached WeCom: {:?}",
            fake.sent()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// VMware's simulator on a free port, killed when dropped. `None` (test skipped) when
/// the binary is missing, unless services are required.
struct Vcsim {
    child: Child,
    url: String,
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vcsim(args: &[&str]) -> Option<Vcsim> {
    let bin = opsbot_testkit::vcsim()?;
    let port = free_port();
    let mut child = Command::new(&bin)
        .args(["-l", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It prints its SDK URL once it serves.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines.next().expect("vcsim exited").unwrap();
        if line.contains("/sdk") {
            break;
        }
        assert!(Instant::now() < deadline, "vcsim did not start");
    }
    std::thread::spawn(move || for _ in lines {});
    Some(Vcsim {
        child,
        url: format!("http://127.0.0.1:{port}/sdk"),
    })
}

#[test]
fn vsphere_provider_syncs_and_acts_from_chat() {
    let Some(sim) = vcsim(&[
        "-cluster",
        "1",
        "-host",
        "2",
        "-vm",
        "3",
        "-standalone-host",
        "0",
    ]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("opsbot.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[providers]]
name = "vc1"
kind = "vsphere"
url = "{}"
username = "ops"
password = "secret"
[[roles]]
name = "admin"
commands = ["*"]
[[users]]
id = "ops"
roles = ["admin"]
"#,
            sim.url
        ),
    )
    .unwrap();
    let run = |args: &[&str]| opsbot(dir.path()).args(args).output().unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let chat = |args: &[&str]| {
        let base = ["chat", "--config", cfg_s, "--user", "ops"];
        run(&[&base[..], args].concat())
    };
    let o = run(&["sync", "--config", cfg_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("vc1: 数据中心 1 集群 1 主机 2 虚拟机 3"),
        "{out}"
    );

    let o = chat(&["-c", "概况"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("虚拟机 3: 开机 3 / 关机 0"),
        "{}",
        text(&o)
    );

    let o = chat(&["--yes", "-c", "关机:DC0_C0_RP0_VM0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = chat(&["-c", "查:DC0_C0_RP0_VM0"]);
    assert!(
        text(&o).contains("【DC0_C0_RP0_VM0】关机"),
        "the pool follows the operation: {}",
        text(&o)
    );
    let o = chat(&["--yes", "-c", "关机:DC0_C0_RP0_VM0"]);
    assert_eq!(o.status.code(), Some(1), "already off: {}", text(&o));

    // Re-syncs: the vCenter moved (the power-off), so one full read, which finds the
    // pool already following it; then nothing changed, so nothing is read or written.
    let sync = || String::from_utf8_lossy(&run(&["sync", "--config", cfg_s]).stdout).to_string();
    let out = sync();
    assert!(out.contains("新增 0 变更 0 移除 0"), "{out}");
    let out = sync();
    assert!(
        out.contains("虚拟机 3 模板 0") && out.contains(";无变化,"),
        "{out}"
    );

    // An unreachable vCenter is a clear failure naming it, not a crash.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("name = \"vc1\"", "name = \"vc2\"")
            .replace("url = \"http://127.0.0.1", "url = \"http://127.0.0.2"),
    )
    .unwrap();
    let o = run(&["sync", "--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("vc2"), "{}", text(&o));
}

/// Plans the pool can tell are impossible are invalid requests (exit 2) answered
/// before any prompt, with the choices; CPU and memory changes ask first (exit 4).
#[test]
fn impossible_plans_exit_2_before_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    for (line, wants) in [
        (
            "换网:web-02,999",
            &[
                "数据中心 DC0 没有端口组或 VLAN \"999\"",
                "VLAN200-数据库(VLAN 200)",
            ][..],
        ),
        ("换网:web-02,100", &["web-02 已经在 VLAN100-业务网"][..]),
        ("CPU:web-01,4", &["web-01 已经是 4 个 CPU"][..]),
        ("内存:web-01,4", &["减少内存需要先关机"][..]),
        (
            "加盘:web-02,10,ds-dr-01",
            &["不在 web-02 所在的数据中心 DC0", "ds-prod-02(剩余 5.0 TiB)"][..],
        ),
    ] {
        let o = chat(dir.path(), &["-c", line]);
        assert_eq!(o.status.code(), Some(2), "{line}: {}", text(&o));
        for want in wants {
            assert!(text(&o).contains(want), "{line}: {want} in {}", text(&o));
        }
        assert!(!text(&o).contains("即将执行"), "{line}: {}", text(&o));
    }
    let o = chat(dir.path(), &["-c", "CPU:web-01,8"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("即将执行: 修改 web-01 CPU: 4 → 8(开机中,热添加)"),
        "{}",
        text(&o)
    );
    let o = chat(dir.path(), &["-c", "换网:web-02,200"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("VLAN100-业务网 → VLAN200-数据库"),
        "{}",
        text(&o)
    );
}

/// An interactive `opsbot chat` on a sim slow enough that a clone is surely still
/// running when it is cancelled or interrupted.
struct Interactive {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Interactive {
    fn start(dir: &Path) -> Interactive {
        let cfg = dir.join("opsbot.toml");
        std::fs::write(
            &cfg,
            "[[providers]]\nname = \"sim\"\nkind = \"sim\"\ntime_scale = 100\n\
             [[roles]]\nname = \"admin\"\ncommands = [\"*\"]\n[[users]]\nid = \"ops\"\nroles = [\"admin\"]\n",
        )
        .unwrap();
        let mut child = opsbot(dir)
            .args([
                "chat",
                "--config",
                cfg.to_str().unwrap(),
                "--user",
                "ops",
                "--yes",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Interactive {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The first line, seen already or still to come, that contains `want`: a job's
    /// progress and the reply that accepted it are printed by different tasks, in
    /// either order.
    fn seen_or_until(&mut self, want: &str) -> String {
        match self.seen.iter().find(|l| l.contains(want)) {
            Some(line) => line.clone(),
            None => self.until(want),
        }
    }

    /// The first line (from now on) that contains `want` (deadline 30 s).
    fn until(&mut self, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {want:?} in 30 s: {:?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(want) {
                return line;
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

#[test]
fn a_running_sim_job_is_cancelled_from_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let mut chat_ = Interactive::start(dir.path());
    chat_.send("克隆:1,cancel-me,10.96.0.60");
    let accepted = chat_.until("已受理 #");
    assert!(accepted.contains("已受理 #1"), "{accepted}");
    chat_.seen_or_until("正在克隆磁盘");
    chat_.send("取消:#1");
    let asked = chat_.until("已请求取消任务 #1");
    assert!(asked.contains("克隆"), "{asked}");
    let ended = chat_.until("#1 已取消");
    assert!(
        ended.starts_with("🚫") || ended.contains("🚫 #1"),
        "{ended}"
    );
    chat_.stdin = None; // Ctrl-D: nothing runs any more, so it leaves at once.
    let status = wait_exit(&mut chat_.child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{:?}", chat_.seen);

    let o = chat(dir.path(), &["-c", "任务:1"]);
    assert!(text(&o).contains("状态: 已取消"), "{}", text(&o));
    let o = chat(dir.path(), &["-c", "查:cancel-me"]);
    assert!(
        !text(&o).contains("IP: 10.96.0.60"),
        "nothing cloned: {}",
        text(&o)
    );
}

#[test]
fn ctrl_c_during_a_job_offers_to_cancel_it_and_a_second_one_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let mut chat_ = Interactive::start(dir.path());
    chat_.send("克隆:1,ctrl-c-me,10.96.0.61");
    chat_.until("已受理 #1");
    chat_.signal("-INT");
    let offer = chat_.until("运行中");
    assert!(
        offer.contains("#1 运行中(克隆):发送 取消:#1 取消它,再按 Ctrl-C 退出"),
        "{offer}"
    );
    assert!(
        chat_.child.try_wait().unwrap().is_none(),
        "one Ctrl-C does not end the chat"
    );
    chat_.signal("-INT");
    let status = wait_exit(&mut chat_.child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{:?}", chat_.seen);
    let o = chat(dir.path(), &["-c", "任务:1"]);
    assert!(
        text(&o).contains("状态: 已中断"),
        "recorded, not left running: {}",
        text(&o)
    );
}

//! The CMDB's Salt source through the real binary against a real salt-master, salt-api
//! and minions (opsbot_testkit's SaltLab): `opsbot collect --source salt` prints a line
//! per minion, 资产 and 变更 show the source, a grain changed on a minion is a change, a
//! stopped minion is listed as not answering, a wrong password fails clearly, and
//! `opsbot serve` collects on `[cmdb.salt] interval`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_testkit::salt::SaltLab;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");

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

fn config(dir: &Path, port: u16, lab: &SaltLab, password_file: &Path, salt: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "sqlite://{db}"
[[providers]]
name = "sim"
kind = "sim"
[[roles]]
name = "admin"
commands = ["*"]
[[users]]
id = "admin"
roles = ["admin"]
[cmdb.salt]
api = {{ url = "{url}", eauth = "file", username = "{user}", password_file = "{pw}" }}
timeout = "5s"
{salt}
"#,
        db = dir.join("opsbot.db").display(),
        url = lab.api_url(),
        user = lab.user(),
        pw = password_file.display(),
    )
}

#[test]
fn collect_through_salt_now_and_on_the_interval() {
    let Some(lab) = SaltLab::start("cmdb_salt_cli", &["salt-a", "salt-b"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("opsbot.toml");
    let pw = dir.path().join("salt.pw");
    std::fs::write(&pw, format!("{}\n", lab.password())).unwrap();
    let port = free_port();
    std::fs::write(
        &cfg,
        config(dir.path(), port, &lab, &pw, "interval = \"0\""),
    )
    .unwrap();
    let run = |args: &[&str]| {
        opsbot(dir.path())
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let chat = |message: &str| {
        opsbot(dir.path())
            .args(["chat", "--config"])
            .arg(&cfg)
            .args(["--user", "admin", "-c", message])
            .output()
            .unwrap()
    };

    let o = run(&["collect", "--source", "salt"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("salt-a: 成功(新资产)"), "{out}");
    assert!(out.contains("salt-b: 成功(新资产)"), "{out}");
    assert!(
        out.contains("共 2 个 minion,失败 0 个,未应答 0 个"),
        "{out}"
    );
    let card = text(&chat("资产:salt-a"));
    assert!(card.contains("【资产 salt-a】在线 · Salt 采集"), "{card}");

    // A grain changed on the minion: one change, named after the Salt run.
    lab.salt(&["salt-a", "grains.setval", "roles", "[db]"]);
    let o = run(&["collect", "--source", "salt", "--host", "salt-a"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("salt-a: 成功(已更新),1 处变更"), "{out}");
    assert!(!out.contains("salt-b"), "--host limits the pass: {out}");
    let changes = text(&chat("变更:salt-a"));
    assert!(changes.starts_with("【salt-a 最近变更】2 条"), "{changes}");
    assert!(
        changes.contains("插件 salt roles: ∅ → db(salt:cli)"),
        "{changes}"
    );

    // A stopped minion: listed as not answering, the pass exits 1.
    lab.stop_minion("salt-b");
    let o = run(&["collect", "--source", "salt"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("salt-b: 未应答"), "{out}");
    assert!(out.contains("salt-a: 成功(已更新),0 处变更"), "{out}");

    // A wrong password: the pass fails with salt-api's refusal, nothing else.
    std::fs::write(&pw, "wrong\n").unwrap();
    let o = run(&["collect", "--source", "salt"]);
    let out = text(&o);
    assert_ne!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("Salt 采集失败") && out.contains("refused user"),
        "{out}"
    );
    std::fs::write(&pw, lab.password()).unwrap();

    // serve collects on the interval (the first pass at start): the grain changed since
    // is a change named after the scheduled run.
    lab.salt(&["salt-a", "grains.setval", "roles", "[web]"]);
    std::fs::write(
        &cfg,
        config(
            dir.path(),
            port,
            &lab,
            &pw,
            "interval = \"1h\"\ntarget = \"salt-a\"",
        ),
    )
    .unwrap();
    let mut serve = opsbot(dir.path())
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = text(&chat("变更:salt-a"));
        if last.contains("salt:schedule") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(last.contains("salt:schedule"), "{last}");
}

//! The binary's REST API and web UI wiring: `opsbot hash-password`, `[web]`
//! configuration errors, and `opsbot serve` answering the API with a token from
//! `opsbot token create`, the login page and `/metrics`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
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

fn hash(dir: &Path, password: &str) -> std::process::Output {
    let mut child = opsbot(dir)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn hash_password_prints_an_argon2_hash() {
    let dir = tempfile::tempdir().unwrap();
    let out = hash(dir.path(), "s3cret 密码\n");
    assert!(out.status.success());
    let h = String::from_utf8(out.stdout).unwrap();
    assert!(h.trim().starts_with("$argon2id$v=19$"), "{h}");
    assert!(!h.contains("s3cret"));
    let out = hash(dir.path(), "\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

fn write_config(dir: &Path, port: u16, web: &str) -> std::path::PathBuf {
    let path = dir.join("opsbot.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "sqlite://{}/opsbot.db"
[[providers]]
name = "sim"
kind = "sim"
time_scale = 0.01
[[roles]]
name = "admin"
commands = ["*"]
[[users]]
id = "admin"
roles = ["admin"]
{web}
"#,
            dir.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn web_configuration_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), 1, "[web]\nadmin_user = \"root\"\nadmin_password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\"\n");
    let out = opsbot(dir.path())
        .args(["chat", "--config"])
        .arg(&cfg)
        .args(["-c", "概况"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key web.admin_user") && err.contains("[[users]]"),
        "{err}"
    );
    let cfg = write_config(dir.path(), 1, "[web]\nwecom_app = \"ops\"\n");
    let out = opsbot(dir.path())
        .args(["chat", "--config"])
        .arg(&cfg)
        .args(["-c", "概况"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key web.wecom_app"), "{err}");
}

fn http(port: u16, path: &str, token: Option<&str>) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn serve_answers_the_api_web_ui_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = String::from_utf8(hash(dir.path(), "pw\n").stdout).unwrap();
    let cfg = write_config(
        dir.path(),
        port,
        &format!(
            "[web]\nadmin_user = \"admin\"\nadmin_password_hash = \"{}\"\n",
            h.trim()
        ),
    );
    let out = opsbot(dir.path())
        .args(["token", "create", "--config"])
        .arg(&cfg)
        .args(["--user", "admin"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut child = opsbot(dir.path())
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let vms = loop {
        if let Some(b) = http(port, "/api/v1/vms?power=on&per_page=3", Some(&token)) {
            break b;
        }
        assert!(Instant::now() < deadline, "serve never answered");
        std::thread::sleep(Duration::from_millis(50));
    };
    let result = std::panic::catch_unwind(|| {
        assert!(
            vms.starts_with("HTTP/1.1 200") && vms.contains("\"items\":["),
            "{vms}"
        );
        let denied = http(port, "/api/v1/vms", None).unwrap();
        assert!(
            denied.starts_with("HTTP/1.1 401") && denied.contains("\"error\":\"unauthorized\""),
            "{denied}"
        );
        let login = http(port, "/ui/login", None).unwrap();
        assert!(
            login.starts_with("HTTP/1.1 200") && login.contains("password"),
            "{login}"
        );
        let metrics = http(port, "/metrics", None).unwrap();
        assert!(metrics.contains("opsbot_http_requests_total"), "{metrics}");
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

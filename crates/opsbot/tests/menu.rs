//! `[[menu]]` through the real binary: a configured menu replaces the built-in one and
//! is walked by digits, names and paths on the console; a bad menu stops opsbot at
//! start with the file, the key path and the problem, as every configuration error.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");

const BASE: &str = r#"
[[providers]]
name = "sim"
kind = "sim"
time_scale = 0.01
[[roles]]
name = "ops"
commands = ["*"]
scopes = ["*"]
[[users]]
id = "ops"
roles = ["ops"]
"#;

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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write_config(dir: &Path, menu: &str) -> String {
    let path = dir.join("opsbot.toml");
    std::fs::write(&path, format!("{BASE}\n{menu}")).unwrap();
    path.to_str().unwrap().to_string()
}

/// One conversation as `ops`: the lines typed in order, everything printed.
fn converse(dir: &Path, config: &str, lines: &[&str]) -> (String, Option<i32>) {
    let mut child = opsbot(dir)
        .args(["chat", "--config", config, "--user", "ops", "--yes"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    (text(&o), o.status.code())
}

const MENU: &str = r#"
[[menu]]
label = "查虚拟机"
input = "请输入名称或 IP"

[[menu.children]]
label = "匹配"
source = "vms"
var = "vm"
title = "匹配「{input}」"

[[menu.children.children]]
label = "详情"
command = "查:{vm}"

[[menu.children.children]]
label = "开机"
command = "开机:{vm}"
after = "top"

[[menu]]
label = "资源"
command = "概况"
"#;

#[test]
fn a_configured_menu_replaces_the_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), MENU);
    let (out, code) = converse(
        dir.path(),
        &config,
        &["菜单", "0", "web-04", "web-04", "1", "0-10.10.100.14-0-0"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("【运维菜单】\n0 查虚拟机\n1 资源\n回复数字选择 · 返回 上一级 · 退出 结束"),
        "{out}"
    );
    assert!(
        !out.contains("克隆虚拟机"),
        "the built-in menu is replaced: {out}"
    );
    assert!(out.contains("【查虚拟机】请输入名称或 IP"), "{out}");
    assert!(out.contains("【匹配「web-04」】\n0 ★ "), "{out}");
    // The VM by its name, then 开机, which goes back to the top as configured.
    assert!(
        out.contains("【web-04】请选择操作\n0 详情\n1 开机\n"),
        "{out}"
    );
    assert!(out.contains("菜单已回到【运维菜单】"), "{out}");
    // The whole way in one path: 详情 of web-04, then back at its list.
    assert!(out.contains("菜单已回到【web-04】"), "{out}");
}

#[test]
fn a_bad_menu_stops_opsbot_with_the_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = MENU.replace("查:{vm}", "查:{host}");
    let config = write_config(dir.path(), &bad);
    let o = opsbot(dir.path())
        .args(["chat", "--config", &config, "--user", "ops", "-c", "菜单"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("opsbot.toml")
            && err.contains("key menu[0].children[0].children[0].command: unknown variable {host}"),
        "{err}"
    );

    // A source no registered subsystem answers is refused at start too.
    let config = write_config(
        dir.path(),
        "[[menu]]\nlabel = \"负载\"\nsource = \"nosuch\"\ncommand = \"查:{choice}\"\n",
    );
    let o = opsbot(dir.path())
        .args(["chat", "--config", &config, "--user", "ops", "-c", "菜单"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("menu[0].source") && err.contains("unknown source \"nosuch\""),
        "{err}"
    );
}

//! Issue 15's "acting on the right thing" examples over the console, on the embedded
//! sim: one-shot `opsbot chat -c` for single messages (with their exit status), and a
//! piped interactive `opsbot chat` for conversations (the menu, 下一页, 确认), since
//! the console keeps a conversation for the life of the process.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One message, one process: the reply and the exit status.
fn say(dir: &Path, message: &str) -> (String, Option<i32>) {
    let o = opsbot(dir).args(["chat", "-c", message]).output().unwrap();
    (text(&o), o.status.code())
}

/// One conversation: the lines typed in order, everything printed (the process waits
/// for its jobs before it exits).
fn converse(dir: &Path, lines: &[&str]) -> String {
    let mut child = opsbot(dir)
        .arg("chat")
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
    text(&child.wait_with_output().unwrap())
}

/// The part of a conversation's output after `marker` (the reply to a later message).
fn after<'a>(out: &'a str, marker: &str) -> &'a str {
    let at = out
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{out}"));
    &out[at..]
}

#[test]
fn an_exact_name_is_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    for q in ["查:web-01", "查:sim/web-01", "详情:web-01", "状态:web-01。"] {
        let (out, code) = say(dir.path(), q);
        assert_eq!(code, Some(0), "{q}: {out}");
        assert!(
            out.starts_with("【web-01】"),
            "{q}: the card, not a list: {out}"
        );
    }
    let (out, code) = say(dir.path(), "查:esxi-dr-02");
    assert_eq!(code, Some(0), "{out}");
    let first = out.lines().nth(1).unwrap();
    assert!(
        first.starts_with("1. ★") && first.contains("esxi-dr-02"),
        "the host first: {out}"
    );
    assert!(!out.contains("redis-02"), "{out}");
}

#[test]
fn words_people_use_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let (out, code) = say(dir.path(), "@机器人 概况");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("【资源概况】"), "{out}");
    let (out, code) = say(dir.path(), "停机:web-01");
    assert_eq!(code, Some(4), "关机 asks first: {out}");
    // A resize is confirmed (exit 4 asks for it), its prompt naming the final value.
    let (out, code) = say(dir.path(), "cpu web-04 6");
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("CPU: 4 → 6"), "{out}");
    let (out, code) = say(dir.path(), "加盘 web-02 10");
    assert_eq!(code, Some(0), "{out}");
    let (out, code) = say(dir.path(), "重起:web-01");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("「重启」"), "{out}");

    let (out, code) = say(dir.path(), "帮助:克隆");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("用法: 克隆:模板号,名称,IP")
            && out.contains("例: 克隆:2,工具柜管理系统,192.168.2.182")
            && out.contains("需要回复 确认"),
        "{out}"
    );
    let (out, _) = say(dir.path(), "帮助");
    assert!(
        out.lines()
            .all(|l| !(l.contains("未配置") && l.contains(". "))),
        "未配置 is not a numbered command: {out}"
    );
}

#[test]
fn the_menu_acts_on_the_exact_vm_and_says_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let out = converse(
        dir.path(),
        &[
            "菜单",
            "1",
            "web-01",
            "0",
            "5",
            "6",
            "y",
            "退出",
            "菜单",
            "5",
            "1",
            "菜单克隆,10.96.0.9",
            "y",
            "7",
            "查:10.10",
            "下一页",
        ],
    );
    let matches = after(&out, "【匹配「web-01」的虚拟机】");
    assert!(matches.contains("\n0 ★ 🟢web-01 "), "{matches}");
    // 0 chose web-01, not dr-web-01; the CPU change names where the menu went.
    let cpu = after(&out, "已受理 #1: 修改 web-01 CPU: 4 → 6");
    assert!(cpu.contains("菜单已回到【web-01】的操作列表"), "{cpu}");
    // The clone menu's numbers are the templates' own: 1 is template 1.
    assert!(out.contains("\n1 tpl-centos7.9 "), "{out}");
    assert!(out.contains("【克隆 · 模板 1】"), "{out}");
    let clone = after(&out, "已受理 #2: 克隆 菜单克隆");
    assert!(clone.contains("菜单已回到【运维菜单】"), "{clone}");
    // 7 is 我的任务 there, not "没有选项 7".
    assert!(!out.contains("没有选项 7"), "{out}");
    assert!(after(clone, "\n").contains("【任务列表"), "{clone}");
    // 下一页 pages the search.
    let paged = after(&out, "【查找「10.10」】");
    assert!(paged.contains("第 1/"), "{paged}");
    assert!(
        after(paged, "发送 下一页").contains("第 2/"),
        "下一页 after 查: {paged}"
    );

    // Jobs record the command, not the digit or the y that chose it.
    let (out, _) = say(dir.path(), "任务:1");
    assert!(out.contains("命令: CPU:web-01,6"), "{out}");
    let (out, _) = say(dir.path(), "任务:2");
    assert!(out.contains("命令: 克隆:1,菜单克隆,10.96.0.9"), "{out}");
}

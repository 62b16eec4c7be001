//! What chat says when there is nothing to confirm, no further page, or no menu: the
//! reason that really applies, never a timeout that did not happen; and how long a
//! confirmation stays valid, in the unit that fits.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_engine::{EngineSettings, Status};
use std::time::Duration;

fn no_timeout(text: &str) {
    assert!(!text.contains("超时"), "blames a timeout: {text}");
}

#[tokio::test]
async fn a_dropped_confirmation_says_what_dropped_it() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "关机:web-01").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    h.say(ADMIN, "概况").await;
    let r = h.say(ADMIN, "y").await;
    assert_eq!(r.status, Status::Invalid);
    no_timeout(&r.text);
    assert!(
        r.text.contains("web-01") && r.text.contains("概况") && r.text.contains("未执行"),
        "{}",
        r.text
    );

    // 退出 drops it too, and says so.
    h.say(ADMIN, "关机:web-02").await;
    h.say(ADMIN, "退出").await;
    let r = h.say(ADMIN, "确认").await;
    no_timeout(&r.text);
    assert!(
        r.text.contains("web-02") && r.text.contains("退出") && r.text.contains("未执行"),
        "{}",
        r.text
    );

    // Cancelled, then confirmed: it was cancelled.
    h.say(ADMIN, "关机:web-03").await;
    h.say(ADMIN, "n").await;
    let r = h.say(ADMIN, "y").await;
    no_timeout(&r.text);
    assert!(
        r.text.contains("已取消") && r.text.contains("web-03"),
        "{}",
        r.text
    );

    // Never asked for anything: nothing to confirm, no story.
    let r = h.say("someone", "确认").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(r.text.contains("没有待确认的操作"), "{}", r.text);
}

#[tokio::test]
async fn the_last_page_says_it_is_the_last() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "帮助:3").await;
    assert!(r.text.contains("第 3/3 页"), "{}", r.text);
    let r = h.say(ADMIN, "下一页").await;
    assert_eq!(r.status, Status::Invalid);
    no_timeout(&r.text);
    assert!(r.text.contains("最后一页"), "{}", r.text);
    // A list that fits one screen has no next page either.
    h.say(ADMIN, "模板").await;
    let r = h.say(ADMIN, "下一页").await;
    no_timeout(&r.text);
    assert!(r.text.contains("最后一页"), "{}", r.text);
}

#[tokio::test]
async fn a_menu_closed_with_exit_says_so() {
    let h = harness(admin_policy()).await;
    h.say(ADMIN, "菜单").await;
    let r = h.say(ADMIN, "退出").await;
    assert!(r.text.contains("已退出菜单"), "{}", r.text);
    let r = h.say(ADMIN, "1").await;
    assert_eq!(r.status, Status::Invalid);
    no_timeout(&r.text);
    assert!(
        r.text.contains("已退出") && r.text.contains("发送 菜单"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_short_confirmation_window_is_shown_in_seconds() {
    for (ttl, shown) in [(30, "30 秒"), (90, "1 分 30 秒"), (600, "10 分钟")] {
        let settings = EngineSettings {
            session_ttl: Duration::from_secs(ttl),
            ..EngineSettings::default()
        };
        let h = harness_with(admin_policy(), settings, None).await;
        let r = h.say(ADMIN, "关机:web-01").await;
        assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
        assert!(
            r.text.contains(&format!("({shown}内有效)")),
            "{ttl} s: {}",
            r.text
        );
    }
}

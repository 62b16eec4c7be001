//! Acting on the right thing (issue 15): an exact name, `provider/name`, IP or UUID is
//! the answer and fuzzy hits rank by closeness; one numbering per menu list; after an
//! action the menu says where it is; jobs and the audit record the command that ran,
//! not the `y` or digit that chose it; 下一页 after 查; the words people use; 帮助:命令.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_engine::Status;
use opsbot_store::AuditQuery;

/// The numbered lines of a list reply, without the title.
fn lines(text: &str) -> Vec<&str> {
    text.lines().skip(1).collect()
}

/// Where `needle` first appears in `text`; panics with the text when it does not.
fn at(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
}

#[tokio::test]
async fn an_exact_name_ip_or_uuid_is_the_card() {
    let h = harness(admin_policy()).await;
    let uuid = h.vm("web-01").await.unwrap().uuid;
    for q in [
        "查:web-01",
        "查:sim/web-01",
        "查:WEB-01",
        "查:10.10.100.11",
        &format!("查:{uuid}"),
    ] {
        let r = h.say(ADMIN, q).await;
        assert_eq!(r.status, Status::Ok, "{q}: {}", r.text);
        assert!(r.text.starts_with("【web-01】"), "{q}: {}", r.text);
    }
    // The near misses are named under the card, not instead of it.
    let r = h.say(ADMIN, "查:web-01").await;
    assert!(
        r.text.contains("相近") && r.text.contains("dr-web-01") && r.text.contains("test-web-01"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn an_exact_host_comes_first_and_fuzzy_hits_rank_by_closeness() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "查:esxi-dr-02").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
    let first = lines(&r.text)[0];
    assert!(
        first.contains("★") && first.contains("esxi-dr-02"),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains("redis-02"),
        "a guess beside a real hit: {}",
        r.text
    );

    // Prefix before word before substring, never the alphabet.
    let r = h.say(ADMIN, "查:web").await;
    assert!(
        at(&r.text, "web-01 ") < at(&r.text, "dr-web-01"),
        "{}",
        r.text
    );
    assert!(
        at(&r.text, "web-04 ") < at(&r.text, "test-web-01"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn the_menu_puts_the_exact_vm_at_zero() {
    let h = harness(admin_policy()).await;
    h.say(ADMIN, "菜单").await;
    h.say(ADMIN, "1").await;
    let r = h.say(ADMIN, "web-01").await;
    let zero = lines(&r.text)[0];
    assert!(
        zero.starts_with("0 ★") && zero.contains("web-01") && !zero.contains("dr-web-01"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "0").await;
    assert!(r.text.starts_with("【web-01】请选择操作"), "{}", r.text);
}

#[tokio::test]
async fn the_clone_menu_numbers_templates_by_their_own_number() {
    let h = harness(admin_policy()).await;
    h.say(ADMIN, "菜单").await;
    let r = h.say(ADMIN, "5").await;
    assert!(r.text.contains("\n1 tpl-centos7.9"), "{}", r.text);
    assert!(r.text.contains("\n2 tpl-ubuntu20.04"), "{}", r.text);
    assert!(!r.text.contains("[模板"), "two numberings: {}", r.text);
    let r = h.say(ADMIN, "1").await;
    assert!(r.text.contains("【克隆 · 模板 1】"), "{}", r.text);
    h.say(ADMIN, "返回").await;
    let r = h.say(ADMIN, "0").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(r.text.contains("没有编号为 0 的模板"), "{}", r.text);
}

/// Answers a confirmation prompt, if the reply is one.
async fn confirmed(h: &Harness, r: opsbot_engine::Response) -> opsbot_engine::Response {
    if r.status == Status::NeedsConfirmation {
        h.say(ADMIN, "y").await
    } else {
        r
    }
}

#[tokio::test]
async fn after_an_action_the_menu_says_where_it_is() {
    let h = harness(admin_policy()).await;
    h.say(ADMIN, "菜单").await;
    h.say(ADMIN, "1").await;
    h.say(ADMIN, "web-04").await;
    h.say(ADMIN, "0").await;
    let r = h.say(ADMIN, "5").await;
    assert!(r.text.contains("CPU"), "{}", r.text);
    let r = confirmed(&h, h.say(ADMIN, "6").await).await;
    assert!(r.job().is_some(), "{}", r.text);
    assert!(
        r.text.contains("菜单已回到【web-04】的操作列表"),
        "{}",
        r.text
    );
    // The next digit reads against that list, as the reply said: 0 is 详情.
    let r = h.say(ADMIN, "0").await;
    assert!(r.text.starts_with("【web-04】"), "{}", r.text);
    assert!(
        r.text.contains("菜单已回到【web-04】的操作列表"),
        "{}",
        r.text
    );

    // A clone returns to the top: 7 is 我的任务 there.
    h.say(ADMIN, "退出").await;
    h.say(ADMIN, "菜单").await;
    h.say(ADMIN, "5").await;
    h.say(ADMIN, "1").await;
    let r = h.say(ADMIN, "菜单克隆,10.96.0.77").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let r = h.say(ADMIN, "y").await;
    assert!(r.job().is_some(), "{}", r.text);
    assert!(r.text.contains("菜单已回到【运维菜单】"), "{}", r.text);
    let r = h.say(ADMIN, "7").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
    assert!(r.text.contains("任务列表"), "{}", r.text);
}

#[tokio::test]
async fn jobs_and_the_audit_record_the_command_not_the_reply() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "克隆:2,审计克隆,10.96.0.78").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let (r, _, _) = h.run(ADMIN, "y").await;
    let clone_job = r.job().unwrap();

    h.say(ADMIN, "菜单").await;
    for step in ["1", "web-03", "0", "5"] {
        h.say(ADMIN, step).await;
    }
    let (r, _, _) = h.run(ADMIN, "6").await;
    let r = if r.status == Status::NeedsConfirmation {
        h.run(ADMIN, "y").await.0
    } else {
        r
    };
    let cpu_job = r.job().unwrap();

    let r = h.say(ADMIN, &format!("任务:{}", clone_job.0)).await;
    assert!(
        r.text.contains("命令: 克隆:2,审计克隆,10.96.0.78"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, &format!("任务:{}", cpu_job.0)).await;
    assert!(r.text.contains("命令: CPU:web-03,6"), "{}", r.text);

    let log = h
        .store
        .audit_log(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let y = log
        .iter()
        .find(|e| e.text == "y" && e.job_id == Some(clone_job.0))
        .unwrap();
    assert_eq!(y.command.as_deref(), Some("克隆:2,审计克隆,10.96.0.78"));
    let digit = log
        .iter()
        .find(|e| e.job_id == Some(cpu_job.0) && (e.text == "6" || e.text == "y"))
        .unwrap();
    assert_eq!(digit.command.as_deref(), Some("CPU:web-03,6"));
}

#[tokio::test]
async fn next_page_pages_a_search() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "查:10.10").await;
    assert!(r.text.contains("第 1/"), "{}", r.text);
    let r = h.say(ADMIN, "下一页").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
    assert!(
        r.text.contains("第 2/") && r.text.contains("\n11. "),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn the_words_people_use() {
    let h = harness(admin_policy()).await;
    for (text, starts) in [
        ("详情:web-01", "【web-01】"),
        ("状态:web-01。", "【web-01】"),
        ("@运维机器人 概况", "【资源概况】"),
        ("@机器人\u{2005}概况；", "【资源概况】"),
        ("概况.", "【资源概况】"),
    ] {
        let r = h.say(ADMIN, text).await;
        assert_eq!(r.status, Status::Ok, "{text}: {}", r.text);
        assert!(r.text.starts_with(starts), "{text}: {}", r.text);
    }
    let r = h.say(ADMIN, "停机:web-01").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(r.text.contains("关机"), "{}", r.text);
    h.say(ADMIN, "n").await;
    for text in ["启动:web-04", "开启 web-04"] {
        let r = h.say(ADMIN, text).await;
        // Powered on by the first; the second is told it already is: both are 开机.
        assert!(
            r.job().is_some() || r.text.contains("已经是开机状态"),
            "{text}: {}",
            r.text
        );
    }
    let (r, _, state) = h.run(ADMIN, "cpu web-04 6").await;
    let (r, state) = if r.status == Status::NeedsConfirmation {
        let (r, _, s) = h.run(ADMIN, "y").await;
        (r, s)
    } else {
        (r, state)
    };
    assert_eq!(state, Some(opsbot_core::JobState::Succeeded), "{}", r.text);
    let (r, _, state) = h.run(ADMIN, "加盘 web-02 10").await;
    assert_eq!(state, Some(opsbot_core::JobState::Succeeded), "{}", r.text);

    for (typo, meant) in [
        ("重起:web-01", "重启"),
        ("关鸡", "关机"),
        ("主鸡", "主机"),
        ("概括", "概况"),
    ] {
        let r = h.say(ADMIN, typo).await;
        assert!(
            r.text.contains(&format!("您是不是要用「{meant}」")),
            "{typo}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn help_for_one_command_and_only_what_the_asker_may_run() {
    let h = harness(policy(
        vec![
            role("admin", &["*"], &["*"]),
            role("viewer", &["查", "概况"], &["*"]),
        ],
        &[(ADMIN, &["admin"]), ("viewer", &["viewer"])],
        &[],
    ))
    .await;
    let r = h.say(ADMIN, "帮助:克隆").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
    for part in [
        "【克隆】",
        "用法: 克隆:模板号,名称,IP",
        "例: 克隆:2,",
        "clone",
        "需要回复 确认",
    ] {
        assert!(r.text.contains(part), "{part}: {}", r.text);
    }
    let r = h.say(ADMIN, "help:cpu").await;
    assert!(
        r.text.starts_with("【CPU】") && r.text.contains("例: CPU:web-01,4"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "帮助:克龙").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(r.text.contains("帮助:克隆"), "{}", r.text);

    // The list numbers commands only.
    let mut all = String::new();
    for page in 1..=5 {
        all.push_str(&h.say(ADMIN, &format!("帮助:{page}")).await.text);
    }
    for line in all.lines() {
        let numbered = line
            .split_once(". ")
            .is_some_and(|(n, _)| n.parse::<u32>().is_ok());
        assert!(!(numbered && line.contains("未配置")), "{line}");
    }

    let r = h.say("viewer", "帮助").await;
    assert!(
        r.text.contains("查:关键字") && r.text.contains("概况"),
        "{}",
        r.text
    );
    for hidden in ["克隆:", "关机:", "CPU:", "同步", "告警[", "静默:"] {
        assert!(!r.text.contains(hidden), "{hidden}: {}", r.text);
    }
    let r = h.say("viewer", "帮助:克隆").await;
    assert_eq!(r.status, Status::Denied, "{}", r.text);
}

/// What the web UI's search calls: the same ranking as 查, for hits its filters found.
#[tokio::test]
async fn the_web_search_ranking_puts_the_exact_match_first() {
    use opsbot_engine::pool::{Closeness, PoolView};
    let h = harness(admin_policy()).await;
    let pool = h.engine.pool().await.unwrap();
    // The web's filters give hits by name; the exact one was last.
    let mut hits: Vec<&opsbot_core::Vm> = pool
        .vms_by_name()
        .filter(|v| v.name.contains("web-01"))
        .collect();
    assert_eq!(hits.last().unwrap().name, "web-01");
    PoolView::rank_by_closeness("web-01", &mut hits);
    let names: Vec<&str> = hits.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["web-01", "dr-web-01", "test-web-01"]);

    let ranked = pool.search_ranked("SIM/web-01", |_| true);
    assert_eq!(ranked.len(), 1);
    assert_eq!(
        (ranked[0].0, ranked[0].1.name.as_str()),
        (Closeness::Exact, "web-01")
    );
    let ranked = pool.search_ranked("10.10.100.1", |_| true);
    assert_eq!(ranked[0].1.name, "web-01", "an IP prefix: {ranked:?}");
    assert_eq!(ranked[0].0, Closeness::Word);
}

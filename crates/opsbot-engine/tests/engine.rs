//! End-to-end behaviour of the chat engine against the sim cluster and a real store.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_core::{AuditResult, JobState, PowerState};
use opsbot_engine::{EngineSettings, Status};
use opsbot_store::{AuditQuery, JobQuery};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn overview_answers_from_the_pool() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "概况").await;
    assert_eq!(r.status, Status::Ok);
    insta::assert_snapshot!("overview", r.text);
    let r = h.say(ADMIN, "overview:DC1").await;
    assert!(
        r.text.contains("【资源概况 · DC1】") && r.text.contains("集群 1"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "概况:DC9").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(
        r.text.contains("DC0") && r.text.contains("DC1"),
        "lists the real ones: {}",
        r.text
    );
}

#[tokio::test]
async fn seed_clone_example_works_verbatim_with_progress() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "克隆:2,工具柜管理系统,192.168.2.182").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(
        r.text.contains("工具柜管理系统") && r.text.contains("tpl-ubuntu20.04"),
        "{}",
        r.text
    );
    assert!(
        h.vm("工具柜管理系统").await.is_none(),
        "nothing happens before confirmation"
    );

    let (r, replies, state) = h.run(ADMIN, "确认").await;
    assert!(matches!(r.status, Status::Accepted(_)), "{}", r.text);
    assert!(r.text.starts_with("已受理 #"), "{}", r.text);
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    let percents: Vec<u8> = replies.iter().filter_map(|r| r.progress).collect();
    assert!(
        percents.len() >= 4 && percents.windows(2).all(|w| w[0] < w[1]),
        "progress climbs: {percents:?}"
    );
    assert!(
        replies.iter().any(|r| r.text.contains("自定义客户机网络")),
        "guest network fixed: {replies:?}"
    );
    assert!(
        replies.last().unwrap().text.contains("克隆完成"),
        "{replies:?}"
    );

    let vm = h.vm("工具柜管理系统").await.expect("clone is in the pool");
    assert_eq!(vm.ips, vec!["192.168.2.182".to_string()]);
    assert_eq!(vm.guest_ip.as_deref(), Some("192.168.2.182"));
    assert_eq!(vm.power, PowerState::PoweredOn);
    assert_eq!(vm.guest_hostname, "vm-192-168-2-182");
    assert!(!vm.template);

    let r = h.say(ADMIN, "查:192.168.2.182").await;
    assert!(r.text.contains("【工具柜管理系统】开机"), "{}", r.text);

    // The same IP or name again is refused before any work starts.
    let r = h.say(ADMIN, "克隆:1,another,192.168.2.182").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(
        r.text.contains("已被虚拟机 工具柜管理系统 使用"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "克隆:1,工具柜管理系统,192.168.2.183").await;
    assert!(r.text.contains("已存在名为 工具柜管理系统"), "{}", r.text);
    let r = h.say(ADMIN, "克隆:99,x,192.168.2.184").await;
    assert!(
        r.text.contains("没有编号为 99 的模板") && r.text.contains("2 tpl-ubuntu20.04"),
        "{}",
        r.text
    );

    let audit = h
        .store
        .audit_log(&AuditQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let results: Vec<AuditResult> = audit
        .iter()
        // The `y` that confirmed it is audited with the command it ran (`克隆:2,…`).
        .filter(|a| {
            a.command
                .as_deref()
                .is_some_and(|c| c == "确认" || c.starts_with("克隆"))
        })
        .map(|a| a.result)
        .collect();
    assert!(results.contains(&AuditResult::Pending), "{results:?}");
    assert!(results.contains(&AuditResult::Accepted), "{results:?}");
    assert!(
        results.contains(&AuditResult::Ok),
        "the job's own entry: {results:?}"
    );
}

#[tokio::test]
async fn power_operations_change_state_and_refuse_the_impossible() {
    let h = harness(admin_policy()).await;
    let (r, _, state) = h.run(ADMIN, "开机:web-04").await;
    assert_eq!(state, Some(JobState::Succeeded), "{}", r.text);
    assert_eq!(h.vm("web-04").await.unwrap().power, PowerState::PoweredOn);

    let r = h.say(ADMIN, "开机:web-04").await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.text.contains("已经是开机状态"), "{}", r.text);

    let r = h.say(ADMIN, "关机：web-04").await;
    assert_eq!(r.status, Status::NeedsConfirmation);
    let (_, replies, state) = h.run(ADMIN, "y").await;
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    let vm = h.vm("web-04").await.unwrap();
    assert_eq!(vm.power, PowerState::PoweredOff);
    assert_eq!(vm.guest_ip, None);

    // Guest shutdown needs running tools; reboot falls back to reset without them.
    let r = h.say(ADMIN, "关闭系统:web-04").await;
    assert!(r.text.contains("已经是关机状态"), "{}", r.text);

    // A VM on the unreachable DR host cannot be powered on.
    let changes = h
        .store
        .changes(&opsbot_store::ChangeQuery {
            object_id: Some(vm.id.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        changes.iter().any(|c| c.field == "power"),
        "power change recorded: {changes:?}"
    );
}

#[tokio::test]
async fn resize_disk_network_rename_and_ping() {
    let h = harness(admin_policy()).await;
    // CPU and memory changes are confirmed; what the pool knows to be impossible is
    // refused before the prompt (tests/plan_checks.rs has each check).
    let r = h.say(ADMIN, "CPU:web-01,8").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let (_, replies, state) = h.run(ADMIN, "确认").await;
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    assert_eq!(h.vm("web-01").await.unwrap().cpu, 8);

    let r = h.say(ADMIN, "cpu:web-01,64").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(r.text.contains("只有 32 个核心"), "{}", r.text);

    let r = h.say(ADMIN, "内存:web-01,4").await;
    assert_eq!(
        r.status,
        Status::Invalid,
        "shrinking a running VM is refused: {}",
        r.text
    );
    assert!(r.text.contains("先关机"), "{}", r.text);
    h.say(ADMIN, "mem:web-01,16").await;
    let (_, _, state) = h.run(ADMIN, "y").await;
    assert_eq!(state, Some(JobState::Succeeded));
    assert_eq!(h.vm("web-01").await.unwrap().memory_mb, 16 * 1024);

    let (_, replies, state) = h.run(ADMIN, "加盘:web-01,200").await;
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    let vm = h.vm("web-01").await.unwrap();
    assert_eq!(vm.disks.len(), 2);
    assert_eq!(vm.disks[1].capacity_gb, 200);
    let r = h.say(ADMIN, "加盘:web-01,9999,ds-prod-01").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(r.text.contains("不足"), "{}", r.text);

    let r = h.say(ADMIN, "换网:web-01,200").await;
    assert_eq!(r.status, Status::NeedsConfirmation);
    let (_, replies, state) = h.run(ADMIN, "确认").await;
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    assert_eq!(
        h.vm("web-01").await.unwrap().nics[0].network,
        "VLAN200-数据库"
    );
    let r = h.say(ADMIN, "setnet:web-01,VLAN999").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(r.text.contains("没有端口组或 VLAN"), "{}", r.text);

    h.say(ADMIN, "改名:web-01,web-01-new").await;
    let (_, _, state) = h.run(ADMIN, "y").await;
    assert_eq!(state, Some(JobState::Succeeded));
    assert!(h.vm("web-01").await.is_none() && h.vm("web-01-new").await.is_some());
    let r = h.say(ADMIN, "改名:web-02,web-03").await;
    assert!(r.text.contains("已存在名为 web-03"), "{}", r.text);

    let (_, replies, state) = h.run(ADMIN, "ping:web-02").await;
    assert_eq!(state, Some(JobState::Succeeded));
    assert!(
        replies.last().unwrap().text.contains("可达")
            && replies.last().unwrap().text.contains("心跳正常"),
        "{replies:?}"
    );
    let (_, replies, state) = h.run(ADMIN, "ping:10.10.100.14").await;
    assert_eq!(
        state,
        Some(JobState::Failed),
        "web-04 by IP is off: {replies:?}"
    );
    assert!(
        replies.last().unwrap().text.contains("不可达"),
        "web-04 is off: {replies:?}"
    );
    // A non-pool address is pinged from this host only inside `[chat] ping_allow`
    // (none by default; see tests/scope.rs).
    let r = h.say(ADMIN, "ping:127.0.0.1").await;
    assert_eq!(r.status, Status::Denied, "{}", r.text);
}

#[tokio::test]
async fn unknown_vm_suggests_and_bad_input_is_explained() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "开机:web-1").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(
        r.text.contains("找不到虚拟机「web-1」") && r.text.contains("web-01"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "开鸡:web-01").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(r.text.contains("未知命令"), "{}", r.text);
    let r = h.say(ADMIN, "CPU:web-01,abc").await;
    assert!(
        r.text.contains("不是整数") && r.text.contains("用法: CPU:虚拟机,数量"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "开机:tpl-centos7.9").await;
    assert!(r.text.contains("是模板"), "{}", r.text);
    let r = h.say(ADMIN, "扩容:web,3").await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.text.contains("尚未配置"), "{}", r.text);
    let r = h.say(ADMIN, "y").await;
    assert!(r.text.contains("没有待确认的操作"), "{}", r.text);
    // Another command in between drops a pending confirmation.
    let r = h.say(ADMIN, "关机:web-01").await;
    assert_eq!(r.status, Status::NeedsConfirmation);
    h.say(ADMIN, "概况").await;
    let r = h.say(ADMIN, "y").await;
    assert!(r.text.contains("没有待确认的操作"), "{}", r.text);
}

#[tokio::test]
async fn lists_are_paged_for_a_phone() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "虚拟机").await;
    assert!(
        r.text.contains("共 48 个,第 1/5 页") && r.text.contains("发送 下一页"),
        "{}",
        r.text
    );
    assert!(r.text.lines().count() <= 13, "fits a screen: {}", r.text);
    let r = h.say(ADMIN, "下一页").await;
    assert!(
        r.text.contains("第 2/5 页") && r.text.contains("\n11. "),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "vms:5").await;
    assert!(
        r.text.contains("第 5/5 页") && !r.text.contains("下一页"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "模板").await;
    insta::assert_snapshot!("templates", r.text);
    let r = h.say(ADMIN, "帮助").await;
    assert!(r.text.contains("第 1/3 页"), "{}", r.text);
    let r = h.say(ADMIN, "下一页").await;
    assert!(
        r.text.contains("第 2/3 页") && r.text.contains("\n11. "),
        "help pages on: {}",
        r.text
    );
    // A search pages like a list (issue 15: 下一页 after 查 used to say nothing to page).
    let r = h.say(ADMIN, "查:e").await;
    assert!(
        r.text.contains("第 1/") && r.text.contains("下一页"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "下一页").await;
    assert!(
        r.text.contains("查找「e」") && r.text.contains("第 2/") && r.text.contains("\n11. "),
        "下一页 continues 查: {}",
        r.text
    );
    for list in ["主机", "存储", "网络", "集群", "数据中心"] {
        let r = h.say(ADMIN, list).await;
        assert_eq!(r.status, Status::Ok, "{list}: {}", r.text);
    }
}

#[tokio::test]
async fn permissions_deny_by_default_and_limit_scope() {
    let p = policy(
        vec![
            role(
                "operator",
                &["概况", "查", "虚拟机", "开机", "关机"],
                &["sim/DC0/Cluster-Test/**"],
            ),
            role("viewer", &["概况"], &["*"]),
        ],
        &[("zhangsan", &["operator"])],
        &[("room1", &["viewer"])],
    );
    let h = harness(p).await;
    let r = h.say("stranger", "概况").await;
    assert_eq!(r.status, Status::Denied);
    assert!(r.text.contains("没有权限执行「概况」"), "{}", r.text);

    let r = h.say("zhangsan", "帮助").await;
    assert!(
        r.text.contains("概况") && r.text.contains("开机:虚拟机") && r.text.contains("关机:虚拟机"),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains("克隆"),
        "help lists only what the asker may run: {}",
        r.text
    );

    // Out of scope is not found, exactly as a VM that does not exist.
    let r = h.say("zhangsan", "关机:web-01").await;
    assert_eq!(r.status, Status::Invalid, "out of scope: {}", r.text);
    assert!(r.text.starts_with("找不到虚拟机「web-01」"), "{}", r.text);
    let r = h.say("zhangsan", "关机:test-web-01").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "in scope: {}", r.text);
    let r = h.say("zhangsan", "克隆:2,x,192.168.9.9").await;
    assert_eq!(r.status, Status::Denied);

    let r = h.say("zhangsan", "虚拟机").await;
    assert!(
        r.text.contains("共 8 个") && !r.text.contains("🟢web-01 "),
        "only Cluster-Test VMs: {}",
        r.text
    );

    // A chat's roles add to the user's.
    let mut m = msg("stranger", "概况");
    m.chat = Some("room1".into());
    let r = h
        .engine
        .handle(m, std::sync::Arc::new(opsbot_engine::Discard))
        .await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);

    let denied = h
        .store
        .audit_log(&opsbot_store::AuditQuery {
            result: Some(AuditResult::Denied),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(denied.len() >= 2, "every refusal is audited: {denied:?}");
    assert!(denied
        .iter()
        .any(|a| a.user == "stranger" && a.text == "概况"));
}

#[tokio::test]
async fn menu_tree_navigates_runs_and_returns() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "菜单").await;
    insta::assert_snapshot!("menu_root", r.text);
    let r = h.say(ADMIN, "1").await;
    assert!(r.text.contains("请输入虚拟机名称或 IP"), "{}", r.text);
    let r = h.say(ADMIN, "nosuchvm").await;
    assert!(
        r.text.contains("没有匹配「nosuchvm」"),
        "input node re-asks: {}",
        r.text
    );
    let r = h.say(ADMIN, "web-0").await;
    assert!(
        r.text.contains("0 🟢web-01")
            && r.text.contains("3 ⚪web-04")
            && r.text.contains("4 ⚪dr-web-01"),
        "dynamic list, closest first: {}",
        r.text
    );
    let r = h.say(ADMIN, "3").await;
    assert!(r.text.contains("【web-04】请选择操作"), "{}", r.text);
    let (r, replies, state) = h.run(ADMIN, "1").await;
    assert_eq!(state, Some(JobState::Succeeded), "{} {replies:?}", r.text);
    assert_eq!(h.vm("web-04").await.unwrap().power, PowerState::PoweredOn);
    // Still at the VM's actions: an input action, then back.
    let r = h.say(ADMIN, "5").await;
    assert!(r.text.contains("请输入新的 CPU 数量"), "{}", r.text);
    // A CPU change is confirmed, from the menu too.
    let r = h.say(ADMIN, "6").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let (_, _, state) = h.run(ADMIN, "y").await;
    assert_eq!(state, Some(JobState::Succeeded));
    assert_eq!(h.vm("web-04").await.unwrap().cpu, 6);
    let r = h.say(ADMIN, "2").await;
    assert_eq!(
        r.status,
        Status::NeedsConfirmation,
        "destructive menu leaf confirms: {}",
        r.text
    );
    let r = h.say(ADMIN, "取消").await;
    assert!(r.text.contains("已取消"), "{}", r.text);
    let r = h.say(ADMIN, "返回").await;
    assert!(r.text.contains("匹配「web-0」"), "{}", r.text);
    let r = h.say(ADMIN, "99").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(r.text.contains("没有选项 99"), "{}", r.text);
    let r = h.say(ADMIN, "退出").await;
    assert!(r.text.contains("已退出菜单"), "{}", r.text);
    let r = h.say(ADMIN, "2").await;
    assert!(
        r.text.contains("菜单已退出") && !r.text.contains("超时"),
        "digits after 退出 say the menu was closed, not that it timed out: {}",
        r.text
    );

    // A whole path from the top (the template by its own number), then free input.
    let r = h.say(ADMIN, "5-2").await;
    assert!(r.text.contains("【克隆 · 模板 2】"), "{}", r.text);
    let r = h.say(ADMIN, "菜单测试机,192.168.2.190").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let (_, _, state) = h.run(ADMIN, "确认").await;
    assert_eq!(state, Some(JobState::Succeeded));
    assert!(h.vm("菜单测试机").await.is_some());
    let r = h.say(ADMIN, "0-0").await;
    assert!(
        r.text.contains("资源概况") || r.text.contains("路径"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn menu_session_expires_after_the_ttl() {
    let settings = EngineSettings {
        session_ttl: Duration::from_secs(1),
        ..EngineSettings::default()
    };
    let h = harness_with(admin_policy(), settings, None).await;
    h.say(ADMIN, "菜单").await;
    h.say(ADMIN, "1").await;
    let key = opsbot_engine::session::key("test", None, ADMIN);
    assert!(h.sessions.get(&key).await.unwrap().is_some());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.sessions.get(&key).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "session never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = h.say(ADMIN, "2").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(
        r.text.contains("已超时(1 秒无操作)") && r.text.contains("发送 菜单 重新开始"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn many_users_jobs_run_concurrently() {
    let users: Vec<String> = (0..6).map(|i| format!("user{i}")).collect();
    let bindings: Vec<(&str, &[&str])> =
        users.iter().map(|u| (u.as_str(), &["admin"][..])).collect();
    let h = harness(policy(vec![role("admin", &["*"], &["*"])], &bindings, &[])).await;
    // A sim slow enough (about 2 s a clone) that the jobs surely overlap.
    let sim = std::sync::Arc::new(opsbot_sim::SimProvider::new("sim", h.store.clone(), 0.5));
    let engine = opsbot_engine::Engine::new(
        h.store.clone(),
        h.sessions.clone(),
        vec![sim],
        policy(vec![role("admin", &["*"], &["*"])], &bindings, &[]),
        EngineSettings::default(),
    )
    .await
    .unwrap();
    let mut collectors = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let mut m = msg(user, &format!("clone:1,并发-{i},10.99.0.{}", 10 + i));
        m.assume_yes = true;
        let c = Collector::new();
        let r = engine.handle(m, c.sink()).await;
        assert!(matches!(r.status, Status::Accepted(_)), "{}", r.text);
        collectors.push(c);
    }
    assert!(engine.jobs().running_count() >= 2, "jobs overlap");
    for c in collectors.iter_mut() {
        let (replies, state) = c.until_done().await;
        assert_eq!(state, JobState::Succeeded, "{replies:?}");
    }
    for i in 0..6 {
        assert!(h.vm(&format!("并发-{i}")).await.is_some());
    }
    for user in &users {
        let query = JobQuery {
            user: Some(user.clone()),
            state: Some(JobState::Succeeded),
            limit: 20,
        };
        assert_eq!(h.store.jobs(&query).await.unwrap().len(), 1, "{user}");
    }
}

#[tokio::test]
async fn shutdown_records_interrupted_jobs_and_a_dead_process_is_swept() {
    let h = harness(admin_policy()).await;
    // A slow sim so the clone is still running when the stop comes.
    let slow = std::sync::Arc::new(opsbot_sim::SimProvider::new("sim", h.store.clone(), 5.0));
    let engine = opsbot_engine::Engine::new(
        h.store.clone(),
        h.sessions.clone(),
        vec![slow],
        admin_policy(),
        EngineSettings::default(),
    )
    .await
    .unwrap();
    let mut c = Collector::new();
    let mut m = msg(ADMIN, "克隆:2,被中断的克隆,10.98.0.10");
    m.assume_yes = true;
    let r = engine.handle(m, c.sink()).await;
    let job = r.job().expect("accepted");
    assert_eq!(engine.shutdown(Duration::ZERO).await, 1);
    let (_, state) = c.until_done().await;
    assert_eq!(state, JobState::Interrupted);
    assert_eq!(
        h.store.job(job).await.unwrap().unwrap().state,
        JobState::Interrupted
    );

    // A process that died without a word leaves a running job nobody updates; the next
    // engine to start finds its heartbeat stale and records it as interrupted.
    let orphan = h
        .store
        .create_job(&opsbot_store::NewJob {
            owner: "opsbot-that-crashed".into(),
            user: ADMIN.into(),
            channel: "test".into(),
            chat: None,
            command: "克隆".into(),
            text: "克隆:2,孤儿克隆,10.98.0.11".into(),
            message: "已受理".into(),
            target: None,
        })
        .await
        .unwrap();
    // Heartbeats have millisecond resolution: let the clock pass the job's last one.
    let beat = h
        .store
        .job(orphan)
        .await
        .unwrap()
        .unwrap()
        .updated_at
        .timestamp_millis();
    while chrono::Utc::now().timestamp_millis() <= beat {
        tokio::task::yield_now().await;
    }
    let _next = opsbot_engine::Engine::new(
        h.store.clone(),
        h.sessions.clone(),
        vec![],
        admin_policy(),
        EngineSettings {
            stale_after: Duration::ZERO,
            ..EngineSettings::default()
        },
    )
    .await
    .unwrap();
    let rec = h.store.job(orphan).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Interrupted, "{rec:?}");
    assert!(rec.message.contains("已中断"), "{rec:?}");
}

#[tokio::test]
async fn sim_state_persists_across_engines() {
    let h = harness(admin_policy()).await;
    let mut m = msg(ADMIN, "克隆:1,persist-me,10.97.0.5");
    m.assume_yes = true;
    let mut c = Collector::new();
    h.engine.handle(m, c.sink()).await;
    assert_eq!(c.until_done().await.1, JobState::Succeeded);
    let again = engine_on(
        &h.store,
        &h.sessions,
        admin_policy(),
        EngineSettings::default(),
    )
    .await;
    let r = again
        .handle(
            msg(ADMIN, "查:persist-me"),
            std::sync::Arc::new(opsbot_engine::Discard),
        )
        .await;
    assert!(r.text.contains("【persist-me】"), "{}", r.text);
    // And a full re-sync from the sim agrees with the pool.
    let reports = again.sync_all("test").await.unwrap();
    assert_eq!(reports[0].vms, 49);
    assert_eq!(
        (reports[0].added, reports[0].removed),
        (0, 0),
        "{reports:?}"
    );
}

#[tokio::test]
async fn sync_runs_as_a_job_and_reports_counts() {
    let h = harness(admin_policy()).await;
    let (r, replies, state) = h.run(ADMIN, "同步").await;
    assert_eq!(state, Some(JobState::Succeeded), "{} {replies:?}", r.text);
    let last = &replies.last().unwrap().text;
    assert!(
        last.contains("sim: 数据中心 2 集群 3 主机 8 虚拟机 48 模板 4 存储 5 网络 7"),
        "{last}"
    );
}

/// The sim, except that a clone fails after its copy, the way a vCenter clone whose
/// customisation fails does: the provider reports what it left behind.
struct CloneFailsAfterCopy(opsbot_sim::SimProvider);

#[async_trait::async_trait]
impl opsbot_core::Provider for CloneFailsAfterCopy {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    async fn inventory(&self) -> Result<opsbot_core::Inventory, opsbot_core::ProviderError> {
        self.0.inventory().await
    }
    async fn execute(
        &self,
        op: &opsbot_core::VmOperation,
        progress: &dyn opsbot_core::Progress,
    ) -> Result<opsbot_core::OpOutcome, opsbot_core::ProviderError> {
        let out = self.0.execute(op, progress).await?;
        match (op, out.vm) {
            (opsbot_core::VmOperation::Clone { name, .. }, Some(vm)) => {
                Err(opsbot_core::ProviderError::Partial {
                    rejection: opsbot_core::Rejection::CloneStepFailed(
                        opsbot_core::CloneStepFailed {
                            name: name.clone(),
                            id: vm.id.clone(),
                            step: opsbot_core::CloneStep::Customize,
                            cause: "测试故障".into(),
                        },
                    ),
                    vm: Box::new(vm),
                })
            }
            (_, vm) => Ok(opsbot_core::OpOutcome { done: out.done, vm }),
        }
    }
}

#[tokio::test]
async fn a_failure_after_a_clone_still_records_the_clone_in_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/o.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let provider = Arc::new(CloneFailsAfterCopy(opsbot_sim::SimProvider::new(
        "sim",
        store.clone(),
        0.01,
    )));
    let engine = opsbot_engine::Engine::new(
        store.clone(),
        sessions,
        vec![provider],
        admin_policy(),
        EngineSettings::default(),
    )
    .await
    .unwrap();
    engine.ensure_synced().await.unwrap();
    let mut c = Collector::new();
    let mut m = msg(ADMIN, "克隆:1,half-done,10.9.9.9");
    m.assume_yes = true;
    let r = engine.handle(m, c.sink()).await;
    assert!(matches!(r.status, Status::Accepted(_)), "{}", r.text);
    let (replies, state) = c.until_done().await;
    assert_eq!(state, JobState::Failed);
    let last = &replies.last().unwrap().text;
    assert!(
        last.contains("已克隆出 half-done") && last.contains("已保留"),
        "{last}"
    );
    let pool = store.load_pool().await.unwrap();
    let vm = pool.inventory.vms.iter().find(|v| v.name == "half-done");
    assert!(vm.is_some(), "the clone the failed job left is in the pool");
    let changes = store
        .changes(&opsbot_store::ChangeQuery {
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.field == "created" && c.object_name == "half-done"),
        "and its creation is in the change history: {changes:?}"
    );
}

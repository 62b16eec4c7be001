//! 删除:vm end to end on the sim: always confirmed with a prompt that names the VM, its
//! IP and place and says it cannot be undone; refused at once while the VM runs (with
//! the command that gets it off) and for templates; out of scope reads as missing;
//! after the job the VM is gone from the pool, from 查 and from the sim, the change
//! history records its removal and the audit log the whole exchange.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_core::{
    AuditResult, JobState, NoProgress, Provider, ProviderError, Rejection, VmOperation,
};
use opsbot_engine::{Acted, Caller, EngineSettings, Mode, Refusal, Request, Status, VmAction};
use opsbot_store::{AuditQuery, ChangeQuery};

#[tokio::test]
async fn a_powered_off_vm_is_deleted_after_confirmation_and_leaves_the_pool() {
    let h = harness(admin_policy()).await;
    let id = h.vm("web-04").await.unwrap().id;
    let r = h.say(ADMIN, "删除:web-04").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(
        r.text.starts_with(
            "即将执行: 删除虚拟机 web-04(IP 10.10.100.14,位置 DC0/Cluster-Prod,当前关机)及其全部磁盘,删除后不可恢复"
        ),
        "{}",
        r.text
    );
    assert!(h.vm("web-04").await.is_some(), "nothing before 确认");

    let (r, replies, state) = h.run(ADMIN, "确认").await;
    assert_eq!(state, Some(JobState::Succeeded), "{}: {replies:?}", r.text);
    assert!(
        replies.last().unwrap().text.contains("web-04 已删除"),
        "{replies:?}"
    );
    // Gone from the pool at once, not at the next sync.
    assert!(h.vm("web-04").await.is_none());
    let r = h.say(ADMIN, "查:web-04").await;
    assert!(!r.text.contains("【web-04】"), "{}", r.text);
    let r = h.say(ADMIN, "删除:web-04").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(r.text.contains("找不到虚拟机「web-04」"), "{}", r.text);
    // And from the cluster: a full sync does not bring it back.
    let (_, _, state) = h.run(ADMIN, "同步").await;
    assert_eq!(state, Some(JobState::Succeeded));
    assert!(h.vm("web-04").await.is_none(), "the sim deleted it too");

    // The change history records a deletion by the asker.
    let changes = h
        .store
        .changes(&ChangeQuery {
            object_id: Some(id.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.field == "removed" && c.object_name == "web-04" && c.source.contains(ADMIN)),
        "{changes:?}"
    );
    // The audit log: asked (pending), confirmed (accepted: the `确认` is recorded with
    // the command it ran), the job's end (ok).
    let results: Vec<AuditResult> = h
        .store
        .audit_log(&AuditQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .filter(|a| a.command.as_deref().is_some_and(|c| c.starts_with("删除")))
        .map(|a| a.result)
        .collect();
    for want in [AuditResult::Pending, AuditResult::Accepted, AuditResult::Ok] {
        assert!(results.contains(&want), "{want:?} in {results:?}");
    }
}

#[tokio::test]
async fn a_running_vm_is_refused_at_once_with_the_way_to_power_it_off() {
    let h = harness(admin_policy()).await;
    for text in ["删除:web-01", "delete web-01", "destroy:web-01"] {
        let r = h.say(ADMIN, text).await;
        assert_eq!(r.status, Status::Invalid, "{text}: {}", r.text);
        assert_eq!(
            r.text, "web-01 未关机(当前开机),不能删除;请先关机: 关机:web-01",
            "{text}"
        );
    }
    // Nothing waits for 确认.
    let r = h.say(ADMIN, "确认").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(h.vm("web-01").await.is_some());
    // Powered off first, it may go.
    let (_, _, state) = h.run(ADMIN, "关机:web-01").await;
    assert_eq!(state, None, "关机 asks first");
    let (_, replies, state) = h.run(ADMIN, "y").await;
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    let r = h.say(ADMIN, "删除:web-01").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
}

#[tokio::test]
async fn the_sim_refuses_a_running_vm_as_vcenter_does() {
    // The pool may be behind the cluster: the provider has the last word.
    let h = harness(admin_policy()).await;
    let sim = opsbot_sim::SimProvider::new("sim", h.store.clone(), 0.01);
    let on = h.vm("web-01").await.unwrap();
    let err = sim
        .execute(&VmOperation::Delete { vm: on.id.clone() }, &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ProviderError::Rejected(Rejection::DeleteNeedsPowerOff { vm, power })
                if vm == "web-01" && power.as_deref() == Some("poweredOn")
        ),
        "{err:?}"
    );
    let inventory = sim.inventory().await.unwrap();
    assert!(inventory.vms.iter().any(|v| v.id == on.id), "still there");
    let tpl = h.vm("tpl-centos7.9").await.unwrap();
    let err = sim
        .execute(&VmOperation::Delete { vm: tpl.id }, &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Rejected(Rejection::IsTemplate { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_template_is_refused() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "删除:tpl-centos7.9").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.contains("tpl-centos7.9 是模板,不能删除"),
        "{}",
        r.text
    );
    assert!(h.vm("tpl-centos7.9").await.is_some());
}

#[tokio::test]
async fn deletion_is_confirmed_even_where_the_configuration_leaves_it_out() {
    let mut settings = EngineSettings::default();
    settings.confirm.clear();
    let h = harness_with(admin_policy(), settings, None).await;
    let r = h.say(ADMIN, "帮助:删除").await;
    assert!(r.text.contains("执行前需要回复 确认 或 y"), "{}", r.text);
    assert!(r.text.contains("delete、destroy"), "{}", r.text);
    let r = h.say(ADMIN, "删除:web-04").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let r = h.say(ADMIN, "n").await;
    assert!(r.text.starts_with("已取消"), "{}", r.text);
    assert!(h.vm("web-04").await.is_some());
}

#[tokio::test]
async fn an_out_of_scope_vm_reads_as_missing_and_the_command_is_granted_by_name() {
    let roles = vec![
        role("admin", &["*"], &["*"]),
        role("dc0-all", &["*"], &["sim/DC0/**"]),
        role("dc0-off", &["关机"], &["sim/DC0/**"]),
    ];
    let users: &[(&str, &[&str])] = &[
        (ADMIN, &["admin"]),
        ("dc0", &["dc0-all"]),
        ("off", &["dc0-off"]),
    ];
    let with = harness(policy(roles.clone(), users, &[])).await;
    let without = harness(policy(roles, users, &[])).await;
    // dr-web-01 (DC1, powered off) exists in one world and was renamed away in the other.
    let r = without.say(ADMIN, "改名:dr-web-01,gone-dr-web-01").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let (_, replies, state) = without.run(ADMIN, "确认").await;
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    for text in ["删除:dr-web-01", "删除:10.20.100.11", "删除:sim/dr-web-01"] {
        let seen = with.say("dc0", text).await;
        let missing = without.say("dc0", text).await;
        assert_eq!(
            (seen.status, &seen.text),
            (missing.status, &missing.text),
            "{text}: out of scope must read as missing"
        );
        assert!(!seen.text.contains("DC1"), "{text}: {}", seen.text);
    }
    assert!(with.vm("dr-web-01").await.is_some());
    // Granted 关机 but not 删除: refused by the command's name.
    let r = with.say("off", "删除:web-04").await;
    assert_eq!(r.status, Status::Denied, "{}", r.text);
    assert!(with.vm("web-04").await.is_some());
}

#[tokio::test]
async fn the_structured_api_plans_runs_and_refuses_deletion() {
    let h = harness(admin_policy()).await;
    let caller = Caller {
        user: ADMIN.into(),
        channel: "api".into(),
    };
    let request = |vm: &opsbot_core::Vm| Request::Vm {
        provider: vm.provider.clone(),
        id: vm.id.clone(),
        action: VmAction::Delete,
    };
    assert_eq!(VmAction::Delete.command(), "删除");
    let on = h.vm("web-01").await.unwrap();
    match h.engine.act(&caller, request(&on), Mode::Run).await {
        Err(Refusal::Invalid(m)) => assert!(m.contains("请先关机: 关机:web-01"), "{m}"),
        other => panic!("{other:?}"),
    }
    let off = h.vm("test-web-02").await.unwrap();
    match h.engine.act(&caller, request(&off), Mode::Plan).await {
        Ok(Acted::Planned {
            command,
            summary,
            destructive,
        }) => {
            assert_eq!(command, "删除");
            assert!(destructive);
            assert!(summary.contains("DC0/Cluster-Test"), "{summary}");
            assert!(summary.contains("不可恢复"), "{summary}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        h.vm("test-web-02").await.is_some(),
        "a plan changes nothing"
    );
    // The call is the confirmation.
    let mut c = Collector::new();
    let acted = h
        .engine
        .act_with_sink(&caller, request(&off), Mode::Run, c.sink())
        .await
        .unwrap();
    assert!(matches!(acted, Acted::Started { .. }), "{acted:?}");
    let (replies, state) = c.until_done().await;
    assert_eq!(state, JobState::Succeeded, "{replies:?}");
    assert!(h.vm("test-web-02").await.is_none());
}

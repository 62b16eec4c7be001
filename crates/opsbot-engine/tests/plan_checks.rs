//! Plans are checked before 确认: CPU and memory changes are confirmed like the other
//! destructive commands and the prompt echoes the final values; whatever the pool
//! already knows to be impossible is answered at once (Status::Invalid, exit 2 on the
//! console, 422 on the REST API) with the reason and the valid choices.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_core::JobState;
use opsbot_engine::{Caller, EngineSettings, Mode, Refusal, Request, Status, VmAction};

#[tokio::test]
async fn cpu_and_memory_changes_are_confirmed_with_their_final_values() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "CPU:web-01,8").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(
        r.text
            .starts_with("即将执行: 修改 web-01 CPU: 4 → 8(开机中,热添加)"),
        "{}",
        r.text
    );
    assert_eq!(h.vm("web-01").await.unwrap().cpu, 4, "nothing before 确认");
    let (_, replies, state) = h.run(ADMIN, "确认").await;
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    assert_eq!(h.vm("web-01").await.unwrap().cpu, 8);

    let r = h.say(ADMIN, "内存:web-04,16").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(
        r.text
            .contains("修改 web-04 内存: 8 GiB → 16 GiB(已关机,下次开机生效)"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "n").await;
    assert!(r.text.starts_with("已取消"), "{}", r.text);
    assert_eq!(h.vm("web-04").await.unwrap().memory_mb, 8 * 1024);
}

#[tokio::test]
async fn cpu_and_memory_confirmation_stays_configurable() {
    let mut settings = EngineSettings::default();
    settings.confirm.remove("CPU");
    let h = harness_with(admin_policy(), settings, None).await;
    let (r, replies, state) = h.run(ADMIN, "CPU:web-01,6").await;
    assert!(
        r.job().is_some(),
        "not confirmed when configured so: {}",
        r.text
    );
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    let r = h.say(ADMIN, "内存:web-01,16").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
}

#[tokio::test]
async fn a_missing_port_group_or_vlan_lists_the_datacenters_networks() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "换网:web-02,999").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    for want in [
        "数据中心 DC0 没有端口组或 VLAN \"999\"",
        "VLAN100-业务网(VLAN 100)",
        "VLAN200-数据库(VLAN 200)",
        "VLAN300-管理网(VLAN 300)",
    ] {
        assert!(r.text.contains(want), "{want} in {}", r.text);
    }
    // A DR VM sees only its own datacenter's port groups.
    let r = h.say(ADMIN, "换网:dr-web-01,200").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.contains("数据中心 DC1") && !r.text.contains("VLAN200"),
        "{}",
        r.text
    );
    // Nothing is pending: a late 确认 does not fire anything.
    let r = h.say(ADMIN, "确认").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
}

#[tokio::test]
async fn the_prompt_names_what_a_vlan_resolves_to() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "换网:web-02,200").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(
        r.text.contains("VLAN100-业务网 → VLAN200-数据库"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("→ 200"), "{}", r.text);
    let (_, replies, state) = h.run(ADMIN, "y").await;
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    assert_eq!(
        h.vm("web-02").await.unwrap().nics[0].network,
        "VLAN200-数据库"
    );
}

#[tokio::test]
async fn already_on_that_network_is_said_at_once() {
    let h = harness(admin_policy()).await;
    for text in ["换网:web-02,100", "换网:web-02,VLAN100-业务网"] {
        let r = h.say(ADMIN, text).await;
        assert_eq!(r.status, Status::Invalid, "{text}: {}", r.text);
        assert!(
            r.text.contains("web-02 已经在 VLAN100-业务网"),
            "{text}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn unchanged_sizes_and_shrinks_while_on_are_said_with_the_choices() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "CPU:web-01,4").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.contains("web-01 已经是 4 个 CPU") && r.text.contains("可选 5–32"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "CPU:web-01,2").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.contains("减少 CPU 需要先关机") && r.text.contains("可选 5–32"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "内存:web-01,8").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(r.text.contains("内存已经是 8 GiB"), "{}", r.text);
    let r = h.say(ADMIN, "内存:web-01,4").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.contains("减少内存需要先关机") && r.text.contains("可选 9–256 GiB"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "CPU:web-01,64").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(r.text.contains("只有 32 个核心"), "{}", r.text);
    // A VM that is off may shrink: that is asked, not refused.
    let r = h.say(ADMIN, "CPU:web-04,2").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(r.text.contains("CPU: 4 → 2(已关机"), "{}", r.text);
}

#[tokio::test]
async fn a_datastore_in_another_datacenter_lists_the_vms_datastores() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "加盘:web-02,10,ds-dr-01").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    for want in [
        "存储 ds-dr-01 在数据中心 DC1,不在 web-02 所在的数据中心 DC0",
        "nfs-backup(剩余 9.6 TiB)",
        "ds-prod-01(剩余 3.3 TiB)",
    ] {
        assert!(r.text.contains(want), "{want} in {}", r.text);
    }
    let r = h.say(ADMIN, "加盘:web-02,10,no-such-ds").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.contains("数据中心 DC0 没有存储 no-such-ds;可选: "),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "加盘:web-02,9999,ds-prod-01").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.contains("剩余 3420 GiB,不足以添加 9999 GiB"),
        "{}",
        r.text
    );
    let (r, replies, state) = h.run(ADMIN, "加盘:web-02,10,ds-prod-02").await;
    assert_eq!(state, Some(JobState::Succeeded), "{} {replies:?}", r.text);
}

#[tokio::test]
async fn the_rest_path_gets_the_same_checks() {
    let h = harness(admin_policy()).await;
    let pool = h.engine.pool().await.unwrap();
    let web02 = pool
        .inventory
        .vms
        .iter()
        .find(|v| v.name == "web-02")
        .unwrap()
        .clone();
    let caller = Caller {
        user: ADMIN.into(),
        channel: "api".into(),
    };
    let request = |action| Request::Vm {
        provider: web02.provider.clone(),
        id: web02.id.clone(),
        action,
    };
    for (action, want) in [
        (
            VmAction::SetNetwork {
                network: "999".into(),
            },
            "没有端口组或 VLAN",
        ),
        (VmAction::SetCpu { count: 4 }, "已经是 4 个 CPU"),
        (
            VmAction::AddDisk {
                gb: 10,
                datastore: Some("ds-dr-01".into()),
            },
            "在数据中心 DC1",
        ),
    ] {
        for mode in [Mode::Plan, Mode::Run] {
            match h.engine.act(&caller, request(action.clone()), mode).await {
                Err(Refusal::Invalid(m)) => assert!(m.contains(want), "{want} in {m}"),
                other => panic!("{action:?} {mode:?}: {other:?}"),
            }
        }
    }
}

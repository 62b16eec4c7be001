//! Visibility in chat: a role with every command (`["*"]`) but a limited scope is not
//! an administrator; objects outside the asker's scopes answer exactly as objects that
//! do not exist, and counts cover only what the asker may see.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_core::JobState;
use opsbot_engine::Status;

/// Every command, in DC0 only.
const DC0: &str = "dc0";

fn scoped_policy() -> opsbot_core::Policy {
    policy(
        vec![
            role("admin", &["*"], &["*"]),
            role("dc0-all", &["*"], &["sim/DC0/**"]),
        ],
        &[(ADMIN, &["admin"]), (DC0, &["dc0-all"])],
        &[],
    )
}

/// Renames `from` to `to` as the administrator, so that `from` no longer exists.
async fn rename_away(h: &Harness, from: &str, to: &str) {
    let r = h.say(ADMIN, &format!("改名:{from},{to}")).await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let (_, replies, state) = h.run(ADMIN, "确认").await;
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    assert!(h.vm(from).await.is_none());
}

#[tokio::test]
async fn an_out_of_scope_vm_answers_exactly_like_a_missing_one() {
    // The same questions in a world where DC1's VMs exist and one where they were
    // renamed away: a DC0-only asker must not be able to tell the two apart.
    let with = harness(scoped_policy()).await;
    let without = harness(scoped_policy()).await;
    for vm in ["dr-web-01", "dr-db-mysql-01"] {
        rename_away(&without, vm, &format!("gone-{vm}")).await;
    }
    for text in [
        "关机:dr-web-01",
        "开机:dr-web-01",
        "CPU:dr-web-01,8",
        "内存:dr-db-mysql-01,128",
        "ping:dr-web-01",
        "改名:dr-web-01,x-1",
        "查:dr-web-01",
        "开机:10.20.100.11",
        "关机:sim/dr-web-01",
    ] {
        let seen = with.say(DC0, text).await;
        let missing = without.say(DC0, text).await;
        assert_eq!(
            (seen.status, &seen.text),
            (missing.status, &missing.text),
            "{text}: out of scope must read as missing"
        );
        for leak in ["DC1", "Cluster-DR", "⛔"] {
            assert!(
                !seen.text.contains(leak),
                "{text} leaks {leak}: {}",
                seen.text
            );
        }
    }
    // The administrator still sees and reaches it.
    let r = with.say(ADMIN, "关机:dr-db-mysql-01").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(r.text.contains("DC1/Cluster-DR"), "{}", r.text);
}

#[tokio::test]
async fn a_scoped_star_role_sees_only_its_own_jobs() {
    let h = harness(scoped_policy()).await;
    let (r, _, state) = h.run(ADMIN, "开机:dr-web-01").await;
    assert_eq!(state, Some(JobState::Succeeded), "{}", r.text);
    let id = r.job().expect("a job").0;
    let theirs = h.say(DC0, &format!("任务:{id}")).await;
    let nobodys = h.say(DC0, "任务:99999").await;
    assert_eq!(theirs.status, nobodys.status);
    assert_eq!(
        theirs.text.replace(&id.to_string(), "N"),
        nobodys.text.replace("99999", "N"),
        "another user's job reads as missing"
    );
    assert!(!theirs.text.contains("dr-web-01"), "{}", theirs.text);
    // The administrator reads anyone's.
    let r = h.say(ADMIN, &format!("任务:{id}")).await;
    assert!(r.text.contains("dr-web-01"), "{}", r.text);
}

#[tokio::test]
async fn counts_and_lists_cover_only_what_the_asker_may_see() {
    let h = harness(scoped_policy()).await;
    let r = h.say(DC0, "概况").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
    // DC0: 2 clusters, 6 hosts all up, 44 VMs, 4 datastores, 5 port groups.
    for want in [
        "数据中心 1 · 集群 2 · 主机 6(6 在线)",
        "虚拟机 44:",
        "模板 4",
        "存储 4 个",
        "网络 5 个端口组",
    ] {
        assert!(r.text.contains(want), "{want} in {}", r.text);
    }
    assert!(
        !r.text.contains("esxi-dr") && !r.text.contains("无响应"),
        "no warning about DC1's host: {}",
        r.text
    );
    // A datacenter out of scope is as unknown as one that does not exist.
    let dc1 = h.say(DC0, "概况:DC1").await;
    let dc9 = h.say(DC0, "概况:DC9").await;
    assert_eq!(dc1.status, Status::Invalid, "{}", dc1.text);
    assert_eq!(
        dc1.text.replace("DC1", "DCx"),
        dc9.text.replace("DC9", "DCx")
    );
    assert!(dc1.text.contains("DC0"), "{}", dc1.text);

    let r = h.say(DC0, "数据中心").await;
    assert!(
        r.text.contains("共 1 个") && r.text.contains("DC0") && !r.text.contains("DC1"),
        "{}",
        r.text
    );
    for (list, dr) in [
        ("主机", "esxi-dr"),
        ("存储", "ds-dr-01"),
        ("集群", "Cluster-DR"),
        ("网络", "DC1"),
        ("虚拟机", "共 48 个"),
    ] {
        let r = h.say(DC0, list).await;
        assert_eq!(r.status, Status::Ok, "{list}: {}", r.text);
        assert!(!r.text.contains(dr), "{list} shows {dr}: {}", r.text);
    }
    let r = h.say(DC0, "虚拟机").await;
    assert!(r.text.contains("共 44 个"), "{}", r.text);
    // The administrator sees everything.
    let r = h.say(ADMIN, "数据中心").await;
    assert!(r.text.contains("共 2 个"), "{}", r.text);
}

#[tokio::test]
async fn clones_do_not_reveal_what_is_out_of_scope() {
    let h = harness(policy(
        vec![
            role("admin", &["*"], &["*"]),
            role("dr-all", &["*"], &["sim/DC1/**"]),
        ],
        &[(ADMIN, &["admin"]), ("dr", &["dr-all"])],
        &[],
    ))
    .await;
    // Every template is in DC0: for a DC1-only user there are none.
    let r = h.say("dr", "克隆:2,new-vm,10.20.9.9").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.contains("没有编号为 2 的模板") && !r.text.contains("tpl-"),
        "{}",
        r.text
    );
    let r = h.say("dr", "模板").await;
    assert!(r.text.contains("共 0 个"), "{}", r.text);
    // A name or IP taken by a VM out of scope is refused without saying where it is.
    let r = h.say("dr", "改名:dr-web-01,web-01").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        !r.text.contains("DC0") && !r.text.contains("Cluster-Prod"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn ping_reaches_only_pool_addresses_by_default() {
    let h = harness(scoped_policy()).await;
    // Not a VM's address: refused, even for the administrator, and nothing is started.
    let r = h.say(ADMIN, "ping:127.0.0.2").await;
    assert_eq!(r.status, Status::Denied, "{}", r.text);
    assert!(r.job().is_none());
    assert!(
        r.text.contains("127.0.0.2") && r.text.contains("ping_allow"),
        "says why and what to configure: {}",
        r.text
    );
    // An out-of-scope VM's address is refused exactly like any other address.
    let vm = h.say(DC0, "ping:10.20.100.11").await;
    let other = h.say(DC0, "ping:127.0.0.3").await;
    assert_eq!(vm.status, other.status);
    assert_eq!(
        vm.text.replace("10.20.100.11", "A"),
        other.text.replace("127.0.0.3", "A"),
    );
    assert!(!vm.text.contains("dr-web-01"), "{}", vm.text);
    // A VM in scope, by name or address, is pinged through its provider.
    let (r, replies, state) = h.run(DC0, "ping:10.10.100.11").await;
    assert!(r.job().is_some(), "{}", r.text);
    assert!(state.is_some(), "{replies:?}");
}

#[tokio::test]
async fn ping_reaches_configured_subnets() {
    let settings = opsbot_engine::EngineSettings {
        ping_allow: vec!["127.0.0.0/8".parse().unwrap()],
        ..opsbot_engine::EngineSettings::default()
    };
    let h = harness_with(scoped_policy(), settings, None).await;
    let (r, replies, state) = h.run(ADMIN, "ping:127.0.0.1").await;
    assert!(r.job().is_some(), "{}", r.text);
    assert_eq!(state, Some(JobState::Succeeded), "{replies:?}");
    // In words, as for a VM: no raw `ping` summary lines.
    let last = &replies.last().unwrap().text;
    assert!(last.contains("127.0.0.1 可达:3/3 回复"), "{last}");
    assert!(
        !last.contains("transmitted") && !last.contains("rtt"),
        "{last}"
    );
    // Outside the subnets: refused, naming what is allowed.
    let r = h.say(ADMIN, "ping:192.0.2.1").await;
    assert_eq!(r.status, Status::Denied, "{}", r.text);
    assert!(r.text.contains("127.0.0.0/8"), "{}", r.text);
    // Inside them but not in the asker's scopes (`ip/<address>`): refused too.
    let r = h.say(DC0, "ping:127.0.0.1").await;
    assert_eq!(r.status, Status::Denied, "{}", r.text);
}

//! Finding things in chat: list filters (`虚拟机:关机,集群=Cluster-Prod`), 下一页 on
//! every list, filtered ones included, services (`服务`, `服务:名称`) and what the
//! overview says about them and about a failed host's VMs. Against the sim's seed.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_engine::{Response, Status};

/// The VM names of a VM list reply (`3. 🟢web-01 4C/8GiB 10.10.100.11`).
fn vm_names(r: &Response) -> Vec<String> {
    r.text
        .lines()
        .filter_map(|l| {
            let (n, rest) = l.split_once(". ")?;
            n.parse::<u32>().ok()?;
            let mut chars = rest.chars();
            chars.next(); // the power mark
            Some(chars.as_str().split(' ').next()?.to_string())
        })
        .collect()
}

/// The first word of each numbered line of any list reply.
fn first_words(r: &Response) -> Vec<String> {
    r.text
        .lines()
        .filter_map(|l| {
            let (n, rest) = l.split_once(". ")?;
            n.parse::<u32>().ok()?;
            Some(rest.split(' ').next()?.to_string())
        })
        .collect()
}

async fn ok(h: &Harness, text: &str) -> Response {
    let r = h.say(ADMIN, text).await;
    assert_eq!(r.status, Status::Ok, "{text}: {}", r.text);
    r
}

#[tokio::test]
async fn power_filters_list_only_vms_in_that_state() {
    let h = harness(admin_policy()).await;
    let r = ok(&h, "虚拟机:关机").await;
    assert!(
        r.text.starts_with("【虚拟机列表 · 关机】共 8 个"),
        "{}",
        r.text
    );
    let off = vm_names(&r);
    assert_eq!(
        off,
        [
            "dev-sandbox-02",
            "dr-web-01",
            "dr-web-02",
            "k8s-node-06",
            "test-jmeter",
            "test-web-02",
            "web-04",
            "门禁系统"
        ]
    );
    // English and full-width spellings are the same filter.
    assert_eq!(vm_names(&ok(&h, "vms:off").await), off);
    assert_eq!(vm_names(&ok(&h, "虚拟机：关机").await), off);
    let on = ok(&h, "虚拟机:开机").await;
    assert!(on.text.contains("共 40 个"), "{}", on.text);
}

#[tokio::test]
async fn placement_filters_host_cluster_and_datacenter() {
    let h = harness(admin_policy()).await;
    // The failed host, by its short name: one command.
    let r = ok(&h, "虚拟机:主机=esxi-dr-02").await;
    assert_eq!(vm_names(&r), ["dr-backup"], "{}", r.text);
    assert_eq!(
        vm_names(&ok(&h, "虚拟机:主机=esxi-dr-02.dc1.local").await),
        ["dr-backup"]
    );
    let r = ok(&h, "虚拟机:集群=Cluster-DR").await;
    assert_eq!(
        vm_names(&r),
        ["dr-backup", "dr-db-mysql-01", "dr-web-01", "dr-web-02"]
    );
    // The datacenter's name in any ASCII case.
    let r = ok(&h, "虚拟机:数据中心=dc1").await;
    assert_eq!(vm_names(&r).len(), 4, "{}", r.text);
    let r = ok(&h, "虚拟机:集群=Cluster-Test").await;
    assert!(r.text.contains("共 8 个"), "{}", r.text);
}

#[tokio::test]
async fn datastore_network_and_tag_filters() {
    let h = harness(admin_policy()).await;
    let r = ok(&h, "虚拟机:存储=ds-dr-01").await;
    assert_eq!(vm_names(&r).len(), 4, "{}", r.text);
    let r = ok(&h, "虚拟机:网络=VLAN200-数据库").await;
    let names = vm_names(&r);
    assert!(
        names.contains(&"db-mysql-01".to_string()) && names.contains(&"redis-02".to_string()),
        "{}",
        r.text
    );
    assert!(!names.contains(&"web-01".to_string()), "{}", r.text);
    let r = ok(&h, "虚拟机:标签=env:dr").await;
    assert_eq!(vm_names(&r).len(), 4, "{}", r.text);
    let r = ok(&h, "虚拟机:标签=app:finance").await;
    assert_eq!(vm_names(&r), ["db-pg-01", "财务系统"], "{}", r.text);
    // A category alone matches every value of it.
    let r = ok(&h, "虚拟机:标签=env").await;
    assert!(r.text.contains("共 48 个"), "{}", r.text);
}

#[tokio::test]
async fn filters_combine_and_a_page_number_still_works() {
    let h = harness(admin_policy()).await;
    let r = ok(&h, "虚拟机:关机,集群=Cluster-Prod").await;
    assert_eq!(vm_names(&r), ["k8s-node-06", "web-04", "门禁系统"]);
    let r = ok(&h, "虚拟机:关机,标签=app:shop,数据中心=DC1").await;
    assert_eq!(vm_names(&r), ["dr-web-01", "dr-web-02"]);
    // Spaces instead of the colon, the page number anywhere.
    let r = ok(&h, "虚拟机 2,开机").await;
    assert!(r.text.contains("第 2/4 页"), "{}", r.text);
    let page2 = vm_names(&r);
    assert_eq!(page2.len(), 10);
    let r = ok(&h, "虚拟机:开机,2").await;
    assert_eq!(vm_names(&r), page2);
}

#[tokio::test]
async fn next_page_goes_on_with_the_filtered_list() {
    let h = harness(admin_policy()).await;
    let first = ok(&h, "虚拟机:开机,集群=Cluster-Prod").await;
    assert!(first.text.contains("第 1/4 页"), "{}", first.text);
    let mut seen = vm_names(&first);
    for page in 2..=4 {
        let r = ok(&h, "下一页").await;
        assert!(r.text.contains(&format!("第 {page}/4 页")), "{}", r.text);
        assert!(
            r.text
                .starts_with("【虚拟机列表 · 开机,集群=Cluster-Prod】"),
            "{}",
            r.text
        );
        seen.extend(vm_names(&r));
    }
    // Every one powered on in that cluster, none twice, none from elsewhere.
    assert_eq!(seen.len(), 33, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 33);
    assert!(!seen.iter().any(|n| n == "web-04" || n.starts_with("test-")));
    let r = h.say(ADMIN, "下一页").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(r.text.contains("已经是最后一页"), "{}", r.text);
}

#[tokio::test]
async fn next_page_works_on_every_list() {
    let h = harness(admin_policy()).await;
    // Each list fits one page in the seed: 下一页 says so instead of "nothing to page".
    for list in [
        "主机",
        "存储",
        "网络",
        "集群",
        "数据中心",
        "模板",
        "主机:离线",
        "服务:finance",
    ] {
        ok(&h, list).await;
        let r = h.say(ADMIN, "下一页").await;
        assert!(
            r.text.contains("已经是最后一页"),
            "{list} then 下一页: {}",
            r.text
        );
    }
    // Lists longer than a page go on: the services, a service's VMs.
    let r = ok(&h, "服务").await;
    assert!(r.text.contains("共 11 个,第 1/2 页"), "{}", r.text);
    let r = ok(&h, "下一页").await;
    assert_eq!(first_words(&r), ["shop"], "{}", r.text);
    let r = ok(&h, "服务:shop").await;
    assert!(r.text.contains("共 17 个,第 1/2 页"), "{}", r.text);
    let r = ok(&h, "服务:shop,2").await;
    assert!(r.text.contains("第 2/2 页"), "{}", r.text);
    ok(&h, "服务:shop").await;
    let next = ok(&h, "下一页").await;
    assert_eq!(vm_names(&next), vm_names(&r));
}

#[tokio::test]
async fn host_and_datastore_lists_filter_too() {
    let h = harness(admin_policy()).await;
    let r = ok(&h, "主机:离线").await;
    assert_eq!(first_words(&r), ["esxi-dr-02.dc1.local"], "{}", r.text);
    let r = ok(&h, "主机:集群=Cluster-DR").await;
    assert_eq!(
        first_words(&r),
        ["esxi-dr-01.dc1.local", "esxi-dr-02.dc1.local"]
    );
    let r = ok(&h, "hosts:online,cluster=Cluster-Test").await;
    assert_eq!(first_words(&r).len(), 2, "{}", r.text);
    let r = ok(&h, "存储:数据中心=DC1").await;
    assert_eq!(first_words(&r), ["ds-dr-01"]);
    // No datastore of the seed is short of space.
    let r = ok(&h, "存储:不足").await;
    assert!(r.text.contains("共 0 个"), "{}", r.text);
    let r = ok(&h, "网络:数据中心=DC1").await;
    assert_eq!(first_words(&r).len(), 2, "{}", r.text);
    let r = ok(&h, "集群:数据中心=DC0").await;
    assert_eq!(first_words(&r), ["Cluster-Prod", "Cluster-Test"]);
}

#[tokio::test]
async fn wrong_filters_say_what_there_is() {
    let h = harness(admin_policy()).await;
    for (text, wanted) in [
        ("虚拟机:集群=Cluster-X", "Cluster-Prod"),
        ("虚拟机:主机=esxi-9", "esxi-dr-02.dc1.local"),
        ("虚拟机:数据中心=DC9", "DC1"),
        ("虚拟机:存储=nope", "ds-prod-01"),
        ("虚拟机:网络=nope", "VLAN100-业务网"),
        ("虚拟机:标签=env:nope", "env:prod"),
        ("服务:nope", "shop"),
    ] {
        let r = h.say(ADMIN, text).await;
        assert_eq!(r.status, Status::Invalid, "{text}: {}", r.text);
        assert!(r.text.contains(wanted), "{text}: {}", r.text);
    }
    let r = h.say(ADMIN, "主机:标签=env:prod").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(
        r.text.contains("不能按「标签=」筛选") && r.text.contains("用法"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "虚拟机:胡说").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(r.text.contains("不是页码或筛选条件"), "{}", r.text);
}

#[tokio::test]
async fn services_group_vms_by_their_app_tag() {
    let h = harness(admin_policy()).await;
    let r = ok(&h, "服务").await;
    assert!(
        r.text.starts_with("【服务列表】共 11 个,第 1/2 页"),
        "{}",
        r.text
    );
    assert!(r.text.contains("finance 2/2 开机\n"), "{}", r.text);
    assert!(
        r.text.contains("access 0/1 开机 ⚠ 1 台未开机"),
        "{}",
        r.text
    );
    assert_eq!(h.say(ADMIN, "services").await.text, r.text);
    let r = ok(&h, "服务:2").await;
    assert!(
        r.text.contains("11. shop 12/17 开机 ⚠ 5 台未开机"),
        "{}",
        r.text
    );
    let r = ok(&h, "服务:finance").await;
    assert!(
        r.text.starts_with("【服务 finance · 2/2 开机】"),
        "{}",
        r.text
    );
    assert_eq!(vm_names(&r), ["db-pg-01", "财务系统"]);
    // A service's VMs take the VM filters.
    let r = ok(&h, "服务:shop,关机").await;
    assert_eq!(
        vm_names(&r),
        [
            "dr-web-01",
            "dr-web-02",
            "test-jmeter",
            "test-web-02",
            "web-04"
        ]
    );
    let r = ok(&h, "服务:SHOP,关机,标签=env:prod").await;
    assert_eq!(vm_names(&r), ["web-04"], "{}", r.text);
    // Services with a VM down, by the filter on the list of services.
    let r = ok(&h, "服务:集群=Cluster-DR").await;
    assert_eq!(first_words(&r), ["backup", "shop"], "{}", r.text);
}

#[tokio::test]
async fn services_follow_the_configured_tag_key() {
    let settings = opsbot_engine::EngineSettings {
        service_tag: "env".into(),
        ..opsbot_engine::EngineSettings::default()
    };
    let h = harness_with(admin_policy(), settings, None).await;
    let r = ok(&h, "服务").await;
    assert_eq!(first_words(&r), ["dr", "prod", "test"], "{}", r.text);
}

#[tokio::test]
async fn the_overview_names_services_down_and_the_failed_hosts_vms() {
    let h = harness(admin_policy()).await;
    let r = ok(&h, "概况").await;
    assert!(
        r.text.contains("服务 11 个 · 4 个有虚拟机未开机"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains(
            "⚠ 主机 esxi-dr-02.dc1.local 无响应 · 虚拟机:主机=esxi-dr-02 查看其上 1 台虚拟机"
        ),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("⚠ 服务 shop 12/17 开机 · 服务:shop,关机 查看未开机的 5 台"),
        "{}",
        r.text
    );
    // The command the warning names is the answer.
    let r = ok(&h, "虚拟机:主机=esxi-dr-02").await;
    assert_eq!(vm_names(&r), ["dr-backup"]);
}

#[tokio::test]
async fn a_scoped_user_filters_only_what_they_see() {
    let policy = policy(
        vec![
            role("admin", &["*"], &["*"]),
            role("prod", &["虚拟机", "服务"], &["sim/DC0/Cluster-Prod/**"]),
        ],
        &[(ADMIN, &["admin"]), ("zhangsan", &["prod"])],
        &[],
    );
    let h = harness(policy).await;
    let r = h.say("zhangsan", "虚拟机:关机").await;
    assert_eq!(
        vm_names(&r),
        ["k8s-node-06", "web-04", "门禁系统"],
        "{}",
        r.text
    );
    // A cluster they do not see does not exist for them.
    let r = h.say("zhangsan", "虚拟机:集群=Cluster-DR").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.contains("现有: Cluster-Prod") && !r.text.contains("Cluster-Test"),
        "{}",
        r.text
    );
    let r = h.say("zhangsan", "服务:shop").await;
    assert!(r.text.contains("共 10 个"), "{}", r.text);
}

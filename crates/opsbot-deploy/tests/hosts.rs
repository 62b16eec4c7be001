//! Where a project's hosts come from, through the real store: configured names (pool
//! VMs, addresses, DNS names), pool selectors (tag, cluster, folder; templates never),
//! and the hosts 扩容 added, each once, in a stable order; a VM without an address and an
//! unknown name are refused by name (a Salt project's minion ids are taken as they are).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_core::{Inventory, PowerState, Vm};
use opsbot_deploy::config::{Project, Selector};
use opsbot_deploy::hosts::{resolve, HostsError, Sources};
use opsbot_store::deploy::ProjectHost;

fn vm(name: &str, cluster: &str, tags: &[&str], ip: Option<&str>) -> Vm {
    Vm {
        provider: "vc1".into(),
        id: format!("vm-{name}"),
        name: name.into(),
        uuid: format!("uuid-{name}"),
        instance_uuid: format!("iuuid-{name}"),
        datacenter: "DC0".into(),
        cluster: cluster.into(),
        host: "esx-1".into(),
        folder: "linux".into(),
        power: PowerState::PoweredOn,
        cpu: 2,
        memory_mb: 4096,
        guest_os: "rhel9_64Guest".into(),
        guest_hostname: name.into(),
        guest_ip: ip.map(str::to_string),
        ips: ip.map(str::to_string).into_iter().collect(),
        tools_status: "toolsOk".into(),
        template: false,
        nics: vec![],
        disks: vec![],
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

fn project(hosts: &[&str], select: Vec<Selector>) -> Project {
    let mut p: Project = toml::from_str(
        "name = \"shop\"\ndeploy_root = \"/srv/shop\"\nrepo = { kind = \"git\", url = \"file:///r\" }\n",
    )
    .unwrap();
    p.hosts = hosts.iter().map(|h| h.to_string()).collect();
    p.select = select;
    p
}

fn tag(t: &str) -> Selector {
    Selector {
        tag: Some(t.into()),
        ..Selector::default()
    }
}

#[tokio::test]
async fn hosts_come_from_names_selectors_and_scale_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let mut tpl = vm("tpl-shop", "c1", &["app:shop"], Some("10.0.0.99"));
    tpl.template = true;
    let inv = Inventory {
        vms: vec![
            vm("web-02", "c1", &["app:shop"], Some("10.0.0.2")),
            vm("web-01", "c1", &["app:shop"], Some("10.0.0.1")),
            vm("db-01", "c2", &["app:db"], Some("10.0.0.3")),
            vm("web-09", "c2", &["app:shop"], None),
            tpl,
        ],
        ..Inventory::default()
    };
    store.apply_inventory("vc1", &inv, "test").await.unwrap();
    let src = Sources {
        pool: store.as_ref(),
        assets: store.as_ref(),
        deploys: store.as_ref(),
    };
    let names = |t: Vec<opsbot_deploy::hosts::Target>| -> Vec<String> {
        t.into_iter()
            .map(|h| format!("{}={}", h.name, h.address))
            .collect()
    };

    // Names first, then the selector's VMs by name; web-01 once although named twice.
    let shop_c1 = Selector {
        tag: Some("app:shop".into()),
        cluster: Some("c1".into()),
        ..Selector::default()
    };
    let p = project(
        &["db-01", "192.0.2.5", "api.example.com", "web-01"],
        vec![shop_c1],
    );
    assert_eq!(
        names(resolve(&p, &[], &src).await.unwrap()),
        [
            "db-01=10.0.0.3",
            "192.0.2.5=192.0.2.5",
            "api.example.com=api.example.com",
            "web-01=10.0.0.1",
            "web-02=10.0.0.2"
        ]
    );

    // A selected VM without an address is named; so is an unknown host.
    let e = resolve(&project(&[], vec![tag("app:shop")]), &[], &src)
        .await
        .unwrap_err();
    assert_eq!(e, HostsError::NoAddress("web-09".into()));
    let e = resolve(&project(&["web-77"], vec![]), &[], &src)
        .await
        .unwrap_err();
    assert_eq!(e, HostsError::Unknown("web-77".into()));

    // A Salt project's hosts are minion ids: unknown ones keep their name as address,
    // known ones (pool, CMDB) give theirs; the minions its target matched come after.
    let mut salt = project(&["web-77", "db-01", "web-09"], vec![]);
    salt.transport = opsbot_deploy::config::TransportKind::Salt;
    assert_eq!(
        names(
            resolve(&salt, &["m1".to_string(), "web-77".to_string()], &src)
                .await
                .unwrap()
        ),
        ["web-77=web-77", "db-01=10.0.0.3", "web-09=web-09", "m1=m1"]
    );

    // Hosts scaling out added come last.
    store
        .project_host_add(&ProjectHost {
            project: "shop".into(),
            host: "shop-1".into(),
            address: "10.0.5.10".into(),
            order: 7,
            added_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(
        names(
            resolve(&project(&["db-01"], vec![]), &[], &src)
                .await
                .unwrap()
        ),
        ["db-01=10.0.0.3", "shop-1=10.0.5.10"]
    );
}

//! The server side of reports through the real store: a VMware VM's report is linked
//! to its pool VM by its byte-swapped DMI UUID and the card says so; a store that goes
//! away fails the report (the agent keeps it) and recovers.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_cmdb::collect;
use opsbot_cmdb::desk::StoreDesk;
use opsbot_cmdb::ingest::{Ingestor, Origin};
use opsbot_cmdb::source::FsSource;
use opsbot_core::{AssetDesk, AssetLookup, Inventory, PowerState, Vm};
use std::path::PathBuf;
use std::time::Duration;

fn vm(uuid: &str) -> Vm {
    Vm {
        provider: "vc1".into(),
        id: "vm-42".into(),
        name: "web-01".into(),
        uuid: uuid.into(),
        instance_uuid: "5012aaaa-0000-0000-0000-000000000001".into(),
        datacenter: "DC0".into(),
        cluster: "C1".into(),
        host: "esx-1".into(),
        folder: "linux".into(),
        power: PowerState::PoweredOn,
        cpu: 2,
        memory_mb: 4096,
        guest_os: "rhel9_64Guest".into(),
        guest_hostname: "web-01.dc0.local".into(),
        guest_ip: Some("192.168.2.182".into()),
        ips: vec!["192.168.2.182".into()],
        tools_status: "toolsOk".into(),
        template: false,
        nics: vec![],
        disks: vec![],
        tags: vec![],
    }
}

#[tokio::test]
async fn a_vmware_vm_is_linked_to_its_pool_vm() {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let inventory = Inventory {
        vms: vec![vm("421c2d3e-4f50-6172-8394-a5b6c7d8e9fa")],
        ..Inventory::default()
    };
    store
        .apply_inventory("vc1", &inventory, "sync:test")
        .await
        .unwrap();
    let ingestor = Ingestor::start(store.clone(), store.clone(), 16);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vmware-vm");
    let report = collect::collect(&FsSource::at(root), &[], None);
    let receipt = ingestor
        .submit(
            report,
            Origin::Agent {
                token_id: "t1".into(),
                subject: String::new(),
            },
        )
        .await
        .unwrap();
    assert!(receipt.created);
    let link = receipt.vm.expect("linked by the swapped DMI UUID");
    assert_eq!(link.vm_id, "vm-42");
    let desk = StoreDesk::new(store.clone(), store.clone(), Duration::from_secs(3600));
    let AssetLookup::Found(asset) = desk.find("web-01.dc0.local", &|_| true).await.unwrap() else {
        panic!("not found");
    };
    // Out of the asker's scope it does not exist: not found, not suggested.
    for name in ["web-01.dc0.local", "web-01.dc0.locl"] {
        let hidden = desk.find(name, &|_| false).await.unwrap();
        assert_eq!(hidden, AssetLookup::NotFound { similar: vec![] }, "{name}");
    }
    let near = desk.find("web-01.dc0.locl", &|_| true).await.unwrap();
    assert!(
        matches!(&near, AssetLookup::NotFound { similar } if !similar.is_empty()),
        "{near:?}"
    );
    assert_eq!(
        asset.scope_path(),
        "vc1/DC0/C1/web-01",
        "permissions follow the VM"
    );
    let zone = opsbot_core::Zone::Local;
    let card =
        opsbot_cmdb::render::card(&desk.card(&asset).await.unwrap(), chrono::Utc::now(), &zone);
    assert!(card.contains("虚拟机: web-01(vc1/DC0/C1/web-01)"), "{card}");
    let changes =
        opsbot_cmdb::render::changes(&asset, &desk.changes(&asset, 10).await.unwrap(), &zone);
    assert!(
        changes.contains("关联虚拟机: ∅ → vc1/web-01") || changes.contains("首次上报"),
        "{changes}"
    );
}

#[tokio::test]
async fn a_report_for_another_host_than_the_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let ingestor = Ingestor::start(store.clone(), store.clone(), 16);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server");
    let report = collect::collect(&FsSource::at(root), &[], None);
    let e = ingestor
        .submit(
            report,
            Origin::Agent {
                token_id: "t1".into(),
                subject: "web-07".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("only report as host web-07"), "{e}");
    assert!(
        store.asset_find("db-01").await.unwrap().is_none(),
        "nothing written"
    );
}

/// A host collected over SSH and then by the agent (the same machine: the `mounts`
/// fixture, with bind mounts, tmpfs, overlay and nsfs) shows no change but the agent
/// token it now reports with.
#[tokio::test]
async fn a_host_switched_from_ssh_to_the_agent_shows_no_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let ingestor = Ingestor::start(store.clone(), store.clone(), 16);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mounts");
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(opsbot_cmdb::ssh::script_at(root.to_str().unwrap()))
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let snap = opsbot_cmdb::ssh::parse_snapshot(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let by_ssh = collect::collect(&snap, &[], Some("mounts-box"));
    let first = ingestor
        .submit(
            by_ssh,
            Origin::Agentless {
                source: "ssh:test".into(),
            },
        )
        .await
        .unwrap();
    assert!(first.created);
    let by_agent = collect::collect(&FsSource::at(&root), &[], None);
    assert_eq!(by_agent.identity, "mounts-box");
    let second = ingestor
        .submit(
            by_agent,
            Origin::Agent {
                token_id: "t1".into(),
                subject: String::new(),
            },
        )
        .await
        .unwrap();
    assert!(!second.created);
    let fields: Vec<&str> = second.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["token"], "{:?}", second.changes);
}

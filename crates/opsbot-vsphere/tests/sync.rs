//! Inventory sync and the provider against vcsim, checked against an independent reader
//! (`tests/common/reader.py` over the shared `vsoap.py`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use opsbot_core::{InventoryRead, NetworkKind, Outage, PowerState, Provider, ProviderError};
use opsbot_vsphere::client::{MoRef, VimClient};
use opsbot_vsphere::inventory;
use opsbot_vsphere::provider::VsphereProvider;

#[tokio::test]
async fn sync_counts_match_the_simulator() {
    let Some(sim) = common::vcsim_and_reader(&[
        "-dc", "2", "-cluster", "2", "-host", "2", "-vm", "3", "-pg", "2",
    ]) else {
        return;
    };
    let client = VimClient::connect(sim.config()).await.unwrap();
    let inv = inventory::fetch(&client, "vc1").await.unwrap();
    let truth = sim.read(&["counts"]);
    assert_eq!(inv.vms.len() as u64, truth["vms"].as_u64().unwrap());
    assert_eq!(
        inv.vms.iter().filter(|v| v.template).count() as u64,
        truth["templates"].as_u64().unwrap()
    );
    assert_eq!(inv.hosts.len() as u64, truth["hosts"].as_u64().unwrap());
    assert_eq!(
        inv.clusters.len() as u64,
        truth["clusters"].as_u64().unwrap()
    );
    assert_eq!(
        inv.datacenters.len() as u64,
        truth["datacenters"].as_u64().unwrap()
    );
    assert_eq!(
        inv.datastores.len() as u64,
        truth["datastores"].as_u64().unwrap()
    );
    // Networks: everything but the uplink port groups.
    let nets: Vec<(String, String)> = truth["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n[0].as_str().unwrap().to_string(),
                n[1].as_str().unwrap().to_string(),
            )
        })
        .filter(|(_, name)| !name.contains("Uplink"))
        .collect();
    assert_eq!(
        inv.networks.len(),
        nets.len(),
        "{:?} vs {nets:?}",
        inv.networks
    );
    for (kind, name) in &nets {
        let n = inv.networks.iter().find(|n| &n.name == name).unwrap();
        let expected = if kind == "DistributedVirtualPortgroup" {
            NetworkKind::Distributed
        } else {
            NetworkKind::Standard
        };
        assert_eq!(n.kind, expected, "{name}");
        assert!(!n.datacenter.is_empty(), "{n:?}");
    }
    // Model shape: 2 DCs × (2 clusters × 2 hosts + 1 standalone); 3 VMs per pool.
    assert_eq!(inv.datacenters.len(), 2);
    assert_eq!(inv.clusters.len(), 4);
    assert_eq!(inv.hosts.len(), 10);
    assert_eq!(inv.vms.len(), 2 * (2 + 1) * 3);
    // Every host and VM is placed by name.
    let dc_names: Vec<&str> = inv.datacenters.iter().map(|d| d.name.as_str()).collect();
    let cluster_names: Vec<&str> = inv.clusters.iter().map(|c| c.name.as_str()).collect();
    let host_names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    for c in &inv.clusters {
        assert!(dc_names.contains(&c.datacenter.as_str()), "{c:?}");
    }
    for h in &inv.hosts {
        assert!(dc_names.contains(&h.datacenter.as_str()), "{h:?}");
        assert!(
            h.cluster.is_empty() || cluster_names.contains(&h.cluster.as_str()),
            "{h:?}"
        );
        assert!(h.cpu_cores > 0 && h.cpu_mhz > 0 && h.memory_mb > 0, "{h:?}");
        assert_eq!(h.connection_state, "connected");
        assert_eq!(h.power, PowerState::PoweredOn);
    }
    assert_eq!(inv.hosts.iter().filter(|h| h.cluster.is_empty()).count(), 2);
    for v in &inv.vms {
        assert!(dc_names.contains(&v.datacenter.as_str()), "{v:?}");
        assert!(host_names.contains(&v.host.as_str()), "{v:?}");
        assert!(
            v.cluster.is_empty() || cluster_names.contains(&v.cluster.as_str()),
            "{v:?}"
        );
        assert!(!v.id.is_empty() && !v.uuid.is_empty(), "{v:?}");
    }
    for d in &inv.datastores {
        assert!(dc_names.contains(&d.datacenter.as_str()), "{d:?}");
        assert!(d.capacity_gb > 0 && d.free_gb <= d.capacity_gb, "{d:?}");
    }
}

#[tokio::test]
async fn one_vm_is_mapped_like_the_raw_properties_say() {
    let Some(sim) = common::vcsim_and_reader(&[]) else {
        return;
    };
    let client = VimClient::connect(sim.config()).await.unwrap();
    let inv = inventory::fetch(&client, "vc1").await.unwrap();
    let vm = inv
        .vms
        .iter()
        .find(|v| !v.cluster.is_empty() && v.power == PowerState::PoweredOn)
        .expect("a clustered VM that is on");
    let truth = sim.read(&["vm", &vm.id]);
    assert_eq!(vm.provider, "vc1");
    assert_eq!(vm.name, truth["name"].as_str().unwrap());
    assert_eq!(vm.uuid, truth["uuid"].as_str().unwrap());
    assert_eq!(vm.instance_uuid, truth["instance_uuid"].as_str().unwrap());
    assert_eq!(vm.cpu as u64, truth["cpu"].as_u64().unwrap());
    assert_eq!(vm.memory_mb, truth["memory_mb"].as_u64().unwrap());
    assert_eq!(vm.power.as_str(), truth["power"].as_str().unwrap());
    assert_eq!(vm.host, truth["host"].as_str().unwrap());
    assert_eq!(vm.folder, truth["folder"].as_str().unwrap());
    assert_eq!(vm.guest_ip.as_deref(), truth["ip"].as_str());
    assert_eq!(vm.guest_hostname, truth["hostname"].as_str().unwrap_or(""));
    assert_eq!(vm.template, truth["template"].as_bool().unwrap());
    assert_eq!(vm.datacenter, "DC0");
    assert_eq!(vm.cluster, "DC0_C0");
    let expected_tools = if truth["tools"] == "guestToolsRunning" {
        "toolsOk"
    } else {
        "toolsNotRunning"
    };
    assert_eq!(vm.tools_status, expected_tools);
    // NICs: vcsim puts every VM's NIC on DC0_DVPG0.
    let macs: Vec<&str> = truth["macs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        vm.nics.iter().map(|n| n.mac.as_str()).collect::<Vec<_>>(),
        macs
    );
    assert_eq!(vm.nics[0].network, "DC0_DVPG0");
    assert!(!vm.nics[0].label.is_empty());
    // Disks: capacity rounded up to GB, datastore by name.
    let kbs: Vec<u64> = truth["disks_kb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_u64().unwrap())
        .collect();
    assert_eq!(vm.disks.len(), kbs.len());
    for (d, kb) in vm.disks.iter().zip(&kbs) {
        assert_eq!(d.capacity_gb, kb.div_ceil(1024 * 1024));
        assert_eq!(d.datastore, "LocalDS_0");
        assert!(!d.label.is_empty());
    }
    if let Some(ip) = &vm.guest_ip {
        assert_eq!(vm.ips.first(), Some(ip));
    }
    // inventory::vm maps the same VM identically.
    let one = inventory::vm(&client, "vc1", &MoRef::new("VirtualMachine", vm.id.clone()))
        .await
        .unwrap();
    assert_eq!(&one, vm);
}

#[tokio::test]
async fn templates_are_vms_with_the_flag() {
    let Some(sim) = common::vcsim_and_reader(&[]) else {
        return;
    };
    let client = VimClient::connect(sim.config()).await.unwrap();
    let inv = inventory::fetch(&client, "vc1").await.unwrap();
    let vm = inv.vms.iter().find(|v| v.cluster.is_empty()).unwrap();
    let mo = MoRef::new("VirtualMachine", vm.id.clone());
    if vm.power == PowerState::PoweredOn {
        let t = client.invoke("PowerOffVM_Task", &mo, "").await.unwrap();
        let t = t.child("returnval").unwrap().moref().unwrap();
        client.wait_task(&t, &mut |_| {}).await.unwrap();
    }
    client.invoke("MarkAsTemplate", &mo, "").await.unwrap();
    let inv = inventory::fetch(&client, "vc1").await.unwrap();
    let t = inv.vms.iter().find(|v| v.id == vm.id).unwrap();
    assert!(t.template);
    assert_eq!(inv.vms.iter().filter(|v| v.template).count(), 1);
    assert_eq!(sim.read(&["counts"])["templates"], 1);
}

#[tokio::test]
async fn provider_connects_lazily_and_reports_outages() {
    // Nothing listens here: construction works, calls say the vCenter is unavailable.
    let url = common::closed_url();
    let cfg = opsbot_vsphere::client::ClientConfig::new(url.clone(), "user", "pass");
    let p = VsphereProvider::new("vc1", cfg);
    assert_eq!(p.kind(), "vsphere");
    match p.inventory().await {
        Err(ProviderError::Unavailable {
            provider,
            cause: Outage::Failed(message),
        }) => {
            assert_eq!(provider, "vc1");
            assert!(message.contains(&url), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn provider_inventory_through_the_trait() {
    let Some(sim) = common::vcsim_and_reader(&[]) else {
        return;
    };
    let p = VsphereProvider::new("vc1", sim.config());
    let provider: &dyn Provider = &p;
    let inv = provider.inventory().await.unwrap();
    assert_eq!(inv.vms.len(), 4);
    assert!(inv.vms.iter().all(|v| v.provider == "vc1"));
    // The session is reused and survives an outside logout.
    let cookie = p.client().await.unwrap().session_cookie().unwrap();
    sim.read(&["logout", &cookie]);
    assert_eq!(provider.inventory().await.unwrap().vms.len(), 4);
}

#[tokio::test]
async fn provider_with_a_wrong_password_is_unavailable_with_the_reason() {
    let Some(sim) = common::vcsim(&[]) else {
        return;
    };
    let mut cfg = sim.config();
    cfg.password = String::new();
    let p = VsphereProvider::new("vc1", cfg);
    match p.inventory().await {
        Err(ProviderError::Unavailable {
            cause: Outage::Failed(message),
            ..
        }) => {
            assert!(message.contains("refused login for user user"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Waits until the independent reader sees `field` of VM `id` equal `want`.
fn wait_for_vm(sim: &common::Vcsim, id: &str, field: &str, want: serde_json::Value) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let vm = sim.read(&["vm", id]);
        if vm[field] == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id}.{field} is {} , not {want}",
            vm[field]
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test]
async fn resync_reads_only_what_the_vcenter_changed() {
    let Some(sim) = common::vcsim_and_reader(&[]) else {
        return;
    };
    let p = VsphereProvider::new("vc1", sim.config());
    let (inventory, token) = match p.inventory_since(None).await.unwrap() {
        InventoryRead::Full {
            inventory,
            token: Some(token),
        } => (inventory, token),
        other => panic!("a first sync reads everything and leaves a token: {other:?}"),
    };
    assert_eq!(inventory.vms.len(), 4);
    let client = p.client().await.unwrap();
    assert_eq!(
        inventory::light_pass(&client, "vc1")
            .await
            .unwrap()
            .prints
            .token(),
        token,
        "the light pass agrees with the full read"
    );
    assert_eq!(
        p.inventory_since(Some(&token)).await.unwrap(),
        InventoryRead::Unchanged
    );

    // Another client powers a VM off: the next re-sync reads that VM alone.
    let vm = inventory.vms.iter().find(|v| !v.template).unwrap();
    let acted = sim.read(&["act", &vm.id, "PowerOffVM_Task"]);
    assert_eq!(acted["status"], 200, "{acted}");
    wait_for_vm(&sim, &vm.id, "power", "poweredOff".into());
    let token = match p.inventory_since(Some(&token)).await.unwrap() {
        InventoryRead::Delta {
            vms,
            removed,
            token: next,
        } => {
            assert_eq!(vms.len(), 1, "{vms:?}");
            assert_eq!(vms[0].id, vm.id);
            assert_eq!(vms[0].power, PowerState::PoweredOff);
            assert_eq!(vms[0].nics, vm.nics, "read in full");
            assert!(removed.is_empty());
            assert_ne!(next, token);
            next
        }
        other => panic!("expected a delta after a power change, got {other:?}"),
    };
    assert_eq!(
        p.inventory_since(Some(&token)).await.unwrap(),
        InventoryRead::Unchanged,
        "the delta's token describes the vCenter as it now is"
    );

    // A reconfiguration (vcsim leaves config.changeVersion empty; the CPU count shows it).
    let acted = sim.read(&[
        "act",
        &vm.id,
        "ReconfigVM_Task",
        "<spec><numCPUs>3</numCPUs></spec>",
    ]);
    assert_eq!(acted["status"], 200, "{acted}");
    wait_for_vm(&sim, &vm.id, "cpu", 3.into());
    let token = match p.inventory_since(Some(&token)).await.unwrap() {
        InventoryRead::Delta { vms, token, .. } => {
            assert_eq!((vms.len(), vms[0].cpu), (1, 3));
            token
        }
        other => panic!("expected a delta after a reconfiguration, got {other:?}"),
    };

    // Custom attributes another client defines and sets become the VM's tags. A new
    // definition retags what may be every VM: a full read.
    for (field, value) in [("env", "prod"), ("app", "erp")] {
        let set = sim.read(&["set-field", &vm.id, field, value]);
        assert_eq!(set["status"], 200, "{set}");
    }
    let token = match p.inventory_since(Some(&token)).await.unwrap() {
        InventoryRead::Full {
            inventory,
            token: Some(token),
        } => {
            let seen = inventory.vms.iter().find(|v| v.id == vm.id).unwrap();
            assert_eq!(seen.tags, ["app:erp", "env:prod"]);
            token
        }
        other => panic!("expected a full read after new attributes, got {other:?}"),
    };
    // A value changed on an existing attribute: that VM alone.
    let set = sim.read(&["set-field", &vm.id, "env", "test"]);
    assert_eq!(set["status"], 200, "{set}");
    let token = match p.inventory_since(Some(&token)).await.unwrap() {
        InventoryRead::Delta { vms, token, .. } => {
            assert_eq!(vms.len(), 1, "{vms:?}");
            assert_eq!(vms[0].tags, ["app:erp", "env:test"]);
            token
        }
        other => panic!("expected a delta after retagging, got {other:?}"),
    };

    // A VM destroyed by another client is a removal.
    let acted = sim.read(&["act", &vm.id, "Destroy_Task"]);
    assert_eq!(acted["status"], 200, "{acted}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.read(&["counts"])["vms"] != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the VM was not destroyed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    match p.inventory_since(Some(&token)).await.unwrap() {
        InventoryRead::Delta { vms, removed, .. } => {
            assert!(vms.is_empty(), "{vms:?}");
            assert_eq!(removed, std::slice::from_ref(&vm.id));
        }
        other => panic!("expected a removal, got {other:?}"),
    }

    // A token from elsewhere (another scheme, another vCenter) is never "unchanged".
    assert!(matches!(
        p.inventory_since(Some("v1-0-0-0-0")).await.unwrap(),
        InventoryRead::Full { .. }
    ));
}

/// A vAPI REST session on the simulator, as another vSphere client (the test's own,
/// never the crate's tagging client).
struct Rest {
    http: reqwest::Client,
    base: String,
    session: String,
}

impl Rest {
    async fn login(sim: &common::Vcsim) -> Rest {
        let mut root = reqwest::Url::parse(&sim.url).unwrap();
        root.set_path("/rest");
        let base = root.to_string();
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}/com/vmware/cis/session"))
            .basic_auth("user", Some("pass"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let v: serde_json::Value = r.json().await.unwrap();
        Rest {
            http,
            base,
            session: v["value"].as_str().unwrap().to_string(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> String {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("vmware-api-session-id", &self.session)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {v}");
        v["value"].as_str().unwrap_or_default().to_string()
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> String {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn category(&self, name: &str) -> String {
        self.post(
            "/com/vmware/cis/tagging/category",
            serde_json::json!({"create_spec": {"name": name, "description": "", "cardinality": "MULTIPLE", "associable_types": ["VirtualMachine"]}}),
        )
        .await
    }

    async fn tag(&self, category: &str, name: &str) -> String {
        self.post(
            "/com/vmware/cis/tagging/tag",
            serde_json::json!({"create_spec": {"name": name, "description": "", "category_id": category}}),
        )
        .await
    }

    async fn attach(&self, tag: &str, vm: &str) {
        self.post(
            &format!("/com/vmware/cis/tagging/tag-association/id:{tag}?~action=attach"),
            serde_json::json!({"object_id": {"id": vm, "type": "VirtualMachine"}}),
        )
        .await;
    }

    async fn detach(&self, tag: &str, vm: &str) {
        self.post(
            &format!("/com/vmware/cis/tagging/tag-association/id:{tag}?~action=detach"),
            serde_json::json!({"object_id": {"id": vm, "type": "VirtualMachine"}}),
        )
        .await;
    }
}

#[tokio::test]
async fn vsphere_tags_become_pool_tags_incrementally() {
    let Some(sim) = common::vcsim(&["-rest"]) else {
        return;
    };
    let p = VsphereProvider::new("vc1", sim.config());
    let (inventory, token) = match p.inventory_since(None).await.unwrap() {
        InventoryRead::Full {
            inventory,
            token: Some(token),
        } => (inventory, token),
        other => panic!("a first sync reads everything: {other:?}"),
    };
    assert!(!p.tags_failing().await, "the tagging service answered");
    assert!(inventory.vms.iter().all(|v| v.tags.is_empty()));
    let vm = inventory.vms.iter().find(|v| !v.template).unwrap().clone();

    // Another client tags a VM: the next re-sync reads that VM alone, with its tag.
    let rest = Rest::login(&sim).await;
    let env = rest.category("env").await;
    let prod = rest.tag(&env, "prod").await;
    let app = rest.category("app").await;
    let erp = rest.tag(&app, "erp").await;
    rest.attach(&prod, &vm.id).await;
    rest.attach(&erp, &vm.id).await;
    let token = match p.inventory_since(Some(&token)).await.unwrap() {
        InventoryRead::Delta {
            vms,
            removed,
            token,
        } => {
            assert_eq!(vms.len(), 1, "{vms:?}");
            assert_eq!(vms[0].id, vm.id);
            assert_eq!(vms[0].tags, ["app:erp", "env:prod"]);
            assert_eq!(vms[0].nics, vm.nics, "read in full");
            assert!(removed.is_empty());
            token
        }
        other => panic!("expected a delta after tagging, got {other:?}"),
    };
    // Nothing moved: unchanged (the tag names are not read again, only the lists).
    assert_eq!(
        p.inventory_since(Some(&token)).await.unwrap(),
        InventoryRead::Unchanged
    );
    // A tag detached: that VM again, without it.
    rest.detach(&erp, &vm.id).await;
    let token = match p.inventory_since(Some(&token)).await.unwrap() {
        InventoryRead::Delta { vms, token, .. } => {
            assert_eq!(vms.len(), 1, "{vms:?}");
            assert_eq!(vms[0].tags, ["env:prod"]);
            token
        }
        other => panic!("expected a delta after detaching, got {other:?}"),
    };
    assert_eq!(
        p.inventory_since(Some(&token)).await.unwrap(),
        InventoryRead::Unchanged
    );
    // A full read carries them too.
    let full = p.inventory().await.unwrap();
    let seen = full.vms.iter().find(|v| v.id == vm.id).unwrap();
    assert_eq!(seen.tags, ["env:prod"]);
}

#[tokio::test]
async fn vsphere_tags_reach_chat_filters_through_a_sync() {
    let Some(sim) = common::vcsim(&["-rest"]) else {
        return;
    };
    let provider = std::sync::Arc::new(VsphereProvider::new("vc1", sim.config()));
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let policy = opsbot_core::Policy::new(
        vec![opsbot_core::Role {
            name: "admin".into(),
            commands: vec!["*".into()],
            scopes: vec!["*".into()],
        }],
        [("admin".to_string(), vec!["admin".to_string()])].into(),
        Default::default(),
    )
    .unwrap();
    let engine = opsbot_engine::Engine::new(
        store.clone(),
        sessions,
        vec![provider.clone()],
        policy,
        opsbot_engine::EngineSettings::default(),
    )
    .await
    .unwrap();
    engine.ensure_synced().await.unwrap();
    let say = |text: &str| {
        let msg = opsbot_engine::Incoming {
            channel: "test".into(),
            user: "admin".into(),
            chat: None,
            text: text.into(),
            assume_yes: false,
        };
        engine.handle(msg, std::sync::Arc::new(opsbot_engine::Discard))
    };
    let pool = store.load_pool().await.unwrap();
    let vm = pool.inventory.vms.iter().find(|v| !v.template).unwrap();

    let rest = Rest::login(&sim).await;
    let env = rest.category("env").await;
    let prod = rest.tag(&env, "prod").await;
    let app = rest.category("app").await;
    let crm = rest.tag(&app, "crm").await;
    rest.attach(&prod, &vm.id).await;
    rest.attach(&crm, &vm.id).await;
    engine.sync_all("test").await.unwrap();

    let pool = store.load_pool().await.unwrap();
    let tagged = pool.inventory.vms.iter().find(|v| v.id == vm.id).unwrap();
    assert_eq!(tagged.tags, ["app:crm", "env:prod"], "in the pool");
    let r = say("虚拟机:标签=env:prod").await;
    assert!(
        r.text.contains("共 1 个") && r.text.contains(&vm.name),
        "{}",
        r.text
    );
    // A vSphere tag in the service key makes a service.
    let r = say("服务").await;
    assert!(r.text.contains("crm 1/1 开机"), "{}", r.text);
}

#[tokio::test]
async fn a_vcenter_without_the_tagging_endpoint_syncs_without_tags() {
    // No `-rest`: /rest answers 404.
    let Some(sim) = common::vcsim(&[]) else {
        return;
    };
    let p = VsphereProvider::new("vc1", sim.config());
    let token = match p.inventory_since(None).await.unwrap() {
        InventoryRead::Full {
            inventory,
            token: Some(token),
        } => {
            assert_eq!(inventory.vms.len(), 4);
            token
        }
        other => panic!("a first sync reads everything: {other:?}"),
    };
    assert!(
        p.tags_failing().await,
        "the failure is known (and logged once)"
    );
    assert_eq!(
        p.inventory_since(Some(&token)).await.unwrap(),
        InventoryRead::Unchanged,
        "and re-syncs still tell nothing changed"
    );
}

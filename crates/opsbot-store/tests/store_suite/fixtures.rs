//! Small inventories to sync in tests.

use opsbot_core::{
    Cluster, Datacenter, Datastore, Disk, Host, Inventory, Network, NetworkKind, Nic, PowerState,
    Vm,
};

pub fn vm(provider: &str, id: &str, name: &str) -> Vm {
    Vm {
        provider: provider.into(),
        id: id.into(),
        name: name.into(),
        uuid: format!("uuid-{id}"),
        instance_uuid: format!("iuuid-{id}"),
        datacenter: "DC0".into(),
        cluster: "C1".into(),
        host: "esx1".into(),
        folder: "/vm".into(),
        power: PowerState::PoweredOn,
        cpu: 2,
        memory_mb: 4096,
        guest_os: "centos7_64Guest".into(),
        guest_hostname: name.into(),
        guest_ip: Some("10.0.0.1".into()),
        ips: vec!["10.0.0.1".into(), "fe80::1".into()],
        tools_status: "toolsOk".into(),
        template: false,
        nics: vec![Nic {
            label: "Network adapter 1".into(),
            mac: "00:50:56:00:00:01".into(),
            network: "VM Network".into(),
            connected: true,
        }],
        disks: vec![
            Disk {
                label: "Hard disk 1".into(),
                capacity_gb: 40,
                datastore: "ds1".into(),
                unit: 0,
            },
            Disk {
                label: "Hard disk 2".into(),
                capacity_gb: 100,
                datastore: "ds1".into(),
                unit: 1,
            },
        ],
        tags: vec!["app:web".into(), "env:prod".into()],
    }
}

pub fn template(provider: &str, id: &str, name: &str) -> Vm {
    Vm {
        template: true,
        power: PowerState::PoweredOff,
        guest_ip: None,
        ips: vec![],
        ..vm(provider, id, name)
    }
}

pub fn host(provider: &str, id: &str, name: &str) -> Host {
    Host {
        provider: provider.into(),
        id: id.into(),
        name: name.into(),
        datacenter: "DC0".into(),
        cluster: "C1".into(),
        cpu_cores: 32,
        cpu_mhz: 2400,
        memory_mb: 262_144,
        connection_state: "connected".into(),
        power: PowerState::PoweredOn,
    }
}

/// One of everything, plus two VMs and a template.
pub fn inventory(provider: &str) -> Inventory {
    Inventory {
        datacenters: vec![Datacenter {
            provider: provider.into(),
            id: "dc-1".into(),
            name: "DC0".into(),
        }],
        clusters: vec![Cluster {
            provider: provider.into(),
            id: "c-1".into(),
            name: "C1".into(),
            datacenter: "DC0".into(),
        }],
        hosts: vec![host(provider, "h-1", "esx1"), host(provider, "h-2", "esx2")],
        vms: vec![
            vm(provider, "vm-1", "web01"),
            vm(provider, "vm-2", "db01"),
            template(provider, "vm-t1", "tpl-centos7"),
        ],
        datastores: vec![Datastore {
            provider: provider.into(),
            id: "ds-1".into(),
            name: "ds1".into(),
            datacenter: "DC0".into(),
            kind: "VMFS".into(),
            capacity_gb: 10_000,
            free_gb: 4_000,
        }],
        networks: vec![
            Network {
                provider: provider.into(),
                id: "net-1".into(),
                name: "VM Network".into(),
                datacenter: "DC0".into(),
                kind: NetworkKind::Standard,
                vlan: None,
            },
            Network {
                provider: provider.into(),
                id: "dvpg-1".into(),
                name: "prod-100".into(),
                datacenter: "DC0".into(),
                kind: NetworkKind::Distributed,
                vlan: Some(100),
            },
        ],
    }
}

/// `inv` with every list in the order `load_pool` returns (provider, then id).
pub fn sorted(mut inv: Inventory) -> Inventory {
    inv.datacenters
        .sort_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
    inv.clusters
        .sort_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
    inv.hosts
        .sort_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
    inv.vms
        .sort_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
    inv.datastores
        .sort_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
    inv.networks
        .sort_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
    inv
}

/// Joins two providers' inventories.
pub fn merge(mut a: Inventory, b: Inventory) -> Inventory {
    a.datacenters.extend(b.datacenters);
    a.clusters.extend(b.clusters);
    a.hosts.extend(b.hosts);
    a.vms.extend(b.vms);
    a.datastores.extend(b.datastores);
    a.networks.extend(b.networks);
    a
}

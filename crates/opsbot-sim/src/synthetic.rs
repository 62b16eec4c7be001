//! A generated estate of any size, for benchmarks and load tests (10,000 VMs and up).

use opsbot_core::{
    Cluster, Datacenter, Datastore, Disk, Host, Inventory, Network, NetworkKind, Nic, PowerState,
    Vm,
};

/// An estate with `vms` VMs spread over 4 datacenters, 16 clusters and 256 hosts, plus
/// 8 templates. Names are `vm-00000`…, IPs `10.x.y.z`, all unique and deterministic.
pub fn inventory(provider: &str, vms: usize) -> Inventory {
    let p = provider.to_string();
    let mut inv = Inventory::default();
    for d in 0..4 {
        let dc = format!("DC{d}");
        inv.datacenters.push(Datacenter {
            provider: p.clone(),
            id: format!("datacenter-{d}"),
            name: dc.clone(),
        });
        for s in 0..4 {
            inv.datastores.push(Datastore {
                provider: p.clone(),
                id: format!("datastore-{d}-{s}"),
                name: format!("ds-{d}-{s}"),
                datacenter: dc.clone(),
                kind: "VMFS".into(),
                capacity_gb: 65_536,
                free_gb: 20_000 + 1_000 * s as u64,
            });
        }
        for v in 0..8u16 {
            inv.networks.push(Network {
                provider: p.clone(),
                id: format!("dvportgroup-{d}-{v}"),
                name: format!("VLAN{}", 100 + v),
                datacenter: dc.clone(),
                kind: NetworkKind::Distributed,
                vlan: Some(100 + v),
            });
        }
        for c in 0..4 {
            let cluster = format!("C{d}-{c}");
            inv.clusters.push(Cluster {
                provider: p.clone(),
                id: format!("domain-c{d}{c}"),
                name: cluster.clone(),
                datacenter: dc.clone(),
            });
            for h in 0..16 {
                inv.hosts.push(Host {
                    provider: p.clone(),
                    id: format!("host-{d}-{c}-{h}"),
                    name: format!("esxi-{d}-{c}-{h:02}"),
                    datacenter: dc.clone(),
                    cluster: cluster.clone(),
                    cpu_cores: 64,
                    cpu_mhz: 2600,
                    memory_mb: 1024 * 1024,
                    connection_state: "connected".into(),
                    power: PowerState::PoweredOn,
                });
            }
        }
    }
    for i in 0..vms + 8 {
        let template = i >= vms;
        let (d, c, h) = (i % 4, (i / 4) % 4, (i / 16) % 16);
        let ip = format!("10.{}.{}.{}", d, (i / 250) % 250, i % 250 + 2);
        let on = !template && i % 5 != 0;
        inv.vms.push(Vm {
            provider: p.clone(),
            id: format!("vm-{i}"),
            name: if template {
                format!("tpl-{}", i - vms)
            } else {
                format!("vm-{i:05}")
            },
            uuid: format!("4201{i:04x}-0000-0000-0000-{i:012x}"),
            instance_uuid: format!("5001{i:04x}-0000-0000-0000-{i:012x}"),
            datacenter: format!("DC{d}"),
            cluster: format!("C{d}-{c}"),
            host: format!("esxi-{d}-{c}-{h:02}"),
            folder: "vm".into(),
            power: if on {
                PowerState::PoweredOn
            } else {
                PowerState::PoweredOff
            },
            cpu: 2 << (i % 3),
            memory_mb: 4096 << (i % 3),
            guest_os: "CentOS 7 (64-bit)".into(),
            guest_hostname: if on {
                format!("vm-{i:05}")
            } else {
                String::new()
            },
            guest_ip: on.then(|| ip.clone()),
            ips: if template { vec![] } else { vec![ip] },
            tools_status: if on { "toolsOk" } else { "toolsNotRunning" }.into(),
            template,
            nics: vec![Nic {
                label: "Network adapter 1".into(),
                mac: format!(
                    "00:50:56:{:02x}:{:02x}:{:02x}",
                    (i >> 16) & 0xff,
                    (i >> 8) & 0xff,
                    i & 0xff
                ),
                network: format!("VLAN{}", 100 + i % 8),
                connected: on,
            }],
            disks: vec![Disk {
                label: "Hard disk 1".into(),
                capacity_gb: 100,
                datastore: format!("ds-{d}-{}", i % 4),
                unit: 0,
            }],
            tags: vec![
                format!("app:app{}", i % 20),
                ["env:prod", "env:test", "env:dev"][i % 3].to_string(),
            ],
        });
    }
    inv
}

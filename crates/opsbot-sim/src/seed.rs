//! The estate a fresh sim provider starts with: deterministic, so every fresh machine
//! sees the same numbered templates and VM names.

use crate::SimState;
use opsbot_core::{
    Cluster, Datacenter, Datastore, Disk, Host, Inventory, Network, NetworkKind, Nic, PowerState,
    Vm,
};

struct Site {
    dc: &'static str,
    clusters: &'static [(&'static str, u32)],
    datastores: &'static [(&'static str, &'static str, u64, u64)],
    networks: &'static [(&'static str, NetworkKind, Option<u16>)],
}

const SITES: &[Site] = &[
    Site {
        dc: "DC0",
        clusters: &[("Cluster-Prod", 4), ("Cluster-Test", 2)],
        datastores: &[
            ("ds-prod-01", "VMFS", 8192, 3420),
            ("ds-prod-02", "VMFS", 8192, 5120),
            ("nfs-backup", "NFS", 16384, 9800),
            ("vsanDatastore", "vsan", 12288, 6100),
        ],
        networks: &[
            ("VM Network", NetworkKind::Standard, Some(0)),
            ("VLAN2-办公网", NetworkKind::Distributed, Some(2)),
            ("VLAN100-业务网", NetworkKind::Distributed, Some(100)),
            ("VLAN200-数据库", NetworkKind::Distributed, Some(200)),
            ("VLAN300-管理网", NetworkKind::Distributed, Some(300)),
        ],
    },
    Site {
        dc: "DC1",
        clusters: &[("Cluster-DR", 2)],
        datastores: &[("ds-dr-01", "VMFS", 8192, 6900)],
        networks: &[
            ("VM Network", NetworkKind::Standard, Some(0)),
            ("VLAN100-业务网", NetworkKind::Distributed, Some(100)),
        ],
    },
];

/// (name, cluster, power on, cpu, memory GB, disk GB, network, ip)
type VmSeed = (
    &'static str,
    &'static str,
    bool,
    u32,
    u64,
    u64,
    &'static str,
    &'static str,
);

const TEMPLATES: &[(&str, &str, &str)] = &[
    ("tpl-centos7.9", "CentOS 7 (64-bit)", "centos7_64Guest"),
    ("tpl-ubuntu20.04", "Ubuntu Linux (64-bit)", "ubuntu64Guest"),
    (
        "tpl-win2019",
        "Microsoft Windows Server 2019 (64-bit)",
        "windows2019srv_64Guest",
    ),
    ("tpl-rocky9", "Rocky Linux (64-bit)", "rockylinux_64Guest"),
];

const VMS: &[VmSeed] = &[
    (
        "web-01",
        "Cluster-Prod",
        true,
        4,
        8,
        100,
        "VLAN100-业务网",
        "10.10.100.11",
    ),
    (
        "web-02",
        "Cluster-Prod",
        true,
        4,
        8,
        100,
        "VLAN100-业务网",
        "10.10.100.12",
    ),
    (
        "web-03",
        "Cluster-Prod",
        true,
        4,
        8,
        100,
        "VLAN100-业务网",
        "10.10.100.13",
    ),
    (
        "web-04",
        "Cluster-Prod",
        false,
        4,
        8,
        100,
        "VLAN100-业务网",
        "10.10.100.14",
    ),
    (
        "nginx-lb-01",
        "Cluster-Prod",
        true,
        2,
        4,
        60,
        "VLAN100-业务网",
        "10.10.100.5",
    ),
    (
        "nginx-lb-02",
        "Cluster-Prod",
        true,
        2,
        4,
        60,
        "VLAN100-业务网",
        "10.10.100.6",
    ),
    (
        "db-mysql-01",
        "Cluster-Prod",
        true,
        16,
        64,
        1000,
        "VLAN200-数据库",
        "10.10.200.21",
    ),
    (
        "db-mysql-02",
        "Cluster-Prod",
        true,
        16,
        64,
        1000,
        "VLAN200-数据库",
        "10.10.200.22",
    ),
    (
        "db-pg-01",
        "Cluster-Prod",
        true,
        8,
        32,
        500,
        "VLAN200-数据库",
        "10.10.200.31",
    ),
    (
        "redis-01",
        "Cluster-Prod",
        true,
        4,
        16,
        80,
        "VLAN200-数据库",
        "10.10.200.41",
    ),
    (
        "redis-02",
        "Cluster-Prod",
        true,
        4,
        16,
        80,
        "VLAN200-数据库",
        "10.10.200.42",
    ),
    (
        "k8s-master-01",
        "Cluster-Prod",
        true,
        4,
        8,
        100,
        "VLAN100-业务网",
        "10.10.100.101",
    ),
    (
        "k8s-master-02",
        "Cluster-Prod",
        true,
        4,
        8,
        100,
        "VLAN100-业务网",
        "10.10.100.102",
    ),
    (
        "k8s-master-03",
        "Cluster-Prod",
        true,
        4,
        8,
        100,
        "VLAN100-业务网",
        "10.10.100.103",
    ),
    (
        "k8s-node-01",
        "Cluster-Prod",
        true,
        16,
        32,
        200,
        "VLAN100-业务网",
        "10.10.100.111",
    ),
    (
        "k8s-node-02",
        "Cluster-Prod",
        true,
        16,
        32,
        200,
        "VLAN100-业务网",
        "10.10.100.112",
    ),
    (
        "k8s-node-03",
        "Cluster-Prod",
        true,
        16,
        32,
        200,
        "VLAN100-业务网",
        "10.10.100.113",
    ),
    (
        "k8s-node-04",
        "Cluster-Prod",
        true,
        16,
        32,
        200,
        "VLAN100-业务网",
        "10.10.100.114",
    ),
    (
        "k8s-node-05",
        "Cluster-Prod",
        true,
        16,
        32,
        200,
        "VLAN100-业务网",
        "10.10.100.115",
    ),
    (
        "k8s-node-06",
        "Cluster-Prod",
        false,
        16,
        32,
        200,
        "VLAN100-业务网",
        "10.10.100.116",
    ),
    (
        "harbor",
        "Cluster-Prod",
        true,
        4,
        8,
        2000,
        "VLAN100-业务网",
        "10.10.100.30",
    ),
    (
        "gitlab",
        "Cluster-Prod",
        true,
        8,
        16,
        500,
        "VLAN300-管理网",
        "10.10.30.10",
    ),
    (
        "jenkins",
        "Cluster-Prod",
        true,
        8,
        16,
        300,
        "VLAN300-管理网",
        "10.10.30.11",
    ),
    (
        "zabbix-server",
        "Cluster-Prod",
        true,
        4,
        8,
        200,
        "VLAN300-管理网",
        "10.10.30.20",
    ),
    (
        "prometheus",
        "Cluster-Prod",
        true,
        8,
        16,
        500,
        "VLAN300-管理网",
        "10.10.30.21",
    ),
    (
        "elk-01",
        "Cluster-Prod",
        true,
        8,
        32,
        1000,
        "VLAN300-管理网",
        "10.10.30.31",
    ),
    (
        "elk-02",
        "Cluster-Prod",
        true,
        8,
        32,
        1000,
        "VLAN300-管理网",
        "10.10.30.32",
    ),
    (
        "elk-03",
        "Cluster-Prod",
        true,
        8,
        32,
        1000,
        "VLAN300-管理网",
        "10.10.30.33",
    ),
    (
        "dns-01",
        "Cluster-Prod",
        true,
        2,
        2,
        40,
        "VLAN300-管理网",
        "10.10.30.53",
    ),
    (
        "dns-02",
        "Cluster-Prod",
        true,
        2,
        2,
        40,
        "VLAN300-管理网",
        "10.10.30.54",
    ),
    (
        "ldap",
        "Cluster-Prod",
        true,
        2,
        4,
        40,
        "VLAN300-管理网",
        "10.10.30.60",
    ),
    (
        "vpn-gw",
        "Cluster-Prod",
        true,
        2,
        4,
        40,
        "VM Network",
        "192.168.1.250",
    ),
    (
        "OA系统",
        "Cluster-Prod",
        true,
        8,
        16,
        300,
        "VLAN2-办公网",
        "192.168.2.20",
    ),
    (
        "财务系统",
        "Cluster-Prod",
        true,
        8,
        16,
        300,
        "VLAN2-办公网",
        "192.168.2.21",
    ),
    (
        "邮件网关",
        "Cluster-Prod",
        true,
        4,
        8,
        200,
        "VLAN2-办公网",
        "192.168.2.25",
    ),
    (
        "门禁系统",
        "Cluster-Prod",
        false,
        2,
        4,
        100,
        "VLAN2-办公网",
        "192.168.2.30",
    ),
    (
        "test-web-01",
        "Cluster-Test",
        true,
        2,
        4,
        60,
        "VLAN100-业务网",
        "10.10.101.11",
    ),
    (
        "test-web-02",
        "Cluster-Test",
        false,
        2,
        4,
        60,
        "VLAN100-业务网",
        "10.10.101.12",
    ),
    (
        "test-db-01",
        "Cluster-Test",
        true,
        4,
        8,
        200,
        "VLAN200-数据库",
        "10.10.201.21",
    ),
    (
        "test-k8s-01",
        "Cluster-Test",
        true,
        8,
        16,
        100,
        "VLAN100-业务网",
        "10.10.101.101",
    ),
    (
        "test-k8s-02",
        "Cluster-Test",
        true,
        8,
        16,
        100,
        "VLAN100-业务网",
        "10.10.101.102",
    ),
    (
        "test-jmeter",
        "Cluster-Test",
        false,
        4,
        8,
        60,
        "VLAN100-业务网",
        "10.10.101.50",
    ),
    (
        "dev-sandbox-01",
        "Cluster-Test",
        true,
        2,
        4,
        60,
        "VLAN2-办公网",
        "192.168.2.101",
    ),
    (
        "dev-sandbox-02",
        "Cluster-Test",
        false,
        2,
        4,
        60,
        "VLAN2-办公网",
        "192.168.2.102",
    ),
    (
        "dr-web-01",
        "Cluster-DR",
        false,
        4,
        8,
        100,
        "VLAN100-业务网",
        "10.20.100.11",
    ),
    (
        "dr-web-02",
        "Cluster-DR",
        false,
        4,
        8,
        100,
        "VLAN100-业务网",
        "10.20.100.12",
    ),
    (
        "dr-db-mysql-01",
        "Cluster-DR",
        true,
        16,
        64,
        1000,
        "VLAN100-业务网",
        "10.20.100.21",
    ),
    (
        "dr-backup",
        "Cluster-DR",
        true,
        4,
        16,
        4000,
        "VM Network",
        "10.20.1.10",
    ),
];

/// Deterministic MAC and UUIDs from a counter, so the estate is reproducible.
pub(crate) fn mac(n: u64) -> String {
    format!(
        "00:50:56:{:02x}:{:02x}:{:02x}",
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

pub(crate) fn uuid(prefix: u32, n: u64) -> String {
    format!("{prefix:08x}-5a17-4c0e-9d3b-{n:012x}")
}

fn cluster_site(cluster: &str) -> &'static Site {
    SITES
        .iter()
        .find(|s| s.clusters.iter().any(|(c, _)| *c == cluster))
        .expect("seed VM names a seeded cluster")
}

/// Which host of a cluster a seeded VM lands on (round robin).
fn host_name(dc: &str, cluster: &str, index: usize, hosts: u32) -> String {
    let short = cluster.trim_start_matches("Cluster-").to_lowercase();
    format!(
        "esxi-{short}-{:02}.{}.local",
        index as u32 % hosts + 1,
        dc.to_lowercase()
    )
}

pub(crate) fn initial_state(provider: &str) -> SimState {
    let mut inv = Inventory::default();
    let p = provider.to_string();
    for site in SITES {
        inv.datacenters.push(Datacenter {
            provider: p.clone(),
            id: format!("datacenter-{}", site.dc),
            name: site.dc.into(),
        });
        for (cluster, hosts) in site.clusters {
            inv.clusters.push(Cluster {
                provider: p.clone(),
                id: format!("domain-c-{cluster}"),
                name: (*cluster).into(),
                datacenter: site.dc.into(),
            });
            for i in 0..*hosts {
                let name = host_name(site.dc, cluster, i as usize, *hosts);
                // The last DR host is unreachable, so "impossible" requests have a cause.
                let down = *cluster == "Cluster-DR" && i == hosts - 1;
                inv.hosts.push(Host {
                    provider: p.clone(),
                    id: format!("host-{name}"),
                    name,
                    datacenter: site.dc.into(),
                    cluster: (*cluster).into(),
                    cpu_cores: 32,
                    cpu_mhz: 2600,
                    memory_mb: 256 * 1024,
                    connection_state: if down { "notResponding" } else { "connected" }.into(),
                    power: PowerState::PoweredOn,
                });
            }
        }
        for (name, kind, cap, free) in site.datastores {
            inv.datastores.push(Datastore {
                provider: p.clone(),
                id: format!("datastore-{}-{name}", site.dc),
                name: (*name).into(),
                datacenter: site.dc.into(),
                kind: (*kind).into(),
                capacity_gb: *cap,
                free_gb: *free,
            });
        }
        for (name, kind, vlan) in site.networks {
            let prefix = match kind {
                NetworkKind::Standard => "network",
                NetworkKind::Distributed => "dvportgroup",
            };
            inv.networks.push(Network {
                provider: p.clone(),
                id: format!("{prefix}-{}-{name}", site.dc),
                name: (*name).into(),
                datacenter: site.dc.into(),
                kind: *kind,
                vlan: *vlan,
            });
        }
    }

    let mut n: u64 = 0;
    for (name, os, _guest_id) in TEMPLATES {
        n += 1;
        let mut vm = make_vm(
            &p,
            n,
            name,
            "Cluster-Prod",
            0,
            false,
            (2, 4, 50),
            "VLAN100-业务网",
            None,
            os,
        );
        vm.template = true;
        vm.folder = "Templates".into();
        inv.vms.push(vm);
    }
    for (i, (name, cluster, on, cpu, mem, disk, net, ip)) in VMS.iter().enumerate() {
        n += 1;
        let os = if name.contains("win") {
            TEMPLATES[2].1
        } else {
            TEMPLATES[i % 2 * 3].1
        };
        inv.vms.push(make_vm(
            &p,
            n,
            name,
            cluster,
            i,
            *on,
            (*cpu, *mem, *disk),
            net,
            Some(ip),
            os,
        ));
    }
    SimState {
        inventory: inv,
        next_id: n + 1,
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn make_vm(
    provider: &str,
    n: u64,
    name: &str,
    cluster: &str,
    index: usize,
    on: bool,
    (cpu, mem_gb, disk_gb): (u32, u64, u64),
    network: &str,
    ip: Option<&str>,
    guest_os: &str,
) -> Vm {
    let site = cluster_site(cluster);
    let hosts = site
        .clusters
        .iter()
        .find(|(c, _)| *c == cluster)
        .map(|(_, h)| *h)
        .unwrap_or(1);
    // The DR site's VMs run on its first host, as DRS would have placed them, except
    // dr-backup: it sat on the host that then stopped answering, so "which VMs were on
    // the failed host" (虚拟机:主机=esxi-dr-02) has an answer, and acting on it a cause
    // for refusal.
    let mut host = host_name(site.dc, cluster, index, hosts);
    if cluster == "Cluster-DR" {
        let i = if name == "dr-backup" { hosts - 1 } else { 0 };
        host = host_name(site.dc, cluster, i as usize, hosts);
    }
    let datastore = site.datastores[index % site.datastores.len().min(2)].0;
    Vm {
        provider: provider.into(),
        id: format!("vm-{n}"),
        name: name.into(),
        uuid: uuid(0x4201_0000, n),
        instance_uuid: uuid(0x5001_0000, n),
        datacenter: site.dc.into(),
        cluster: cluster.into(),
        host,
        folder: "vm".into(),
        power: if on {
            PowerState::PoweredOn
        } else {
            PowerState::PoweredOff
        },
        cpu,
        memory_mb: mem_gb * 1024,
        guest_os: guest_os.into(),
        guest_hostname: if on {
            ascii_hostname(name, ip)
        } else {
            String::new()
        },
        guest_ip: if on { ip.map(str::to_string) } else { None },
        ips: ip.map(|i| vec![i.to_string()]).unwrap_or_default(),
        tools_status: if on { "toolsOk" } else { "toolsNotRunning" }.into(),
        template: false,
        nics: vec![Nic {
            label: "Network adapter 1".into(),
            mac: mac(n),
            network: network.into(),
            connected: on,
        }],
        disks: vec![Disk {
            label: "Hard disk 1".into(),
            capacity_gb: disk_gb,
            datastore: datastore.into(),
            unit: 0,
        }],
        tags: sim_tags(cluster, name),
    }
}

/// The sim's tags: the environment its cluster stands for, and the business system
/// (service) the VM serves, `app:<service>`, from its name (`web-04` → `app:shop`); a
/// name no rule knows keeps its ASCII prefix as before (`foo-01` → `app:foo`), and a
/// Chinese one no rule knows has none.
pub(crate) fn sim_tags(cluster: &str, name: &str) -> Vec<String> {
    let mut tags = Vec::new();
    if let Some(env) = cluster.strip_prefix("Cluster-") {
        tags.push(format!("env:{}", env.to_lowercase()));
    }
    if let Some(app) = service_of(name) {
        tags.push(format!("app:{app}"));
    }
    tags.sort();
    tags
}

/// Which business system a seeded (or cloned) VM serves, by its name: the test and DR
/// copies serve what their production originals do.
const SERVICES: &[(&str, &str)] = &[
    ("web-", "shop"),
    ("nginx-lb-", "shop"),
    ("db-mysql-", "shop"),
    ("redis-", "shop"),
    ("db-pg-", "finance"),
    ("db-", "shop"),
    ("jmeter", "shop"),
    ("k8s-", "k8s"),
    ("harbor", "k8s"),
    ("gitlab", "devops"),
    ("jenkins", "devops"),
    ("sandbox-", "devops"),
    ("zabbix-", "monitor"),
    ("prometheus", "monitor"),
    ("elk-", "logging"),
    ("dns-", "infra"),
    ("ldap", "infra"),
    ("vpn-", "infra"),
    ("backup", "backup"),
    ("OA", "oa"),
    ("财务", "finance"),
    ("邮件", "mail"),
    ("门禁", "access"),
];

fn service_of(name: &str) -> Option<String> {
    let base = ["test-", "dev-", "dr-"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    if let Some((_, app)) = SERVICES.iter().find(|(p, _)| base.starts_with(p)) {
        return Some(app.to_string());
    }
    let app: String = name
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_lowercase();
    (!app.is_empty() && name.is_ascii()).then_some(app)
}

/// A guest hostname must be a DNS label; Chinese VM names get one derived from the IP.
pub(crate) fn ascii_hostname(name: &str, ip: Option<&str>) -> String {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-');
    if ok {
        name.to_lowercase()
    } else {
        match ip {
            Some(ip) => format!("vm-{}", ip.replace('.', "-")),
            None => "localhost".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estate_is_realistic_and_unique() {
        let s = initial_state("sim");
        let inv = &s.inventory;
        assert_eq!(inv.datacenters.len(), 2);
        assert_eq!(inv.clusters.len(), 3);
        assert_eq!(inv.hosts.len(), 8);
        assert_eq!(inv.vms.iter().filter(|v| v.template).count(), 4);
        assert_eq!(inv.vms.iter().filter(|v| !v.template).count(), 48);
        let mut names: Vec<_> = inv.vms.iter().map(|v| &v.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), inv.vms.len(), "VM names are unique");
        let host_names: Vec<_> = inv.hosts.iter().map(|h| &h.name).collect();
        for vm in &inv.vms {
            assert!(
                host_names.contains(&&vm.host),
                "{} on unknown host {}",
                vm.name,
                vm.host
            );
        }
        // The seed's example IP is free for the clone.
        assert!(!inv
            .vms
            .iter()
            .any(|v| v.ips.iter().any(|i| i == "192.168.2.182")));
    }

    #[test]
    fn every_seeded_vm_serves_a_service() {
        for (name, cluster, ..) in VMS {
            let tags = sim_tags(cluster, name);
            assert!(
                tags.iter().any(|t| t.starts_with("app:")),
                "{name}: {tags:?}"
            );
        }
        assert_eq!(sim_tags("Cluster-DR", "dr-web-01"), ["app:shop", "env:dr"]);
        assert_eq!(
            sim_tags("Cluster-Prod", "财务系统"),
            ["app:finance", "env:prod"]
        );
        assert_eq!(sim_tags("Cluster-Test", "foo-1"), ["app:foo", "env:test"]);
        assert_eq!(sim_tags("Cluster-Test", "工具柜管理系统"), ["env:test"]);
    }

    #[test]
    fn hostnames_are_dns_labels() {
        assert_eq!(ascii_hostname("web-01", Some("1.2.3.4")), "web-01");
        assert_eq!(
            ascii_hostname("工具柜管理系统", Some("192.168.2.182")),
            "vm-192-168-2-182"
        );
    }
}

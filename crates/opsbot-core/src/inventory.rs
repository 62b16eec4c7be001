//! The resource pool model: what a provider reports and what the store mirrors.
//!
//! Object ids are the provider's own opaque references (vSphere MoRefs, sim ids);
//! together with the provider name they identify an object across syncs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    PoweredOn,
    PoweredOff,
    Suspended,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::PoweredOn => "poweredOn",
            PowerState::PoweredOff => "poweredOff",
            PowerState::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "poweredOn" => Some(PowerState::PoweredOn),
            "poweredOff" => Some(PowerState::PoweredOff),
            "suspended" => Some(PowerState::Suspended),
            _ => None,
        }
    }

    /// How a phone screen shows it.
    pub fn label(self) -> &'static str {
        match self {
            PowerState::PoweredOn => "开机",
            PowerState::PoweredOff => "关机",
            PowerState::Suspended => "挂起",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datacenter {
    pub provider: String,
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub provider: String,
    pub id: String,
    pub name: String,
    pub datacenter: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub provider: String,
    pub id: String,
    pub name: String,
    pub datacenter: String,
    /// Empty for a standalone host.
    pub cluster: String,
    pub cpu_cores: u32,
    pub cpu_mhz: u32,
    pub memory_mb: u64,
    /// vSphere's connection state: connected, disconnected, notResponding.
    pub connection_state: String,
    pub power: PowerState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    pub label: String,
    pub mac: String,
    /// Name of the network / port group the NIC is attached to.
    pub network: String,
    pub connected: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub label: String,
    pub capacity_gb: u64,
    pub datastore: String,
    /// Controller unit number; the next free one is used for a new disk.
    pub unit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vm {
    pub provider: String,
    pub id: String,
    pub name: String,
    pub uuid: String,
    pub instance_uuid: String,
    pub datacenter: String,
    pub cluster: String,
    pub host: String,
    pub folder: String,
    pub power: PowerState,
    pub cpu: u32,
    pub memory_mb: u64,
    pub guest_os: String,
    pub guest_hostname: String,
    /// Primary guest IP as reported by the tools, if any.
    pub guest_ip: Option<String>,
    /// Every IP the guest reports, primary first.
    pub ips: Vec<String>,
    /// toolsOk, toolsNotRunning, toolsNotInstalled, toolsOld.
    pub tools_status: String,
    pub template: bool,
    pub nics: Vec<Nic>,
    pub disks: Vec<Disk>,
    /// Labels operators group VMs by (`env:prod`, `app:erp`): vSphere custom attributes
    /// as `name:value`, the sim's own. Sorted, no duplicates.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Datacenter {
    /// The path permission scopes match: `provider/datacenter`.
    pub fn scope_path(&self) -> String {
        format!("{}/{}", self.provider, self.name)
    }
}

impl Cluster {
    /// The path permission scopes match: `provider/datacenter/cluster`.
    pub fn scope_path(&self) -> String {
        format!("{}/{}/{}", self.provider, self.datacenter, self.name)
    }
}

impl Host {
    /// The path permission scopes match: `provider/datacenter/cluster/name`.
    pub fn scope_path(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.provider, self.datacenter, self.cluster, self.name
        )
    }
}

impl Datastore {
    /// The path permission scopes match: `provider/datacenter/name`.
    pub fn scope_path(&self) -> String {
        format!("{}/{}/{}", self.provider, self.datacenter, self.name)
    }
}

impl Network {
    /// The path permission scopes match: `provider/datacenter/name`.
    pub fn scope_path(&self) -> String {
        format!("{}/{}/{}", self.provider, self.datacenter, self.name)
    }
}

impl Vm {
    /// The path permission scopes match: `provider/datacenter/cluster/name`.
    pub fn scope_path(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.provider, self.datacenter, self.cluster, self.name
        )
    }

    pub fn memory_gb(&self) -> f64 {
        self.memory_mb as f64 / 1024.0
    }

    pub fn disk_total_gb(&self) -> u64 {
        self.disks.iter().map(|d| d.capacity_gb).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datastore {
    pub provider: String,
    pub id: String,
    pub name: String,
    pub datacenter: String,
    /// VMFS, NFS, vsan, ...
    pub kind: String,
    pub capacity_gb: u64,
    pub free_gb: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkKind {
    /// A standard vSwitch port group.
    Standard,
    /// A distributed virtual port group.
    Distributed,
}

impl NetworkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkKind::Standard => "standard",
            NetworkKind::Distributed => "distributed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(NetworkKind::Standard),
            "distributed" => Some(NetworkKind::Distributed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub provider: String,
    pub id: String,
    pub name: String,
    pub datacenter: String,
    pub kind: NetworkKind,
    pub vlan: Option<u16>,
}

/// A template VM with the stable number users type in `克隆:N,...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub number: u32,
    pub provider: String,
    pub vm_id: String,
    pub name: String,
    pub guest_os: String,
}

/// Everything one provider reports in one sync. Templates are VMs with `template = true`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub datacenters: Vec<Datacenter>,
    pub clusters: Vec<Cluster>,
    pub hosts: Vec<Host>,
    pub vms: Vec<Vm>,
    pub datastores: Vec<Datastore>,
    pub networks: Vec<Network>,
}

/// One recorded difference between the pool and a provider: what, old, new, when, source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub provider: String,
    /// datacenter, cluster, host, vm, datastore, network
    pub object_kind: String,
    pub object_id: String,
    pub object_name: String,
    /// `created`, `removed`, or the field that changed.
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    /// `sync`, `chat:<user>`, `api:<user>`, ...
    pub source: String,
}

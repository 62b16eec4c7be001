//! Inventory sync: one ContainerView + RetrievePropertiesEx per object type (run
//! concurrently), mapped into the resource pool model of `opsbot_core`.
//!
//! Names, not MoRefs, go into the model wherever a user reads them (host, cluster,
//! datacenter, folder, datastore, network); ids are MoRef values. The datacenter of an
//! object is found by walking `parent` through the folders, datacenters and compute
//! resources fetched alongside.

use crate::client::{view_spec, MoRef, ObjectContent, VimClient};
use crate::error::Result;
use crate::fingerprint::{self, Prints};
use crate::xml::Node;
use opsbot_core::{
    Cluster, Datacenter, Datastore, Disk, Host, Inventory, Network, NetworkKind, Nic, PowerState,
    Vm,
};
use std::collections::{HashMap, HashSet};

/// Page size asked of the property collector (vCenter may page earlier; vcsim ignores it).
const PAGE: u32 = 1000;
/// VMs are read in explicit batches of this many, each mapped before the next is read, so
/// the parsed answer held in memory stays bounded whatever the inventory size (vcsim
/// ignores `maxObjects` and would otherwise answer 10,000 VMs in one document).
const VM_BATCH: usize = 500;

const VM_PATHS: &[&str] = &[
    "name",
    "parent",
    "config.uuid",
    "config.instanceUuid",
    "config.guestFullName",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "runtime.powerState",
    "runtime.host",
    "guest.ipAddress",
    "guest.hostName",
    "guest.net",
    "guest.toolsRunningStatus",
    "summary.config.template",
    // Custom attribute values: the VM's tags.
    "customValue",
    // Not mapped, but part of the change token (see `fingerprint`).
    "config.changeVersion",
    "summary.config.numVirtualDisks",
    "summary.config.numEthernetCards",
    "network",
    "datastore",
];
const HOST_PATHS: &[&str] = &[
    "name",
    "parent",
    "summary.hardware.numCpuCores",
    "summary.hardware.cpuMhz",
    "summary.hardware.memorySize",
    "runtime.connectionState",
    "runtime.powerState",
];
const NAME_PARENT: &[&str] = &["name", "parent"];
const DATASTORE_PATHS: &[&str] = &[
    "name",
    "parent",
    "summary.type",
    "summary.capacity",
    "summary.freeSpace",
];
const DVPG_PATHS: &[&str] = &["name", "parent", "key", "config.defaultPortConfig"];
const DVS_PATHS: &[&str] = &["config.uplinkPortgroup"];

/// Everything but the VMs: the lookups VM mapping needs, plus the objects themselves.
struct Context {
    /// Folders, datacenters and compute resources: MoRef → (name, parent).
    tree: HashMap<MoRef, (String, Option<MoRef>)>,
    hosts: Vec<ObjectContent>,
    host_index: HashMap<MoRef, usize>,
    datastores: Vec<ObjectContent>,
    datastore_names: HashMap<MoRef, String>,
    networks: Vec<ObjectContent>,
    network_names: HashMap<MoRef, String>,
    /// DV port group key (`dvportgroup-13`) → name.
    portgroup_by_key: HashMap<String, String>,
    uplinks: HashSet<MoRef>,
    /// Custom attribute key → name, for VM tags.
    field_names: HashMap<i64, String>,
}

/// Reads the whole inventory of one vCenter.
pub async fn fetch(client: &VimClient, provider: &str) -> Result<Inventory> {
    Ok(fetch_with_prints(client, provider).await?.0)
}

/// Reads the whole inventory and the prints that describe it (see [`light_pass`]).
pub async fn fetch_with_prints(client: &VimClient, provider: &str) -> Result<(Inventory, Prints)> {
    let started = std::time::Instant::now();
    let (ctx, vm_refs) = tokio::try_join!(context(client), list_view(client, "VirtualMachine"))?;
    let mut inv = ctx.base(provider);
    inv.vms.reserve(vm_refs.len());
    let mut prints = Prints::default();
    prints.set_base(&inv, &ctx.fields());
    for_each_vm(client, &vm_refs, VM_PATHS, |oc| {
        prints.add_vm(oc);
        inv.vms.push(ctx.map_vm(provider, oc));
    })
    .await?;
    tracing::debug!(
        provider,
        vms = inv.vms.len(),
        hosts = inv.hosts.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "vSphere inventory fetched"
    );
    Ok((inv, prints))
}

/// What a light pass saw: the prints of the vCenter as it is now, and what is needed to
/// read some VMs in full without reading the rest again.
pub struct LightPass {
    pub prints: Prints,
    ctx: Context,
}

/// The prints of the vCenter as it is now, from a light pass: the non-VM objects in
/// full and [`fingerprint::VM_PATHS`] of every VM. Equal to the prints of a full read
/// when nothing the pool shows has changed.
pub async fn light_pass(client: &VimClient, provider: &str) -> Result<LightPass> {
    let started = std::time::Instant::now();
    let (ctx, vm_refs) = tokio::try_join!(context(client), list_view(client, "VirtualMachine"))?;
    let mut prints = Prints::default();
    prints.set_base(&ctx.base(provider), &ctx.fields());
    for_each_vm(client, &vm_refs, fingerprint::VM_PATHS, |oc| {
        prints.add_vm(oc)
    })
    .await?;
    tracing::debug!(
        vms = vm_refs.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "vSphere light pass"
    );
    Ok(LightPass { prints, ctx })
}

impl LightPass {
    /// Reads the VMs `ids` (MoRef values) in full and moves the prints to what was read:
    /// a VM changed again since the light pass is recorded as read, and one deleted since
    /// then is dropped. Returns the VMs and the ids of those that are gone.
    pub async fn read_vms(
        &mut self,
        client: &VimClient,
        provider: &str,
        ids: &[String],
    ) -> Result<(Vec<Vm>, Vec<String>)> {
        let refs: Vec<MoRef> = ids
            .iter()
            .map(|id| MoRef::new("VirtualMachine", id.as_str()))
            .collect();
        let mut vms = Vec::with_capacity(refs.len());
        let ctx = &self.ctx;
        let prints = &mut self.prints;
        for_each_vm(client, &refs, VM_PATHS, |oc| {
            prints.add_vm(oc);
            vms.push(ctx.map_vm(provider, oc));
        })
        .await?;
        let read: HashSet<&str> = vms.iter().map(|v| v.id.as_str()).collect();
        let gone: Vec<String> = ids
            .iter()
            .filter(|id| !read.contains(id.as_str()))
            .cloned()
            .collect();
        for id in &gone {
            self.prints.vms.remove(id);
        }
        Ok((vms, gone))
    }
}

/// Reads `paths` of the VMs in batches and hands each to `each` in turn. Two batches are
/// in flight: the server serialises one while we parse the other.
async fn for_each_vm(
    client: &VimClient,
    refs: &[MoRef],
    paths: &[&str],
    mut each: impl FnMut(&ObjectContent),
) -> Result<()> {
    let mut batches = refs.chunks(VM_BATCH);
    while let Some(first) = batches.next() {
        let second = batches.next();
        let (a, b) = tokio::try_join!(vm_batch(client, first, paths), async {
            match second {
                Some(batch) => vm_batch(client, batch, paths).await,
                None => Ok(Vec::new()),
            }
        })?;
        a.iter().chain(&b).for_each(&mut each);
    }
    Ok(())
}

/// One VM, fully mapped (used after an operation to update the pool without a full sync).
pub async fn vm(client: &VimClient, provider: &str, vm: &MoRef) -> Result<Vm> {
    let spec = crate::client::property_spec("VirtualMachine", VM_PATHS, std::slice::from_ref(vm));
    let (ctx, objects) =
        tokio::try_join!(context(client), client.retrieve_properties(&spec, None))?;
    let oc =
        objects
            .into_iter()
            .find(|o| &o.obj == vm)
            .ok_or_else(|| crate::error::Error::Fault {
                kind: "ManagedObjectNotFound".into(),
                message: format!("obj={vm}"),
            })?;
    Ok(ctx.map_vm(provider, &oc))
}

async fn context(client: &VimClient) -> Result<Context> {
    let (field_names, (folders, datacenters, computes, hosts, datastores, networks, switches)) =
        tokio::try_join!(custom_fields(client), base_objects(client))?;
    build_context(
        field_names,
        [
            folders,
            datacenters,
            computes,
            hosts,
            datastores,
            networks,
            switches,
        ],
    )
}

/// Custom attribute definitions (key → name); none where the server has no manager.
async fn custom_fields(client: &VimClient) -> Result<HashMap<i64, String>> {
    let Some(cfm) = client.service().custom_fields_manager.clone() else {
        return Ok(HashMap::new());
    };
    let props = client.retrieve(&cfm, &["field"]).await?;
    Ok(props
        .get("field")
        .map(|f| {
            f.children
                .iter()
                .filter_map(|d| Some((d.parse_at::<i64>("key")?, d.text_at("name")?.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

type Objects = Vec<ObjectContent>;

async fn base_objects(
    client: &VimClient,
) -> Result<(
    Objects,
    Objects,
    Objects,
    Objects,
    Objects,
    Objects,
    Objects,
)> {
    tokio::try_join!(
        view(client, &["Folder"], &[("Folder", NAME_PARENT)]),
        view(client, &["Datacenter"], &[("Datacenter", NAME_PARENT)]),
        view(
            client,
            &["ComputeResource"],
            &[
                ("ComputeResource", NAME_PARENT),
                ("ClusterComputeResource", NAME_PARENT)
            ]
        ),
        view(client, &["HostSystem"], &[("HostSystem", HOST_PATHS)]),
        view(client, &["Datastore"], &[("Datastore", DATASTORE_PATHS)]),
        view(
            client,
            &["Network"],
            &[
                ("Network", NAME_PARENT),
                ("DistributedVirtualPortgroup", DVPG_PATHS)
            ]
        ),
        view(
            client,
            &["DistributedVirtualSwitch"],
            &[
                ("DistributedVirtualSwitch", DVS_PATHS),
                ("VmwareDistributedVirtualSwitch", DVS_PATHS)
            ]
        ),
    )
}

fn build_context(
    field_names: HashMap<i64, String>,
    [folders, datacenters, computes, hosts, datastores, networks, switches]: [Objects; 7],
) -> Result<Context> {
    let mut tree = HashMap::new();
    for oc in folders.iter().chain(&datacenters).chain(&computes) {
        tree.insert(
            oc.obj.clone(),
            (
                oc.text("name").unwrap_or_default().to_string(),
                oc.get("parent").and_then(Node::moref),
            ),
        );
    }
    let host_index = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.obj.clone(), i))
        .collect();
    let datastore_names = datastores
        .iter()
        .map(|d| {
            (
                d.obj.clone(),
                d.text("name").unwrap_or_default().to_string(),
            )
        })
        .collect();
    let network_names = networks
        .iter()
        .map(|n| {
            (
                n.obj.clone(),
                n.text("name").unwrap_or_default().to_string(),
            )
        })
        .collect();
    let portgroup_by_key = networks
        .iter()
        .filter_map(|n| {
            let key = n.text("key").unwrap_or(&n.obj.value);
            (n.obj.kind == "DistributedVirtualPortgroup").then(|| {
                (
                    key.to_string(),
                    n.text("name").unwrap_or_default().to_string(),
                )
            })
        })
        .collect();
    let uplinks = switches
        .iter()
        .filter_map(|s| s.get("config.uplinkPortgroup"))
        .flat_map(Node::morefs)
        .collect();

    Ok(Context {
        tree,
        hosts,
        host_index,
        datastores,
        datastore_names,
        networks,
        network_names,
        portgroup_by_key,
        uplinks,
        field_names,
    })
}

/// The MoRefs of every object of one type (a container view's `view` property).
async fn list_view(client: &VimClient, kind: &str) -> Result<Vec<MoRef>> {
    let view = create_view(client, &[kind]).await?;
    let result = client.retrieve(&view, &["view"]).await;
    destroy_view(client, &view).await;
    Ok(result?.get("view").map(Node::morefs).unwrap_or_default())
}

/// The VM properties of a batch of VMs. A VM deleted since it was listed makes the whole
/// call fail with ManagedObjectNotFound; then the batch is read one by one, skipping it.
async fn vm_batch(
    client: &VimClient,
    batch: &[MoRef],
    paths: &[&str],
) -> Result<Vec<ObjectContent>> {
    let spec = crate::client::property_spec("VirtualMachine", paths, batch);
    match client.retrieve_properties(&spec, None).await {
        Err(e) if e.is_fault("ManagedObjectNotFound") => {
            let mut out = Vec::with_capacity(batch.len());
            for vm in batch {
                let spec =
                    crate::client::property_spec("VirtualMachine", paths, std::slice::from_ref(vm));
                match client.retrieve_properties(&spec, None).await {
                    Ok(mut one) => out.append(&mut one),
                    Err(e) if e.is_fault("ManagedObjectNotFound") => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        }
        other => other,
    }
}

async fn create_view(client: &VimClient, types: &[&str]) -> Result<MoRef> {
    let svc = client.service();
    let mut args = svc.root_folder.to_xml("container");
    for t in types {
        args.push_str(&format!("<type>{}</type>", crate::xml::escape(t)));
    }
    args.push_str("<recursive>true</recursive>");
    let answer = client
        .invoke("CreateContainerView", &svc.view_manager, &args)
        .await?;
    answer
        .child("returnval")
        .and_then(Node::moref)
        .ok_or_else(|| {
            crate::error::Error::Protocol("CreateContainerView without returnval".into())
        })
}

async fn destroy_view(client: &VimClient, view: &MoRef) {
    if let Err(e) = client.invoke("DestroyView", view, "").await {
        tracing::warn!(error = %e, "DestroyView failed; the view ends with the session");
    }
}

/// CreateContainerView over the root folder, read it whole, DestroyView (also on error).
async fn view(
    client: &VimClient,
    types: &[&str],
    props_by_type: &[(&str, &[&str])],
) -> Result<Vec<ObjectContent>> {
    let view = create_view(client, types).await?;
    let result = client
        .retrieve_properties(&view_spec(&view, props_by_type), Some(PAGE))
        .await;
    destroy_view(client, &view).await;
    result
}

impl Context {
    /// The inventory without its VMs (the same in a full read and a light pass), sorted
    /// by id so that its digest does not depend on the server's order.
    fn base(&self, provider: &str) -> Inventory {
        let mut inv = Inventory::default();
        for (mo, (name, parent)) in &self.tree {
            match mo.kind.as_str() {
                "Datacenter" => inv.datacenters.push(Datacenter {
                    provider: provider.to_string(),
                    id: mo.value.clone(),
                    name: name.clone(),
                }),
                "ClusterComputeResource" => inv.clusters.push(Cluster {
                    provider: provider.to_string(),
                    id: mo.value.clone(),
                    name: name.clone(),
                    datacenter: self.datacenter_of(parent.as_ref()),
                }),
                _ => {}
            }
        }
        inv.hosts = self
            .hosts
            .iter()
            .map(|h| self.map_host(provider, h))
            .collect();
        inv.datastores = self
            .datastores
            .iter()
            .map(|d| self.map_datastore(provider, d))
            .collect();
        inv.networks = self
            .networks
            .iter()
            .filter_map(|n| self.map_network(provider, n))
            .collect();
        inv.datacenters.sort_by(|a, b| a.id.cmp(&b.id));
        inv.clusters.sort_by(|a, b| a.id.cmp(&b.id));
        inv.hosts.sort_by(|a, b| a.id.cmp(&b.id));
        inv.datastores.sort_by(|a, b| a.id.cmp(&b.id));
        inv.networks.sort_by(|a, b| a.id.cmp(&b.id));
        inv
    }

    /// Walks `parent` up to the datacenter and returns its name ("" when none).
    fn datacenter_of(&self, start: Option<&MoRef>) -> String {
        let mut cur = start.cloned();
        for _ in 0..64 {
            let Some(mo) = cur else { break };
            let Some((name, parent)) = self.tree.get(&mo) else {
                break;
            };
            if mo.kind == "Datacenter" {
                return name.clone();
            }
            cur = parent.clone();
        }
        String::new()
    }

    fn map_host(&self, provider: &str, h: &ObjectContent) -> Host {
        let parent = h.get("parent").and_then(Node::moref);
        let cluster = parent
            .as_ref()
            .filter(|p| p.kind == "ClusterComputeResource")
            .and_then(|p| self.tree.get(p))
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        Host {
            provider: provider.to_string(),
            id: h.obj.value.clone(),
            name: h.text("name").unwrap_or_default().to_string(),
            datacenter: self.datacenter_of(parent.as_ref()),
            cluster,
            cpu_cores: num(h, "summary.hardware.numCpuCores").unwrap_or(0) as u32,
            cpu_mhz: num(h, "summary.hardware.cpuMhz").unwrap_or(0) as u32,
            memory_mb: num(h, "summary.hardware.memorySize").unwrap_or(0) / (1024 * 1024),
            connection_state: h
                .text("runtime.connectionState")
                .unwrap_or("unknown")
                .to_string(),
            power: match h.text("runtime.powerState") {
                Some("poweredOn") => PowerState::PoweredOn,
                Some("standBy") => PowerState::Suspended,
                _ => PowerState::PoweredOff,
            },
        }
    }

    fn map_datastore(&self, provider: &str, d: &ObjectContent) -> Datastore {
        const GB: u64 = 1024 * 1024 * 1024;
        Datastore {
            provider: provider.to_string(),
            id: d.obj.value.clone(),
            name: d.text("name").unwrap_or_default().to_string(),
            datacenter: self.datacenter_of(d.get("parent").and_then(Node::moref).as_ref()),
            kind: d.text("summary.type").unwrap_or_default().to_string(),
            capacity_gb: num(d, "summary.capacity").unwrap_or(0) / GB,
            free_gb: num(d, "summary.freeSpace").unwrap_or(0) / GB,
        }
    }

    /// Standard networks and DV port groups; uplink port groups are skipped.
    fn map_network(&self, provider: &str, n: &ObjectContent) -> Option<Network> {
        let name = n.text("name").unwrap_or_default().to_string();
        let distributed = n.obj.kind == "DistributedVirtualPortgroup";
        if distributed
            && (self.uplinks.contains(&n.obj) || name.to_ascii_lowercase().contains("uplink"))
        {
            return None;
        }
        let vlan = if distributed {
            n.get("config.defaultPortConfig")
                .and_then(|c| c.child("vlan"))
                .and_then(single_vlan)
        } else {
            None
        };
        Some(Network {
            provider: provider.to_string(),
            id: n.obj.value.clone(),
            datacenter: self.datacenter_of(n.get("parent").and_then(Node::moref).as_ref()),
            name,
            kind: if distributed {
                NetworkKind::Distributed
            } else {
                NetworkKind::Standard
            },
            vlan,
        })
    }

    fn map_vm(&self, provider: &str, v: &ObjectContent) -> Vm {
        let host = v
            .get("runtime.host")
            .and_then(Node::moref)
            .and_then(|h| self.host_index.get(&h))
            .map(|&i| &self.hosts[i]);
        let host_parent = host.and_then(|h| h.get("parent")).and_then(Node::moref);
        let cluster = host_parent
            .as_ref()
            .filter(|p| p.kind == "ClusterComputeResource")
            .and_then(|p| self.tree.get(p))
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        let parent = v.get("parent").and_then(Node::moref);
        let folder = parent
            .as_ref()
            .and_then(|p| self.tree.get(p))
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        let mut datacenter = self.datacenter_of(parent.as_ref());
        if datacenter.is_empty() {
            datacenter = self.datacenter_of(host_parent.as_ref());
        }
        let guest_ip = v
            .text("guest.ipAddress")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let mut ips: Vec<String> = guest_ip.iter().cloned().collect();
        if let Some(net) = v.get("guest.net") {
            for nic in &net.children {
                for ip in nic.children_named("ipAddress") {
                    if !ip.text.is_empty() && !ips.contains(&ip.text) {
                        ips.push(ip.text.clone());
                    }
                }
            }
        }
        let (nics, disks) = v
            .get("config.hardware.device")
            .map(|d| self.map_devices(d))
            .unwrap_or_default();
        Vm {
            provider: provider.to_string(),
            id: v.obj.value.clone(),
            name: v.text("name").unwrap_or_default().to_string(),
            uuid: v.text("config.uuid").unwrap_or_default().to_string(),
            instance_uuid: v
                .text("config.instanceUuid")
                .unwrap_or_default()
                .to_string(),
            datacenter,
            cluster,
            host: host
                .and_then(|h| h.text("name"))
                .unwrap_or_default()
                .to_string(),
            folder,
            power: v
                .text("runtime.powerState")
                .and_then(PowerState::parse)
                .unwrap_or(PowerState::PoweredOff),
            cpu: num(v, "config.hardware.numCPU").unwrap_or(0) as u32,
            memory_mb: num(v, "config.hardware.memoryMB").unwrap_or(0),
            guest_os: v
                .text("config.guestFullName")
                .unwrap_or_default()
                .to_string(),
            guest_hostname: v.text("guest.hostName").unwrap_or_default().to_string(),
            guest_ip,
            ips,
            tools_status: tools_status(v.text("guest.toolsRunningStatus")).to_string(),
            template: v.text("summary.config.template") == Some("true"),
            nics,
            disks,
            tags: v
                .get("customValue")
                .map(|values| self.tags(values))
                .unwrap_or_default(),
        }
    }

    /// The custom attribute names, in key order.
    fn fields(&self) -> std::collections::BTreeMap<i64, String> {
        self.field_names
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Custom attribute values as tags: `name:value`, or `name` when the value is empty.
    /// One value per attribute, the last one listed (vcsim appends on every SetField).
    fn tags(&self, values: &Node) -> Vec<String> {
        let by_key: HashMap<i64, &str> = values
            .children
            .iter()
            .filter_map(|v| Some((v.parse_at::<i64>("key")?, v.text_at("value").unwrap_or(""))))
            .collect();
        let mut tags: Vec<String> = by_key
            .into_iter()
            .filter_map(|(key, value)| {
                let name = self.field_names.get(&key)?;
                let value = value.trim();
                Some(if value.is_empty() {
                    name.clone()
                } else {
                    format!("{name}:{value}")
                })
            })
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    fn map_devices(&self, devices: &Node) -> (Vec<Nic>, Vec<Disk>) {
        let mut nics = Vec::new();
        let mut disks = Vec::new();
        for d in &devices.children {
            let ty = d.xsi_type.as_deref().unwrap_or("");
            let label = d
                .text_at("deviceInfo.label")
                .unwrap_or_default()
                .to_string();
            if ty == "VirtualDisk" {
                let kb: u64 = d.parse_at("capacityInKB").unwrap_or(0);
                let bytes: u64 = d.parse_at("capacityInBytes").unwrap_or(kb * 1024);
                let datastore = d
                    .path("backing.datastore")
                    .and_then(Node::moref)
                    .and_then(|m| self.datastore_names.get(&m).cloned())
                    .or_else(|| d.text_at("backing.fileName").and_then(datastore_of_path))
                    .unwrap_or_default();
                disks.push(Disk {
                    label,
                    capacity_gb: bytes.div_ceil(1024 * 1024 * 1024),
                    datastore,
                    unit: d.parse_at("unitNumber").unwrap_or(0),
                });
            } else if is_ethernet_card(d) {
                nics.push(Nic {
                    label,
                    mac: d.text_at("macAddress").unwrap_or_default().to_string(),
                    network: self.nic_network(d),
                    connected: d.text_at("connectable.connected") == Some("true"),
                });
            }
        }
        (nics, disks)
    }

    fn nic_network(&self, card: &Node) -> String {
        let Some(backing) = card.child("backing") else {
            return String::new();
        };
        if let Some(key) = backing.text_at("port.portgroupKey") {
            return self
                .portgroup_by_key
                .get(key)
                .cloned()
                .unwrap_or_else(|| key.to_string());
        }
        if let Some(name) = backing
            .child("network")
            .and_then(Node::moref)
            .and_then(|m| self.network_names.get(&m))
        {
            return name.clone();
        }
        backing
            .text_at("deviceName")
            .or_else(|| backing.text_at("opaqueNetworkId"))
            .unwrap_or_default()
            .to_string()
    }
}

fn num(oc: &ObjectContent, path: &str) -> Option<u64> {
    oc.text(path)
        .and_then(|t| t.trim().parse::<i64>().ok())
        .map(|n| n.max(0) as u64)
}

/// VirtualE1000, VirtualE1000e, VirtualVmxnet3, VirtualPCNet32, VirtualSriovEthernetCard...
fn is_ethernet_card(d: &Node) -> bool {
    let ty = d.xsi_type.as_deref().unwrap_or("");
    ty.starts_with("VirtualE1000")
        || ty.starts_with("VirtualVmxnet")
        || ty == "VirtualPCNet32"
        || ty == "VirtualSriovEthernetCard"
        || ty == "VirtualEthernetCard"
        || (d.child("macAddress").is_some() && d.child("backing").is_some())
}

/// `[LocalDS_0] vm/vm.vmdk` → `LocalDS_0`.
fn datastore_of_path(path: &str) -> Option<String> {
    let rest = path.trim().strip_prefix('[')?;
    let end = rest.find(']')?;
    Some(rest[..end].to_string())
}

/// A single VLAN id from a DV port setting's `vlan` (trunks, PVLANs and VLAN 0 → None).
fn single_vlan(vlan: &Node) -> Option<u16> {
    if vlan.xsi_type.as_deref() != Some("VmwareDistributedVirtualSwitchVlanIdSpec") {
        return None;
    }
    vlan.parse_at::<u16>("vlanId")
        .filter(|&id| id > 0 && id < 4095)
}

/// Tools state in the model's words, from `guest.toolsRunningStatus`: toolsOk or
/// toolsNotRunning (unset counts as not running).
fn tools_status(running: Option<&str>) -> &'static str {
    match running {
        Some("guestToolsRunning" | "guestToolsExecutingScripts") => "toolsOk",
        _ => "toolsNotRunning",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn a_full_read_carries_every_fingerprint_property() {
        for p in crate::fingerprint::VM_PATHS {
            assert!(VM_PATHS.contains(p), "{p} is watched but not read in full");
        }
    }

    #[test]
    fn datastore_from_file_name() {
        assert_eq!(
            datastore_of_path("[LocalDS_0] DC0_H0_VM0/disk1.vmdk").as_deref(),
            Some("LocalDS_0")
        );
        assert_eq!(datastore_of_path("no brackets"), None);
    }

    #[test]
    fn vlan_only_when_single() {
        let x = "xmlns:X=\"http://www.w3.org/2001/XMLSchema-instance\"";
        let single = parse(&format!(
            r#"<vlan {x} X:type="VmwareDistributedVirtualSwitchVlanIdSpec"><inherited>false</inherited><vlanId>120</vlanId></vlan>"#
        ))
        .unwrap();
        assert_eq!(single_vlan(&single), Some(120));
        let trunk = parse(&format!(
            r#"<vlan {x} X:type="VmwareDistributedVirtualSwitchTrunkVlanSpec"><vlanId><start>0</start><end>4094</end></vlanId></vlan>"#
        ))
        .unwrap();
        assert_eq!(single_vlan(&trunk), None);
    }

    #[test]
    fn tools_mapping() {
        assert_eq!(tools_status(Some("guestToolsRunning")), "toolsOk");
        assert_eq!(
            tools_status(Some("guestToolsNotRunning")),
            "toolsNotRunning"
        );
        assert_eq!(tools_status(None), "toolsNotRunning");
    }
}

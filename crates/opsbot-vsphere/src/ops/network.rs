//! Moving the first NIC to another standard or distributed port group, chosen by name or
//! VLAN id, refusing port groups the VM's host does not have.

use super::power::refuse_template;
use super::spec::{self, NicTarget};
use super::{reject, Ctx};
use crate::client::MoRef;
use crate::xml::Node;
use opsbot_core::{Done, HostNeed, NetworkName, OpOutcome, Place, ProviderError, Rejection, Step};

/// NIC device types (`VirtualEthernetCard` subtypes).
const NIC_TYPES: [&str; 8] = [
    "VirtualE1000",
    "VirtualE1000e",
    "VirtualVmxnet",
    "VirtualVmxnet2",
    "VirtualVmxnet3",
    "VirtualVmxnet3Vrdma",
    "VirtualPCNet32",
    "VirtualSriovEthernetCard",
];

/// One port group as vCenter describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PortGroup {
    pub moref: MoRef,
    pub name: String,
    /// Distributed port groups: key and switch.
    pub dv: Option<(String, MoRef)>,
    pub vlan: Option<u16>,
}

impl PortGroup {
    fn label(&self) -> NetworkName {
        NetworkName {
            name: self.name.clone(),
            vlan: self.vlan,
        }
    }
}

/// Picks the port group for `wanted` (a name, else a VLAN id) among those the VM's host
/// has (`HostSystem.network`: vcsim leaves `Network.host` empty); a match that exists
/// only elsewhere is refused as unavailable on the host.
pub(super) fn resolve<'a>(
    groups: &'a [PortGroup],
    host_networks: &[MoRef],
    host_name: &str,
    vm_name: &str,
    wanted: &str,
) -> Result<&'a PortGroup, Rejection> {
    let on_host = |g: &&PortGroup| host_networks.contains(&g.moref);
    let by_name: Vec<&PortGroup> = groups.iter().filter(|g| g.name == wanted).collect();
    let candidates: Vec<&PortGroup> = if !by_name.is_empty() {
        by_name
    } else if let Some(vlan) = opsbot_core::network::vlan_of(wanted) {
        groups.iter().filter(|g| g.vlan == Some(vlan)).collect()
    } else {
        Vec::new()
    };
    let usable: Vec<&PortGroup> = candidates.iter().copied().filter(on_host).collect();
    match usable.as_slice() {
        [one] => return Ok(one),
        [] => {}
        many => {
            return Err(Rejection::AmbiguousNetwork {
                wanted: wanted.to_string(),
                candidates: many.iter().map(|g| g.label()).collect(),
            });
        }
    }
    let available: Vec<NetworkName> = groups
        .iter()
        .filter(on_host)
        .map(PortGroup::label)
        .collect();
    if let Some(elsewhere) = candidates.first() {
        return Err(Rejection::NetworkNotOnHost {
            network: elsewhere.label(),
            vm: vm_name.to_string(),
            host: host_name.to_string(),
            available,
        });
    }
    Err(Rejection::NoSuchNetwork {
        wanted: wanted.to_string(),
        place: Place::HostOf {
            vm: vm_name.to_string(),
            host: host_name.to_string(),
        },
        available,
    })
}

async fn port_groups(ctx: &Ctx<'_>) -> Result<Vec<PortGroup>, crate::error::Error> {
    const NET: [&str; 1] = ["name"];
    const DVPG: [&str; 5] = [
        "name",
        "key",
        "config.distributedVirtualSwitch",
        "config.defaultPortConfig",
        "config.uplink",
    ];
    let objs = ctx
        .list(
            &["Network"],
            &[("Network", &NET), ("DistributedVirtualPortgroup", &DVPG)],
        )
        .await?;
    Ok(objs
        .into_iter()
        .filter(|o| o.text("config.uplink").map(str::trim) != Some("true"))
        .map(|o| {
            let dv = match (o.text("key"), o.get("config.distributedVirtualSwitch")) {
                (Some(k), Some(s)) => s.moref().map(|s| (k.trim().to_string(), s)),
                _ => None,
            };
            let vlan = o
                .get("config.defaultPortConfig")
                .and_then(|c| c.parse_at::<u16>("vlan.vlanId"))
                .filter(|v| *v > 0);
            PortGroup {
                name: o.text("name").unwrap_or_default().to_string(),
                dv,
                vlan,
                moref: o.obj,
            }
        })
        .collect())
}

/// The first NIC of a device list.
pub(super) fn first_nic(devices: &[Node]) -> Option<&Node> {
    devices.iter().find(|d| {
        d.xsi_type
            .as_deref()
            .is_some_and(|t| NIC_TYPES.contains(&t))
            || (d.child("macAddress").is_some() && d.child("backing").is_some())
    })
}

/// Does the NIC's backing already point at this port group?
fn nic_is_on(nic: &Node, g: &PortGroup) -> bool {
    match &g.dv {
        Some((key, _)) => nic.text_at("backing.port.portgroupKey") == Some(key.as_str()),
        None => nic.path("backing.network").and_then(Node::moref).as_ref() == Some(&g.moref),
    }
}

/// The port group the NIC is on now, if any.
fn current_name(nic: &Node, groups: &[PortGroup]) -> Option<String> {
    if let Some(g) = groups.iter().find(|g| nic_is_on(nic, g)) {
        return Some(g.name.clone());
    }
    nic.text_at("backing.deviceName")
        .filter(|t| !t.is_empty())
        .or_else(|| nic.text_at("backing.port.portgroupKey"))
        .map(str::to_string)
}

pub(super) async fn set_network(
    ctx: &Ctx<'_>,
    id: &str,
    wanted: &str,
) -> Result<OpOutcome, ProviderError> {
    let vm = ctx
        .facts(id, &["config.hardware.device", "runtime.host"])
        .await?;
    refuse_template(&vm)?;
    let fail = |e| ctx.fail(&vm.name, id, e);
    let devices: Vec<Node> = vm
        .props
        .get("config.hardware.device")
        .map(|d| d.children.clone())
        .unwrap_or_default();
    let nic = first_nic(&devices).ok_or_else(|| {
        reject(Rejection::NoNic {
            vm: vm.name.clone(),
        })
    })?;
    let host = ctx
        .host_of(&vm, id, HostNeed::Network, &["network"])
        .await?;
    let host_name = host.name;
    let host_networks = host
        .props
        .get("network")
        .map(Node::morefs)
        .unwrap_or_default();
    let groups = port_groups(ctx).await.map_err(fail)?;
    let target = resolve(&groups, &host_networks, &host_name, &vm.name, wanted).map_err(reject)?;
    if nic_is_on(nic, target) {
        return Err(reject(Rejection::AlreadyOnNetwork {
            vm: vm.name.clone(),
            network: target.name.clone(),
        }));
    }
    let old = current_name(nic, &groups);
    let backing = match &target.dv {
        Some((key, switch)) => {
            let uuid = ctx
                .client
                .retrieve(switch, &["uuid"])
                .await
                .map_err(fail)?
                .get("uuid")
                .map(|n| n.text.trim().to_string())
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    reject(Rejection::SwitchWithoutUuid {
                        switch: switch.value.clone(),
                    })
                })?;
            NicTarget::Distributed {
                switch_uuid: uuid,
                portgroup_key: key.clone(),
            }
        }
        None => NicTarget::Standard {
            name: target.name.clone(),
            network: target.moref.clone(),
        },
    };
    let step = Step::SwitchingNic {
        to: target.name.clone(),
    };
    ctx.progress.report(30, &step);
    let args = spec::reconfig_edit_nic(nic, &backing);
    match ctx.quick_task("ReconfigVM_Task", &vm.moref, &args).await {
        Ok(_) => {
            let done = Done::NicMoved {
                vm: vm.name.clone(),
                from: old,
                to: target.label(),
            };
            ctx.done(&vm.moref, done).await
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<PortGroup> {
        vec![
            PortGroup {
                moref: MoRef::new("Network", "network-7"),
                name: "VM Network".into(),
                dv: None,
                vlan: None,
            },
            PortGroup {
                moref: MoRef::new("DistributedVirtualPortgroup", "dvportgroup-13"),
                name: "pg-20".into(),
                dv: Some((
                    "dvportgroup-13".into(),
                    MoRef::new("DistributedVirtualSwitch", "dvs-1"),
                )),
                vlan: Some(20),
            },
            PortGroup {
                moref: MoRef::new("DistributedVirtualPortgroup", "dvportgroup-14"),
                name: "pg-30".into(),
                dv: Some((
                    "dvportgroup-14".into(),
                    MoRef::new("DistributedVirtualSwitch", "dvs-1"),
                )),
                vlan: Some(30),
            },
        ]
    }

    #[test]
    fn resolves_by_name_or_vlan_on_the_host() {
        let g = groups();
        let h1 = [
            MoRef::new("Network", "network-7"),
            MoRef::new("DistributedVirtualPortgroup", "dvportgroup-13"),
        ];
        assert_eq!(
            resolve(&g, &h1, "esx1", "web", "pg-20").unwrap().name,
            "pg-20"
        );
        assert_eq!(
            resolve(&g, &h1, "esx1", "web", "VLAN 20").unwrap().name,
            "pg-20"
        );
        assert_eq!(resolve(&g, &h1, "esx1", "web", "20").unwrap().name, "pg-20");
        assert_eq!(
            resolve(&g, &h1, "esx1", "web", "VM Network").unwrap().name,
            "VM Network"
        );
    }

    #[test]
    fn refuses_port_groups_missing_on_the_host() {
        let g = groups();
        let h1 = [
            MoRef::new("Network", "network-7"),
            MoRef::new("DistributedVirtualPortgroup", "dvportgroup-13"),
        ];
        let refusal = |e| opsbot_engine::render::provider::rejection(&e);
        let e = refusal(resolve(&g, &h1, "esx1", "web", "pg-30").unwrap_err());
        assert_eq!(
            e,
            "端口组 pg-30(VLAN 30) 在 web 所在主机 esx1 上不可用;该主机可用: VM Network、pg-20(VLAN 20)"
        );
        let e = refusal(resolve(&g, &h1, "esx1", "web", "vlan30").unwrap_err());
        assert!(e.contains("不可用"), "{e}");
        let e = refusal(resolve(&g, &h1, "esx1", "web", "nope").unwrap_err());
        assert!(e.starts_with("没有端口组或 VLAN \"nope\""), "{e}");
    }
}

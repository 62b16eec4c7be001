//! What the pool already knows about a VM operation, checked before anyone is asked to
//! confirm it: a plan that the provider would refuse is answered at once, with the
//! reason and the valid choices, instead of after 确认 as a failed job. The provider
//! still checks again when it runs (the pool may be behind the cluster).
//!
//! The refusals are the provider's own [`Rejection`]s where one fits, so chat, the REST
//! API and a failed job word the same problem the same way.

use crate::command::{CPU_RANGE, MEMORY_GB_RANGE};
use crate::pool::PoolView;
use crate::render;
use opsbot_core::{Datastore, Hardware, Network, PowerState, Rejection, SpaceFor, Vm, VmOperation};

/// `op` on `vm` as it will run (a VLAN or port group resolved to the port group's name),
/// or why it cannot: the text the asker reads.
pub(super) fn check(pool: &PoolView, vm: &Vm, op: VmOperation) -> Result<VmOperation, String> {
    let refuse = |r: Rejection| render::provider::rejection(&r);
    match op {
        VmOperation::SetCpu { vm: id, count } => {
            let cores = host_of(pool, vm).map(|h| (h.name.clone(), h.cpu_cores));
            let max = cores.as_ref().map_or(CPU_RANGE.1, |(_, c)| *c);
            let choices = || size_choices(vm, u64::from(vm.cpu), u64::from(max), "");
            if count == vm.cpu {
                return Err(format!(
                    "{};{}",
                    refuse(Rejection::CpuUnchanged {
                        vm: vm.name.clone(),
                        count,
                    }),
                    choices()
                ));
            }
            if count < vm.cpu && vm.power == PowerState::PoweredOn {
                return Err(format!(
                    "{};{}",
                    refuse(Rejection::ShrinkNeedsPowerOff {
                        vm: vm.name.clone(),
                        what: Hardware::Cpu,
                    }),
                    choices()
                ));
            }
            if let Some((host, cores)) = cores {
                if count > cores {
                    return Err(format!(
                        "{};{}",
                        refuse(Rejection::CpuOverHost { count, host, cores }),
                        choices()
                    ));
                }
            }
            Ok(VmOperation::SetCpu { vm: id, count })
        }
        VmOperation::SetMemory { vm: id, gb } => {
            let mb = u64::from(gb) * 1024;
            let host = host_of(pool, vm).map(|h| (h.name.clone(), h.memory_mb / 1024));
            let max = host
                .as_ref()
                .map_or(u64::from(MEMORY_GB_RANGE.1), |(_, g)| *g);
            let choices = || size_choices(vm, vm.memory_mb / 1024, max, " GiB");
            if mb == vm.memory_mb {
                return Err(format!(
                    "{};{}",
                    refuse(Rejection::MemoryUnchanged {
                        vm: vm.name.clone(),
                        gb,
                    }),
                    choices()
                ));
            }
            if mb < vm.memory_mb && vm.power == PowerState::PoweredOn {
                return Err(format!(
                    "{};{}",
                    refuse(Rejection::ShrinkNeedsPowerOff {
                        vm: vm.name.clone(),
                        what: Hardware::Memory,
                    }),
                    choices()
                ));
            }
            if let Some((host, host_gb)) = host {
                if u64::from(gb) > host_gb {
                    return Err(format!(
                        "{};{}",
                        refuse(Rejection::MemoryOverHost { gb, host, host_gb }),
                        choices()
                    ));
                }
            }
            Ok(VmOperation::SetMemory { vm: id, gb })
        }
        VmOperation::SetNetwork { vm: id, network } => {
            // A pool that knows no port group here cannot judge: the provider will.
            if !pool
                .inventory
                .networks
                .iter()
                .any(|n| n.provider == vm.provider && n.datacenter == vm.datacenter)
            {
                return Ok(VmOperation::SetNetwork { vm: id, network });
            }
            let net = resolve_network(pool, vm, &network)?;
            let Some(nic) = vm.nics.first() else {
                return Err(refuse(Rejection::NoNic {
                    vm: vm.name.clone(),
                }));
            };
            if nic.network == net.name {
                return Err(refuse(Rejection::AlreadyOnNetwork {
                    vm: vm.name.clone(),
                    network: net.name.clone(),
                }));
            }
            Ok(VmOperation::SetNetwork {
                vm: id,
                network: net.name.clone(),
            })
        }
        VmOperation::AddDisk {
            vm: id,
            gb,
            datastore,
        } => {
            // A pool that knows no datastore of this provider cannot judge.
            let known = pool
                .inventory
                .datastores
                .iter()
                .any(|d| d.provider == vm.provider);
            let ds = match (&datastore, vm.disks.first()) {
                _ if !known => None,
                (Some(wanted), _) => Some(datastore_in(pool, vm, wanted)?),
                // Without a datastore the provider places the disk beside the first
                // one; one the pool does not know is the provider's to judge.
                (None, Some(first)) => datastore_in(pool, vm, &first.datastore).ok(),
                (None, None) => {
                    return Err(format!(
                        "{} 没有磁盘,请指定存储;可选: {}",
                        vm.name,
                        datastore_choices(pool, vm)
                    ))
                }
            };
            if let Some(ds) = ds.filter(|ds| u64::from(gb) > ds.free_gb) {
                return Err(refuse(Rejection::NotEnoughSpace {
                    datastore: ds.name.clone(),
                    free_gb: ds.free_gb,
                    need_gb: u64::from(gb),
                    purpose: SpaceFor::NewDisk,
                }));
            }
            Ok(VmOperation::AddDisk {
                vm: id,
                gb,
                datastore,
            })
        }
        // vCenter destroys only a VM that is off; said before the prompt, with the
        // command that gets it there.
        VmOperation::Delete { .. } if vm.power != PowerState::PoweredOff => {
            Err(refuse(Rejection::DeleteNeedsPowerOff {
                vm: vm.name.clone(),
                power: Some(vm.power.as_str().to_string()),
            }))
        }
        op => Ok(op),
    }
}

/// The sizes a CPU or memory change may ask for: above the current one while the VM
/// runs (hot add only grows), any other up to the host's size when it is off.
fn size_choices(vm: &Vm, current: u64, max: u64, unit: &str) -> String {
    if vm.power == PowerState::PoweredOn {
        if current >= max {
            format!("它已达到主机上限 {max}{unit};减少需要先关机")
        } else {
            format!("开机中可选 {}–{max}{unit}", current + 1)
        }
    } else {
        format!("可选 1–{max}{unit}(当前 {current}{unit})")
    }
}

fn host_of<'a>(pool: &'a PoolView, vm: &Vm) -> Option<&'a opsbot_core::Host> {
    pool.inventory
        .hosts
        .iter()
        .find(|h| h.provider == vm.provider && h.name == vm.host)
}

/// The port group `wanted` names in the VM's datacenter: its name, else a VLAN id that
/// exactly one port group carries.
fn resolve_network<'a>(pool: &'a PoolView, vm: &Vm, wanted: &str) -> Result<&'a Network, String> {
    let nets: Vec<&Network> = pool
        .inventory
        .networks
        .iter()
        .filter(|n| n.provider == vm.provider && n.datacenter == vm.datacenter)
        .collect();
    opsbot_core::network::resolve_in_datacenter(&nets, &vm.datacenter, wanted)
        .map_err(|r| render::provider::rejection(&r))
}

/// The datastore `wanted` in the VM's datacenter; one of that name elsewhere, or none,
/// is refused with the datacenter's datastores and their free space.
fn datastore_in<'a>(pool: &'a PoolView, vm: &Vm, wanted: &str) -> Result<&'a Datastore, String> {
    let same_provider = || {
        pool.inventory
            .datastores
            .iter()
            .filter(|d| d.provider == vm.provider)
    };
    if let Some(d) = same_provider().find(|d| d.name == wanted && d.datacenter == vm.datacenter) {
        return Ok(d);
    }
    let choices = datastore_choices(pool, vm);
    Err(match same_provider().find(|d| d.name == wanted) {
        Some(elsewhere) => format!(
            "存储 {wanted} 在数据中心 {},不在 {} 所在的数据中心 {};可选: {choices}",
            elsewhere.datacenter, vm.name, vm.datacenter
        ),
        None => format!(
            "数据中心 {} 没有存储 {wanted};可选: {choices}",
            vm.datacenter
        ),
    })
}

/// The datastores of the VM's datacenter with their free space, most free first.
fn datastore_choices(pool: &PoolView, vm: &Vm) -> String {
    let mut list: Vec<&Datastore> = pool
        .inventory
        .datastores
        .iter()
        .filter(|d| d.provider == vm.provider && d.datacenter == vm.datacenter)
        .collect();
    if list.is_empty() {
        return "(无)".into();
    }
    list.sort_by(|a, b| b.free_gb.cmp(&a.free_gb).then_with(|| a.name.cmp(&b.name)));
    list.iter()
        .map(|d| format!("{}(剩余 {})", d.name, crate::format::fmt_size(d.free_gb)))
        .collect::<Vec<_>>()
        .join("、")
}

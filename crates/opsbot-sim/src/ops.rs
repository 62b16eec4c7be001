//! What each VM operation does to the simulated estate, with vCenter's refusals.

use crate::seed::{ascii_hostname, mac, sim_tags, uuid};
use crate::{SimProvider, SimState};
use opsbot_core::{
    commit_cancel, Cloned, Disk, Done, GuestTools, Hardware, Heartbeat, Host, Network, OpOutcome,
    PingResult, Pinged, Place, PowerState, Progress, ProviderError, Rejection, ResetReason,
    SpaceFor, Step, ToolsStatus, Vm, VmOperation, VmSize,
};

fn reject(r: Rejection) -> ProviderError {
    ProviderError::Rejected(r)
}

fn find_vm<'a>(
    state: &'a mut SimState,
    provider: &str,
    id: &str,
) -> Result<&'a mut Vm, ProviderError> {
    state
        .inventory
        .vms
        .iter_mut()
        .find(|v| v.id == id)
        .ok_or_else(|| ProviderError::NotFound {
            provider: provider.into(),
            kind: "VM",
            id: id.into(),
        })
}

fn host_of<'a>(state: &'a SimState, vm: &Vm) -> Option<&'a Host> {
    state.inventory.hosts.iter().find(|h| h.name == vm.host)
}

fn require_host_connected(state: &SimState, vm: &Vm) -> Result<(), ProviderError> {
    match host_of(state, vm) {
        Some(h) if h.connection_state != "connected" => Err(reject(Rejection::HostNotConnected {
            host: h.name.clone(),
            state: h.connection_state.clone(),
            vm: vm.name.clone(),
        })),
        _ => Ok(()),
    }
}

fn require_not_template(vm: &Vm) -> Result<(), ProviderError> {
    if vm.template {
        return Err(reject(Rejection::IsTemplate {
            vm: vm.name.clone(),
        }));
    }
    Ok(())
}

/// Resolves a port-group name or a VLAN id within the VM's datacenter.
fn resolve_network<'a>(
    state: &'a SimState,
    datacenter: &str,
    wanted: &str,
) -> Result<&'a Network, ProviderError> {
    let nets: Vec<&Network> = state
        .inventory
        .networks
        .iter()
        .filter(|n| n.datacenter == datacenter)
        .collect();
    opsbot_core::network::resolve_in_datacenter(&nets, datacenter, wanted).map_err(reject)
}

pub(crate) async fn execute(
    sim: &SimProvider,
    op: &VmOperation,
    progress: &dyn Progress,
) -> Result<OpOutcome, ProviderError> {
    let provider = sim.name.clone();
    match op {
        VmOperation::PowerOn { vm } => {
            sim.pause(800, progress).await?;
            commit_cancel(progress)?;
            sim.mutate(progress, |s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                require_host_connected(s, &snapshot)?;
                let v = find_vm(s, &provider, vm)?;
                if v.power == PowerState::PoweredOn {
                    return Err(reject(Rejection::AlreadyOn { vm: v.name.clone() }));
                }
                v.power = PowerState::PoweredOn;
                v.tools_status = "toolsOk".into();
                v.guest_ip = v.ips.first().cloned();
                v.guest_hostname = ascii_hostname(&v.name, v.guest_ip.as_deref());
                v.nics.iter_mut().for_each(|n| n.connected = true);
                Ok(done(Done::PoweredOn { vm: v.name.clone() }, v))
            })
            .await
        }
        VmOperation::PowerOff { vm } => {
            sim.pause(500, progress).await?;
            commit_cancel(progress)?;
            sim.mutate(progress, |s| {
                let v = find_vm(s, &provider, vm)?;
                require_not_template(v)?;
                if v.power == PowerState::PoweredOff {
                    return Err(reject(Rejection::AlreadyOff { vm: v.name.clone() }));
                }
                power_down(v);
                Ok(done(Done::PoweredOff { vm: v.name.clone() }, v))
            })
            .await
        }
        VmOperation::Shutdown { vm } => {
            sim.mutate(progress, |s| {
                let v = find_vm(s, &provider, vm)?;
                require_not_template(v)?;
                if v.power != PowerState::PoweredOn {
                    return Err(reject(Rejection::NotOn { vm: v.name.clone() }));
                }
                if v.tools_status != "toolsOk" {
                    return Err(reject(Rejection::ShutdownNeedsTools { vm: v.name.clone() }));
                }
                Ok(())
            })
            .await?;
            progress.report(30, &Step::ShutdownRequested);
            sim.pause(2000, progress).await?;
            commit_cancel(progress)?;
            sim.mutate(progress, |s| {
                let v = find_vm(s, &provider, vm)?;
                power_down(v);
                Ok(done(Done::GuestShutDown { vm: v.name.clone() }, v))
            })
            .await
        }
        VmOperation::Reboot { vm } => {
            sim.pause(1500, progress).await?;
            commit_cancel(progress)?;
            sim.mutate(progress, |s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                require_host_connected(s, &snapshot)?;
                let v = find_vm(s, &provider, vm)?;
                if v.power != PowerState::PoweredOn {
                    return Err(reject(Rejection::RebootNeedsPowerOn { vm: v.name.clone() }));
                }
                let reset = if v.tools_status == "toolsOk" {
                    None
                } else {
                    v.tools_status = "toolsOk".into();
                    Some(ResetReason::ToolsNotRunning { status: None })
                };
                Ok(done(
                    Done::Rebooted {
                        vm: v.name.clone(),
                        reset,
                    },
                    v,
                ))
            })
            .await
        }
        VmOperation::SetCpu { vm, count } => {
            sim.pause(600, progress).await?;
            commit_cancel(progress)?;
            let count = *count;
            sim.mutate(progress, |s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                let cores = host_of(s, &snapshot).map(|h| h.cpu_cores).unwrap_or(32);
                if count == 0 || count > cores {
                    return Err(reject(Rejection::CpuOverHost {
                        count,
                        host: snapshot.host.clone(),
                        cores,
                    }));
                }
                let v = find_vm(s, &provider, vm)?;
                if count == v.cpu {
                    return Err(reject(Rejection::CpuUnchanged {
                        vm: v.name.clone(),
                        count,
                    }));
                }
                if count < v.cpu && v.power == PowerState::PoweredOn {
                    return Err(reject(Rejection::ShrinkNeedsPowerOff {
                        vm: v.name.clone(),
                        what: Hardware::Cpu,
                    }));
                }
                let old = v.cpu;
                v.cpu = count;
                Ok(done(
                    Done::CpuChanged {
                        vm: v.name.clone(),
                        from: old,
                        to: count,
                    },
                    v,
                ))
            })
            .await
        }
        VmOperation::SetMemory { vm, gb } => {
            sim.pause(600, progress).await?;
            commit_cancel(progress)?;
            let mb = u64::from(*gb) * 1024;
            sim.mutate(progress, |s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                let host_mb = host_of(s, &snapshot)
                    .map(|h| h.memory_mb)
                    .unwrap_or(256 * 1024);
                if mb == 0 || mb > host_mb {
                    return Err(reject(Rejection::MemoryOverHost {
                        gb: *gb,
                        host: snapshot.host.clone(),
                        host_gb: host_mb / 1024,
                    }));
                }
                let v = find_vm(s, &provider, vm)?;
                if mb == v.memory_mb {
                    return Err(reject(Rejection::MemoryUnchanged {
                        vm: v.name.clone(),
                        gb: *gb,
                    }));
                }
                if mb < v.memory_mb && v.power == PowerState::PoweredOn {
                    return Err(reject(Rejection::ShrinkNeedsPowerOff {
                        vm: v.name.clone(),
                        what: Hardware::Memory,
                    }));
                }
                let old = v.memory_mb;
                v.memory_mb = mb;
                Ok(done(
                    Done::MemoryChanged {
                        vm: v.name.clone(),
                        from_mb: old,
                        to_gb: *gb,
                    },
                    v,
                ))
            })
            .await
        }
        VmOperation::AddDisk { vm, gb, datastore } => {
            progress.report(20, &Step::CreatingDisk);
            sim.pause(1200, progress).await?;
            commit_cancel(progress)?;
            let gb = u64::from(*gb);
            sim.mutate(progress, |s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                let wanted = match datastore {
                    Some(d) => d.clone(),
                    None => snapshot
                        .disks
                        .first()
                        .map(|d| d.datastore.clone())
                        .ok_or_else(|| {
                            reject(Rejection::NoDiskToPlaceBeside {
                                vm: snapshot.name.clone(),
                            })
                        })?,
                };
                let ds = s
                    .inventory
                    .datastores
                    .iter_mut()
                    .find(|d| d.name == wanted && d.datacenter == snapshot.datacenter)
                    .ok_or_else(|| {
                        reject(Rejection::NoSuchDatastore {
                            wanted: wanted.clone(),
                            place: Place::Datacenter(snapshot.datacenter.clone()),
                            available: Vec::new(),
                        })
                    })?;
                if gb > ds.free_gb {
                    return Err(reject(Rejection::NotEnoughSpace {
                        datastore: ds.name.clone(),
                        free_gb: ds.free_gb,
                        need_gb: gb,
                        purpose: SpaceFor::NewDisk,
                    }));
                }
                ds.free_gb -= gb;
                let v = find_vm(s, &provider, vm)?;
                // SCSI unit 7 belongs to the controller itself.
                let unit = (0..16u32)
                    .filter(|u| *u != 7)
                    .find(|u| !v.disks.iter().any(|d| d.unit == *u))
                    .ok_or_else(|| {
                        reject(Rejection::ScsiControllerFull {
                            vm: snapshot.name.clone(),
                        })
                    })?;
                let number = v.disks.len() + 1;
                v.disks.push(Disk {
                    label: format!("Hard disk {number}"),
                    capacity_gb: gb,
                    datastore: wanted.clone(),
                    unit,
                });
                Ok(done(
                    Done::DiskAdded {
                        vm: v.name.clone(),
                        number,
                        gb,
                        datastore: wanted,
                        bus: 0,
                        unit,
                    },
                    v,
                ))
            })
            .await
        }
        VmOperation::SetNetwork { vm, network } => {
            sim.pause(700, progress).await?;
            commit_cancel(progress)?;
            sim.mutate(progress, |s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                let net = resolve_network(s, &snapshot.datacenter, network)?.clone();
                let v = find_vm(s, &provider, vm)?;
                let nic = v.nics.first_mut().ok_or_else(|| {
                    reject(Rejection::NoNic {
                        vm: snapshot.name.clone(),
                    })
                })?;
                if nic.network == net.name {
                    return Err(reject(Rejection::AlreadyOnNetwork {
                        vm: snapshot.name.clone(),
                        network: net.name.clone(),
                    }));
                }
                let old = std::mem::replace(&mut nic.network, net.name.clone());
                Ok(done(
                    Done::NicMoved {
                        vm: v.name.clone(),
                        from: Some(old),
                        to: net.label(),
                    },
                    v,
                ))
            })
            .await
        }
        VmOperation::Rename { vm, new_name } => {
            sim.pause(300, progress).await?;
            commit_cancel(progress)?;
            sim.mutate(progress, |s| {
                if s.inventory.vms.iter().any(|v| &v.name == new_name) {
                    return Err(reject(Rejection::NameTaken {
                        name: new_name.clone(),
                    }));
                }
                let v = find_vm(s, &provider, vm)?;
                let old = std::mem::replace(&mut v.name, new_name.clone());
                Ok(done(
                    Done::Renamed {
                        from: old,
                        to: new_name.clone(),
                    },
                    v,
                ))
            })
            .await
        }
        VmOperation::Ping { vm } => {
            sim.pause(200, progress).await?;
            let state = sim.load().await?;
            let v = state
                .inventory
                .vms
                .iter()
                .find(|v| &v.id == vm)
                .ok_or_else(|| ProviderError::NotFound {
                    provider: provider.clone(),
                    kind: "VM",
                    id: vm.clone(),
                })?;
            match (&v.guest_ip, v.power) {
                (Some(ip), PowerState::PoweredOn) => Ok(OpOutcome {
                    vm: None,
                    done: Done::Pinged(Pinged {
                        vm: v.name.clone(),
                        ip: ip.clone(),
                        result: PingResult::Replies {
                            sent: 4,
                            received: 4,
                            avg_ms: Some(0.3 + (v.name.len() % 6) as f64 / 10.0),
                        },
                        tools: GuestTools {
                            status: None,
                            heartbeat: Some(Heartbeat::Green),
                        },
                    }),
                }),
                (_, PowerState::PoweredOn) => Err(reject(Rejection::NoGuestIp {
                    vm: v.name.clone(),
                    tools: GuestTools {
                        status: Some(ToolsStatus::Other(v.tools_status.clone())),
                        heartbeat: None,
                    },
                })),
                _ => Err(reject(Rejection::Unreachable {
                    vm: v.name.clone(),
                    power: v.power.as_str().to_string(),
                })),
            }
        }
        VmOperation::Clone {
            template,
            name,
            ip,
            cpu,
            memory_gb,
        } => clone(sim, template, name, *ip, *cpu, *memory_gb, progress).await,
        VmOperation::Delete { vm } => {
            sim.pause(600, progress).await?;
            commit_cancel(progress)?;
            sim.mutate(progress, |s| {
                let v = find_vm(s, &provider, vm)?;
                require_not_template(v)?;
                // vCenter's Destroy_Task answers InvalidPowerState for a running VM.
                if v.power != PowerState::PoweredOff {
                    return Err(reject(Rejection::DeleteNeedsPowerOff {
                        vm: v.name.clone(),
                        power: Some(v.power.as_str().to_string()),
                    }));
                }
                let name = v.name.clone();
                s.inventory.vms.retain(|v| &v.id != vm);
                Ok(OpOutcome {
                    done: Done::Deleted { vm: name },
                    vm: None,
                })
            })
            .await
        }
    }
}

fn power_down(v: &mut Vm) {
    v.power = PowerState::PoweredOff;
    v.tools_status = "toolsNotRunning".into();
    v.guest_ip = None;
    v.guest_hostname.clear();
    v.nics.iter_mut().for_each(|n| n.connected = false);
}

fn done(done: Done, vm: &Vm) -> OpOutcome {
    OpOutcome {
        done,
        vm: Some(vm.clone()),
    }
}

async fn clone(
    sim: &SimProvider,
    template: &str,
    name: &str,
    ip: std::net::Ipv4Addr,
    cpu: Option<u32>,
    memory_gb: Option<u32>,
    progress: &dyn Progress,
) -> Result<OpOutcome, ProviderError> {
    let provider = sim.name.clone();
    let ip_s = ip.to_string();
    // Check everything vCenter would refuse before spending time on the copy.
    let (tpl, host, id) = sim
        .mutate(progress, |s| {
            let tpl = find_vm(s, &provider, template)?.clone();
            if !tpl.template {
                return Err(reject(Rejection::NotATemplate {
                    vm: tpl.name.clone(),
                }));
            }
            refuse_taken(s, name, &ip_s)?;
            let host = least_loaded_host(s, &tpl)
                .ok_or_else(|| {
                    reject(Rejection::NoHostInCluster {
                        cluster: tpl.cluster.clone(),
                    })
                })?
                .clone();
            if let Some(c) = cpu {
                if c == 0 || c > host.cpu_cores {
                    return Err(reject(Rejection::CpuOverHost {
                        count: c,
                        host: host.name.clone(),
                        cores: host.cpu_cores,
                    }));
                }
            }
            if let Some(m) = memory_gb {
                if m == 0 || u64::from(m) * 1024 > host.memory_mb {
                    return Err(reject(Rejection::MemoryOverHost {
                        gb: m,
                        host: host.name.clone(),
                        host_gb: host.memory_mb / 1024,
                    }));
                }
            }
            let need: u64 = tpl.disks.iter().map(|d| d.capacity_gb).sum();
            for d in &tpl.disks {
                let ds = s
                    .inventory
                    .datastores
                    .iter()
                    .find(|x| x.name == d.datastore && x.datacenter == tpl.datacenter);
                if let Some(ds) = ds {
                    if ds.free_gb < need {
                        return Err(reject(Rejection::NotEnoughSpace {
                            datastore: ds.name.clone(),
                            free_gb: ds.free_gb,
                            need_gb: need,
                            purpose: SpaceFor::Clone,
                        }));
                    }
                }
            }
            let id = s.next_id;
            s.next_id += 1;
            Ok((tpl, host.name, id))
        })
        .await?;

    for (pct, step) in [
        (10, Step::CloningDisks),
        (30, Step::CloningDisks),
        (50, Step::CloningDisks),
        (70, Step::RegisteringClone),
    ] {
        progress.report(pct, &step);
        sim.pause(700, progress).await?;
    }
    progress.report(80, &Step::CustomizingGuest { ip });
    sim.pause(600, progress).await?;
    progress.report(90, &Step::PoweringOn);
    sim.pause(500, progress).await?;

    // Until the clone is registered nothing of it exists: a cancellation up to here
    // leaves the estate as it was.
    commit_cancel(progress)?;
    sim.mutate(progress, |s| {
        // Another clone may have taken the name or IP while this one was copying.
        refuse_taken(s, name, &ip_s)?;
        let mut vm = tpl.clone();
        vm.id = format!("vm-{id}");
        vm.name = name.to_string();
        vm.uuid = uuid(0x4201_0000, id);
        vm.instance_uuid = uuid(0x5001_0000, id);
        vm.template = false;
        vm.folder = "vm".into();
        vm.host = host.clone();
        vm.power = PowerState::PoweredOn;
        vm.tools_status = "toolsOk".into();
        vm.guest_ip = Some(ip_s.clone());
        vm.ips = vec![ip_s.clone()];
        vm.guest_hostname = ascii_hostname(name, Some(&ip_s));
        // A clone is tagged as what it is, not as its template.
        vm.tags = sim_tags(&vm.cluster, name);
        if let Some(c) = cpu {
            vm.cpu = c;
        }
        if let Some(m) = memory_gb {
            vm.memory_mb = u64::from(m) * 1024;
        }
        for (i, nic) in vm.nics.iter_mut().enumerate() {
            nic.mac = mac(id * 8 + i as u64);
            nic.connected = true;
        }
        for d in &vm.disks {
            if let Some(ds) = s
                .inventory
                .datastores
                .iter_mut()
                .find(|x| x.name == d.datastore && x.datacenter == vm.datacenter)
            {
                ds.free_gb = ds.free_gb.saturating_sub(d.capacity_gb);
            }
        }
        let done = Done::Cloned(Cloned {
            name: name.to_string(),
            template: tpl.name.clone(),
            ip,
            network: None,
            size: Some(VmSize {
                cpu: vm.cpu,
                memory_mb: vm.memory_mb,
            }),
            host: vm.host.clone(),
        });
        s.inventory.vms.push(vm.clone());
        Ok(OpOutcome { done, vm: Some(vm) })
    })
    .await
}

/// Refuses a clone whose name or IP another VM has.
fn refuse_taken(s: &SimState, name: &str, ip: &str) -> Result<(), ProviderError> {
    if s.inventory.vms.iter().any(|v| v.name == name) {
        return Err(reject(Rejection::NameTaken { name: name.into() }));
    }
    if let Some(v) = s
        .inventory
        .vms
        .iter()
        .find(|v| v.ips.iter().any(|i| i == ip))
    {
        return Err(reject(Rejection::IpTaken {
            ip: ip.into(),
            vm: v.name.clone(),
        }));
    }
    Ok(())
}

/// The connected host of the template's cluster running the fewest powered-on VMs.
fn least_loaded_host<'a>(s: &'a SimState, tpl: &Vm) -> Option<&'a Host> {
    s.inventory
        .hosts
        .iter()
        .filter(|h| h.cluster == tpl.cluster && h.connection_state == "connected")
        .min_by_key(|h| {
            s.inventory
                .vms
                .iter()
                .filter(|v| v.host == h.name && v.power == PowerState::PoweredOn)
                .count()
        })
}

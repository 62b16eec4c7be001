//! What each VM operation does to the simulated estate, with vCenter's refusals.

use crate::seed::{ascii_hostname, mac, sim_tags, uuid};
use crate::{SimProvider, SimState};
use opsbot_core::{
    Disk, Host, Network, OpOutcome, PowerState, Progress, ProviderError, Vm, VmOperation,
};

fn reject(msg: impl Into<String>) -> ProviderError {
    ProviderError::Rejected(msg.into())
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
        Some(h) if h.connection_state != "connected" => Err(reject(format!(
            "主机 {} 状态为 {},无法操作虚拟机 {}",
            h.name, h.connection_state, vm.name
        ))),
        _ => Ok(()),
    }
}

fn require_not_template(vm: &Vm) -> Result<(), ProviderError> {
    if vm.template {
        return Err(reject(format!("{} 是模板,不能执行此操作", vm.name)));
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
    if let Some(n) = nets.iter().find(|n| n.name == wanted) {
        return Ok(n);
    }
    let vlan = wanted
        .trim()
        .trim_start_matches(['V', 'v'])
        .trim_start_matches(['L', 'l'])
        .trim_start_matches(['A', 'a'])
        .trim_start_matches(['N', 'n'])
        .trim()
        .parse::<u16>()
        .ok();
    if let Some(vlan) = vlan {
        let matches: Vec<&&Network> = nets.iter().filter(|n| n.vlan == Some(vlan)).collect();
        match matches.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                let names: Vec<&str> = many.iter().map(|n| n.name.as_str()).collect();
                return Err(reject(format!(
                    "VLAN {vlan} 对应多个端口组: {},请指定端口组名称",
                    names.join("、")
                )));
            }
        }
    }
    let known: Vec<String> = nets
        .iter()
        .map(|n| match n.vlan {
            Some(v) => format!("{}(VLAN {v})", n.name),
            None => n.name.clone(),
        })
        .collect();
    Err(reject(format!(
        "数据中心 {datacenter} 没有端口组或 VLAN \"{wanted}\";可选: {}",
        known.join("、")
    )))
}

pub(crate) async fn execute(
    sim: &SimProvider,
    op: &VmOperation,
    progress: &dyn Progress,
) -> Result<OpOutcome, ProviderError> {
    let provider = sim.name.clone();
    match op {
        VmOperation::PowerOn { vm } => {
            sim.pause(800).await;
            sim.mutate(|s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                require_host_connected(s, &snapshot)?;
                let v = find_vm(s, &provider, vm)?;
                if v.power == PowerState::PoweredOn {
                    return Err(reject(format!("{} 已经是开机状态", v.name)));
                }
                v.power = PowerState::PoweredOn;
                v.tools_status = "toolsOk".into();
                v.guest_ip = v.ips.first().cloned();
                v.guest_hostname = ascii_hostname(&v.name, v.guest_ip.as_deref());
                v.nics.iter_mut().for_each(|n| n.connected = true);
                Ok(done(format!("{} 已开机", v.name), v))
            })
            .await
        }
        VmOperation::PowerOff { vm } => {
            sim.pause(500).await;
            sim.mutate(|s| {
                let v = find_vm(s, &provider, vm)?;
                require_not_template(v)?;
                if v.power == PowerState::PoweredOff {
                    return Err(reject(format!("{} 已经是关机状态", v.name)));
                }
                power_down(v);
                Ok(done(format!("{} 已关机(强制断电)", v.name), v))
            })
            .await
        }
        VmOperation::Shutdown { vm } => {
            sim.mutate(|s| {
                let v = find_vm(s, &provider, vm)?;
                require_not_template(v)?;
                if v.power != PowerState::PoweredOn {
                    return Err(reject(format!("{} 没有开机", v.name)));
                }
                if v.tools_status != "toolsOk" {
                    return Err(reject(format!(
                        "{} 的 VMware Tools 未运行,无法关闭操作系统;可用 关机 强制断电",
                        v.name
                    )));
                }
                Ok(())
            })
            .await?;
            progress.report(30, "已通知客户机关闭操作系统");
            sim.pause(2000).await;
            sim.mutate(|s| {
                let v = find_vm(s, &provider, vm)?;
                power_down(v);
                Ok(done(format!("{} 的操作系统已关闭", v.name), v))
            })
            .await
        }
        VmOperation::Reboot { vm } => {
            sim.pause(1500).await;
            sim.mutate(|s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                require_host_connected(s, &snapshot)?;
                let v = find_vm(s, &provider, vm)?;
                if v.power != PowerState::PoweredOn {
                    return Err(reject(format!("{} 没有开机,无法重启", v.name)));
                }
                let how = if v.tools_status == "toolsOk" {
                    "已重启客户机操作系统"
                } else {
                    v.tools_status = "toolsOk".into();
                    "VMware Tools 未运行,已改为硬重置(reset)"
                };
                Ok(done(format!("{}: {how}", v.name), v))
            })
            .await
        }
        VmOperation::SetCpu { vm, count } => {
            sim.pause(600).await;
            let count = *count;
            sim.mutate(|s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                let cores = host_of(s, &snapshot).map(|h| h.cpu_cores).unwrap_or(32);
                if count == 0 || count > cores {
                    return Err(reject(format!(
                        "CPU 数 {count} 超出范围:主机 {} 只有 {cores} 个核心",
                        snapshot.host
                    )));
                }
                let v = find_vm(s, &provider, vm)?;
                if count == v.cpu {
                    return Err(reject(format!("{} 已经是 {count} 个 CPU", v.name)));
                }
                if count < v.cpu && v.power == PowerState::PoweredOn {
                    return Err(reject(format!(
                        "{} 正在运行,减少 CPU 需要先关机(热插拔只能增加)",
                        v.name
                    )));
                }
                let old = v.cpu;
                v.cpu = count;
                Ok(done(format!("{} 的 CPU: {old} → {count}", v.name), v))
            })
            .await
        }
        VmOperation::SetMemory { vm, gb } => {
            sim.pause(600).await;
            let mb = u64::from(*gb) * 1024;
            sim.mutate(|s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                let host_mb = host_of(s, &snapshot)
                    .map(|h| h.memory_mb)
                    .unwrap_or(256 * 1024);
                if mb == 0 || mb > host_mb {
                    return Err(reject(format!(
                        "内存 {gb} GiB 超出范围:主机 {} 只有 {} GiB",
                        snapshot.host,
                        host_mb / 1024
                    )));
                }
                let v = find_vm(s, &provider, vm)?;
                if mb == v.memory_mb {
                    return Err(reject(format!("{} 的内存已经是 {gb} GiB", v.name)));
                }
                if mb < v.memory_mb && v.power == PowerState::PoweredOn {
                    return Err(reject(format!(
                        "{} 正在运行,减少内存需要先关机(热添加只能增加)",
                        v.name
                    )));
                }
                let old = v.memory_mb / 1024;
                v.memory_mb = mb;
                Ok(done(format!("{} 的内存: {old} GiB → {gb} GiB", v.name), v))
            })
            .await
        }
        VmOperation::AddDisk { vm, gb, datastore } => {
            progress.report(20, "正在创建虚拟磁盘");
            sim.pause(1200).await;
            let gb = u64::from(*gb);
            sim.mutate(|s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                let wanted = match datastore {
                    Some(d) => d.clone(),
                    None => snapshot
                        .disks
                        .first()
                        .map(|d| d.datastore.clone())
                        .ok_or_else(|| reject("虚拟机没有磁盘,请指定存储"))?,
                };
                let ds = s
                    .inventory
                    .datastores
                    .iter_mut()
                    .find(|d| d.name == wanted && d.datacenter == snapshot.datacenter)
                    .ok_or_else(|| {
                        reject(format!(
                            "数据中心 {} 没有存储 {wanted}",
                            snapshot.datacenter
                        ))
                    })?;
                if gb > ds.free_gb {
                    return Err(reject(format!(
                        "存储 {} 剩余 {} GiB,不足以添加 {gb} GiB 磁盘",
                        ds.name, ds.free_gb
                    )));
                }
                ds.free_gb -= gb;
                let v = find_vm(s, &provider, vm)?;
                // SCSI unit 7 belongs to the controller itself.
                let unit = (0..16u32)
                    .filter(|u| *u != 7)
                    .find(|u| !v.disks.iter().any(|d| d.unit == *u))
                    .ok_or_else(|| reject("SCSI 控制器已满(15 块磁盘)"))?;
                let label = format!("Hard disk {}", v.disks.len() + 1);
                v.disks.push(Disk {
                    label: label.clone(),
                    capacity_gb: gb,
                    datastore: wanted.clone(),
                    unit,
                });
                Ok(done(
                    format!(
                        "{} 已添加 {label}: {gb} GiB,位于 {wanted}(SCSI 0:{unit})",
                        v.name
                    ),
                    v,
                ))
            })
            .await
        }
        VmOperation::SetNetwork { vm, network } => {
            sim.pause(700).await;
            sim.mutate(|s| {
                let snapshot = find_vm(s, &provider, vm)?.clone();
                require_not_template(&snapshot)?;
                let net = resolve_network(s, &snapshot.datacenter, network)?.clone();
                let v = find_vm(s, &provider, vm)?;
                let nic = v
                    .nics
                    .first_mut()
                    .ok_or_else(|| reject(format!("{} 没有网卡", snapshot.name)))?;
                if nic.network == net.name {
                    return Err(reject(format!("{} 已经在 {}", snapshot.name, net.name)));
                }
                let old = std::mem::replace(&mut nic.network, net.name.clone());
                let vlan = net.vlan.map(|v| format!("(VLAN {v})")).unwrap_or_default();
                Ok(done(
                    format!("{} 的网卡 1: {old} → {}{vlan}", v.name, net.name),
                    v,
                ))
            })
            .await
        }
        VmOperation::Rename { vm, new_name } => {
            sim.pause(300).await;
            sim.mutate(|s| {
                if s.inventory.vms.iter().any(|v| &v.name == new_name) {
                    return Err(reject(format!("已存在名为 {new_name} 的虚拟机")));
                }
                let v = find_vm(s, &provider, vm)?;
                let old = std::mem::replace(&mut v.name, new_name.clone());
                Ok(done(format!("{old} 已改名为 {new_name}"), v))
            })
            .await
        }
        VmOperation::Ping { vm } => {
            sim.pause(200).await;
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
                    message: format!(
                        "{} ({ip}) 可达:4/4 回复,平均 0.{} ms;VMware Tools 心跳正常",
                        v.name,
                        3 + v.name.len() % 6
                    ),
                }),
                (_, PowerState::PoweredOn) => Err(reject(format!(
                    "{} 已开机,但客户机没有报告 IP(VMware Tools: {}),无法 ping",
                    v.name, v.tools_status
                ))),
                _ => Err(reject(format!(
                    "{} 不可达:虚拟机处于{}状态",
                    v.name,
                    v.power.label()
                ))),
            }
        }
        VmOperation::Clone {
            template,
            name,
            ip,
            cpu,
            memory_gb,
        } => clone(sim, template, name, *ip, *cpu, *memory_gb, progress).await,
    }
}

fn power_down(v: &mut Vm) {
    v.power = PowerState::PoweredOff;
    v.tools_status = "toolsNotRunning".into();
    v.guest_ip = None;
    v.guest_hostname.clear();
    v.nics.iter_mut().for_each(|n| n.connected = false);
}

fn done(message: String, vm: &Vm) -> OpOutcome {
    OpOutcome {
        message,
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
        .mutate(|s| {
            let tpl = find_vm(s, &provider, template)?.clone();
            if !tpl.template {
                return Err(reject(format!("{} 不是模板", tpl.name)));
            }
            if s.inventory.vms.iter().any(|v| v.name == name) {
                return Err(reject(format!("已存在名为 {name} 的虚拟机")));
            }
            if let Some(v) = s.inventory.vms.iter().find(|v| v.ips.contains(&ip_s)) {
                return Err(reject(format!("IP {ip_s} 已被虚拟机 {} 使用", v.name)));
            }
            let host = least_loaded_host(s, &tpl)
                .ok_or_else(|| reject(format!("集群 {} 没有可用主机", tpl.cluster)))?
                .clone();
            if let Some(c) = cpu {
                if c == 0 || c > host.cpu_cores {
                    return Err(reject(format!(
                        "CPU 数 {c} 超出范围:主机 {} 只有 {} 个核心",
                        host.name, host.cpu_cores
                    )));
                }
            }
            if let Some(m) = memory_gb {
                if m == 0 || u64::from(m) * 1024 > host.memory_mb {
                    return Err(reject(format!(
                        "内存 {m} GiB 超出范围:主机 {} 只有 {} GiB",
                        host.name,
                        host.memory_mb / 1024
                    )));
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
                        return Err(reject(format!(
                            "存储 {} 剩余 {} GiB,不足以克隆 {need} GiB",
                            ds.name, ds.free_gb
                        )));
                    }
                }
            }
            let id = s.next_id;
            s.next_id += 1;
            Ok((tpl, host.name, id))
        })
        .await?;

    for (pct, note) in [
        (10, "正在克隆磁盘"),
        (30, "正在克隆磁盘"),
        (50, "正在克隆磁盘"),
        (70, "磁盘克隆完成,正在注册虚拟机"),
    ] {
        progress.report(pct, note);
        sim.pause(700).await;
    }
    progress.report(80, &format!("正在自定义客户机网络: IP {ip_s}"));
    sim.pause(600).await;
    progress.report(90, "正在开机");
    sim.pause(500).await;

    sim.mutate(|s| {
        // Another clone may have taken the name or IP while this one was copying.
        if s.inventory.vms.iter().any(|v| v.name == name) {
            return Err(reject(format!("已存在名为 {name} 的虚拟机")));
        }
        if let Some(v) = s.inventory.vms.iter().find(|v| v.ips.contains(&ip_s)) {
            return Err(reject(format!("IP {ip_s} 已被虚拟机 {} 使用", v.name)));
        }
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
        let message = format!(
            "克隆完成: {name}(模板 {}),IP {ip_s},{} CPU / {} GiB 内存,主机 {},已开机",
            tpl.name,
            vm.cpu,
            vm.memory_mb / 1024,
            vm.host
        );
        s.inventory.vms.push(vm.clone());
        Ok(OpOutcome {
            message,
            vm: Some(vm),
        })
    })
    .await
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

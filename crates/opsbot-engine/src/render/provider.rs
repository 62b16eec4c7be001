//! Every sentence about a provider's work: what an operation did, why it was refused,
//! why a provider could not be used, and the progress steps of long operations. The
//! providers report these as data (`opsbot_core::outcome`); wording lives only here.

use opsbot_core::{
    CloneStep, CloneStepFailed, Cloned, Done, GuestTools, Hardware, Heartbeat, HostNeed,
    NetworkName, Outage, PingFailure, PingResult, Pinged, Place, PowerState, ProviderError,
    Rejection, ResetReason, SpaceFor, Step, ToolsStatus,
};

/// A job this instance ran was taken from it (another instance found it silent past the
/// lease, such as paused or cut off, and interrupted the job) before its change was
/// made.
pub const FENCED_OUT: &str =
    "本实例曾失联超时,任务已被其他 opsbot 实例中断(接管),本实例未执行此操作";

/// The text of a failed provider call, as a job or a sync reports it.
pub fn error(e: &ProviderError) -> String {
    match e {
        ProviderError::Rejected(r) | ProviderError::Partial { rejection: r, .. } => rejection(r),
        ProviderError::NotFound { provider, kind, id } => {
            format!("{kind} {id} not found on provider {provider}")
        }
        ProviderError::Unavailable { provider, cause } => {
            format!("provider {provider} unavailable: {}", outage(cause))
        }
        ProviderError::Unsupported(what) => format!("{what} is not supported by this provider"),
        ProviderError::Cancelled => "已按请求取消,操作未完成".into(),
        ProviderError::FencedOut => FENCED_OUT.into(),
    }
}

/// What an operation did.
pub fn done(d: &Done) -> String {
    match d {
        Done::PoweredOn { vm } => format!("{vm} 已开机"),
        Done::PoweredOff { vm } => format!("{vm} 已关机(强制断电)"),
        Done::GuestShutDown { vm } => format!("{vm} 的操作系统已关闭"),
        Done::Rebooted { vm, reset: None } => format!("{vm}: 已重启客户机操作系统"),
        Done::Rebooted {
            vm,
            reset: Some(why),
        } => format!("{vm}: {},已改为硬重置(reset)", reset_reason(why)),
        Done::CpuChanged { vm, from, to } => format!("{vm} 的 CPU: {from} → {to}"),
        Done::MemoryChanged { vm, from_mb, to_gb } => {
            format!("{vm} 的内存: {} → {to_gb} GiB", memory(*from_mb))
        }
        Done::DiskAdded {
            vm,
            number,
            gb,
            datastore,
            bus,
            unit,
        } => {
            format!("{vm} 已添加硬盘 {number}: {gb} GiB,位于 {datastore}(SCSI {bus}:{unit})")
        }
        Done::NicMoved { vm, from, to } => format!(
            "{vm} 的网卡 1: {} → {}",
            from.as_deref().unwrap_or("(未连接)"),
            network(to)
        ),
        Done::Renamed { from, to } => format!("{from} 已改名为 {to}"),
        Done::Cloned(c) => cloned(c),
        Done::Pinged(p) => pinged(p),
        Done::Deleted { vm } => format!("{vm} 已删除(连同其磁盘,不可恢复)"),
    }
}

fn reset_reason(r: &ResetReason) -> String {
    match r {
        ResetReason::ToolsNotRunning { status: None } => "VMware Tools 未运行".into(),
        ResetReason::ToolsNotRunning {
            status: Some(status),
        } => format!("VMware Tools 未运行({status})"),
        ResetReason::ToolsStatusUnknown => "VMware Tools 状态未知".into(),
        ResetReason::GuestCannotReboot { fault } => format!("客户机无法重启({fault})"),
    }
}

fn cloned(c: &Cloned) -> String {
    let mut text = format!("克隆完成: {}(模板 {}),IP {}", c.name, c.template, c.ip);
    if let Some(net) = &c.network {
        text.push_str(&format!("/{}", net.prefix_len));
        match net.gateway {
            Some(g) => text.push_str(&format!(",网关 {g}")),
            None => text.push_str(",未配置网关"),
        }
    }
    if let Some(size) = &c.size {
        text.push_str(&format!(
            ",{} CPU / {} 内存",
            size.cpu,
            memory(size.memory_mb)
        ));
    }
    text.push_str(&format!(",主机 {},已开机", c.host));
    text
}

fn pinged(p: &Pinged) -> String {
    let (vm, ip, tools) = (&p.vm, &p.ip, guest_tools(&p.tools));
    match &p.result {
        PingResult::Replies {
            sent,
            received,
            avg_ms,
        } => format!("{vm} ({ip}) {};{tools}", replies(*sent, *received, *avg_ms)),
        PingResult::Unchecked(why) => {
            format!("{vm} ({ip}) 无法检测连通性:{};{tools}", ping_failure(why))
        }
    }
}

/// A ping's count of replies in words: `可达:3/3 回复,平均 0.05 ms`, `不可达:0/3 回复`.
pub fn replies(sent: u32, received: u32, avg_ms: Option<f64>) -> String {
    if received == 0 {
        return format!("不可达:{received}/{sent} 回复");
    }
    let avg = match avg_ms {
        Some(a) if a < 1.0 => format!(",平均 {a:.2} ms"),
        Some(a) => format!(",平均 {a:.1} ms"),
        None => String::new(),
    };
    format!("可达:{received}/{sent} 回复{avg}")
}

fn ping_failure(f: &PingFailure) -> String {
    match f {
        PingFailure::TimedOut => "ping 超时".into(),
        PingFailure::NoCommand => "本机没有 ping 命令".into(),
        PingFailure::CannotRun(e) => format!("无法运行 ping: {e}"),
        PingFailure::Failed(stderr) => format!("ping 失败: {stderr}"),
    }
}

fn guest_tools(t: &GuestTools) -> String {
    let status = t.status.as_ref().map(|s| match s {
        ToolsStatus::Running => "VMware Tools 运行中".to_string(),
        ToolsStatus::NotRunning => "VMware Tools 未运行".into(),
        ToolsStatus::Starting => "VMware Tools 正在启动".into(),
        ToolsStatus::Unknown => "VMware Tools 状态未知".into(),
        ToolsStatus::Other(other) => format!("VMware Tools {}", crate::words::tools(other)),
    });
    let beat = t.heartbeat.map(|b| match b {
        Heartbeat::Green => "心跳正常",
        Heartbeat::Yellow => "心跳断续",
        Heartbeat::Red => "无心跳",
        Heartbeat::Unknown => "心跳未知",
    });
    match (status, beat) {
        (Some(s), Some(b)) => format!("{s},{b}"),
        (Some(s), None) => s,
        (None, Some(b)) => format!("VMware Tools {b}"),
        (None, None) => "VMware Tools 状态未知".into(),
    }
}

/// Why a request was refused.
pub fn rejection(r: &Rejection) -> String {
    use Rejection as R;
    match r {
        R::IsTemplate { vm } => format!("{vm} 是模板,不能执行此操作"),
        R::HostNotConnected { host, state, vm } => format!(
            "主机 {host} 状态为{},无法操作虚拟机 {vm}",
            crate::words::host_state(state)
        ),
        R::AlreadyOn { vm } => format!("{vm} 已经是开机状态"),
        R::AlreadyOff { vm } => format!("{vm} 已经是关机状态"),
        R::TemplateCannotPowerOn { vm } => format!("模板 {vm} 不能开机"),
        R::PowerOnNotAllowed { vm } => format!("{vm} 当前状态不允许开机"),
        R::NotOn { vm } => format!("{vm} 没有开机"),
        R::ShutdownNeedsTools { vm } => {
            format!("{vm} 的 VMware Tools 未运行,无法关闭操作系统;可用 关机 强制断电")
        }
        R::DeleteNeedsPowerOff { vm, power } => {
            let now = power.as_deref().map_or(String::new(), |p| {
                let label = PowerState::parse(p).map_or(p, |s| s.label());
                format!("(当前{label})")
            });
            format!("{vm} 未关机{now},不能删除;请先关机: 关机:{vm}")
        }
        R::ShutdownTimedOut { vm, secs } => format!(
            "{vm} 在 {secs} 秒内没有关机(客户机可能忽略了关机请求);可用 关机 强制断电"
        ),
        R::RebootNeedsPowerOn { vm } => format!("{vm} 没有开机,无法重启"),
        R::ZeroCpu => "CPU 数必须大于 0".into(),
        R::ZeroMemory => "内存必须大于 0 GiB".into(),
        R::ZeroDisk => "磁盘大小必须大于 0 GiB".into(),
        R::CpuOverHost { count, host, cores } => {
            format!("CPU 数 {count} 超出范围:主机 {host} 只有 {cores} 个核心")
        }
        R::MemoryOverHost { gb, host, host_gb } => {
            format!("内存 {gb} GiB 超出范围:主机 {host} 只有 {host_gb} GiB")
        }
        R::CpuUnchanged { vm, count } => format!("{vm} 已经是 {count} 个 CPU"),
        R::MemoryUnchanged { vm, gb } => format!("{vm} 的内存已经是 {gb} GiB"),
        R::ShrinkNeedsPowerOff {
            vm,
            what: Hardware::Cpu,
        } => format!("{vm} 正在运行,减少 CPU 需要先关机(热插拔只能增加)"),
        R::ShrinkNeedsPowerOff {
            vm,
            what: Hardware::Memory,
        } => format!("{vm} 正在运行,减少内存需要先关机(热添加只能增加)"),
        R::NoHotPlug {
            vm,
            what: Hardware::Cpu,
        } => format!("{vm} 正在运行且不支持 CPU 热插拔,请先关机再调整"),
        R::NoHotPlug {
            vm,
            what: Hardware::Memory,
        } => format!("{vm} 正在运行且不支持内存热添加,请先关机再调整"),
        R::NoDiskToPlaceBeside { vm } => format!("{vm} 没有磁盘,请指定存储"),
        R::NoSuchDatastore {
            wanted,
            place: Place::Datacenter(dc),
            ..
        } => format!("数据中心 {dc} 没有存储 {wanted}"),
        R::NoSuchDatastore {
            wanted,
            place: Place::HostOf { vm, host },
            available,
        } => format!(
            "{vm} 所在主机 {host} 上没有存储 {wanted};可选: {}",
            available.join("、")
        ),
        R::DatastoreGone { vm, datastore } => format!("{vm} 的存储 {datastore} 不存在"),
        R::DatastoreInaccessible { datastore } => format!("存储 {datastore} 当前不可访问"),
        R::NotEnoughSpace {
            datastore,
            free_gb,
            need_gb,
            purpose: SpaceFor::NewDisk,
        } => format!("存储 {datastore} 剩余 {free_gb} GiB,不足以添加 {need_gb} GiB 磁盘"),
        R::NotEnoughSpace {
            datastore,
            free_gb,
            need_gb,
            purpose: SpaceFor::Clone,
        } => format!("存储 {datastore} 剩余 {free_gb} GiB,不足以克隆 {need_gb} GiB"),
        R::NoScsiController { vm } => format!("{vm}: 没有 SCSI 控制器,无法添加磁盘"),
        R::ScsiControllerWithoutKey { vm } => format!("{vm}: SCSI 控制器没有 key"),
        R::ScsiControllerFull { vm } => format!("{vm}: SCSI 控制器已满(15 块磁盘)"),
        R::DiskSlotRefused {
            vm,
            bus,
            unit,
            cause,
        } => format!("{vm}: vCenter 拒绝了新磁盘(SCSI {bus}:{unit} 不可用: {cause})"),
        R::DiskFileExists { vm, datastore } => {
            format!("{vm}: 存储 {datastore} 上已有同名磁盘文件,请稍后重试")
        }
        R::DatastoreFull {
            vm,
            datastore,
            cause,
        } => format!("{vm}: 存储 {datastore} 空间不足({cause})"),
        R::NoHost { vm, needed_for } => {
            let why = match needed_for {
                HostNeed::Network => "无法更改网络",
                HostNeed::Datastore => "无法选择存储",
                HostNeed::ResourcePool => "无法确定资源池",
            };
            format!("{vm} 没有所在主机,{why}")
        }
        R::NoHostInCluster { cluster } => format!("集群 {cluster} 没有可用主机"),
        R::HostWithoutCompute { host } => format!("主机 {host} 不属于任何集群或计算资源"),
        R::NoResourcePool { compute } => format!("{compute} 没有资源池,无法克隆"),
        R::NoNic { vm } => format!("{vm} 没有网卡"),
        R::AlreadyOnNetwork { vm, network } => format!("{vm} 已经在 {network}"),
        R::AmbiguousNetwork { wanted, candidates } => format!(
            "\"{wanted}\" 对应多个端口组: {},请指定端口组名称",
            networks(candidates)
        ),
        R::NetworkNotOnHost {
            network: net,
            vm,
            host,
            available,
        } => format!(
            "端口组 {} 在 {vm} 所在主机 {host} 上不可用;该主机可用: {}",
            network(net),
            networks(available)
        ),
        R::NoSuchNetwork {
            wanted,
            place: Place::Datacenter(dc),
            available,
        } => format!(
            "数据中心 {dc} 没有端口组或 VLAN \"{wanted}\";可选: {}",
            networks(available)
        ),
        R::NoSuchNetwork {
            wanted,
            place: Place::HostOf { vm, host },
            available,
        } => format!(
            "没有端口组或 VLAN \"{wanted}\";{vm} 所在主机 {host} 可用: {}",
            networks(available)
        ),
        R::SwitchWithoutUuid { switch } => format!("分布式交换机 {switch} 没有 uuid,无法连接"),
        R::NameTaken { name } => format!("已存在名为 {name} 的虚拟机"),
        R::EmptyNewName => "新名称不能为空".into(),
        R::EmptyCloneName => "新虚拟机名称不能为空".into(),
        R::SameName { vm } => format!("{vm} 已经叫这个名字"),
        R::InvalidName { name } => format!("{name} 不是合法的虚拟机名称"),
        R::NotATemplate { vm } => format!("{vm} 不是模板"),
        R::IpTaken { ip, vm } => format!("IP {ip} 已被虚拟机 {vm} 使用"),
        R::IpOutsideSubnets { ip, subnets } => format!(
            "IP {ip} 不在已配置的客户机网段内({}),请检查 IP 或在配置 guest_networks 中添加该网段",
            subnets.join("、")
        ),
        R::WindowsNeedsPassword { template } => format!(
            "模板 {template} 是 Windows 系统,克隆需要 Sysprep 管理员密码: 请在该 vCenter 的配置中设置 [providers.windows] admin_password"
        ),
        R::NoTemplateFolder { template } => format!("找不到模板 {template} 所在的虚拟机文件夹"),
        R::CloneOutOfSpace { name, cause } => format!("存储空间不足,无法克隆 {name}({cause})"),
        R::CloneStepFailed(f) => clone_step_failed(f),
        R::TemplateCannotPing { vm } => format!("{vm} 是模板,无法 ping"),
        R::Unreachable { vm, power } => {
            let label = PowerState::parse(power).map_or(power.as_str(), |p| p.label());
            format!("{vm} 不可达:虚拟机处于{label}状态")
        }
        R::NoGuestIp { vm, tools } => format!(
            "{vm} 已开机,但客户机没有报告 IP({}),无法 ping",
            guest_tools(tools)
        ),
        R::NoPermission { vm, detail } => format!("没有权限对 {vm} 执行此操作({detail})"),
        R::Busy { vm } => format!("{vm} 正在执行其他任务,请稍后再试"),
        R::PowerStateForbids { vm, detail } => {
            format!("{vm} 当前的电源状态不允许此操作({detail})")
        }
        R::StateForbids { vm } => format!("{vm} 当前状态不允许此操作"),
        R::ToolsNotRunning { vm } => format!("{vm} 的 VMware Tools 未运行"),
        R::InsufficientResources { vm, fault, detail } => {
            format!("{vm}: 资源不足({fault}: {detail})")
        }
        R::Fault { vm, fault, detail } => {
            format!("vCenter 拒绝了对 {vm} 的操作: {fault}({detail})")
        }
        R::ClusterFault {
            fault,
            detail: None,
        } => fault.clone(),
        R::ClusterFault {
            fault,
            detail: Some(detail),
        } => format!("{fault}: {detail}"),
        R::ObjectGone { detail } => format!("object not found on vCenter ({detail})"),
    }
}

fn clone_step_failed(f: &CloneStepFailed) -> String {
    let step = match f.step {
        CloneStep::Customize => "自定义客户机网络",
        CloneStep::Resize => "调整 CPU/内存",
        CloneStep::PowerOn => "开机",
    };
    format!(
        "已克隆出 {}({}),但{step}失败: {};已保留该虚拟机,请检查后手动处理或删除",
        f.name, f.id, f.cause
    )
}

/// Why a provider could not be used (after `provider X unavailable: `).
pub fn outage(o: &Outage) -> String {
    match o {
        Outage::Failed(message) => message.clone(),
        Outage::SessionLost(detail) => format!("vCenter 会话失效且无法重新登录: {detail}"),
        Outage::CloneWithoutId { name } => {
            format!("CloneVM_Task 成功但没有返回新虚拟机 {name} 的 ID")
        }
        Outage::CloneStepFailed(f) => clone_step_failed(f),
    }
}

/// The note of a progress report.
pub fn step(s: &Step) -> String {
    match s {
        Step::PoweringOn => "正在开机".into(),
        Step::ShutdownRequested => "已通知客户机关闭操作系统".into(),
        Step::AwaitingShutdown => "等待客户机关闭操作系统".into(),
        Step::Resetting => "客户机无法重启,正在硬重置".into(),
        Step::SettingCpu => "正在调整 CPU".into(),
        Step::SettingMemory => "正在调整内存".into(),
        Step::CreatingDisk => "正在创建虚拟磁盘".into(),
        Step::SwitchingNic { to } => format!("正在切换网卡到 {to}"),
        Step::CloningDisks => "正在克隆磁盘".into(),
        Step::RegisteringClone => "磁盘克隆完成,正在注册虚拟机".into(),
        Step::CustomizingGuest { ip } => format!("正在自定义客户机网络: IP {ip}"),
        Step::ResizingClone => "正在调整 CPU 和内存".into(),
        Step::Pinging { ip } => format!("正在 ping {ip}"),
        Step::Deleting => "正在删除虚拟机文件和磁盘".into(),
        Step::CancelRefused { detail } => format!("未能取消({detail}),操作继续"),
    }
}

/// A network with its VLAN: `VLAN100-业务网(VLAN 100)`.
fn network(n: &NetworkName) -> String {
    match n.vlan {
        Some(v) => format!("{}(VLAN {v})", n.name),
        None => n.name.clone(),
    }
}

fn networks(list: &[NetworkName]) -> String {
    list.iter().map(network).collect::<Vec<_>>().join("、")
}

/// A memory size: whole GiB, else one decimal, MiB below 1 GiB.
fn memory(mb: u64) -> String {
    if mb < 1024 {
        format!("{mb} MiB")
    } else if mb.is_multiple_of(1024) {
        format!("{} GiB", mb / 1024)
    } else {
        format!("{:.1} GiB", mb as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsbot_core::{CloneNetwork, VmSize};
    use std::net::Ipv4Addr;

    #[test]
    fn memory_labels() {
        assert_eq!(memory(2048), "2 GiB");
        assert_eq!(memory(1536), "1.5 GiB");
        assert_eq!(memory(32), "32 MiB");
    }

    #[test]
    fn tools_labels() {
        let tools = |status, heartbeat| guest_tools(&GuestTools { status, heartbeat });
        assert_eq!(
            tools(Some(ToolsStatus::Running), Some(Heartbeat::Green)),
            "VMware Tools 运行中,心跳正常"
        );
        assert_eq!(
            tools(Some(ToolsStatus::NotRunning), Some(Heartbeat::Unknown)),
            "VMware Tools 未运行,心跳未知"
        );
        assert_eq!(tools(None, Some(Heartbeat::Green)), "VMware Tools 心跳正常");
        assert_eq!(
            tools(Some(ToolsStatus::Other("toolsOk".into())), None),
            "VMware Tools 运行中"
        );
    }

    #[test]
    fn clones_say_what_the_provider_knows() {
        let mut c = Cloned {
            name: "工具柜管理系统".into(),
            template: "tpl-ubuntu20.04".into(),
            ip: Ipv4Addr::new(192, 168, 2, 182),
            network: None,
            size: Some(VmSize {
                cpu: 2,
                memory_mb: 4096,
            }),
            host: "esxi-prod-04.dc0.local".into(),
        };
        assert_eq!(
            done(&Done::Cloned(c.clone())),
            "克隆完成: 工具柜管理系统(模板 tpl-ubuntu20.04),IP 192.168.2.182,2 CPU / 4 GiB 内存,主机 esxi-prod-04.dc0.local,已开机"
        );
        c.network = Some(CloneNetwork {
            prefix_len: 24,
            gateway: None,
        });
        c.size = None;
        assert_eq!(
            done(&Done::Cloned(c)),
            "克隆完成: 工具柜管理系统(模板 tpl-ubuntu20.04),IP 192.168.2.182/24,未配置网关,主机 esxi-prod-04.dc0.local,已开机"
        );
    }

    #[test]
    fn errors_read_as_before() {
        let e = ProviderError::NotFound {
            provider: "vc1".into(),
            kind: "VM",
            id: "vm-9".into(),
        };
        assert_eq!(error(&e), "VM vm-9 not found on provider vc1");
        let e =
            ProviderError::unavailable("vc1", "vCenter https://vc1/sdk is unreachable: refused");
        assert_eq!(
            error(&e),
            "provider vc1 unavailable: vCenter https://vc1/sdk is unreachable: refused"
        );
        let r = Rejection::ClusterFault {
            fault: "InvalidPowerState".into(),
            detail: None,
        };
        assert_eq!(rejection(&r), "InvalidPowerState");
    }
}

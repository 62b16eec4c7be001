//! Operations on one VM (开机 … 改名, ping, 删除) and 克隆: resolved in the asker's view,
//! checked against their scopes and the pool, confirmed where configured, then run as
//! a job through the VM's provider. Only here is a `Command` turned into a
//! `VmOperation`.

use super::{foreign, names, Ctx, Handled};
use crate::command::{
    parse_ipv4, Args, Command, CommandSpec, Fields, ParseError, CPU_RANGE, DISK_GB_RANGE,
    MEMORY_GB_RANGE, TEMPLATE_RANGE,
};
use crate::engine::{failed, invalid, Asker, Engine};
use crate::format;
use crate::jobs::JobAbout;
use crate::pool::VmLookup;
use crate::render;
use crate::reply::{Response, Status};
use crate::view::Lens;
use opsbot_core::{PowerState, ProviderError, Vm, VmOperation};
use opsbot_store::StoreError;
use std::fmt::Write;

/// A command on one VM named by its only argument.
const fn on_vm(
    name: &'static str,
    aliases: &'static [&'static str],
    usage: &'static str,
    summary: &'static str,
    parse: fn(&Args) -> Result<Command, ParseError>,
) -> CommandSpec {
    CommandSpec::new(name, aliases, usage, summary, parse).runs(run)
}

fn one_vm(a: &Args) -> Result<String, ParseError> {
    a.count(1, 1)?;
    Ok(a.text(0))
}

pub const POWER_ON: CommandSpec = on_vm(
    names::POWER_ON,
    &["poweron", "启动", "开启"],
    "开机:虚拟机",
    "打开虚拟机电源",
    |a| Ok(Command::Vm(VmOperation::PowerOn { vm: one_vm(a)? })),
)
.example("开机:web-01");
pub const POWER_OFF: CommandSpec = on_vm(
    names::POWER_OFF,
    &["poweroff", "停机"],
    "关机:虚拟机",
    "强制关闭虚拟机电源",
    |a| Ok(Command::Vm(VmOperation::PowerOff { vm: one_vm(a)? })),
)
.destructive()
.example("关机:web-01");
pub const SHUTDOWN: CommandSpec = on_vm(
    names::SHUTDOWN,
    &["shutdown"],
    "关闭系统:虚拟机",
    "通过 VMware Tools 关闭客户机操作系统",
    |a| Ok(Command::Vm(VmOperation::Shutdown { vm: one_vm(a)? })),
)
.destructive()
.example("关闭系统:web-01");
pub const REBOOT: CommandSpec = on_vm(
    names::REBOOT,
    &["reboot"],
    "重启:虚拟机",
    "重启客户机(不支持时硬重置)",
    |a| Ok(Command::Vm(VmOperation::Reboot { vm: one_vm(a)? })),
)
.destructive()
.example("重启:web-01");
pub const CPU: CommandSpec = on_vm(
    names::CPU,
    &["cpu"],
    "CPU:虚拟机,数量",
    "修改 CPU 数量",
    |a| {
        a.count(2, 2)?;
        Ok(Command::Vm(VmOperation::SetCpu {
            vm: a.text(0),
            count: a.number(1, "CPU 数", CPU_RANGE.0, CPU_RANGE.1)?,
        }))
    },
)
.destructive()
.checks(|f, cmd| match cmd {
    Command::Vm(VmOperation::SetCpu { count, .. }) => f.number(1, *count, "CPU 数", CPU_RANGE),
    cmd => foreign(cmd),
})
.example("CPU:web-01,4");
pub const MEMORY: CommandSpec = on_vm(
    names::MEMORY,
    &["mem", "memory"],
    "内存:虚拟机,GiB",
    "修改内存大小",
    |a| {
        a.count(2, 2)?;
        Ok(Command::Vm(VmOperation::SetMemory {
            vm: a.text(0),
            gb: a.number(1, "内存 GiB", MEMORY_GB_RANGE.0, MEMORY_GB_RANGE.1)?,
        }))
    },
)
.destructive()
.checks(|f, cmd| match cmd {
    Command::Vm(VmOperation::SetMemory { gb, .. }) => f.number(1, *gb, "内存 GiB", MEMORY_GB_RANGE),
    cmd => foreign(cmd),
})
.example("内存:web-01,16");
pub const ADD_DISK: CommandSpec = on_vm(
    names::ADD_DISK,
    &["adddisk"],
    "加盘:虚拟机,GiB[,存储]",
    "添加虚拟磁盘",
    |a| {
        a.count(2, 3)?;
        Ok(Command::Vm(VmOperation::AddDisk {
            vm: a.text(0),
            gb: a.number(1, "磁盘 GiB", DISK_GB_RANGE.0, DISK_GB_RANGE.1)?,
            datastore: a.opt(2),
        }))
    },
)
.checks(|f, cmd| match cmd {
    Command::Vm(VmOperation::AddDisk { gb, datastore, .. }) => {
        f.number(1, *gb, "磁盘 GiB", DISK_GB_RANGE)?;
        datastore.as_ref().map_or(Ok(()), |d| f.text(2, d, "存储"))
    }
    cmd => foreign(cmd),
})
.example("加盘:web-02,10");
pub const SET_NET: CommandSpec = on_vm(
    names::SET_NET,
    &["setnet"],
    "换网:虚拟机,端口组或VLAN",
    "把网卡换到另一个端口组 / VLAN",
    |a| {
        a.count(2, 2)?;
        Ok(Command::Vm(VmOperation::SetNetwork {
            vm: a.text(0),
            network: a.text(1),
        }))
    },
)
.destructive()
.checks(|f, cmd| match cmd {
    Command::Vm(VmOperation::SetNetwork { network, .. }) => f.text(1, network, "端口组"),
    cmd => foreign(cmd),
})
.example("换网:web-02,VLAN200");
pub const PING: CommandSpec = on_vm(
    names::PING,
    &["ping"],
    "ping:虚拟机或IP",
    "连通性检测",
    |a| Ok(Command::Ping { target: one_vm(a)? }),
)
.example("ping:web-01");
pub const RENAME: CommandSpec = on_vm(
    names::RENAME,
    &["rename"],
    "改名:虚拟机,新名称",
    "重命名虚拟机",
    |a| {
        a.count(2, 2)?;
        Ok(Command::Vm(VmOperation::Rename {
            vm: a.text(0),
            new_name: a.name(1, "新名称")?,
        }))
    },
)
.destructive()
.checks(|f, cmd| match cmd {
    Command::Vm(VmOperation::Rename { new_name, .. }) => f.name(1, new_name, "新名称"),
    cmd => foreign(cmd),
})
.example("改名:web-01,web-01-old");
pub const CLONE: CommandSpec = on_vm(
    names::CLONE,
    &["clone"],
    "克隆:模板号,名称,IP[,CPU,内存GiB]",
    "从模板克隆虚拟机并设置 IP",
    |a| {
        a.count(3, 5)?;
        let template = a.number(0, "模板号", TEMPLATE_RANGE.0, TEMPLATE_RANGE.1)?;
        let name = a.name(1, "名称")?;
        let ip = parse_ipv4(&a.args[2]).map_err(|e| a.usage(e))?;
        Ok(Command::Clone {
            template,
            name,
            ip,
            cpu: a.opt_number(3, "CPU 数", CPU_RANGE.0, CPU_RANGE.1)?,
            memory_gb: a.opt_number(4, "内存 GiB", MEMORY_GB_RANGE.0, MEMORY_GB_RANGE.1)?,
        })
    },
)
.destructive()
.checks(check_clone)
.example("克隆:2,工具柜管理系统,192.168.2.182");

pub const DELETE: CommandSpec = on_vm(
    names::DELETE,
    &["delete", "destroy"],
    "删除:虚拟机",
    "删除已关机的虚拟机及其磁盘(不可恢复)",
    |a| Ok(Command::Vm(VmOperation::Delete { vm: one_vm(a)? })),
)
.irreversible()
.example("删除:web-04");

fn check_clone(f: &Fields, cmd: &Command) -> Result<(), ParseError> {
    let Command::Clone {
        template,
        name,
        ip,
        cpu,
        memory_gb,
    } = cmd
    else {
        foreign(cmd)
    };
    f.number(0, *template, "模板号", TEMPLATE_RANGE)?;
    f.name(1, name, "名称")?;
    f.ipv4(2, ip)?;
    if let Some(c) = cpu {
        f.number(3, *c, "CPU 数", CPU_RANGE)?;
    }
    if let Some(m) = memory_gb {
        f.number(4, *m, "内存 GiB", MEMORY_GB_RANGE)?;
    }
    Ok(())
}

fn run(mut cx: Ctx<'_>, cmd: Command) -> Handled<'_> {
    Box::pin(async move {
        let name = cmd.name();
        let canonical = cmd.to_string();
        let pool = cx.pool.clone();
        let asker = cx.asker;
        match cmd {
            Command::Vm(op) => {
                if let VmOperation::Rename { new_name, .. } = &op {
                    if let Some(other) = pool.inventory.vms.iter().find(|v| &v.name == new_name) {
                        return Ok(name_taken(asker, new_name, other));
                    }
                }
                let wanted = op.target().to_string();
                vm_op(&mut cx, name, &canonical, &wanted, |id| op.on(id)).await
            }
            Command::Ping { target } => {
                let engine = cx.engine;
                if asker.pinned.is_some()
                    || matches!(
                        asker.view.resolve_vm(&pool, &target, name),
                        VmLookup::Found(_)
                    )
                {
                    vm_op(&mut cx, name, &canonical, &target, |vm| VmOperation::Ping {
                        vm,
                    })
                    .await
                } else if let Ok(ip) = target.parse::<std::net::Ipv4Addr>() {
                    // Not a VM the asker sees: this host pings it only inside the
                    // configured subnets (an out-of-scope VM's address included, with
                    // the same answer as any other address).
                    let addr = std::net::IpAddr::V4(ip);
                    if !engine.settings.ping_allow.iter().any(|n| n.contains(&addr)) {
                        return Ok(Response::new(Status::Denied, ping_refused(engine, ip)));
                    }
                    if !asker.allows(name, &format!("ip/{ip}")) {
                        return Ok(Response::new(
                            Status::Denied,
                            format!("⛔ 您没有权限 ping 资源池以外的地址 {ip}"),
                        ));
                    }
                    // The system ping is not a provider operation: it cannot be cancelled.
                    let what = format!("ping {ip}");
                    engine
                        .start_job(asker, cx.sink, name, what, false, move |_| {
                            Box::pin(host_ping(ip))
                        })
                        .await
                } else {
                    vm_op(&mut cx, name, &canonical, &target, |vm| VmOperation::Ping {
                        vm,
                    })
                    .await
                }
            }
            Command::Clone {
                template,
                name: vm_name,
                ip,
                cpu,
                memory_gb,
            } => {
                // A template the asker may neither list nor clone from does not exist
                // for them.
                let may_clone = |vm: &Vm| {
                    asker.view.vm_sight(Lens::TEMPLATES)(vm)
                        || asker.allows(name, &vm.scope_path())
                        || asker.allows(
                            name,
                            &format!("{}/{}/{}/{vm_name}", vm.provider, vm.datacenter, vm.cluster),
                        )
                };
                let found = pool
                    .template(template)
                    .filter(|(_, vm)| vm.is_some_and(may_clone));
                let Some((tpl, Some(tpl_vm))) = found else {
                    let list: Vec<String> = pool
                        .templates
                        .iter()
                        .filter(|t| pool.vm(&t.provider, &t.vm_id).is_some_and(may_clone))
                        .map(|t| format!("{} {}", t.number, t.name))
                        .collect();
                    return Ok(invalid(format!(
                        "没有编号为 {template} 的模板。现有模板: {}",
                        if list.is_empty() {
                            "(无)".into()
                        } else {
                            list.join("、")
                        }
                    )));
                };
                if let Some(other) = pool.inventory.vms.iter().find(|v| v.name == vm_name) {
                    return Ok(name_taken(asker, &vm_name, other));
                }
                if let Some(other) = pool.vm_with_ip(&ip.to_string()) {
                    return Ok(invalid(if asker.view.sees_vm(other) {
                        format!("IP {ip} 已被虚拟机 {} 使用", other.name)
                    } else {
                        format!("IP {ip} 已被占用")
                    }));
                }
                let path = format!(
                    "{}/{}/{}/{}",
                    tpl_vm.provider, tpl_vm.datacenter, tpl_vm.cluster, vm_name
                );
                if !asker.allows(name, &path) {
                    return Ok(Response::new(
                        Status::Denied,
                        format!(
                            "⛔ 您没有权限在 {}/{} 克隆虚拟机",
                            tpl_vm.datacenter, tpl_vm.cluster
                        ),
                    ));
                }
                let mut summary = format!(
                    "克隆 {vm_name}: 模板 {template}({}),IP {ip},位置 {}/{}",
                    tpl.name, tpl_vm.datacenter, tpl_vm.cluster
                );
                if let Some(c) = cpu {
                    let _ = write!(summary, ",{c} CPU");
                }
                if let Some(m) = memory_gb {
                    let _ = write!(summary, ",{m} GiB 内存");
                }
                let op = VmOperation::Clone {
                    template: tpl.vm_id.clone(),
                    name: vm_name,
                    ip,
                    cpu,
                    memory_gb,
                };
                let provider = tpl_vm.provider.clone();
                confirm_or_start(&mut cx, name, &canonical, summary, provider, op).await
            }
            cmd => foreign(&cmd),
        }
    })
}

/// Resolves the VM an operation names (or the pinned one), checks scope, template and
/// power state, then confirms or starts.
async fn vm_op(
    cx: &mut Ctx<'_>,
    name: &'static str,
    canonical: &str,
    wanted: &str,
    make: impl FnOnce(String) -> VmOperation,
) -> Result<Response, StoreError> {
    let pool = cx.pool.clone();
    let asker = cx.asker;
    // What the asker neither sees nor may act on is absent: the answer is the one
    // for a name that does not exist.
    let lookup = match &asker.pinned {
        Some((provider, id)) => match asker.view.vm_for(&pool, name, provider, id) {
            Some(vm) => VmLookup::Found(vm),
            None => VmLookup::Missing {
                suggestions: Vec::new(),
            },
        },
        None => asker.view.resolve_vm(&pool, wanted, name),
    };
    let vm = match lookup {
        VmLookup::Found(vm) => vm,
        VmLookup::Ambiguous(vms) => {
            let list: Vec<String> = vms
                .iter()
                .map(|v| format!("{}/{}", v.provider, v.name))
                .collect();
            return Ok(invalid(format!(
                "「{wanted}」对应多台虚拟机: {};请用 provider/名称 指定",
                list.join("、")
            )));
        }
        VmLookup::Missing { suggestions } => {
            let mut text = format!("找不到虚拟机「{wanted}」");
            let names: Vec<&str> = suggestions.iter().map(|v| v.name.as_str()).collect();
            if !names.is_empty() {
                let _ = write!(text, ",您是不是要找: {}", names.join("、"));
            }
            text.push_str("。可发送 查:关键字 搜索");
            return Ok(invalid(text));
        }
    };
    if !asker.allows(name, &vm.scope_path()) {
        // Seen (listed) but not granted here: saying so reveals nothing.
        return Ok(Response::new(
            Status::Denied,
            format!(
                "⛔ 您没有权限对 {}({}/{}/{})执行「{name}」",
                vm.name, vm.provider, vm.datacenter, vm.cluster
            ),
        ));
    }
    if vm.template && name == names::DELETE {
        // Templates are what 克隆 copies: their lifecycle is the cluster admin's.
        return Ok(invalid(format!(
            "{} 是模板,不能删除;模板请在 vCenter 中管理",
            vm.name
        )));
    }
    if vm.template && name != names::PING {
        return Ok(invalid(format!(
            "{} 是模板,不能{name};克隆请用 克隆:模板号,名称,IP",
            vm.name
        )));
    }
    match (name, vm.power) {
        (names::POWER_ON, PowerState::PoweredOn) => {
            return Ok(failed(format!("{} 已经是开机状态", vm.name)))
        }
        (names::POWER_OFF | names::SHUTDOWN | names::REBOOT, PowerState::PoweredOff) => {
            return Ok(failed(format!("{} 已经是关机状态", vm.name)))
        }
        _ => {}
    }
    // What the pool knows to be impossible is said now, not after 确认 as a failed job.
    let op = match super::plan::check(&pool, vm, make(vm.id.clone())) {
        Ok(op) => op,
        Err(why) => return Ok(invalid(why)),
    };
    let summary = describe(&op, vm);
    let provider = vm.provider.clone();
    confirm_or_start(cx, name, canonical, summary, provider, op).await
}

/// Asks for confirmation where the command needs it, otherwise starts the job.
async fn confirm_or_start(
    cx: &mut Ctx<'_>,
    name: &'static str,
    canonical: &str,
    summary: String,
    provider: String,
    op: VmOperation,
) -> Result<Response, StoreError> {
    let engine = cx.engine;
    let asker = cx.asker;
    if let Some(asked) =
        engine.confirm_first(asker, cx.sess, name, cx.confirmed, canonical, &summary)
    {
        return Ok(asked);
    }
    let Some(p) = engine.provider(&provider) else {
        return Ok(failed(format!(
            "provider {provider} 未配置(资源池中的对象来自已移除的配置?)"
        )));
    };
    let store = engine.store.clone();
    let source = asker.source();
    let provider_name = provider.clone();
    let can_stop = p.can_cancel(&op);
    // A clone's target is its template, whose state says nothing of the clone.
    let target =
        (!matches!(op, VmOperation::Clone { .. })).then(|| format!("{provider}/{}", op.target()));
    let summary = JobAbout { summary, target };
    engine
        .start_job(asker, cx.sink, name, summary, can_stop, move |progress| {
            Box::pin(async move {
                let outcome = match p.execute(&op, &progress).await {
                    Ok(outcome) => outcome,
                    // Keep the pool true to what the failed operation left behind.
                    Err(ProviderError::Partial { rejection, vm }) => {
                        let message = render::provider::rejection(&rejection);
                        return Err(match store.upsert_vm(&vm, &source).await {
                            Ok(_) => message,
                            Err(e) => format!("{message};且资源池更新失败: {e}(发送 同步 修复)"),
                        });
                    }
                    Err(e) => {
                        if matches!(e, ProviderError::Cancelled) {
                            progress.stopped_on_cancel();
                        }
                        return Err(render::provider::error(&e));
                    }
                };
                let message = render::provider::done(&outcome.done);
                if let opsbot_core::Done::Deleted { .. } = outcome.done {
                    // Gone from the cluster: gone from the pool now, recorded in the
                    // change history as a removal, not at the next sync.
                    store
                        .apply_vm_delta(&provider_name, &[], &[op.target().to_string()], &source)
                        .await
                        .map_err(|e| format!("{message};但资源池更新失败: {e}(发送 同步 修复)"))?;
                }
                if let Some(vm) = &outcome.vm {
                    store
                        .upsert_vm(vm, &source)
                        .await
                        .map_err(|e| format!("{message};但资源池更新失败: {e}(发送 同步 修复)"))?;
                }
                Ok(message)
            })
        })
        .await
}

fn ping_refused(engine: &Engine, ip: std::net::Ipv4Addr) -> String {
    let allowed: Vec<String> = engine
        .settings
        .ping_allow
        .iter()
        .map(ToString::to_string)
        .collect();
    format!(
        "⛔ 不能 ping {ip}:它不是您可见的虚拟机的地址,也不在允许从本机 ping 的网段内([chat] ping_allow,当前{})",
        if allowed.is_empty() {
            "未配置".to_string()
        } else {
            format!(": {}", allowed.join("、"))
        }
    )
}

/// A name another VM already has. Where that VM is, is said only to whoever sees it:
/// names are one namespace, so the refusal itself cannot be avoided.
fn name_taken(asker: &Asker<'_>, wanted: &str, other: &Vm) -> Response {
    invalid(if asker.view.sees_vm(other) {
        format!(
            "已存在名为 {wanted} 的虚拟机({}/{})",
            other.datacenter, other.cluster
        )
    } else {
        format!("名称 {wanted} 已被占用,请换一个名称")
    })
}

/// A one-line description of what an operation will do, for confirmations and jobs.
fn describe(op: &VmOperation, vm: &Vm) -> String {
    let at = format!(
        "{}({}/{},当前{})",
        vm.name,
        vm.datacenter,
        vm.cluster,
        vm.power.label()
    );
    match op {
        VmOperation::PowerOn { .. } => format!("开机 {at}"),
        VmOperation::PowerOff { .. } => format!("强制关机(断电){at}"),
        VmOperation::Shutdown { .. } => format!("关闭操作系统 {at}"),
        VmOperation::Reboot { .. } => format!("重启 {at}"),
        // The final values, and how the change is made: hot-added while the VM runs.
        VmOperation::SetCpu { count, .. } => format!(
            "修改 {} CPU: {} → {count}({}){}",
            vm.name,
            vm.cpu,
            resize_how(vm),
            place(vm)
        ),
        VmOperation::SetMemory { gb, .. } => format!(
            "修改 {} 内存: {} → {gb} GiB({}){}",
            vm.name,
            format::fmt_memory(vm.memory_mb, " "),
            resize_how(vm),
            place(vm)
        ),
        VmOperation::AddDisk { gb, datastore, .. } => format!(
            "{at} 添加 {gb} GiB 磁盘,存储 {}",
            datastore
                .clone()
                .or_else(|| vm.disks.first().map(|d| d.datastore.clone()))
                .unwrap_or_else(|| "-".into())
        ),
        VmOperation::SetNetwork { network, .. } => format!(
            "{at} 网卡 1: {} → {network}",
            vm.nics.first().map(|n| n.network.as_str()).unwrap_or("-")
        ),
        VmOperation::Rename { new_name, .. } => format!("改名 {at} → {new_name}"),
        VmOperation::Ping { .. } => format!("ping {}", vm.name),
        VmOperation::Clone { name, ip, .. } => format!("克隆 {name} IP {ip}"),
        VmOperation::Delete { .. } => format!(
            "删除虚拟机 {}({},位置 {}/{},当前{})及其全部磁盘,删除后不可恢复",
            vm.name,
            vm.ips
                .first()
                .or(vm.guest_ip.as_ref())
                .map_or("无已知 IP".to_string(), |ip| format!("IP {ip}")),
            vm.datacenter,
            vm.cluster,
            vm.power.label()
        ),
    }
}

/// How a resize is made in the VM's power state (decreases while on are refused
/// before this is asked).
fn resize_how(vm: &Vm) -> &'static str {
    match vm.power {
        PowerState::PoweredOn => "开机中,热添加",
        PowerState::PoweredOff => "已关机,下次开机生效",
        PowerState::Suspended => "挂起中",
    }
}

/// Where a VM is, after its name in a summary.
fn place(vm: &Vm) -> String {
    format!(",位置 {}/{}", vm.datacenter, vm.cluster)
}

/// Pings an address that is not a VM in the pool, from this host, with the system ping.
async fn host_ping(ip: std::net::Ipv4Addr) -> Result<String, String> {
    let out = tokio::process::Command::new("ping")
        .args(["-c", "3", "-W", "1", "-i", "0.2", &ip.to_string()])
        .output()
        .await
        .map_err(|e| format!("本机无法执行 ping: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match opsbot_core::ping::parse(&stdout) {
        Some(s) if s.received > 0 => Ok(format!(
            "{ip} {}",
            render::provider::replies(s.sent, s.received, s.avg_ms)
        )),
        Some(s) => Err(format!(
            "{ip} {}",
            render::provider::replies(s.sent, s.received, s.avg_ms)
        )),
        None => {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why.trim();
            Err(if why.is_empty() {
                format!("{ip} 不可达:无回复")
            } else {
                format!("{ip} 无法检测连通性:ping 失败: {why}")
            })
        }
    }
}

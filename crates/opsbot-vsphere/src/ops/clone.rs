//! Rename, and clone from a template with a fixed IP: CloneVM_Task, CustomizeVM_Task,
//! an optional resize, power on. Later steps leave the clone in place when they fail.

use super::spec::{self, CloneTarget, GuestCustomization};
use super::{reject, Ctx};
use crate::client::MoRef;
use crate::error::Error;
use crate::xml::Node;
use opsbot_core::{OpOutcome, ProviderError};
use std::net::Ipv4Addr;

pub(super) async fn rename(
    ctx: &Ctx<'_>,
    id: &str,
    new_name: &str,
) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &[]).await?;
    let new_name = new_name.trim();
    if new_name.is_empty() {
        return Err(reject("新名称不能为空"));
    }
    if new_name == vm.name {
        return Err(reject(format!("{} 已经叫这个名字", vm.name)));
    }
    let all = ctx.all_vms().await.map_err(|e| ctx.fail(&vm.name, id, e))?;
    if all
        .iter()
        .any(|v| v.name == new_name && v.moref != vm.moref)
    {
        return Err(reject(format!("已存在名为 {new_name} 的虚拟机")));
    }
    match ctx
        .quick_task("Rename_Task", &vm.moref, &spec::rename(new_name))
        .await
    {
        Ok(_) => {
            ctx.done(&vm.moref, format!("{} 已改名为 {new_name}", vm.name))
                .await
        }
        Err(e) if e.is_fault("DuplicateName") || e.is_fault("InvalidArgument") => {
            Err(reject(format!("已存在名为 {new_name} 的虚拟机")))
        }
        Err(e) if e.is_fault("InvalidName") => {
            Err(reject(format!("{new_name} 不是合法的虚拟机名称")))
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

pub(super) struct CloneRequest<'a> {
    pub template: &'a str,
    pub name: &'a str,
    pub ip: Ipv4Addr,
    pub cpu: Option<u32>,
    pub memory_gb: Option<u32>,
}

/// The VM folder for the clone: the template's folder, else its datacenter's `vmFolder`.
async fn target_folder(ctx: &Ctx<'_>, parent: Option<MoRef>) -> Result<Option<MoRef>, Error> {
    let mut cur = parent;
    for _ in 0..16 {
        let Some(obj) = cur else { return Ok(None) };
        match obj.kind.as_str() {
            "Folder" => return Ok(Some(obj)),
            "Datacenter" => {
                let p = ctx.client.retrieve(&obj, &["vmFolder"]).await?;
                return Ok(p.get("vmFolder").and_then(Node::moref));
            }
            _ => {
                let p = ctx.client.retrieve(&obj, &["parent"]).await?;
                cur = p.get("parent").and_then(Node::moref);
            }
        }
    }
    Ok(None)
}

pub(super) async fn clone(
    ctx: &Ctx<'_>,
    req: &CloneRequest<'_>,
) -> Result<OpOutcome, ProviderError> {
    let name = req.name.trim();
    let ip = req.ip;
    let tpl = ctx
        .facts(
            req.template,
            &[
                "parent",
                "runtime.host",
                "datastore",
                "config.hardware.numCPU",
                "config.hardware.memoryMB",
                "config.hardware.device",
                "config.guestId",
                "config.guestFullName",
            ],
        )
        .await?;
    let fail = |e| ctx.fail(&tpl.name, req.template, e);
    if !tpl.template {
        return Err(reject(format!("{} 不是模板", tpl.name)));
    }
    if name.is_empty() {
        return Err(reject("新虚拟机名称不能为空"));
    }
    if req.cpu == Some(0) {
        return Err(reject("CPU 数必须大于 0"));
    }
    if req.memory_gb == Some(0) {
        return Err(reject("内存必须大于 0 GiB"));
    }
    // Check everything vCenter would refuse before spending time on the copy.
    let net = ctx.guest.for_ip(ip).map_err(reject)?;
    let windows = is_windows(&tpl);
    if windows && ctx.guest.windows.is_none() {
        return Err(reject(format!(
            "模板 {} 是 Windows 系统,克隆需要 Sysprep 管理员密码: 请在该 vCenter 的配置中设置 [providers.windows] admin_password",
            tpl.name
        )));
    }
    let all = ctx.all_vms().await.map_err(fail)?;
    if all.iter().any(|v| v.name == name) {
        return Err(reject(format!("已存在名为 {name} 的虚拟机")));
    }
    let ip_s = ip.to_string();
    if let Some(v) = all.iter().find(|v| v.ips.contains(&ip_s)) {
        return Err(reject(format!("IP {ip_s} 已被虚拟机 {} 使用", v.name)));
    }
    let folder = target_folder(ctx, tpl.moref_at("parent"))
        .await
        .map_err(fail)?
        .ok_or_else(|| reject(format!("找不到模板 {} 所在的虚拟机文件夹", tpl.name)))?;
    let host = ctx
        .host_of(&tpl, req.template, "无法确定资源池", &["parent"])
        .await?;
    let host_name = host.name;
    let compute = host
        .props
        .get("parent")
        .and_then(Node::moref)
        .ok_or_else(|| reject(format!("主机 {host_name} 不属于任何集群或计算资源")))?;
    let pool = ctx
        .client
        .retrieve(&compute, &["resourcePool"])
        .await
        .map_err(fail)?
        .get("resourcePool")
        .and_then(Node::moref)
        .ok_or_else(|| reject(format!("{} 没有资源池,无法克隆", compute.value)))?;
    let datastore = tpl
        .props
        .get("datastore")
        .and_then(|n| n.morefs().into_iter().next());
    if let Some(ds) = &datastore {
        let need_kb: u64 = tpl
            .props
            .get("config.hardware.device")
            .map(|d| {
                d.children
                    .iter()
                    .filter(|c| c.xsi_type.as_deref() == Some("VirtualDisk"))
                    .filter_map(|c| c.parse_at::<u64>("capacityInKB"))
                    .sum()
            })
            .unwrap_or(0);
        let p = ctx
            .client
            .retrieve(ds, &["name", "summary.freeSpace"])
            .await
            .map_err(fail)?;
        let free: Option<u64> = p
            .get("summary.freeSpace")
            .and_then(|n| n.text.trim().parse().ok());
        if let Some(free) = free {
            if free < need_kb * 1024 {
                let ds_name = p.get("name").map(|n| n.text.as_str()).unwrap_or(&ds.value);
                return Err(reject(format!(
                    "存储 {ds_name} 剩余 {} GiB,不足以克隆 {} GiB",
                    free >> 30,
                    need_kb.div_ceil(1024 * 1024)
                )));
            }
        }
    }

    // 1. Copy.
    let progress = ctx.progress;
    progress.report(10, "正在克隆磁盘");
    let target = CloneTarget {
        folder,
        name: name.to_string(),
        datastore,
        pool,
        host: Some(host.moref),
    };
    let mut on_progress = |p: u8| progress.report(super::scale(p, 10, 70), "正在克隆磁盘");
    let result = match ctx
        .task(
            "CloneVM_Task",
            &tpl.moref,
            &spec::clone_vm(&target, false),
            &mut on_progress,
        )
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_fault("DuplicateName") => {
            return Err(reject(format!("已存在名为 {name} 的虚拟机")))
        }
        Err(e) if e.is_fault("InsufficientDisks") || e.is_fault("NoDiskSpace") => {
            return Err(reject(format!("存储空间不足,无法克隆 {name}({e})")))
        }
        Err(e) => return Err(fail(e)),
    };
    let new_vm =
        result
            .as_ref()
            .and_then(Node::moref)
            .ok_or_else(|| ProviderError::Unavailable {
                provider: ctx.provider.to_string(),
                message: format!("CloneVM_Task 成功但没有返回新虚拟机 {name} 的 ID"),
            })?;
    let step_failed = |step: &str, e: Error| -> ProviderError {
        let cause = match &e {
            Error::Fault { kind, message } => format!("{kind}: {message}"),
            other => other.to_string(),
        };
        let msg = format!(
            "已克隆出 {name}({}),但{step}失败: {cause};已保留该虚拟机,请检查后手动处理或删除",
            new_vm.value
        );
        if e.is_unavailable() {
            ProviderError::Unavailable {
                provider: ctx.provider.to_string(),
                message: msg,
            }
        } else {
            reject(msg)
        }
    };

    // 2. Guest identity and IP.
    progress.report(75, &format!("正在自定义客户机网络: IP {ip_s}"));
    let custom = GuestCustomization {
        host_name: if windows {
            spec::windows_computer_name(name, ip)
        } else {
            spec::guest_host_name(name, ip)
        },
        domain: net.domain,
        dns_servers: net.dns,
        ip,
        subnet_mask: net.subnet_mask,
        gateway: net.gateway,
        windows: ctx.guest.windows.clone().filter(|_| windows),
    };
    let after_copy = async {
        ctx.quick_task("CustomizeVM_Task", &new_vm, &spec::customize_vm(&custom))
            .await
            .map_err(|e| step_failed("自定义客户机网络", e))?;

        // 3. Size.
        if req.cpu.is_some() || req.memory_gb.is_some() {
            progress.report(85, "正在调整 CPU 和内存");
            let args =
                spec::reconfig_cpu_memory(req.cpu, req.memory_gb.map(|g| u64::from(g) * 1024));
            ctx.quick_task("ReconfigVM_Task", &new_vm, &args)
                .await
                .map_err(|e| step_failed("调整 CPU/内存", e))?;
        }

        // 4. Power on.
        progress.report(90, "正在开机");
        ctx.quick_task("PowerOnVM_Task", &new_vm, "")
            .await
            .map_err(|e| step_failed("开机", e))
    };
    if let Err(e) = after_copy.await {
        return Err(ctx.left_behind(&new_vm, e).await);
    }

    let cpu = req.cpu.or_else(|| {
        tpl.text("config.hardware.numCPU")
            .and_then(|t| t.parse().ok())
    });
    let mem_mb = req.memory_gb.map(|g| u64::from(g) * 1024).or_else(|| {
        tpl.text("config.hardware.memoryMB")
            .and_then(|t| t.parse().ok())
    });
    let gateway = match net.gateway {
        Some(g) => format!(",网关 {g}"),
        None => ",未配置网关".to_string(),
    };
    let size = match (cpu, mem_mb) {
        (Some(c), Some(m)) => format!(",{c} CPU / {} 内存", super::hardware::format_gb(m)),
        _ => String::new(),
    };
    ctx.done(
        &new_vm,
        format!(
            "克隆完成: {name}(模板 {}),IP {ip_s}/{}{gateway}{size},主机 {host_name},已开机",
            tpl.name,
            mask_len(net.subnet_mask)
        ),
    )
    .await
}

/// Windows templates need Sysprep instead of LinuxPrep.
fn is_windows(tpl: &super::VmFacts) -> bool {
    let id = tpl.text("config.guestId").unwrap_or("");
    let full = tpl.text("config.guestFullName").unwrap_or("");
    id.to_ascii_lowercase().starts_with("win") || full.contains("Windows")
}

fn mask_len(mask: Ipv4Addr) -> u32 {
    u32::from(mask).count_ones()
}

//! Rename, and clone from a template with a fixed IP: CloneVM_Task, CustomizeVM_Task,
//! an optional resize, power on. Later steps leave the clone in place when they fail.

use super::spec::{self, CloneTarget, GuestCustomization};
use super::{reject, Ctx};
use crate::client::MoRef;
use crate::error::Error;
use crate::xml::Node;
use opsbot_core::{
    CloneNetwork, CloneStep, CloneStepFailed, Cloned, Done, HostNeed, OpOutcome, Outage,
    ProviderError, Rejection, SpaceFor, Step, VmSize,
};
use std::net::Ipv4Addr;

fn name_taken(name: &str) -> ProviderError {
    reject(Rejection::NameTaken { name: name.into() })
}

pub(super) async fn rename(
    ctx: &Ctx<'_>,
    id: &str,
    new_name: &str,
) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &[]).await?;
    let new_name = new_name.trim();
    if new_name.is_empty() {
        return Err(reject(Rejection::EmptyNewName));
    }
    if new_name == vm.name {
        return Err(reject(Rejection::SameName {
            vm: vm.name.clone(),
        }));
    }
    let all = ctx.all_vms().await.map_err(|e| ctx.fail(&vm.name, id, e))?;
    if all
        .iter()
        .any(|v| v.name == new_name && v.moref != vm.moref)
    {
        return Err(name_taken(new_name));
    }
    match ctx
        .quick_task("Rename_Task", &vm.moref, &spec::rename(new_name))
        .await
    {
        Ok(_) => {
            let done = Done::Renamed {
                from: vm.name.clone(),
                to: new_name.to_string(),
            };
            ctx.done(&vm.moref, done).await
        }
        Err(e) if e.is_fault("DuplicateName") || e.is_fault("InvalidArgument") => {
            Err(name_taken(new_name))
        }
        Err(e) if e.is_fault("InvalidName") => Err(reject(Rejection::InvalidName {
            name: new_name.to_string(),
        })),
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
        return Err(reject(Rejection::NotATemplate {
            vm: tpl.name.clone(),
        }));
    }
    if name.is_empty() {
        return Err(reject(Rejection::EmptyCloneName));
    }
    if req.cpu == Some(0) {
        return Err(reject(Rejection::ZeroCpu));
    }
    if req.memory_gb == Some(0) {
        return Err(reject(Rejection::ZeroMemory));
    }
    // Check everything vCenter would refuse before spending time on the copy.
    let net = ctx.guest.for_ip(ip).map_err(reject)?;
    let windows = is_windows(&tpl);
    if windows && ctx.guest.windows.is_none() {
        return Err(reject(Rejection::WindowsNeedsPassword {
            template: tpl.name.clone(),
        }));
    }
    let all = ctx.all_vms().await.map_err(fail)?;
    if all.iter().any(|v| v.name == name) {
        return Err(name_taken(name));
    }
    let ip_s = ip.to_string();
    if let Some(v) = all.iter().find(|v| v.ips.contains(&ip_s)) {
        return Err(reject(Rejection::IpTaken {
            ip: ip_s,
            vm: v.name.clone(),
        }));
    }
    let folder = target_folder(ctx, tpl.moref_at("parent"))
        .await
        .map_err(fail)?
        .ok_or_else(|| {
            reject(Rejection::NoTemplateFolder {
                template: tpl.name.clone(),
            })
        })?;
    let host = ctx
        .host_of(&tpl, req.template, HostNeed::ResourcePool, &["parent"])
        .await?;
    let host_name = host.name;
    let compute = host
        .props
        .get("parent")
        .and_then(Node::moref)
        .ok_or_else(|| {
            reject(Rejection::HostWithoutCompute {
                host: host_name.clone(),
            })
        })?;
    let pool = ctx
        .client
        .retrieve(&compute, &["resourcePool"])
        .await
        .map_err(fail)?
        .get("resourcePool")
        .and_then(Node::moref)
        .ok_or_else(|| {
            reject(Rejection::NoResourcePool {
                compute: compute.value.clone(),
            })
        })?;
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
                return Err(reject(Rejection::NotEnoughSpace {
                    datastore: ds_name.to_string(),
                    free_gb: free >> 30,
                    need_gb: need_kb.div_ceil(1024 * 1024),
                    purpose: SpaceFor::Clone,
                }));
            }
        }
    }

    // 1. Copy.
    let progress = ctx.progress;
    progress.report(10, &Step::CloningDisks);
    let target = CloneTarget {
        folder,
        name: name.to_string(),
        datastore,
        pool,
        host: Some(host.moref),
    };
    // Asked to stop before the copy starts: nothing exists yet.
    opsbot_core::check_cancel(progress)?;
    let mut on_progress = |p: u8| progress.report(super::scale(p, 10, 70), &Step::CloningDisks);
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
        Err(e) if e.is_fault("DuplicateName") => return Err(name_taken(name)),
        Err(e) if e.is_fault("InsufficientDisks") || e.is_fault("NoDiskSpace") => {
            return Err(reject(Rejection::CloneOutOfSpace {
                name: name.to_string(),
                cause: e.to_string(),
            }))
        }
        Err(e) => return Err(fail(e)),
    };
    // The clone exists now: from here it is finished, not cancelled (stopping would
    // leave a half-made VM behind). A cancellation that came too late is said so.
    if opsbot_core::commit_cancel(progress).is_err() {
        progress.report(
            70,
            &Step::CancelRefused {
                detail: "克隆已完成,无法再取消".into(),
            },
        );
    }
    let new_vm =
        result
            .as_ref()
            .and_then(Node::moref)
            .ok_or_else(|| ProviderError::Unavailable {
                provider: ctx.provider.to_string(),
                cause: Outage::CloneWithoutId {
                    name: name.to_string(),
                },
            })?;
    let step_failed = |step: CloneStep, e: Error| -> ProviderError {
        // Not a failed step: the step was not started.
        if let Error::FencedOut { .. } = e {
            return ProviderError::FencedOut;
        }
        let cause = match &e {
            Error::Fault { kind, message } => format!("{kind}: {message}"),
            other => other.to_string(),
        };
        let failed = CloneStepFailed {
            name: name.to_string(),
            id: new_vm.value.clone(),
            step,
            cause,
        };
        if e.is_unavailable() {
            ProviderError::Unavailable {
                provider: ctx.provider.to_string(),
                cause: Outage::CloneStepFailed(failed),
            }
        } else {
            reject(Rejection::CloneStepFailed(failed))
        }
    };

    // 2. Guest identity and IP.
    progress.report(75, &Step::CustomizingGuest { ip });
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
            .map_err(|e| step_failed(CloneStep::Customize, e))?;

        // 3. Size.
        if req.cpu.is_some() || req.memory_gb.is_some() {
            progress.report(85, &Step::ResizingClone);
            let args =
                spec::reconfig_cpu_memory(req.cpu, req.memory_gb.map(|g| u64::from(g) * 1024));
            ctx.quick_task("ReconfigVM_Task", &new_vm, &args)
                .await
                .map_err(|e| step_failed(CloneStep::Resize, e))?;
        }

        // 4. Power on.
        progress.report(90, &Step::PoweringOn);
        ctx.quick_task("PowerOnVM_Task", &new_vm, "")
            .await
            .map_err(|e| step_failed(CloneStep::PowerOn, e))
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
    let done = Done::Cloned(Cloned {
        name: name.to_string(),
        template: tpl.name.clone(),
        ip,
        network: Some(CloneNetwork {
            prefix_len: mask_len(net.subnet_mask),
            gateway: net.gateway,
        }),
        size: match (cpu, mem_mb) {
            (Some(cpu), Some(memory_mb)) => Some(VmSize { cpu, memory_mb }),
            _ => None,
        },
        host: host_name,
    });
    ctx.done(&new_vm, done).await
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

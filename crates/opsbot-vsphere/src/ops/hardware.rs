//! CPU count, memory size and new disks (ReconfigVM_Task).

use super::power::refuse_template;
use super::spec::{self, NewDisk};
use super::{reject, Ctx};
use crate::client::{property_spec, MoRef};
use crate::xml::Node;
use opsbot_core::{
    Done, Hardware, HostNeed, OpOutcome, Place, ProviderError, Rejection, SpaceFor, Step,
};

const GIB: u64 = 1024 * 1024 * 1024;

/// SCSI controller device types, in the order we prefer them.
const SCSI_CONTROLLERS: [&str; 4] = [
    "ParaVirtualSCSIController",
    "VirtualLsiLogicController",
    "VirtualLsiLogicSASController",
    "VirtualBusLogicController",
];

pub(super) async fn set_cpu(
    ctx: &Ctx<'_>,
    id: &str,
    count: u32,
) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &["config.hardware.numCPU"]).await?;
    refuse_template(&vm)?;
    if count == 0 {
        return Err(reject(Rejection::ZeroCpu));
    }
    let name = vm.name.clone();
    let old: u32 = vm
        .text("config.hardware.numCPU")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    if count == old {
        return Err(reject(Rejection::CpuUnchanged { vm: name, count }));
    }
    if count < old && vm.powered_on() {
        return Err(reject(Rejection::ShrinkNeedsPowerOff {
            vm: name,
            what: Hardware::Cpu,
        }));
    }
    ctx.progress.report(20, &Step::SettingCpu);
    let args = spec::reconfig_cpu_memory(Some(count), None);
    match ctx.quick_task("ReconfigVM_Task", &vm.moref, &args).await {
        Ok(_) => {
            let done = Done::CpuChanged {
                vm: name,
                from: old,
                to: count,
            };
            ctx.done(&vm.moref, done).await
        }
        Err(e) if e.is_fault("InvalidPowerState") || e.is_fault("CpuHotPlugNotSupported") => {
            Err(reject(Rejection::NoHotPlug {
                vm: name,
                what: Hardware::Cpu,
            }))
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

pub(super) async fn set_memory(
    ctx: &Ctx<'_>,
    id: &str,
    gb: u32,
) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &["config.hardware.memoryMB"]).await?;
    refuse_template(&vm)?;
    if gb == 0 {
        return Err(reject(Rejection::ZeroMemory));
    }
    let name = vm.name.clone();
    let mb = u64::from(gb) * 1024;
    let old_mb: u64 = vm
        .text("config.hardware.memoryMB")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    if mb == old_mb {
        return Err(reject(Rejection::MemoryUnchanged { vm: name, gb }));
    }
    if mb < old_mb && vm.powered_on() {
        return Err(reject(Rejection::ShrinkNeedsPowerOff {
            vm: name,
            what: Hardware::Memory,
        }));
    }
    ctx.progress.report(20, &Step::SettingMemory);
    let args = spec::reconfig_cpu_memory(None, Some(mb));
    match ctx.quick_task("ReconfigVM_Task", &vm.moref, &args).await {
        Ok(_) => {
            let done = Done::MemoryChanged {
                vm: name,
                from_mb: old_mb,
                to_gb: gb,
            };
            ctx.done(&vm.moref, done).await
        }
        Err(e) if e.is_fault("InvalidPowerState") || e.is_fault("MemoryHotPlugNotSupported") => {
            Err(reject(Rejection::NoHotPlug {
                vm: name,
                what: Hardware::Memory,
            }))
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

/// Where a new disk goes on the VM's first SCSI controller.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DiskSlot {
    pub controller_key: i32,
    pub bus: u32,
    pub unit: u32,
    /// Disks already on the VM (to label the new one `Hard disk N+1`).
    pub existing_disks: usize,
}

/// Picks the SCSI controller (by `xsi:type`) and its lowest free unit, skipping 7 (the
/// controller's own unit). `vm` names the VM in the refusal.
pub(super) fn disk_slot(devices: &[Node], vm: &str) -> Result<DiskSlot, Rejection> {
    let existing_disks = devices
        .iter()
        .filter(|d| d.xsi_type.as_deref() == Some("VirtualDisk"))
        .count();
    let controller = SCSI_CONTROLLERS
        .iter()
        .find_map(|t| devices.iter().find(|d| d.xsi_type.as_deref() == Some(*t)))
        .ok_or_else(|| Rejection::NoScsiController { vm: vm.into() })?;
    let key: i32 = controller
        .parse_at("key")
        .ok_or_else(|| Rejection::ScsiControllerWithoutKey { vm: vm.into() })?;
    let reserved: u32 = controller.parse_at("scsiCtlrUnitNumber").unwrap_or(7);
    let used: Vec<u32> = devices
        .iter()
        .filter(|d| d.parse_at::<i32>("controllerKey") == Some(key))
        .filter_map(|d| d.parse_at("unitNumber"))
        .collect();
    let unit = (0..16u32)
        .filter(|u| *u != 7 && *u != reserved)
        .find(|u| !used.contains(u))
        .ok_or_else(|| Rejection::ScsiControllerFull { vm: vm.into() })?;
    Ok(DiskSlot {
        controller_key: key,
        bus: controller.parse_at("busNumber").unwrap_or(0),
        unit,
        existing_disks,
    })
}

struct DatastoreInfo {
    name: String,
    free_bytes: Option<u64>,
    accessible: bool,
}

async fn datastores(
    ctx: &Ctx<'_>,
    refs: &[MoRef],
) -> Result<Vec<(MoRef, DatastoreInfo)>, crate::error::Error> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let objs = ctx
        .client
        .retrieve_properties(
            &property_spec(
                "Datastore",
                &["name", "summary.freeSpace", "summary.accessible"],
                refs,
            ),
            None,
        )
        .await?;
    Ok(objs
        .into_iter()
        .map(|o| {
            let info = DatastoreInfo {
                name: o.text("name").unwrap_or_default().to_string(),
                free_bytes: o
                    .text("summary.freeSpace")
                    .and_then(|t| t.trim().parse().ok()),
                accessible: o.text("summary.accessible").map(str::trim) != Some("false"),
            };
            (o.obj, info)
        })
        .collect())
}

pub(super) async fn add_disk(
    ctx: &Ctx<'_>,
    id: &str,
    gb: u32,
    datastore: Option<&str>,
) -> Result<OpOutcome, ProviderError> {
    let vm = ctx
        .facts(id, &["config.hardware.device", "datastore", "runtime.host"])
        .await?;
    refuse_template(&vm)?;
    if gb == 0 {
        return Err(reject(Rejection::ZeroDisk));
    }
    let name = vm.name.clone();
    let devices: Vec<Node> = vm
        .props
        .get("config.hardware.device")
        .map(|d| d.children.clone())
        .unwrap_or_default();
    let slot = disk_slot(&devices, &vm.name).map_err(reject)?;
    let fail = |e| ctx.fail(&vm.name, id, e);

    // The datastore: the named one among those the VM's host sees, else the VM's own.
    let (ds_name, info, file_name) = match datastore {
        Some(wanted) => {
            let host = ctx
                .host_of(&vm, id, HostNeed::Datastore, &["datastore"])
                .await?;
            let refs = host
                .props
                .get("datastore")
                .map(Node::morefs)
                .unwrap_or_default();
            let all = datastores(ctx, &refs).await.map_err(fail)?;
            let names: Vec<String> = all.iter().map(|(_, d)| d.name.clone()).collect();
            let Some((_, info)) = all.into_iter().find(|(_, d)| d.name == wanted) else {
                return Err(reject(Rejection::NoSuchDatastore {
                    wanted: wanted.to_string(),
                    place: Place::HostOf {
                        vm: name,
                        host: host.name,
                    },
                    available: names,
                }));
            };
            (wanted.to_string(), info, format!("[{wanted}]"))
        }
        None => {
            let first_disk_ds = devices
                .iter()
                .filter(|d| d.xsi_type.as_deref() == Some("VirtualDisk"))
                .find_map(|d| d.path("backing.datastore").and_then(Node::moref));
            let own = first_disk_ds.or_else(|| {
                vm.props
                    .get("datastore")
                    .and_then(|n| n.morefs().into_iter().next())
            });
            let Some(own) = own else {
                return Err(reject(Rejection::NoDiskToPlaceBeside { vm: name }));
            };
            let (_, info) = datastores(ctx, std::slice::from_ref(&own))
                .await
                .map_err(fail)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    reject(Rejection::DatastoreGone {
                        vm: name.clone(),
                        datastore: own.value.clone(),
                    })
                })?;
            (info.name.clone(), info, String::new())
        }
    };
    if !info.accessible {
        return Err(reject(Rejection::DatastoreInaccessible {
            datastore: ds_name,
        }));
    }
    let need = u64::from(gb) * GIB;
    if let Some(free) = info.free_bytes {
        if free < need {
            return Err(reject(Rejection::NotEnoughSpace {
                datastore: ds_name,
                free_gb: free / GIB,
                need_gb: u64::from(gb),
                purpose: SpaceFor::NewDisk,
            }));
        }
    }

    ctx.progress.report(20, &Step::CreatingDisk);
    let disk = NewDisk {
        temp_key: -101,
        file_name,
        controller_key: slot.controller_key,
        unit_number: slot.unit,
        capacity_kb: u64::from(gb) * 1024 * 1024,
    };
    let progress = ctx.progress;
    let mut on_progress = |p: u8| progress.report(super::scale(p, 20, 90), &Step::CreatingDisk);
    match ctx
        .task(
            "ReconfigVM_Task",
            &vm.moref,
            &spec::reconfig_add_disk(&disk),
            &mut on_progress,
        )
        .await
    {
        Ok(_) => {
            let done = Done::DiskAdded {
                vm: name,
                number: slot.existing_disks + 1,
                gb: u64::from(gb),
                datastore: ds_name,
                bus: slot.bus,
                unit: slot.unit,
            };
            ctx.done(&vm.moref, done).await
        }
        Err(e) if e.is_fault("InvalidDeviceSpec") => Err(reject(Rejection::DiskSlotRefused {
            vm: name,
            bus: slot.bus,
            unit: slot.unit,
            cause: e.to_string(),
        })),
        Err(e) if e.is_fault("FileAlreadyExists") => Err(reject(Rejection::DiskFileExists {
            vm: name,
            datastore: ds_name,
        })),
        Err(e) if e.is_fault("InsufficientDisks") || e.is_fault("OutOfBounds") => {
            Err(reject(Rejection::DatastoreFull {
                vm: name,
                datastore: ds_name,
                cause: e.to_string(),
            }))
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn devices(xml: &str) -> Vec<Node> {
        parse(&format!(
            r#"<val xmlns:X="http://www.w3.org/2001/XMLSchema-instance">{xml}</val>"#
        ))
        .unwrap()
        .children
    }

    #[test]
    fn picks_next_free_unit_skipping_seven() {
        let mut xml = String::from(
            r#"<VirtualDevice X:type="VirtualIDEController"><key>200</key></VirtualDevice><VirtualDevice X:type="ParaVirtualSCSIController"><key>202</key><busNumber>0</busNumber><scsiCtlrUnitNumber>7</scsiCtlrUnitNumber></VirtualDevice>"#,
        );
        for u in 0..7 {
            xml.push_str(&format!(
                r#"<VirtualDevice X:type="VirtualDisk"><key>{}</key><controllerKey>202</controllerKey><unitNumber>{u}</unitNumber></VirtualDevice>"#,
                300 + u
            ));
        }
        // An IDE device on unit 8 of another controller does not count.
        xml.push_str(r#"<VirtualDevice X:type="VirtualCdrom"><key>3000</key><controllerKey>200</controllerKey><unitNumber>8</unitNumber></VirtualDevice>"#);
        let slot = disk_slot(&devices(&xml), "web").unwrap();
        assert_eq!(
            slot,
            DiskSlot {
                controller_key: 202,
                bus: 0,
                unit: 8,
                existing_disks: 7
            }
        );
    }

    #[test]
    fn no_scsi_controller_or_full_controller_is_refused() {
        let none = devices(
            r#"<VirtualDevice X:type="VirtualIDEController"><key>200</key></VirtualDevice>"#,
        );
        let refusal = |e| opsbot_engine::render::provider::rejection(&e);
        assert!(refusal(disk_slot(&none, "web").unwrap_err()).contains("没有 SCSI 控制器"));
        let mut xml = String::from(
            r#"<VirtualDevice X:type="VirtualLsiLogicController"><key>1000</key></VirtualDevice>"#,
        );
        for u in (0..16).filter(|u| *u != 7) {
            xml.push_str(&format!(
                r#"<VirtualDevice X:type="VirtualDisk"><controllerKey>1000</controllerKey><unitNumber>{u}</unitNumber></VirtualDevice>"#
            ));
        }
        assert!(refusal(disk_slot(&devices(&xml), "web").unwrap_err()).contains("已满"));
    }
}

//! VM operations against vCenter (seed 000): power, resize, disks, network, rename, clone,
//! ping and delete, with vCenter's refusals turned into the same typed rejections the simulated
//! provider gives (the engine words them).
//!
//! Every operation reads what it needs first, refuses what vCenter would refuse (or maps
//! the fault when vCenter refuses), runs the method / task, and reads the VM back through
//! [`crate::inventory::vm`] so the pool can be updated without a full sync.

mod clone;
mod delete;
mod hardware;
mod network;
mod ping;
mod power;
pub mod spec;

use crate::client::{view_spec, MoRef, ObjectContent, VimClient};
use crate::error::Error;
use crate::guest::GuestSettings;
use crate::xml::Node;
use opsbot_core::{
    Done, HostNeed, OpOutcome, Outage, Progress, ProviderError, Rejection, VmOperation,
};
use std::collections::HashMap;

/// Runs one VM operation to completion. `provider` is the configured provider name (for
/// errors and the VM read back); VM ids are `VirtualMachine` MoRef values.
pub async fn execute(
    client: &VimClient,
    provider: &str,
    guest: &GuestSettings,
    op: &VmOperation,
    progress: &dyn Progress,
) -> Result<OpOutcome, ProviderError> {
    let ctx = Ctx {
        client,
        provider,
        guest,
        progress,
    };
    match op {
        VmOperation::PowerOn { vm } => power::power_on(&ctx, vm).await,
        VmOperation::PowerOff { vm } => power::power_off(&ctx, vm).await,
        VmOperation::Shutdown { vm } => power::shutdown(&ctx, vm).await,
        VmOperation::Reboot { vm } => power::reboot(&ctx, vm).await,
        VmOperation::SetCpu { vm, count } => hardware::set_cpu(&ctx, vm, *count).await,
        VmOperation::SetMemory { vm, gb } => hardware::set_memory(&ctx, vm, *gb).await,
        VmOperation::AddDisk { vm, gb, datastore } => {
            hardware::add_disk(&ctx, vm, *gb, datastore.as_deref()).await
        }
        VmOperation::SetNetwork { vm, network } => network::set_network(&ctx, vm, network).await,
        VmOperation::Rename { vm, new_name } => clone::rename(&ctx, vm, new_name).await,
        VmOperation::Clone {
            template,
            name,
            ip,
            cpu,
            memory_gb,
        } => {
            let req = clone::CloneRequest {
                template,
                name,
                ip: *ip,
                cpu: *cpu,
                memory_gb: *memory_gb,
            };
            clone::clone(&ctx, &req).await
        }
        VmOperation::Ping { vm } => ping::ping(&ctx, vm).await,
        VmOperation::Delete { vm } => delete::delete(&ctx, vm).await,
    }
}

/// What every operation carries along.
pub(crate) struct Ctx<'a> {
    pub client: &'a VimClient,
    pub provider: &'a str,
    /// What clones get besides their IP.
    pub guest: &'a GuestSettings,
    pub progress: &'a dyn Progress,
}

/// The facts most operations start from.
pub(crate) struct VmFacts {
    pub moref: MoRef,
    pub name: String,
    pub power: String,
    pub template: bool,
    pub props: HashMap<String, Node>,
}

impl VmFacts {
    pub fn text(&self, path: &str) -> Option<&str> {
        self.props
            .get(path)
            .map(|n| n.text.trim())
            .filter(|t| !t.is_empty())
    }

    pub fn moref_at(&self, path: &str) -> Option<MoRef> {
        self.props.get(path).and_then(Node::moref)
    }

    pub fn powered_on(&self) -> bool {
        self.power == "poweredOn"
    }
}

/// A VM's host, as [`Ctx::host_of`] read it.
pub(crate) struct HostFacts {
    pub moref: MoRef,
    pub name: String,
    pub props: HashMap<String, Node>,
}

const BASE_PATHS: [&str; 3] = ["name", "runtime.powerState", "summary.config.template"];

pub(crate) fn reject(r: Rejection) -> ProviderError {
    ProviderError::Rejected(r)
}

/// Maps a task's own 0..=100 onto `from..=to` of the whole operation.
pub(crate) fn scale(task_percent: u8, from: u8, to: u8) -> u8 {
    let p = u16::from(task_percent.min(100));
    let (from, to) = (u16::from(from), u16::from(to.max(from)));
    (from + p * (to - from) / 100) as u8
}

impl Ctx<'_> {
    pub fn vm_ref(id: &str) -> MoRef {
        MoRef::new("VirtualMachine", id)
    }

    /// Reads the VM's name, power state and template flag plus `extra` paths. An unknown
    /// or deleted VM is [`ProviderError::NotFound`].
    pub async fn facts(&self, id: &str, extra: &[&str]) -> Result<VmFacts, ProviderError> {
        let moref = Self::vm_ref(id);
        let mut paths: Vec<&str> = BASE_PATHS.to_vec();
        paths.extend_from_slice(extra);
        let props = self
            .client
            .retrieve(&moref, &paths)
            .await
            .map_err(|e| self.fail(id, id, e))?;
        let Some(name) = props.get("name").map(|n| n.text.clone()) else {
            return Err(self.not_found(id));
        };
        let power = props
            .get("runtime.powerState")
            .map(|n| n.text.trim().to_string())
            .unwrap_or_default();
        let template = props
            .get("summary.config.template")
            .is_some_and(|n| n.text.trim() == "true");
        Ok(VmFacts {
            moref,
            name,
            power,
            template,
            props,
        })
    }

    pub fn not_found(&self, id: &str) -> ProviderError {
        ProviderError::NotFound {
            provider: self.provider.to_string(),
            kind: "VM",
            id: id.to_string(),
        }
    }

    /// The host `vm` runs on, with its name and `paths` read. `needed_for` says what
    /// for, in the refusal when the VM has no host.
    pub async fn host_of(
        &self,
        vm: &VmFacts,
        id: &str,
        needed_for: HostNeed,
        paths: &[&str],
    ) -> Result<HostFacts, ProviderError> {
        let moref = vm.moref_at("runtime.host").ok_or_else(|| {
            reject(Rejection::NoHost {
                vm: vm.name.clone(),
                needed_for,
            })
        })?;
        let wanted: Vec<&str> = std::iter::once("name")
            .chain(paths.iter().copied())
            .collect();
        let props = self
            .client
            .retrieve(&moref, &wanted)
            .await
            .map_err(|e| self.fail(&vm.name, id, e))?;
        let name = props
            .get("name")
            .map(|n| n.text.clone())
            .unwrap_or_else(|| moref.value.clone());
        Ok(HostFacts { moref, name, props })
    }

    /// Maps a client error that no operation-specific rule caught. `name` names the VM in
    /// the message, `id` is used for not-found.
    pub fn fail(&self, name: &str, id: &str, e: Error) -> ProviderError {
        let (fault, detail) = match e {
            Error::Fault { kind, message } => (kind, message),
            Error::FencedOut { .. } => return ProviderError::FencedOut,
            other => return ProviderError::unavailable(self.provider, other),
        };
        let vm = name.to_string();
        reject(match fault.as_str() {
            "ManagedObjectNotFound" => return self.not_found(id),
            // The job's cancellation, honoured by vCenter (CancelTask).
            "RequestCanceled" => return ProviderError::Cancelled,
            "NotAuthenticated" => {
                return ProviderError::Unavailable {
                    provider: self.provider.to_string(),
                    cause: Outage::SessionLost(detail),
                }
            }
            "NoPermission" => Rejection::NoPermission { vm, detail },
            "TaskInProgress" => Rejection::Busy { vm },
            "InvalidPowerState" => Rejection::PowerStateForbids { vm, detail },
            "InvalidState" => Rejection::StateForbids { vm },
            "ToolsUnavailable" => Rejection::ToolsNotRunning { vm },
            "InsufficientResourcesFault" | "NotEnoughLicenses" => {
                Rejection::InsufficientResources { vm, fault, detail }
            }
            _ => Rejection::Fault { vm, fault, detail },
        })
    }

    /// `Err(Error::FencedOut)` unless the job still holds its claim, asked of the store
    /// now. Called immediately before a method that changes something in vCenter: vCenter
    /// cannot join the store's transaction, so an instance that was paused past its lease
    /// (and whose job another instance interrupted) is stopped here, leaving open only
    /// the moment between this answer and the call.
    pub async fn still_claimed(&self, method: &str, this: &MoRef) -> Result<(), Error> {
        if opsbot_core::claim_held(self.progress).await {
            return Ok(());
        }
        tracing::warn!(
            provider = self.provider,
            job = self.progress.fence().map(|f| f.job.0),
            method,
            target = %this,
            "the job's claim no longer holds; not calling vCenter"
        );
        Err(Error::FencedOut {
            method: method.to_string(),
        })
    }

    /// Calls a method that changes something in vCenter without a task (a guest
    /// shutdown or reboot request), under the same claim check as [`Ctx::task`].
    pub async fn change(&self, method: &str, this: &MoRef, args: &str) -> Result<Node, Error> {
        self.still_claimed(method, this).await?;
        self.client.invoke(method, this, args).await
    }

    /// Starts a `*_Task` method and waits for it; a task error is an [`Error::Fault`],
    /// a job whose claim is gone [`Error::FencedOut`] (the task is not started).
    /// `on_progress` sees the task's own percentage.
    pub async fn task(
        &self,
        method: &str,
        this: &MoRef,
        args: &str,
        on_progress: &mut (dyn FnMut(u8) + Send),
    ) -> Result<Option<Node>, Error> {
        self.still_claimed(method, this).await?;
        let response = self.client.invoke(method, this, args).await?;
        let task = response
            .child("returnval")
            .and_then(Node::moref)
            .ok_or_else(|| Error::Protocol(format!("{method} returned no Task")))?;
        // The job's last percentage, for the note when vCenter refuses to cancel.
        let last = std::sync::atomic::AtomicU8::new(0);
        let progress = self.progress;
        self.client
            .wait_task_or_cancel(
                &task,
                &mut |p| {
                    last.store(p, std::sync::atomic::Ordering::Relaxed);
                    on_progress(p);
                },
                progress.cancel(),
                &mut |e| {
                    let detail = match e {
                        Error::Fault { kind, message } if message.is_empty() => kind.clone(),
                        Error::Fault { kind, message } => format!("{kind}: {message}"),
                        other => other.to_string(),
                    };
                    progress.report(
                        last.load(std::sync::atomic::Ordering::Relaxed),
                        &opsbot_core::Step::CancelRefused { detail },
                    );
                },
            )
            .await
    }

    /// A task with no progress reporting.
    pub async fn quick_task(
        &self,
        method: &str,
        this: &MoRef,
        args: &str,
    ) -> Result<Option<Node>, Error> {
        self.task(method, this, args, &mut |_| {}).await
    }

    /// The outcome of a finished operation, with the VM read back.
    pub async fn done(&self, vm: &MoRef, done: Done) -> Result<OpOutcome, ProviderError> {
        let vm = match crate::inventory::vm(self.client, self.provider, vm).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(provider = self.provider, vm = %vm, error = %e, "could not read the VM back after an operation");
                None
            }
        };
        Ok(OpOutcome { done, vm })
    }

    /// A refusal after `vm` was created or changed: carries the VM as it now is, so the
    /// pool records what the operation left behind (when it can still be read).
    pub async fn left_behind(&self, vm: &MoRef, err: ProviderError) -> ProviderError {
        let ProviderError::Rejected(rejection) = err else {
            return err;
        };
        match crate::inventory::vm(self.client, self.provider, vm).await {
            Ok(v) => ProviderError::Partial {
                rejection,
                vm: Box::new(v),
            },
            Err(_) => ProviderError::Rejected(rejection),
        }
    }

    /// Every object of these types under the root folder, with the given paths per type
    /// (a ContainerView, destroyed afterwards).
    pub async fn list(
        &self,
        types: &[&str],
        props_by_type: &[(&str, &[&str])],
    ) -> Result<Vec<ObjectContent>, Error> {
        let sc = self.client.service();
        let mut args = sc.root_folder.to_xml("container");
        for t in types {
            args.push_str(&format!("<type>{t}</type>"));
        }
        args.push_str("<recursive>true</recursive>");
        let view = self
            .client
            .invoke("CreateContainerView", &sc.view_manager, &args)
            .await?
            .child("returnval")
            .and_then(Node::moref)
            .ok_or_else(|| Error::Protocol("CreateContainerView returned no view".into()))?;
        let result = self
            .client
            .retrieve_properties(&view_spec(&view, props_by_type), None)
            .await;
        if let Err(e) = self.client.invoke("DestroyView", &view, "").await {
            tracing::debug!(error = %e, "DestroyView failed");
        }
        result
    }

    /// Every VM's name, guest IPs and template flag (for duplicate checks).
    pub async fn all_vms(&self) -> Result<Vec<VmSummary>, Error> {
        const PATHS: [&str; 3] = ["name", "guest.ipAddress", "guest.net"];
        let objs = self
            .list(&["VirtualMachine"], &[("VirtualMachine", &PATHS)])
            .await?;
        Ok(objs
            .into_iter()
            .map(|o| {
                let mut ips = Vec::new();
                for path in ["guest.ipAddress", "guest.net"] {
                    if let Some(n) = o.get(path) {
                        collect_ips(n, &mut ips);
                    }
                }
                VmSummary {
                    name: o.text("name").unwrap_or_default().to_string(),
                    ips,
                    moref: o.obj,
                }
            })
            .collect())
    }
}

pub(crate) struct VmSummary {
    pub moref: MoRef,
    pub name: String,
    pub ips: Vec<String>,
}

/// Every `ipAddress` text under a node (the node itself for `guest.ipAddress`;
/// `GuestNicInfo.ipAddress` and `ipConfig.ipAddress.ipAddress` for `guest.net`).
pub(crate) fn collect_ips(n: &Node, out: &mut Vec<String>) {
    if n.children.is_empty() {
        let t = n.text.trim();
        if !t.is_empty()
            && (n.name == "ipAddress" || n.name == "val")
            && !out.iter().any(|x| x == t)
        {
            out.push(t.to_string());
        }
        return;
    }
    for c in &n.children {
        collect_ips(c, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn progress_scaling() {
        assert_eq!(scale(0, 10, 70), 10);
        assert_eq!(scale(50, 10, 70), 40);
        assert_eq!(scale(100, 10, 70), 70);
        assert_eq!(scale(255, 20, 90), 90);
    }

    #[test]
    fn guest_ips_from_ip_address_and_net() {
        let ip = parse("<val>10.0.0.5</val>").unwrap();
        let net = parse(concat!(
            "<val><GuestNicInfo><macAddress>00:0c</macAddress><ipAddress>10.0.0.5</ipAddress><ipAddress>fe80::1</ipAddress>",
            "<ipConfig><ipAddress><ipAddress>10.0.0.6</ipAddress><prefixLength>24</prefixLength></ipAddress></ipConfig>",
            "<deviceConfigId>4000</deviceConfigId></GuestNicInfo></val>"
        ))
        .unwrap();
        let mut out = Vec::new();
        collect_ips(&ip, &mut out);
        collect_ips(&net, &mut out);
        assert_eq!(out, ["10.0.0.5", "fe80::1", "10.0.0.6"]);
    }
}

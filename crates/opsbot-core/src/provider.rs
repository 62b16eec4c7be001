//! The provider trait: one implementation per kind of cluster (sim, vSphere, Kubernetes).
//! The engine calls it; providers know nothing of chat channels.

use crate::inventory::{Inventory, Vm};
use crate::outcome::{Done, Outage, Rejection, Step};
use async_trait::async_trait;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// An operation on one VM, addressed by the provider's id for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmOperation {
    PowerOn {
        vm: String,
    },
    /// Hard power off.
    PowerOff {
        vm: String,
    },
    /// Guest OS shutdown through the tools.
    Shutdown {
        vm: String,
    },
    /// Guest reboot, falling back to a reset where the guest cannot.
    Reboot {
        vm: String,
    },
    SetCpu {
        vm: String,
        count: u32,
    },
    SetMemory {
        vm: String,
        gb: u32,
    },
    AddDisk {
        vm: String,
        gb: u32,
        datastore: Option<String>,
    },
    /// Move the first NIC to the named network / port group.
    SetNetwork {
        vm: String,
        network: String,
    },
    Rename {
        vm: String,
        new_name: String,
    },
    Clone {
        template: String,
        name: String,
        ip: Ipv4Addr,
        cpu: Option<u32>,
        memory_gb: Option<u32>,
    },
    Ping {
        vm: String,
    },
    /// Deletes the VM and its disks (vCenter's Destroy_Task); refused unless it is
    /// powered off, as vCenter refuses it. Cannot be undone.
    Delete {
        vm: String,
    },
}

impl VmOperation {
    /// The VM the operation acts on (the template, for a clone).
    pub fn target(&self) -> &str {
        match self {
            VmOperation::PowerOn { vm }
            | VmOperation::PowerOff { vm }
            | VmOperation::Shutdown { vm }
            | VmOperation::Reboot { vm }
            | VmOperation::SetCpu { vm, .. }
            | VmOperation::SetMemory { vm, .. }
            | VmOperation::AddDisk { vm, .. }
            | VmOperation::SetNetwork { vm, .. }
            | VmOperation::Rename { vm, .. }
            | VmOperation::Ping { vm }
            | VmOperation::Delete { vm } => vm,
            VmOperation::Clone { template, .. } => template,
        }
    }

    /// The same operation on `vm` (chat names a VM as typed; the provider gets its id).
    pub fn on(self, vm: String) -> VmOperation {
        match self {
            VmOperation::PowerOn { .. } => VmOperation::PowerOn { vm },
            VmOperation::PowerOff { .. } => VmOperation::PowerOff { vm },
            VmOperation::Shutdown { .. } => VmOperation::Shutdown { vm },
            VmOperation::Reboot { .. } => VmOperation::Reboot { vm },
            VmOperation::Ping { .. } => VmOperation::Ping { vm },
            VmOperation::Delete { .. } => VmOperation::Delete { vm },
            VmOperation::SetCpu { count, .. } => VmOperation::SetCpu { vm, count },
            VmOperation::SetMemory { gb, .. } => VmOperation::SetMemory { vm, gb },
            VmOperation::AddDisk { gb, datastore, .. } => {
                VmOperation::AddDisk { vm, gb, datastore }
            }
            VmOperation::SetNetwork { network, .. } => VmOperation::SetNetwork { vm, network },
            VmOperation::Rename { new_name, .. } => VmOperation::Rename { vm, new_name },
            VmOperation::Clone {
                name,
                ip,
                cpu,
                memory_gb,
                ..
            } => VmOperation::Clone {
                template: vm,
                name,
                ip,
                cpu,
                memory_gb,
            },
        }
    }
}

/// What an operation did, and the VM as it now is so the pool can be updated without
/// a full sync (`None` for a VM the operation deleted: [`Done::Deleted`] tells the
/// pool to drop it).
#[derive(Debug, Clone, PartialEq)]
pub struct OpOutcome {
    pub done: Done,
    pub vm: Option<Vm>,
}

/// Progress callback for long operations (percent 0..=100 and the step reached), and
/// the way back from the job to the running operation: its cancellation.
pub trait Progress: Send + Sync {
    fn report(&self, percent: u8, step: &Step);
    /// The job's cancellation, when the job can be cancelled (see
    /// [`Provider::can_cancel`]); a provider that honours it looks at it between steps.
    fn cancel(&self) -> Option<&Cancel> {
        None
    }
    /// The job's claim, when the operation runs as a job: a provider whose commit goes
    /// through the store makes it conditional on the claim still holding, and answers
    /// [`ProviderError::FencedOut`] when it does not.
    fn fence(&self) -> Option<&crate::JobFence> {
        None
    }
    /// The job's claim as a question to the store, when the operation runs as a job:
    /// for a provider whose commit cannot go through the store (a vCenter task), which
    /// asks it immediately before its point of no return and answers
    /// [`ProviderError::FencedOut`] instead of starting the work when the claim is gone.
    /// That leaves only the moment between the answer and the remote call open, where a
    /// commit through the store ([`Progress::fence`]) leaves none.
    fn claim(&self) -> Option<&dyn ClaimCheck> {
        None
    }
}

/// Whether a running job still holds its claim ([`crate::JobFence`]), asked at the
/// moment it matters rather than remembered.
#[async_trait]
pub trait ClaimCheck: Send + Sync {
    /// `true` only when the store answers that the claim still holds. A store that
    /// cannot be reached answers `false` too: the work it would guard could not be
    /// recorded, this instance's heartbeat is failing as well (so other instances may
    /// already be calling the job stale), and remote work that nobody can record or
    /// fence is worse than a job that fails and can be asked for again.
    async fn still_held(&self) -> bool;
}

/// [`ClaimCheck::still_held`] when the operation runs under a claim; work that runs
/// outside a job (no claim) is never fenced.
pub async fn claim_held(progress: &dyn Progress) -> bool {
    match progress.claim() {
        Some(claim) => claim.still_held().await,
        None => true,
    }
}

/// A running operation's cancellation, shared by the job that asks for it and the
/// provider that honours it. Once the provider has passed its point of no return
/// ([`Cancel::commit`]) a request is refused, and once a request is taken the provider
/// can no longer commit: the two never both succeed, so the job ends cancelled with
/// nothing (further) done, or done. (A provider whose remote side finished the step
/// before it could stop it, such as a vCenter task that completed as CancelTask was
/// sent, goes on and says the cancellation came too late.)
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicU8>);

const OPEN: u8 = 0;
const REQUESTED: u8 = 1;
const COMMITTED: u8 = 2;

/// What [`Cancel::request`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRequest {
    /// Taken: the provider stops at its next check.
    Taken,
    /// Someone asked before.
    AlreadyAsked,
    /// The provider is past its point of no return: the operation will finish.
    TooLate,
}

impl Cancel {
    /// Asks the operation to stop.
    pub fn request(&self) -> CancelRequest {
        match self
            .0
            .compare_exchange(OPEN, REQUESTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => CancelRequest::Taken,
            Err(REQUESTED) => CancelRequest::AlreadyAsked,
            Err(_) => CancelRequest::TooLate,
        }
    }

    /// Whether a cancellation was asked for (and taken).
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::Acquire) == REQUESTED
    }

    /// The provider is about to do what cannot be stopped or undone: from now on
    /// requests are refused. `Err(ProviderError::Cancelled)` when one came first: the
    /// provider must stop instead.
    pub fn commit(&self) -> Result<(), ProviderError> {
        match self
            .0
            .compare_exchange(OPEN, COMMITTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(COMMITTED) => Ok(()),
            Err(_) => Err(ProviderError::Cancelled),
        }
    }

    /// `Err(ProviderError::Cancelled)` when a cancellation was asked for: a check
    /// between steps.
    pub fn check(&self) -> Result<(), ProviderError> {
        if self.is_requested() {
            Err(ProviderError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The job's cancellation as seen by a provider: [`Cancel::check`] when there is one.
pub fn check_cancel(progress: &dyn Progress) -> Result<(), ProviderError> {
    progress.cancel().map_or(Ok(()), Cancel::check)
}

/// [`Cancel::commit`] when there is a cancellation.
pub fn commit_cancel(progress: &dyn Progress) -> Result<(), ProviderError> {
    progress.cancel().map_or(Ok(()), Cancel::commit)
}

/// A progress sink that ignores everything, for quick operations and tests.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _percent: u8, _step: &Step) {}
}

/// Why an operation or read failed. The text a user reads is the engine's rendering;
/// `Display` is for logs.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The request cannot be done as asked (already on, too big, name taken, ...).
    #[error("rejected: {0:?}")]
    Rejected(Rejection),
    #[error("{kind} {id} not found on provider {provider}")]
    NotFound {
        provider: String,
        kind: &'static str,
        id: String,
    },
    /// The provider could not be reached or failed; retrying later may work.
    #[error("provider {provider} unavailable: {cause:?}")]
    Unavailable { provider: String, cause: Outage },
    #[error("{0} is not supported by this provider")]
    Unsupported(&'static str),
    /// The job's owner cancelled the operation and the provider stopped it
    /// ([`Cancel`]); nothing past its last completed step was done.
    #[error("cancelled on request")]
    Cancelled,
    /// The job was taken from this instance (it was called dead and its job
    /// interrupted or taken over) before the operation committed: nothing was done.
    /// A provider that checks the claim before each remote step ([`Progress::claim`])
    /// says this too when the store could not confirm the claim, and for a later step
    /// of a multi-step operation: nothing past its last completed step was done.
    #[error("job taken over by another instance; not done")]
    FencedOut,
    /// The operation was refused after it had changed something (a clone whose
    /// customisation failed): `vm` is what it left behind, for the pool to record.
    #[error("rejected after a change to {}: {rejection:?}", vm.name)]
    Partial { rejection: Rejection, vm: Box<Vm> },
}

impl From<Rejection> for ProviderError {
    fn from(r: Rejection) -> Self {
        ProviderError::Rejected(r)
    }
}

impl ProviderError {
    /// The provider failed in its client's own words.
    pub fn unavailable(provider: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ProviderError::Unavailable {
            provider: provider.into(),
            cause: Outage::Failed(message.to_string()),
        }
    }
}

/// What [`Provider::inventory_since`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum InventoryRead {
    /// The whole inventory, and a change token describing it (`None`: the provider
    /// cannot tell changes, so every read is full). The caller keeps the token once the
    /// inventory is applied and passes it back to the next read.
    Full {
        inventory: Inventory,
        token: Option<String>,
    },
    /// Nothing changed since the token passed in.
    Unchanged,
    /// Only some VMs changed since the token passed in: `vms` are new or changed (read
    /// in full), the VMs `removed` (ids) are gone, and everything else is as it was.
    Delta {
        vms: Vec<Vm>,
        removed: Vec<String>,
        token: String,
    },
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// The configured name (`[[providers]] name`), the first segment of scope paths.
    fn name(&self) -> &str;
    /// `sim`, `vsphere`, `kubernetes`.
    fn kind(&self) -> &'static str;
    /// A full inventory for the resource pool sync.
    async fn inventory(&self) -> Result<Inventory, ProviderError>;
    /// The inventory for a re-sync: [`InventoryRead::Unchanged`] when the provider can
    /// tell that nothing changed since it returned `since` (a token of an earlier
    /// [`InventoryRead::Full`]), otherwise everything. Providers that cannot tell always
    /// read everything.
    async fn inventory_since(&self, since: Option<&str>) -> Result<InventoryRead, ProviderError> {
        let _ = since;
        Ok(InventoryRead::Full {
            inventory: self.inventory().await?,
            token: None,
        })
    }
    /// Whether a running `op` can be cancelled: `execute` then honours
    /// `progress.cancel()` until its point of no return. Most cannot.
    fn can_cancel(&self, op: &VmOperation) -> bool {
        let _ = op;
        false
    }
    /// Runs one VM operation to completion, reporting progress on the way.
    async fn execute(
        &self,
        op: &VmOperation,
        progress: &dyn Progress,
    ) -> Result<OpOutcome, ProviderError>;
}

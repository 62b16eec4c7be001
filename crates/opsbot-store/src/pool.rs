//! The resource pool (every provider's inventory, mirrored with template numbers) and
//! its change history, which the CMDB's asset changes share.

use crate::{Lease, Result};
use async_trait::async_trait;
use opsbot_core::{Change, Inventory, Template, Vm};

/// The whole live pool as last written, and the version it was read at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolSnapshot {
    pub version: i64,
    pub inventory: Inventory,
    /// Templates with their stable numbers, ordered by number.
    pub templates: Vec<Template>,
}

/// What one `apply_inventory` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncReport {
    pub provider: String,
    pub datacenters: usize,
    pub clusters: usize,
    pub hosts: usize,
    /// VMs, templates excluded.
    pub vms: usize,
    pub templates: usize,
    pub datastores: usize,
    pub networks: usize,
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// The provider reported no change since the last sync, so nothing was read in full
    /// or written; the counts are those of the last sync.
    #[serde(default)]
    pub unchanged: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeQuery {
    pub provider: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub limit: u64,
    pub offset: u64,
}

/// The resource pool as providers last reported it.
#[async_trait]
pub trait PoolStore: Send + Sync {
    /// A counter bumped by every write to the pool; readers cache the pool and reload
    /// only when it moves, so several opsbot processes stay consistent.
    async fn pool_version(&self) -> Result<i64>;

    /// All live (not removed) pool objects of every provider, with template numbers.
    async fn load_pool(&self) -> Result<PoolSnapshot>;

    /// Makes the pool mirror `inventory` for `provider`: inserts new objects, updates
    /// changed ones, marks objects missing from the inventory as removed, numbers new
    /// templates, and records every difference in the change history with `source`.
    async fn apply_inventory(
        &self,
        provider: &str,
        inventory: &Inventory,
        source: &str,
    ) -> Result<SyncReport>;

    /// Writes one VM as an operation left it (insert or update), recording changes.
    /// A template VM gets a template number if it has none.
    async fn upsert_vm(&self, vm: &Vm, source: &str) -> Result<Vec<Change>>;

    /// A partial re-sync of `provider`: `vms` changed or appeared, the VMs `removed`
    /// (ids) are gone; nothing else is touched. Differences are recorded as by
    /// [`PoolStore::apply_inventory`]; the report's counts are the provider's afterwards.
    async fn apply_vm_delta(
        &self,
        provider: &str,
        vms: &[Vm],
        removed: &[String],
        source: &str,
    ) -> Result<SyncReport>;

    /// [`PoolStore::apply_inventory`] by the holder of `fence` (the scheduled sync's
    /// lease): `None`, and nothing written, when the lease has changed hands since it
    /// was taken (checked and locked inside the write's transaction), so an instance
    /// frozen mid-sync cannot write an older view over a newer holder's.
    async fn apply_inventory_fenced(
        &self,
        provider: &str,
        inventory: &Inventory,
        source: &str,
        fence: &Lease,
    ) -> Result<Option<SyncReport>>;

    /// [`PoolStore::apply_vm_delta`] fenced as [`PoolStore::apply_inventory_fenced`].
    async fn apply_vm_delta_fenced(
        &self,
        provider: &str,
        vms: &[Vm],
        removed: &[String],
        source: &str,
        fence: &Lease,
    ) -> Result<Option<SyncReport>>;
}

/// The change history of the pool and of CMDB assets (one table, `change_log`).
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// The change history, newest first.
    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<Change>>;

    /// Appends changes a subsystem saw itself (a Kubernetes watch, a scale from chat)
    /// in one transaction; the store assigns their ids (the `id` given is ignored).
    /// The pool's version does not move: these are not pool objects.
    async fn record_changes(&self, changes: &[Change]) -> Result<()>;
}

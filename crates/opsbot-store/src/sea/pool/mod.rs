//! The resource pool tables: diffing a provider's inventory against them, writing the
//! differences with their history, and reading the live pool back.

pub(crate) mod entity;
pub(crate) mod migration;

mod children;
mod diff;
mod load;
mod object;
mod sync;

use crate::sea::SeaStore;
use crate::{ChangeQuery, Lease, PoolSnapshot, Result, SyncReport};
use async_trait::async_trait;
use opsbot_core::{Change, Inventory, Vm};

pub(crate) use children::insert_chunked;
pub(crate) use load::{changes, load_pool};
pub(crate) use sync::{apply_inventory, apply_vm_delta, record_changes, upsert_vm};

/// Now, at the microsecond precision every backend stores, so what is written reads
/// back equal.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

#[async_trait]
impl crate::PoolStore for SeaStore {
    async fn pool_version(&self) -> Result<i64> {
        load::current_version(&self.conn, &self.db).await
    }

    async fn load_pool(&self) -> Result<PoolSnapshot> {
        load_pool(&self.conn, &self.db).await
    }

    async fn apply_inventory(
        &self,
        provider: &str,
        inventory: &Inventory,
        source: &str,
    ) -> Result<SyncReport> {
        // Unfenced: never refused, so always `Some`.
        apply_inventory(&self.conn, &self.db, provider, inventory, source, None)
            .await
            .map(Option::unwrap_or_default)
    }

    async fn upsert_vm(&self, vm: &Vm, source: &str) -> Result<Vec<Change>> {
        upsert_vm(&self.conn, &self.db, vm, source).await
    }

    async fn apply_vm_delta(
        &self,
        provider: &str,
        vms: &[Vm],
        removed: &[String],
        source: &str,
    ) -> Result<SyncReport> {
        apply_vm_delta(&self.conn, &self.db, provider, vms, removed, source, None)
            .await
            .map(Option::unwrap_or_default)
    }

    async fn apply_inventory_fenced(
        &self,
        provider: &str,
        inventory: &Inventory,
        source: &str,
        fence: &Lease,
    ) -> Result<Option<SyncReport>> {
        apply_inventory(
            &self.conn,
            &self.db,
            provider,
            inventory,
            source,
            Some(fence),
        )
        .await
    }

    async fn apply_vm_delta_fenced(
        &self,
        provider: &str,
        vms: &[Vm],
        removed: &[String],
        source: &str,
        fence: &Lease,
    ) -> Result<Option<SyncReport>> {
        let fence = Some(fence);
        apply_vm_delta(&self.conn, &self.db, provider, vms, removed, source, fence).await
    }
}

#[async_trait]
impl crate::ChangeLog for SeaStore {
    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<Change>> {
        changes(&self.conn, &self.db, query).await
    }

    async fn record_changes(&self, changes: &[Change]) -> Result<()> {
        record_changes(&self.conn, &self.db, changes).await
    }
}

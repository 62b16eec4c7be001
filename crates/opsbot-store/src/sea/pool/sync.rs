//! Writing the pool: `apply_inventory` and `upsert_vm`. Each runs in one transaction
//! that first locks the pool-version row, so concurrent writers (several opsbot
//! processes) take turns instead of diffing against the same old state. A sync run
//! under a lease (the scheduled sync) is fenced: its transaction checks, and locks,
//! the lease row before writing, so a holder that lost its lease writes nothing.

use super::children::{self, insert_chunked};
use super::diff::{diff, Diff};
use super::object::{PoolObject, Stored, Time};
use crate::sea::conn::Conn;
use crate::sea::errors::{Db, During};
use crate::sea::pool::entity::{change_log, pool_meta, template};
use crate::{Lease, Result, SyncReport};
use opsbot_core::{Change, Inventory, Vm};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};
use std::borrow::Cow;
use std::collections::HashSet;

const ACTION: &str = "writing the pool";

/// Totals gathered across the kinds of one sync.
#[derive(Default)]
struct Outcome {
    changes: Vec<Change>,
    added: usize,
    updated: usize,
    removed: usize,
}

impl Outcome {
    fn count<T>(&mut self, d: &Diff<'_, T>) {
        let revived = d.updates.iter().filter(|u| u.revived).count();
        self.added += d.inserts.len() + revived;
        self.updated += d.updates.len() - revived;
        self.removed += d.removes.len();
    }
}

pub(crate) async fn apply_inventory(
    conn: &Conn,
    db: &Db,
    provider: &str,
    inventory: &Inventory,
    source: &str,
    fence: Option<&Lease>,
) -> Result<Option<SyncReport>> {
    let at = super::now();
    let vms = owned_by(provider, &inventory.vms);
    let templates = vms.iter().filter(|v| v.template).count();
    let mut report = SyncReport {
        provider: provider.to_string(),
        datacenters: inventory.datacenters.len(),
        clusters: inventory.clusters.len(),
        hosts: inventory.hosts.len(),
        vms: vms.len() - templates,
        templates,
        datastores: inventory.datastores.len(),
        networks: inventory.networks.len(),
        ..SyncReport::default()
    };

    let tx = conn.begin().await.during(db, ACTION)?;
    lock_pool(&tx).await.during(db, ACTION)?;
    if !fence_holds(&tx, db, fence).await? {
        tx.rollback().await.during(db, ACTION)?;
        return Ok(None);
    }
    let mut out = Outcome::default();
    let ctx = Ctx {
        db,
        provider,
        at,
        source,
    };
    ctx.sync(&tx, &owned_by(provider, &inventory.datacenters), &mut out)
        .await?;
    ctx.sync(&tx, &owned_by(provider, &inventory.clusters), &mut out)
        .await?;
    ctx.sync(&tx, &owned_by(provider, &inventory.hosts), &mut out)
        .await?;
    ctx.sync(&tx, &owned_by(provider, &inventory.datastores), &mut out)
        .await?;
    ctx.sync(&tx, &owned_by(provider, &inventory.networks), &mut out)
        .await?;
    ctx.sync_vms(&tx, &vms, None, &mut out).await?;
    finish(&tx, db, &mut out.changes, false).await?;
    tx.commit().await.during(db, ACTION)?;

    report.added = out.added;
    report.updated = out.updated;
    report.removed = out.removed;
    Ok(Some(report))
}

/// Whether a write fenced by `fence` may go on (an unfenced one always may); checked
/// after the pool lock, inside the write's transaction.
async fn fence_holds<C: ConnectionTrait>(tx: &C, db: &Db, fence: Option<&Lease>) -> Result<bool> {
    match fence {
        Some(lease) => crate::sea::leases::held_in(tx, db, lease).await,
        None => Ok(true),
    }
}

pub(crate) async fn upsert_vm(conn: &Conn, db: &Db, vm: &Vm, source: &str) -> Result<Vec<Change>> {
    let tx = conn.begin().await.during(db, ACTION)?;
    lock_pool(&tx).await.during(db, ACTION)?;
    let mut out = Outcome::default();
    let ctx = Ctx {
        db,
        provider: &vm.provider,
        at: super::now(),
        source,
    };
    ctx.sync_vms(
        &tx,
        std::slice::from_ref(vm),
        Some(VmSubset {
            ids: std::slice::from_ref(&vm.id),
            remove_missing: false,
        }),
        &mut out,
    )
    .await?;
    finish(&tx, db, &mut out.changes, true).await?;
    tx.commit().await.during(db, ACTION)?;
    Ok(out.changes)
}

/// A partial re-sync: `vms` changed or appeared, the VMs `removed` are gone, nothing
/// else of the provider is touched. Returns the provider's counts afterwards.
pub(crate) async fn apply_vm_delta(
    conn: &Conn,
    db: &Db,
    provider: &str,
    vms: &[Vm],
    removed: &[String],
    source: &str,
    fence: Option<&Lease>,
) -> Result<Option<SyncReport>> {
    let vms = owned_by(provider, vms);
    let ids: Vec<String> = vms
        .iter()
        .map(|v| v.id.clone())
        .chain(removed.iter().cloned())
        .collect();
    let tx = conn.begin().await.during(db, ACTION)?;
    lock_pool(&tx).await.during(db, ACTION)?;
    if !fence_holds(&tx, db, fence).await? {
        tx.rollback().await.during(db, ACTION)?;
        return Ok(None);
    }
    let mut out = Outcome::default();
    let ctx = Ctx {
        db,
        provider,
        at: super::now(),
        source,
    };
    ctx.sync_vms(
        &tx,
        &vms,
        Some(VmSubset {
            ids: &ids,
            remove_missing: true,
        }),
        &mut out,
    )
    .await?;
    finish(&tx, db, &mut out.changes, false).await?;
    let mut report = counts(&tx, db, provider).await?;
    tx.commit().await.during(db, ACTION)?;
    report.added = out.added;
    report.updated = out.updated;
    report.removed = out.removed;
    Ok(Some(report))
}

/// The live objects of one provider, counted (a delta knows only what it changed).
async fn counts<C: ConnectionTrait>(tx: &C, db: &Db, provider: &str) -> Result<SyncReport> {
    use crate::sea::pool::entity::{cluster, datacenter, datastore, host, network, vm};
    use sea_orm::PaginatorTrait;
    macro_rules! live {
        ($m:ident) => {
            $m::Entity::find()
                .filter($m::Column::Provider.eq(provider))
                .filter($m::Column::RemovedAt.is_null())
                .count(tx)
                .await
                .during(db, ACTION)? as usize
        };
    }
    let templates = vm::Entity::find()
        .filter(vm::Column::Provider.eq(provider))
        .filter(vm::Column::RemovedAt.is_null())
        .filter(vm::Column::Template.eq(true))
        .count(tx)
        .await
        .during(db, ACTION)? as usize;
    Ok(SyncReport {
        provider: provider.to_string(),
        datacenters: live!(datacenter),
        clusters: live!(cluster),
        hosts: live!(host),
        vms: live!(vm) - templates,
        templates,
        datastores: live!(datastore),
        networks: live!(network),
        ..SyncReport::default()
    })
}

/// `items` with their provider field set to `provider`: rows are keyed by the provider
/// being synced, whatever the objects say.
fn owned_by<'a, T: PoolObject>(provider: &str, items: &'a [T]) -> Cow<'a, [T]> {
    if items.iter().all(|i| i.provider() == provider) {
        Cow::Borrowed(items)
    } else {
        Cow::Owned(
            items
                .iter()
                .map(|i| {
                    let mut i = i.clone();
                    i.set_provider(provider);
                    i
                })
                .collect(),
        )
    }
}

/// Takes the pool writer lock: a no-op write to the version row. On SQLite this
/// also makes the transaction a writer up front, so it waits (busy timeout) for other
/// processes instead of failing later when upgrading from a read.
async fn lock_pool<C: ConnectionTrait>(tx: &C) -> Result<(), sea_orm::DbErr> {
    pool_meta::Entity::update_many()
        .col_expr(
            pool_meta::Column::Version,
            Expr::col(pool_meta::Column::Version).into(),
        )
        .filter(pool_meta::Column::Id.eq(1))
        .exec(tx)
        .await?;
    Ok(())
}

/// Appends changes seen outside a pool sync (a subsystem's watch), in one transaction.
pub(crate) async fn record_changes(conn: &Conn, db: &Db, changes: &[Change]) -> Result<()> {
    const RECORDING: &str = "recording changes";
    if changes.is_empty() {
        return Ok(());
    }
    let tx = conn.begin().await.during(db, RECORDING)?;
    insert_chunked::<change_log::Entity, _, _>(&tx, changes.iter().map(change_row).collect())
        .await
        .during(db, RECORDING)?;
    tx.commit().await.during(db, RECORDING)
}

/// One change as its history row (the id is the database's).
fn change_row(c: &Change) -> change_log::ActiveModel {
    change_log::ActiveModel {
        id: NotSet,
        at: Set(c.at),
        provider: Set(c.provider.clone()),
        object_kind: Set(c.object_kind.clone()),
        object_id: Set(c.object_id.clone()),
        object_name: Set(c.object_name.clone()),
        field: Set(c.field.clone()),
        old_value: Set(c.old_value.clone()),
        new_value: Set(c.new_value.clone()),
        source: Set(c.source.clone()),
    }
}

/// Records the changes and bumps the version once if there are any. With `want_ids`
/// each change is inserted alone so it gets its id back (used for a single VM).
async fn finish<C: ConnectionTrait>(
    tx: &C,
    db: &Db,
    changes: &mut [Change],
    want_ids: bool,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let row = change_row;
    if want_ids {
        for c in changes.iter_mut() {
            c.id = change_log::Entity::insert(row(c))
                .exec(tx)
                .await
                .during(db, ACTION)?
                .last_insert_id;
        }
    } else {
        insert_chunked::<change_log::Entity, _, _>(tx, changes.iter().map(row).collect())
            .await
            .during(db, ACTION)?;
    }
    pool_meta::Entity::update_many()
        .col_expr(
            pool_meta::Column::Version,
            Expr::col(pool_meta::Column::Version).add(1),
        )
        .filter(pool_meta::Column::Id.eq(1))
        .exec(tx)
        .await
        .during(db, ACTION)?;
    Ok(())
}

/// Some VMs of a provider: the ones an operation or a partial re-sync is about.
struct VmSubset<'a> {
    ids: &'a [String],
    /// Whether those of `ids` missing from the current VMs are marked removed.
    remove_missing: bool,
}

/// What every kind's sync shares.
struct Ctx<'a> {
    db: &'a Db,
    provider: &'a str,
    at: Time,
    source: &'a str,
}

impl Ctx<'_> {
    /// Loads the provider's rows of one kind (or just those in `only`), decoded.
    async fn load<T: PoolObject, C: ConnectionTrait>(
        &self,
        tx: &C,
        only: Option<&[String]>,
    ) -> Result<Vec<Stored<T>>> {
        let mut q = T::Entity::find().filter(T::provider_col().eq(self.provider));
        if let Some(ids) = only {
            q = q.filter(T::object_id_col().is_in(ids.iter().cloned()));
        }
        q.all(tx)
            .await
            .during(self.db, ACTION)?
            .into_iter()
            .map(|m| T::from_model(m).map_err(|e| self.db.corrupt(T::KIND, e)))
            .collect()
    }

    /// Diffs and writes one kind of object other than VMs.
    async fn sync<T: PoolObject, C: ConnectionTrait>(
        &self,
        tx: &C,
        current: &[T],
        out: &mut Outcome,
    ) -> Result<()> {
        let stored = self.load::<T, _>(tx, None).await?;
        let d = diff(self.provider, stored, current, true, self.at, self.source);
        self.write(tx, &d).await?;
        out.count(&d);
        out.changes.extend(d.changes);
        Ok(())
    }

    /// Diffs and writes VMs with their NICs, disks and IPs, and numbers new templates.
    /// `only` limits it to some VMs (see [`VmSubset`]); without it every VM of the
    /// provider missing from `current` is marked removed.
    async fn sync_vms<C: ConnectionTrait>(
        &self,
        tx: &C,
        current: &[Vm],
        only: Option<VmSubset<'_>>,
        out: &mut Outcome,
    ) -> Result<()> {
        let ids = only.as_ref().map(|o| o.ids);
        let mut stored = self.load::<Vm, _>(tx, ids).await?;
        let mut kids = children::load(tx, Some(self.provider), ids)
            .await
            .during(self.db, ACTION)?;
        for s in &mut stored {
            kids.attach(&mut s.obj);
        }
        let d = diff(
            self.provider,
            stored,
            current,
            only.as_ref().is_none_or(|o| o.remove_missing),
            self.at,
            self.source,
        );
        self.write(tx, &d).await?;

        let mut rewrite: Vec<&Vm> = d.inserts.clone();
        let mut stale = Vec::new();
        for u in &d.updates {
            if u.revived
                || u.fields
                    .iter()
                    .any(|f| matches!(*f, "nics" | "disks" | "ips" | "tags"))
            {
                rewrite.push(u.obj);
                stale.push(u.obj.id.as_str());
            }
        }
        children::replace(tx, self.provider, &rewrite, &stale)
            .await
            .during(self.db, ACTION)?;
        self.number_templates(tx, current.iter().filter(|v| v.template))
            .await?;
        out.count(&d);
        out.changes.extend(d.changes);
        Ok(())
    }

    async fn write<T: PoolObject, C: ConnectionTrait>(
        &self,
        tx: &C,
        d: &Diff<'_, T>,
    ) -> Result<()> {
        if d.is_empty() {
            return Ok(());
        }
        let rows: Vec<T::Active> = d.inserts.iter().map(|o| o.active(None)).collect();
        insert_chunked::<T::Entity, _, _>(tx, rows)
            .await
            .during(self.db, ACTION)?;
        for u in &d.updates {
            T::Entity::update_many()
                .set(u.obj.active(None))
                .filter(T::pk_col().eq(u.pk))
                .exec(tx)
                .await
                .during(self.db, ACTION)?;
        }
        for pks in d.removes.chunks(children::INSERT_CHUNK) {
            T::Entity::update_many()
                .col_expr(T::removed_col(), Expr::value(self.at))
                .filter(T::pk_col().is_in(pks.to_vec()))
                .exec(tx)
                .await
                .during(self.db, ACTION)?;
        }
        Ok(())
    }

    /// Gives each template VM without a number the next free one. Numbers are never
    /// deleted, so one stays with its template forever and is never handed out again.
    async fn number_templates<'v, C: ConnectionTrait>(
        &self,
        tx: &C,
        templates: impl Iterator<Item = &'v Vm>,
    ) -> Result<()> {
        let wanted: Vec<&Vm> = templates.collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let numbered: HashSet<String> = template::Entity::find()
            .filter(template::Column::Provider.eq(self.provider))
            .all(tx)
            .await
            .during(self.db, ACTION)?
            .into_iter()
            .map(|t| t.vm_id)
            .collect();
        let mut seen = HashSet::new();
        let missing: Vec<&Vm> = wanted
            .into_iter()
            .filter(|v| !numbered.contains(&v.id) && seen.insert(v.id.as_str()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let max: Option<i32> = template::Entity::find()
            .select_only()
            .column_as(template::Column::Number.max(), "max_number")
            .into_tuple::<Option<i32>>()
            .one(tx)
            .await
            .during(self.db, ACTION)?
            .flatten();
        let first = max.unwrap_or(0) + 1;
        let rows: Vec<template::ActiveModel> = missing
            .iter()
            .enumerate()
            .map(|(i, v)| template::ActiveModel {
                id: NotSet,
                number: Set(first + i as i32),
                provider: Set(self.provider.to_string()),
                vm_id: Set(v.id.clone()),
                created_at: Set(self.at),
            })
            .collect();
        insert_chunked::<template::Entity, _, _>(tx, rows)
            .await
            .during(self.db, ACTION)?;
        Ok(())
    }
}

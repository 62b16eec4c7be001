//! A VM's NICs, disks, IPs and tags: loaded in bulk (one query per table, grouped in
//! memory, never one query per VM) and rewritten as a whole when they change.

use crate::sea::pool::entity::{vm_disk, vm_ip, vm_nic, vm_tag};
use opsbot_core::{Disk, Nic, Vm};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use std::collections::HashMap;

/// Rows per multi-row INSERT: well under every backend's bound-parameter limit.
pub(crate) const INSERT_CHUNK: usize = 500;

type Key = (String, String);

/// NICs, disks and IPs grouped by (provider, vm id), in position order.
#[derive(Debug, Default)]
pub(crate) struct Children {
    nics: HashMap<Key, Vec<Nic>>,
    disks: HashMap<Key, Vec<Disk>>,
    ips: HashMap<Key, Vec<String>>,
    tags: HashMap<Key, Vec<String>>,
}

impl Children {
    /// Moves the VM's children into it.
    pub(crate) fn attach(&mut self, vm: &mut Vm) {
        let key = (vm.provider.clone(), vm.id.clone());
        vm.nics = self.nics.remove(&key).unwrap_or_default();
        vm.disks = self.disks.remove(&key).unwrap_or_default();
        vm.ips = self.ips.remove(&key).unwrap_or_default();
        vm.tags = self.tags.remove(&key).unwrap_or_default();
    }
}

/// Loads the children of every VM of `provider` (all providers when `None`), or of
/// the VMs `vm_ids`.
pub(crate) async fn load<C: ConnectionTrait>(
    db: &C,
    provider: Option<&str>,
    vm_ids: Option<&[String]>,
) -> Result<Children, DbErr> {
    let mut children = Children::default();

    let mut q = vm_nic::Entity::find().order_by_asc(vm_nic::Column::Position);
    if let Some(p) = provider {
        q = q.filter(vm_nic::Column::Provider.eq(p));
    }
    if let Some(ids) = vm_ids {
        q = q.filter(vm_nic::Column::VmId.is_in(ids.iter().cloned()));
    }
    for r in q.all(db).await? {
        children
            .nics
            .entry((r.provider, r.vm_id))
            .or_default()
            .push(Nic {
                label: r.label,
                mac: r.mac,
                network: r.network,
                connected: r.connected,
            });
    }

    let mut q = vm_disk::Entity::find().order_by_asc(vm_disk::Column::Position);
    if let Some(p) = provider {
        q = q.filter(vm_disk::Column::Provider.eq(p));
    }
    if let Some(ids) = vm_ids {
        q = q.filter(vm_disk::Column::VmId.is_in(ids.iter().cloned()));
    }
    for r in q.all(db).await? {
        children
            .disks
            .entry((r.provider, r.vm_id))
            .or_default()
            .push(Disk {
                label: r.label,
                capacity_gb: u64::try_from(r.capacity_gb).unwrap_or_default(),
                datastore: r.datastore,
                unit: u32::try_from(r.unit).unwrap_or_default(),
            });
    }

    let mut q = vm_ip::Entity::find().order_by_asc(vm_ip::Column::Position);
    if let Some(p) = provider {
        q = q.filter(vm_ip::Column::Provider.eq(p));
    }
    if let Some(ids) = vm_ids {
        q = q.filter(vm_ip::Column::VmId.is_in(ids.iter().cloned()));
    }
    for r in q.all(db).await? {
        children
            .ips
            .entry((r.provider, r.vm_id))
            .or_default()
            .push(r.ip);
    }

    let mut q = vm_tag::Entity::find().order_by_asc(vm_tag::Column::Position);
    if let Some(p) = provider {
        q = q.filter(vm_tag::Column::Provider.eq(p));
    }
    if let Some(ids) = vm_ids {
        q = q.filter(vm_tag::Column::VmId.is_in(ids.iter().cloned()));
    }
    for r in q.all(db).await? {
        children
            .tags
            .entry((r.provider, r.vm_id))
            .or_default()
            .push(r.tag);
    }
    Ok(children)
}

/// Writes the children of `vms`, first deleting what `stale` VMs had before.
pub(crate) async fn replace<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    vms: &[&Vm],
    stale: &[&str],
) -> Result<(), DbErr> {
    for ids in stale.chunks(INSERT_CHUNK) {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        vm_nic::Entity::delete_many()
            .filter(vm_nic::Column::Provider.eq(provider))
            .filter(vm_nic::Column::VmId.is_in(ids.clone()))
            .exec(db)
            .await?;
        vm_disk::Entity::delete_many()
            .filter(vm_disk::Column::Provider.eq(provider))
            .filter(vm_disk::Column::VmId.is_in(ids.clone()))
            .exec(db)
            .await?;
        vm_ip::Entity::delete_many()
            .filter(vm_ip::Column::Provider.eq(provider))
            .filter(vm_ip::Column::VmId.is_in(ids.clone()))
            .exec(db)
            .await?;
        vm_tag::Entity::delete_many()
            .filter(vm_tag::Column::Provider.eq(provider))
            .filter(vm_tag::Column::VmId.is_in(ids))
            .exec(db)
            .await?;
    }

    let nics: Vec<_> = vms
        .iter()
        .flat_map(|vm| {
            vm.nics
                .iter()
                .enumerate()
                .map(|(i, n)| vm_nic::ActiveModel {
                    id: NotSet,
                    provider: Set(provider.to_string()),
                    vm_id: Set(vm.id.clone()),
                    position: Set(i as i32),
                    label: Set(n.label.clone()),
                    mac: Set(n.mac.clone()),
                    network: Set(n.network.clone()),
                    connected: Set(n.connected),
                })
        })
        .collect();
    insert_chunked::<vm_nic::Entity, _, _>(db, nics).await?;

    let disks: Vec<_> = vms
        .iter()
        .flat_map(|vm| {
            vm.disks
                .iter()
                .enumerate()
                .map(|(i, d)| vm_disk::ActiveModel {
                    id: NotSet,
                    provider: Set(provider.to_string()),
                    vm_id: Set(vm.id.clone()),
                    position: Set(i as i32),
                    label: Set(d.label.clone()),
                    capacity_gb: Set(d.capacity_gb as i64),
                    datastore: Set(d.datastore.clone()),
                    unit: Set(d.unit.into()),
                })
        })
        .collect();
    insert_chunked::<vm_disk::Entity, _, _>(db, disks).await?;

    let ips: Vec<_> = vms
        .iter()
        .flat_map(|vm| {
            vm.ips.iter().enumerate().map(|(i, ip)| vm_ip::ActiveModel {
                id: NotSet,
                provider: Set(provider.to_string()),
                vm_id: Set(vm.id.clone()),
                position: Set(i as i32),
                ip: Set(ip.clone()),
            })
        })
        .collect();
    insert_chunked::<vm_ip::Entity, _, _>(db, ips).await?;

    let tags: Vec<_> = vms
        .iter()
        .flat_map(|vm| {
            vm.tags
                .iter()
                .enumerate()
                .map(|(i, tag)| vm_tag::ActiveModel {
                    id: NotSet,
                    provider: Set(provider.to_string()),
                    vm_id: Set(vm.id.clone()),
                    position: Set(i as i32),
                    tag: Set(tag.clone()),
                })
        })
        .collect();
    insert_chunked::<vm_tag::Entity, _, _>(db, tags).await?;
    Ok(())
}

/// Inserts rows in multi-row statements of `INSERT_CHUNK` rows.
pub(crate) async fn insert_chunked<E, A, C>(db: &C, rows: Vec<A>) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::Model: sea_orm::IntoActiveModel<A>,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
    C: ConnectionTrait,
{
    // Rows arrive collected: an iterator of closures held across `.await` would make
    // the future lose `Send` (a known higher-ranked lifetime limitation).
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<A> = rows.by_ref().take(INSERT_CHUNK).collect();
        E::insert_many(batch).exec_without_returning(db).await?;
    }
    Ok(())
}

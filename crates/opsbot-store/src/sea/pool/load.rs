//! Reading the pool: every live object with VM children attached in bulk, templates
//! in number order, and the version.

use super::children;
use super::object::PoolObject;
use crate::sea::conn::Conn;
use crate::sea::errors::{Db, During};
use crate::sea::pool::entity::{change_log, pool_meta, template};
use crate::{ChangeQuery, PoolSnapshot, Result};
use opsbot_core::{Change, Inventory, Template, Vm};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::HashMap;

const ACTION: &str = "loading the pool";

/// The pool version, on a SQLite file through the connection it keeps for this (the
/// check every read command makes).
pub(crate) async fn current_version(conn: &Conn, db: &Db) -> Result<i64> {
    let Some(own) = conn.own_reader().await else {
        return version(conn, db).await;
    };
    let mut own = own.during(db, "reading the pool version")?;
    let read = sea_orm::sqlx::query_scalar::<_, i64>("SELECT version FROM pool_meta WHERE id = 1")
        .fetch_optional(own.conn())
        .await;
    match read {
        Ok(Some(version)) => Ok(version),
        Ok(None) => Err(db.corrupt("pool version", "the pool_meta row is missing")),
        Err(e) => {
            own.discard();
            Err(sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)))
                .during(db, "reading the pool version")
        }
    }
}

pub(crate) async fn version<C: ConnectionTrait>(conn: &C, db: &Db) -> Result<i64> {
    pool_meta::Entity::find_by_id(1)
        .one(conn)
        .await
        .during(db, "reading the pool version")?
        .map(|m| m.version)
        .ok_or_else(|| db.corrupt("pool version", "the pool_meta row is missing"))
}

pub(crate) async fn load_pool(conn: &Conn, db: &Db) -> Result<PoolSnapshot> {
    // The version is read first: if a writer commits while we read, the snapshot is
    // newer than its version says and the next version check reloads it — never the
    // other way round (a stale pool under a current version).
    let version = version(conn, db).await?;
    let mut vms: Vec<Vm> = live(conn, db).await?;
    let mut kids = children::load(conn, None, None).await.during(db, ACTION)?;
    for vm in &mut vms {
        kids.attach(vm);
    }
    let templates = templates(conn, db, &vms).await?;
    let inventory = Inventory {
        datacenters: live(conn, db).await?,
        clusters: live(conn, db).await?,
        hosts: live(conn, db).await?,
        vms,
        datastores: live(conn, db).await?,
        networks: live(conn, db).await?,
    };
    Ok(PoolSnapshot {
        version,
        inventory,
        templates,
    })
}

/// Live objects of one kind, ordered by (provider, id).
async fn live<T: PoolObject, C: ConnectionTrait>(conn: &C, db: &Db) -> Result<Vec<T>> {
    let mut items = T::Entity::find()
        .filter(T::removed_col().is_null())
        .all(conn)
        .await
        .during(db, ACTION)?
        .into_iter()
        .map(|m| {
            T::from_model(m)
                .map(|s| s.obj)
                .map_err(|e| db.corrupt(T::KIND, e))
        })
        .collect::<Result<Vec<T>>>()?;
    // Sorted here rather than in SQL: collations differ between backends.
    items.sort_by(|a, b| (a.provider(), a.object_id()).cmp(&(b.provider(), b.object_id())));
    Ok(items)
}

/// Numbered templates whose VM is live and still a template, by number.
async fn templates<C: ConnectionTrait>(conn: &C, db: &Db, vms: &[Vm]) -> Result<Vec<Template>> {
    let by_key: HashMap<(&str, &str), &Vm> = vms
        .iter()
        .filter(|v| v.template)
        .map(|v| ((v.provider.as_str(), v.id.as_str()), v))
        .collect();
    let rows = template::Entity::find()
        .order_by_asc(template::Column::Number)
        .all(conn)
        .await
        .during(db, ACTION)?;
    Ok(rows
        .into_iter()
        .filter_map(|t| {
            let (name, guest_os) = {
                let vm = by_key.get(&(t.provider.as_str(), t.vm_id.as_str()))?;
                (vm.name.clone(), vm.guest_os.clone())
            };
            Some(Template {
                number: u32::try_from(t.number).ok()?,
                provider: t.provider,
                vm_id: t.vm_id,
                name,
                guest_os,
            })
        })
        .collect())
}

/// The change history, newest first.
pub(crate) async fn changes(conn: &Conn, db: &Db, query: &ChangeQuery) -> Result<Vec<Change>> {
    let mut q = change_log::Entity::find().order_by_desc(change_log::Column::Id);
    if let Some(p) = &query.provider {
        q = q.filter(change_log::Column::Provider.eq(p.as_str()));
    }
    if let Some(k) = &query.object_kind {
        q = q.filter(change_log::Column::ObjectKind.eq(k.as_str()));
    }
    if let Some(id) = &query.object_id {
        q = q.filter(change_log::Column::ObjectId.eq(id.as_str()));
    }
    if query.limit > 0 {
        q = q.limit(query.limit);
    }
    if query.offset > 0 {
        q = q.offset(query.offset);
    }
    Ok(q.all(conn)
        .await
        .during(db, "reading the change history")?
        .into_iter()
        .map(|m| Change {
            id: m.id,
            at: m.at,
            provider: m.provider,
            object_kind: m.object_kind,
            object_id: m.object_id,
            object_name: m.object_name,
            field: m.field,
            old_value: m.old_value,
            new_value: m.new_value,
            source: m.source,
        })
        .collect())
}

//! Asset rows: batched ingest (one transaction per batch) that diffs each report's
//! facts against the stored ones and writes only what changed, plus the reads.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::assets::{AssetIngest, AssetQuery, AssetStore, IngestOutcome};
use crate::sea::conn::{Conn, WriteTx};
use crate::sea::errors::{is_duplicate, Db, During};
use crate::sea::pool::entity::change_log;
use crate::sea::pool::{insert_chunked, now};
use crate::sea::SeaStore;
use crate::{Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{agent_token_host, asset, asset_fact};
use opsbot_core::asset::{CHANGE_KIND, CHANGE_PROVIDER};
use opsbot_core::{diff_facts, Asset, AssetStatus, Change, Facts, VmLink};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use std::collections::{BTreeSet, HashMap};

const ACTION: &str = "writing asset reports";
/// Keys per `IN (…)` list, well under every backend's parameter limit.
const IN_CHUNK: usize = 500;

fn to_asset(db: &Db, m: asset::Model) -> Result<Asset> {
    let status = AssetStatus::parse(&m.status)
        .ok_or_else(|| db.corrupt(&format!("status of asset {}", m.identity), &m.status))?;
    let vm = match (m.vm_provider, m.vm_id) {
        (Some(provider), Some(vm_id)) => Some(VmLink {
            provider,
            vm_id,
            name: m.vm_name.unwrap_or_default(),
            scope_path: m.vm_path.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(Asset {
        id: m.id,
        identity: m.identity,
        hostname: m.hostname,
        source: m.source,
        status,
        token_id: m.token_id,
        vm,
        first_seen: m.first_seen,
        last_seen: m.last_seen,
    })
}

/// How a VM link reads in the change history.
fn vm_text(provider: Option<&str>, name: Option<&str>) -> Option<String> {
    provider.map(|p| format!("{p}/{}", name.unwrap_or("")))
}

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

fn fact_row(asset_id: i64, key: &str, value: &str) -> asset_fact::ActiveModel {
    asset_fact::ActiveModel {
        id: NotSet,
        asset_id: Set(asset_id),
        fact_key: Set(key.to_string()),
        fact_value: Set(value.to_string()),
    }
}

/// One report's entry in the change history.
fn change(r: &AssetIngest, field: &str, old: Option<String>, new: Option<String>) -> Change {
    Change {
        id: 0,
        at: r.seen_at,
        provider: CHANGE_PROVIDER.into(),
        object_kind: CHANGE_KIND.into(),
        object_id: r.identity.clone(),
        object_name: r.hostname.clone(),
        field: field.into(),
        old_value: old,
        new_value: new,
        source: r.change_source.clone(),
    }
}

async fn load_batch<C: ConnectionTrait>(
    tx: &C,
    db: &Db,
    batch: &[AssetIngest],
) -> Result<(HashMap<String, asset::Model>, HashMap<i64, Facts>)> {
    let identities: Vec<&str> = batch
        .iter()
        .map(|r| r.identity.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut assets = HashMap::new();
    for chunk in identities.chunks(IN_CHUNK) {
        for m in asset::Entity::find()
            .filter(asset::Column::Identity.is_in(chunk.iter().copied()))
            .all(tx)
            .await
            .during(db, ACTION)?
        {
            assets.insert(m.identity.clone(), m);
        }
    }
    let ids: Vec<i64> = assets.values().map(|m| m.id).collect();
    let mut facts: HashMap<i64, Facts> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        for f in asset_fact::Entity::find()
            .filter(asset_fact::Column::AssetId.is_in(chunk.iter().copied()))
            .all(tx)
            .await
            .during(db, ACTION)?
        {
            facts
                .entry(f.asset_id)
                .or_default()
                .insert(f.fact_key, f.fact_value);
        }
    }
    Ok((assets, facts))
}

/// The hosts the batch's unpinned agent tokens are bound to (token id → identity).
async fn load_bindings<C: ConnectionTrait>(
    tx: &C,
    db: &Db,
    batch: &[AssetIngest],
) -> Result<HashMap<String, String>> {
    let tokens: Vec<&str> = batch
        .iter()
        .filter(|r| !r.token_id.is_empty() && !r.token_pinned)
        .map(|r| r.token_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = HashMap::new();
    for chunk in tokens.chunks(IN_CHUNK) {
        for m in agent_token_host::Entity::find()
            .filter(agent_token_host::Column::TokenId.is_in(chunk.iter().copied()))
            .all(tx)
            .await
            .during(db, ACTION)?
        {
            out.insert(m.token_id, m.identity);
        }
    }
    Ok(out)
}

/// Binds an unpinned agent token seen for the first time, and returns the host it is
/// bound to: the first host that reported with it. Assets written before bindings
/// were kept name that host (the earliest asset carrying the token); otherwise it is
/// `identity`, the host reporting now. Of instances racing to bind one token the
/// unique key lets one win, and every one of them answers with the winner.
async fn bind_token(
    tx: &WriteTx,
    db: &Db,
    token_id: &str,
    identity: &str,
    at: DateTime<Utc>,
) -> Result<String> {
    let first = asset::Entity::find()
        .select_only()
        .column(asset::Column::Identity)
        .filter(asset::Column::TokenId.eq(token_id))
        .order_by_asc(asset::Column::FirstSeen)
        .order_by_asc(asset::Column::Id)
        .into_tuple::<String>()
        .one(tx)
        .await
        .during(db, ACTION)?;
    let claim = first.unwrap_or_else(|| identity.to_string());
    // A savepoint, so losing the race (a duplicate) does not abort the batch.
    let sp = tx.savepoint().await.during(db, ACTION)?;
    let row = agent_token_host::ActiveModel {
        id: NotSet,
        token_id: Set(token_id.to_string()),
        identity: Set(claim.clone()),
        bound_at: Set(at),
    };
    match agent_token_host::Entity::insert(row)
        .exec_without_returning(&sp)
        .await
    {
        Ok(_) => {
            sp.commit().await.during(db, ACTION)?;
            return Ok(claim);
        }
        Err(e) if is_duplicate(&e) => sp.rollback().await.during(db, ACTION)?,
        Err(e) => return Err(db.map(e, ACTION)),
    }
    // A locking read (FOR UPDATE: MariaDB has no FOR SHARE) sees the winner's
    // committed row even under MySQL's repeatable-read snapshot.
    agent_token_host::Entity::find()
        .filter(agent_token_host::Column::TokenId.eq(token_id))
        .lock_exclusive()
        .one(tx)
        .await
        .during(db, ACTION)?
        .map(|m| m.identity)
        .ok_or_else(|| StoreError::Query {
            backend: db.backend.into(),
            action: ACTION.into(),
            message: format!("the binding of agent token {token_id} vanished"),
        })
}

pub(crate) async fn ingest(
    conn: &Conn,
    db: &Db,
    batch: &[AssetIngest],
) -> Result<Vec<IngestOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let tx = conn.begin().await.during(db, ACTION)?;
    let (mut assets, mut stored_facts) = load_batch(&tx, db, batch).await?;
    let mut bindings = load_bindings(&tx, db, batch).await?;
    let mut history: Vec<Change> = Vec::new();
    let mut new_facts: Vec<asset_fact::ActiveModel> = Vec::new();
    let mut out = Vec::with_capacity(batch.len());
    for r in batch {
        // An unpinned agent token speaks for the first host it reported, only.
        if !r.token_id.is_empty() && !r.token_pinned {
            let bound = match bindings.get(&r.token_id) {
                Some(h) => h.clone(),
                None => {
                    let h = bind_token(&tx, db, &r.token_id, &r.identity, r.seen_at).await?;
                    bindings.insert(r.token_id.clone(), h.clone());
                    h
                }
            };
            if bound != r.identity {
                out.push(IngestOutcome::Refused {
                    reason: format!(
                        "this agent token is bound to host {bound}, the first host that \
                         reported with it; give {} its own token (`opsbot token create \
                         --agent --host {}`)",
                        r.identity, r.identity
                    ),
                });
                continue;
            }
        }
        let Some(existing) = assets.get_mut(&r.identity) else {
            let row = asset::ActiveModel {
                id: NotSet,
                identity: Set(r.identity.clone()),
                hostname: Set(r.hostname.clone()),
                source: Set(r.source.clone()),
                status: Set(AssetStatus::Active.as_str().into()),
                token_id: Set(r.token_id.clone()),
                vm_provider: Set(r.vm.as_ref().map(|v| v.provider.clone())),
                vm_id: Set(r.vm.as_ref().map(|v| v.vm_id.clone())),
                vm_name: Set(r.vm.as_ref().map(|v| v.name.clone())),
                vm_path: Set(r.vm.as_ref().map(|v| v.scope_path.clone())),
                first_seen: Set(r.seen_at),
                last_seen: Set(r.seen_at),
                report: Set(r.report.clone()),
            };
            let id = asset::Entity::insert(row)
                .exec(&tx)
                .await
                .during(db, ACTION)?
                .last_insert_id;
            new_facts.extend(r.facts.iter().map(|(k, v)| fact_row(id, k, v)));
            let mut changes = vec![change(r, "created", None, Some(r.hostname.clone()))];
            if let Some(vm) = &r.vm {
                changes.push(change(
                    r,
                    "vm",
                    None,
                    vm_text(Some(&vm.provider), Some(&vm.name)),
                ));
            }
            history.extend(changes.iter().cloned());
            out.push(IngestOutcome::Stored {
                asset_id: id,
                created: true,
                changes,
            });
            // A later report of the same host in this batch diffs against this one.
            stored_facts.insert(id, r.facts.clone());
            assets.insert(
                r.identity.clone(),
                asset::Model {
                    id,
                    identity: r.identity.clone(),
                    hostname: r.hostname.clone(),
                    source: r.source.clone(),
                    status: AssetStatus::Active.as_str().into(),
                    token_id: r.token_id.clone(),
                    vm_provider: r.vm.as_ref().map(|v| v.provider.clone()),
                    vm_id: r.vm.as_ref().map(|v| v.vm_id.clone()),
                    vm_name: r.vm.as_ref().map(|v| v.name.clone()),
                    vm_path: r.vm.as_ref().map(|v| v.scope_path.clone()),
                    first_seen: r.seen_at,
                    last_seen: r.seen_at,
                    report: String::new(),
                },
            );
            continue;
        };
        let foreign_token = !r.token_id.is_empty()
            && !existing.token_id.is_empty()
            && existing.token_id != r.token_id;
        if foreign_token && !r.token_pinned {
            out.push(IngestOutcome::Refused {
                reason: format!(
                    "host {} already reports with another agent token; to move it to this one, \
                     issue the new token with --host {}",
                    r.identity, r.identity
                ),
            });
            continue;
        }
        let mut changes = Vec::new();
        if existing.hostname != r.hostname {
            changes.push(change(
                r,
                "hostname",
                Some(existing.hostname.clone()),
                Some(r.hostname.clone()),
            ));
        }
        if existing.status != AssetStatus::Active.as_str() {
            changes.push(change(
                r,
                "status",
                Some(existing.status.clone()),
                Some(AssetStatus::Active.as_str().into()),
            ));
        }
        let old_vm = vm_text(existing.vm_provider.as_deref(), existing.vm_name.as_deref());
        let new_vm =
            r.vm.as_ref()
                .and_then(|v| vm_text(Some(&v.provider), Some(&v.name)));
        if old_vm != new_vm {
            changes.push(change(r, "vm", old_vm, new_vm));
        }
        // The source (agent / ssh) is kept but not recorded: a host collected both
        // ways would flip it on every report.
        if foreign_token || (existing.token_id.is_empty() && !r.token_id.is_empty()) {
            changes.push(change(
                r,
                "token",
                Some(existing.token_id.clone()).filter(|t| !t.is_empty()),
                Some(r.token_id.clone()),
            ));
        }
        let stored = stored_facts.entry(existing.id).or_default();
        let mut removed: Vec<String> = Vec::new();
        for d in diff_facts(stored, &r.facts) {
            match (&d.old, &d.new) {
                (Some(_), Some(v)) => {
                    asset_fact::Entity::update_many()
                        .col_expr(asset_fact::Column::FactValue, Expr::value(v.clone()))
                        .filter(asset_fact::Column::AssetId.eq(existing.id))
                        .filter(asset_fact::Column::FactKey.eq(d.field.as_str()))
                        .exec(&tx)
                        .await
                        .during(db, ACTION)?;
                }
                (None, Some(v)) => new_facts.push(fact_row(existing.id, &d.field, v)),
                (_, None) => removed.push(d.field.clone()),
            }
            changes.push(change(r, &d.field, d.old, d.new));
        }
        for chunk in removed.chunks(IN_CHUNK) {
            asset_fact::Entity::delete_many()
                .filter(asset_fact::Column::AssetId.eq(existing.id))
                .filter(asset_fact::Column::FactKey.is_in(chunk.iter().map(String::as_str)))
                .exec(&tx)
                .await
                .during(db, ACTION)?;
        }
        *stored = r.facts.clone();
        if !r.token_id.is_empty() {
            existing.token_id = r.token_id.clone();
        }
        existing.hostname = r.hostname.clone();
        existing.status = AssetStatus::Active.as_str().into();
        existing.source = r.source.clone();
        existing.vm_provider = r.vm.as_ref().map(|v| v.provider.clone());
        existing.vm_id = r.vm.as_ref().map(|v| v.vm_id.clone());
        existing.vm_name = r.vm.as_ref().map(|v| v.name.clone());
        existing.vm_path = r.vm.as_ref().map(|v| v.scope_path.clone());
        existing.last_seen = r.seen_at;
        asset::Entity::update_many()
            .col_expr(
                asset::Column::Hostname,
                Expr::value(existing.hostname.clone()),
            )
            .col_expr(asset::Column::Source, Expr::value(existing.source.clone()))
            .col_expr(asset::Column::Status, Expr::value(existing.status.clone()))
            .col_expr(
                asset::Column::TokenId,
                Expr::value(existing.token_id.clone()),
            )
            .col_expr(
                asset::Column::VmProvider,
                Expr::value(existing.vm_provider.clone()),
            )
            .col_expr(asset::Column::VmId, Expr::value(existing.vm_id.clone()))
            .col_expr(asset::Column::VmName, Expr::value(existing.vm_name.clone()))
            .col_expr(asset::Column::VmPath, Expr::value(existing.vm_path.clone()))
            .col_expr(asset::Column::LastSeen, Expr::value(r.seen_at))
            .col_expr(asset::Column::Report, Expr::value(r.report.clone()))
            .filter(asset::Column::Id.eq(existing.id))
            .exec(&tx)
            .await
            .during(db, ACTION)?;
        history.extend(changes.iter().cloned());
        out.push(IngestOutcome::Stored {
            asset_id: existing.id,
            created: false,
            changes,
        });
    }
    insert_chunked::<asset_fact::Entity, _, _>(&tx, new_facts)
        .await
        .during(db, ACTION)?;
    insert_chunked::<change_log::Entity, _, _>(&tx, history.iter().map(change_row).collect())
        .await
        .during(db, ACTION)?;
    tx.commit().await.during(db, ACTION)?;
    Ok(out)
}

/// Which active assets to flag stale.
pub(crate) enum Silent<'a> {
    /// Not seen since.
    Before(DateTime<Utc>),
    /// Found silent by a collection pass.
    Named(&'a [String]),
}

pub(crate) async fn mark_stale(
    conn: &Conn,
    db: &Db,
    silent: Silent<'_>,
    source: &str,
) -> Result<Vec<String>> {
    const STALE: &str = "flagging stale assets";
    if matches!(silent, Silent::Named(names) if names.is_empty()) {
        return Ok(Vec::new());
    }
    let tx = conn.begin().await.during(db, STALE)?;
    let which = match silent {
        Silent::Before(before) => asset::Column::LastSeen.lt(before),
        Silent::Named(names) => asset::Column::Identity.is_in(names.iter().cloned()),
    };
    let rows = asset::Entity::find()
        .filter(asset::Column::Status.eq(AssetStatus::Active.as_str()))
        .filter(which)
        .all(&tx)
        .await
        .during(db, STALE)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let at = now();
    let mut history = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(IN_CHUNK) {
        asset::Entity::update_many()
            .col_expr(
                asset::Column::Status,
                Expr::value(AssetStatus::Stale.as_str()),
            )
            .filter(asset::Column::Id.is_in(chunk.iter().map(|m| m.id)))
            .exec(&tx)
            .await
            .during(db, STALE)?;
    }
    for m in &rows {
        history.push(change_row(&Change {
            id: 0,
            at,
            provider: CHANGE_PROVIDER.into(),
            object_kind: CHANGE_KIND.into(),
            object_id: m.identity.clone(),
            object_name: m.hostname.clone(),
            field: "status".into(),
            old_value: Some(AssetStatus::Active.as_str().into()),
            new_value: Some(AssetStatus::Stale.as_str().into()),
            source: source.into(),
        }));
    }
    insert_chunked::<change_log::Entity, _, _>(&tx, history)
        .await
        .during(db, STALE)?;
    tx.commit().await.during(db, STALE)?;
    Ok(rows.into_iter().map(|m| m.identity).collect())
}

/// The columns every read needs (the report blob is read only on request).
fn summary_columns() -> sea_orm::Select<asset::Entity> {
    use asset::Column as C;
    asset::Entity::find().select_only().columns([
        C::Id,
        C::Identity,
        C::Hostname,
        C::Source,
        C::Status,
        C::TokenId,
        C::VmProvider,
        C::VmId,
        C::VmName,
        C::VmPath,
        C::FirstSeen,
        C::LastSeen,
    ])
}

#[derive(Debug, sea_orm::FromQueryResult)]
struct Summary {
    id: i64,
    identity: String,
    hostname: String,
    source: String,
    status: String,
    token_id: String,
    vm_provider: Option<String>,
    vm_id: Option<String>,
    vm_name: Option<String>,
    vm_path: Option<String>,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

impl Summary {
    fn into_asset(self, db: &Db) -> Result<Asset> {
        to_asset(
            db,
            asset::Model {
                id: self.id,
                identity: self.identity,
                hostname: self.hostname,
                source: self.source,
                status: self.status,
                token_id: self.token_id,
                vm_provider: self.vm_provider,
                vm_id: self.vm_id,
                vm_name: self.vm_name,
                vm_path: self.vm_path,
                first_seen: self.first_seen,
                last_seen: self.last_seen,
                report: String::new(),
            },
        )
    }
}

#[async_trait]
impl AssetStore for SeaStore {
    async fn assets_ingest(&self, batch: &[AssetIngest]) -> Result<Vec<IngestOutcome>> {
        ingest(&self.conn, &self.db, batch).await
    }

    async fn asset_find(&self, name: &str) -> Result<Option<Asset>> {
        let key = name.trim().to_lowercase();
        let rows = summary_columns()
            .filter(
                Condition::any()
                    .add(asset::Column::Identity.eq(key.as_str()))
                    .add(asset::Column::Hostname.eq(key.as_str())),
            )
            .into_model::<Summary>()
            .all(&self.conn)
            .await
            .during(&self.db, "finding an asset")?;
        // The identity wins over another asset's current hostname.
        let best = rows
            .into_iter()
            .min_by_key(|r| (r.identity != key, std::cmp::Reverse(r.last_seen)));
        best.map(|r| r.into_asset(&self.db)).transpose()
    }

    async fn asset_list(&self, query: &AssetQuery) -> Result<Vec<Asset>> {
        let mut q = summary_columns().order_by_asc(asset::Column::Id);
        if let Some(s) = &query.search {
            let s = s.trim().to_lowercase();
            q = q.filter(
                Condition::any()
                    .add(asset::Column::Identity.contains(s.as_str()))
                    .add(asset::Column::Hostname.contains(s.as_str())),
            );
        }
        if let Some(st) = query.status {
            q = q.filter(asset::Column::Status.eq(st.as_str()));
        }
        let mut rows = q
            .into_model::<Summary>()
            .all(&self.conn)
            .await
            .during(&self.db, "listing assets")?
            .into_iter()
            .map(|r| r.into_asset(&self.db))
            .collect::<Result<Vec<_>>>()?;
        // Sorted here rather than in SQL: collations differ between backends.
        rows.sort_by(|a, b| a.identity.cmp(&b.identity));
        let rows = rows.into_iter().skip(query.offset as usize);
        Ok(if query.limit > 0 {
            rows.take(query.limit as usize).collect()
        } else {
            rows.collect()
        })
    }

    async fn asset_facts(&self, asset_id: i64) -> Result<Facts> {
        Ok(asset_fact::Entity::find()
            .filter(asset_fact::Column::AssetId.eq(asset_id))
            .all(&self.conn)
            .await
            .during(&self.db, "reading an asset's facts")?
            .into_iter()
            .map(|f| (f.fact_key, f.fact_value))
            .collect())
    }

    async fn asset_report(&self, asset_id: i64) -> Result<Option<String>> {
        Ok(asset::Entity::find_by_id(asset_id)
            .one(&self.conn)
            .await
            .during(&self.db, "reading an asset's report")?
            .map(|m| m.report))
    }

    async fn assets_mark_stale(&self, before: DateTime<Utc>, source: &str) -> Result<Vec<String>> {
        mark_stale(&self.conn, &self.db, Silent::Before(before), source).await
    }

    async fn assets_mark_stale_named(
        &self,
        identities: &[String],
        source: &str,
    ) -> Result<Vec<String>> {
        mark_stale(&self.conn, &self.db, Silent::Named(identities), source).await
    }
}

//! The audit log: append, and read back newest first with filters.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::sea::conn::Conn;
use crate::sea::errors::{Db, During};
use crate::sea::SeaStore;
use crate::{AuditQuery, Result};
use async_trait::async_trait;
use entity::audit_log;
use opsbot_core::{AuditEntry, AuditResult};
use sea_orm::sea_query::InsertStatement;
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
};

fn row(e: &AuditEntry) -> audit_log::ActiveModel {
    audit_log::ActiveModel {
        id: NotSet,
        at: Set(e.at),
        user: Set(e.user.clone()),
        channel: Set(e.channel.clone()),
        chat: Set(e.chat.clone()),
        text: Set(e.text.clone()),
        command: Set(e.command.clone()),
        result: Set(e.result.as_str().into()),
        message: Set(e.message.clone()),
        duration_ms: Set(e.duration_ms),
        job_id: Set(e.job_id),
    }
}

pub(crate) async fn append<C: ConnectionTrait>(conn: &C, db: &Db, e: &AuditEntry) -> Result<i64> {
    Ok(audit_log::Entity::insert(row(e))
        .exec(conn)
        .await
        .during(db, "appending to the audit log")?
        .last_insert_id)
}

/// Appends `entries` in one statement where the backend returns the ids it assigned
/// (SQLite, PostgreSQL); their ids in the order of `entries`. MySQL reports only the
/// first id of a multi-row insert, so there they go one by one.
pub(crate) async fn append_many<C: ConnectionTrait>(
    conn: &C,
    db: &Db,
    entries: &[&AuditEntry],
) -> Result<Vec<i64>> {
    let backend = conn.get_database_backend();
    if entries.len() < 2 || backend == DbBackend::MySql {
        let mut ids = Vec::with_capacity(entries.len());
        for e in entries {
            ids.push(append(conn, db, e).await?);
        }
        return Ok(ids);
    }
    let rows = conn
        .query_all(backend.build(&insert_many(entries)))
        .await
        .during(db, "appending to the audit log")?;
    let ids = rows
        .iter()
        .map(|r| r.try_get::<i64>("", "id"))
        .collect::<std::result::Result<Vec<_>, _>>()
        .during(db, "appending to the audit log")?;
    in_entry_order(db, ids, entries.len())
}

/// One INSERT of every entry that returns the ids it assigned.
pub(crate) fn insert_many(entries: &[&AuditEntry]) -> InsertStatement {
    let mut insert = audit_log::Entity::insert_many(entries.iter().map(|e| row(e))).into_query();
    insert.returning_col(audit_log::Column::Id);
    insert
}

/// The ids a multi-row insert of `count` entries returned, in the entries' order.
pub(crate) fn in_entry_order(db: &Db, mut ids: Vec<i64>, count: usize) -> Result<Vec<i64>> {
    if ids.len() != count {
        return Err(db.corrupt(
            "audit log",
            format!("{count} rows inserted, {} ids returned", ids.len()),
        ));
    }
    // RETURNING's row order is not promised; the ids are. Both backends number the rows
    // of one VALUES list in its order (SQLite's rowid, PostgreSQL's sequence, each
    // increasing within the statement), so the sorted ids follow the entries.
    ids.sort_unstable();
    Ok(ids)
}

pub(crate) async fn read(conn: &Conn, db: &Db, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let mut q = audit_log::Entity::find().order_by_desc(audit_log::Column::Id);
    if let Some(user) = &query.user {
        q = q.filter(audit_log::Column::User.eq(user.as_str()));
    }
    if let Some(result) = query.result {
        q = q.filter(audit_log::Column::Result.eq(result.as_str()));
    }
    if query.limit > 0 {
        q = q.limit(query.limit);
    }
    if query.offset > 0 {
        q = q.offset(query.offset);
    }
    q.all(conn)
        .await
        .during(db, "reading the audit log")?
        .into_iter()
        .map(|m| {
            Ok(AuditEntry {
                id: m.id,
                at: m.at,
                user: m.user,
                channel: m.channel,
                chat: m.chat,
                text: m.text,
                command: m.command,
                result: AuditResult::parse(&m.result).ok_or_else(|| {
                    db.corrupt("audit entry", format!("unknown result {:?}", m.result))
                })?,
                message: m.message,
                duration_ms: m.duration_ms,
                job_id: m.job_id,
            })
        })
        .collect()
}

#[async_trait]
impl crate::AuditStore for SeaStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64> {
        self.group.append_audit(&self.conn, &self.db, entry).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        read(&self.conn, &self.db, query).await
    }
}

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
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

pub(crate) async fn append<C: ConnectionTrait>(conn: &C, db: &Db, e: &AuditEntry) -> Result<i64> {
    let row = audit_log::ActiveModel {
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
    };
    Ok(audit_log::Entity::insert(row)
        .exec(conn)
        .await
        .during(db, "appending to the audit log")?
        .last_insert_id)
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

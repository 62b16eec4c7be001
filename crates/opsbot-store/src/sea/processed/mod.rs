//! The ids of inbound messages already taken in: insert-if-absent through the unique
//! key, pruned in short chunks.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::sea::conn::Conn;
use crate::sea::errors::{is_duplicate, Db};
use crate::sea::pool::now;
use crate::sea::prune::delete_in_chunks;
use crate::sea::SeaStore;
use crate::Result;
use async_trait::async_trait;
use entity::processed_message;
use sea_orm::{ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait, Set};

/// Inserts and lets the unique key decide: of several processes racing on one
/// message id exactly one insert succeeds, the others see a duplicate.
pub(crate) async fn mark_processed<C: ConnectionTrait>(
    conn: &C,
    db: &Db,
    channel: &str,
    msg_id: &str,
) -> Result<bool> {
    let row = processed_message::ActiveModel {
        id: NotSet,
        channel: Set(channel.to_string()),
        msg_id: Set(msg_id.to_string()),
        at: Set(now()),
    };
    match processed_message::Entity::insert(row)
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_duplicate(&e) => Ok(false),
        Err(e) => Err(db.map(e, "recording a processed message")),
    }
}

/// Deletes the ids recorded before `before`, oldest first, in short chunks.
pub(crate) async fn prune_processed(
    conn: &Conn,
    db: &Db,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    delete_in_chunks::<processed_message::Entity>(
        conn,
        db,
        "pruning processed message ids",
        sea_orm::Condition::all().add(processed_message::Column::At.lt(before)),
        processed_message::Column::At,
        processed_message::Column::Id,
    )
    .await
}

#[async_trait]
impl crate::MessageIdStore for SeaStore {
    async fn mark_processed(&self, channel: &str, msg_id: &str) -> Result<bool> {
        self.group
            .mark_processed(&self.conn, &self.db, channel, msg_id)
            .await
    }

    async fn prune_processed(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        prune_processed(&self.conn, &self.db, before).await
    }
}

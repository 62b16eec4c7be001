//! Small keyed records: provider state blobs (upserted) and the ids of inbound
//! messages already taken in (insert-if-absent through the unique key).

use super::conn::Conn;
use super::entity::{processed_message, provider_state};
use super::errors::{is_duplicate, Db, During};
use super::pool::now;
use crate::Result;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

pub(crate) async fn get(conn: &Conn, db: &Db, key: &str) -> Result<Option<String>> {
    Ok(provider_state::Entity::find_by_id(key.to_string())
        .one(conn)
        .await
        .during(db, "reading provider state")?
        .map(|m| m.value))
}

pub(crate) async fn put(conn: &Conn, db: &Db, key: &str, value: &str) -> Result<()> {
    let row = provider_state::ActiveModel {
        key: Set(key.to_string()),
        value: Set(value.to_string()),
        updated_at: Set(now()),
    };
    provider_state::Entity::insert(row)
        .on_conflict(
            OnConflict::column(provider_state::Column::Key)
                .update_columns([
                    provider_state::Column::Value,
                    provider_state::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .during(db, "writing provider state")?;
    Ok(())
}

/// Deletes `key`'s row; on SQLite with `secure_delete` for that statement, so the
/// freed bytes are zeroed, then a checkpoint moves the zeroed page into the main file
/// and empties the write-ahead log (best effort: a reader holding an old snapshot
/// delays it to the next checkpoint).
pub(crate) async fn erase(conn: &Conn, db: &Db, key: &str) -> Result<()> {
    const ACTION: &str = "erasing provider state";
    if conn.get_database_backend() != DatabaseBackend::Sqlite {
        provider_state::Entity::delete_by_id(key.to_string())
            .exec(conn)
            .await
            .during(db, ACTION)?;
        return Ok(());
    }
    // One connection for the pragma and the delete: pragmas are per connection.
    let tx = conn.begin().await.during(db, ACTION)?;
    tx.execute_unprepared("PRAGMA secure_delete = ON")
        .await
        .during(db, ACTION)?;
    provider_state::Entity::delete_by_id(key.to_string())
        .exec(&tx)
        .await
        .during(db, ACTION)?;
    tx.execute_unprepared("PRAGMA secure_delete = OFF")
        .await
        .during(db, ACTION)?;
    tx.commit().await.during(db, ACTION)?;
    if let Err(e) = conn
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
    {
        tracing::debug!(error = %e, "checkpoint after erasing state failed; the next one will do");
    }
    Ok(())
}

/// Inserts and lets the unique key decide: of several processes racing on one
/// message id exactly one insert succeeds, the others see a duplicate.
pub(crate) async fn mark_processed(
    conn: &Conn,
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

/// Rows deleted per statement: each delete is a short write, so other writers (on
/// SQLite they queue behind it) wait little even when a large backlog goes.
const PRUNE_CHUNK: u64 = 1000;

/// Deletes the ids recorded before `before`, oldest first, in short chunks.
pub(crate) async fn prune_processed(
    conn: &Conn,
    db: &Db,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    const ACTION: &str = "pruning processed message ids";
    let mut removed = 0;
    loop {
        let ids: Vec<i64> = processed_message::Entity::find()
            .select_only()
            .column(processed_message::Column::Id)
            .filter(processed_message::Column::At.lt(before))
            .order_by_asc(processed_message::Column::At)
            .limit(PRUNE_CHUNK)
            .into_tuple()
            .all(conn)
            .await
            .during(db, ACTION)?;
        if ids.is_empty() {
            return Ok(removed);
        }
        let full = ids.len() as u64 == PRUNE_CHUNK;
        removed += processed_message::Entity::delete_many()
            .filter(processed_message::Column::Id.is_in(ids))
            .exec(conn)
            .await
            .during(db, ACTION)?
            .rows_affected;
        if !full {
            return Ok(removed);
        }
    }
}

//! Provider state blobs, upserted by key; erased for good when they hold a secret.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::sea::conn::Conn;
use crate::sea::errors::{Db, During};
use crate::sea::pool::now;
use crate::sea::SeaStore;
use crate::Result;
use async_trait::async_trait;
use entity::provider_state;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, Set};

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

#[async_trait]
impl crate::StateStore for SeaStore {
    async fn get_state(&self, key: &str) -> Result<Option<String>> {
        get(&self.conn, &self.db, key).await
    }

    async fn put_state(&self, key: &str, value: &str) -> Result<()> {
        put(&self.conn, &self.db, key, value).await
    }

    async fn erase_state(&self, key: &str) -> Result<()> {
        erase(&self.conn, &self.db, key).await
    }
}

//! Provider state blobs, upserted by key or written conditionally on their version
//! (and on a job's claim); erased for good when they hold a secret.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::sea::conn::Conn;
use crate::sea::errors::{is_duplicate, Db, During};
use crate::sea::jobs::lock_fence;
use crate::sea::pool::now;
use crate::sea::SeaStore;
use crate::{Result, StateWrite, VersionedState};
use async_trait::async_trait;
use entity::provider_state;
use opsbot_core::JobFence;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, Set};

pub(crate) async fn get(conn: &Conn, db: &Db, key: &str) -> Result<Option<String>> {
    Ok(provider_state::Entity::find_by_id(key.to_string())
        .one(conn)
        .await
        .during(db, "reading provider state")?
        .map(|m| m.value))
}

pub(crate) async fn get_versioned(
    conn: &Conn,
    db: &Db,
    key: &str,
) -> Result<Option<VersionedState>> {
    Ok(provider_state::Entity::find_by_id(key.to_string())
        .one(conn)
        .await
        .during(db, "reading provider state")?
        .map(|m| VersionedState {
            value: m.value,
            version: m.version,
        }))
}

/// The version of a blob written where there was none.
const FIRST_VERSION: i64 = 1;

pub(crate) async fn put(conn: &Conn, db: &Db, key: &str, value: &str) -> Result<()> {
    let row = provider_state::ActiveModel {
        key: Set(key.to_string()),
        value: Set(value.to_string()),
        updated_at: Set(now()),
        version: Set(FIRST_VERSION),
    };
    provider_state::Entity::insert(row)
        .on_conflict(
            OnConflict::column(provider_state::Column::Key)
                .update_columns([
                    provider_state::Column::Value,
                    provider_state::Column::UpdatedAt,
                ])
                // An overwrite moves the version too, or a conditional writer that
                // read before it would not notice it.
                .value(
                    provider_state::Column::Version,
                    Expr::col((provider_state::Entity, provider_state::Column::Version)).add(1),
                )
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .during(db, "writing provider state")?;
    Ok(())
}

pub(crate) async fn put_if(
    conn: &Conn,
    db: &Db,
    key: &str,
    expected: Option<i64>,
    value: &str,
    fence: Option<&JobFence>,
) -> Result<StateWrite> {
    const ACTION: &str = "writing provider state";
    let tx = conn.begin().await.during(db, ACTION)?;
    if let Some(fence) = fence {
        if !lock_fence(&tx, fence).await.during(db, ACTION)? {
            tx.rollback().await.during(db, ACTION)?;
            return Ok(StateWrite::FencedOut);
        }
    }
    let at = now();
    let written = match expected {
        Some(version) => {
            let changed = provider_state::Entity::update_many()
                .col_expr(provider_state::Column::Value, Expr::value(value))
                .col_expr(provider_state::Column::Version, Expr::value(version + 1))
                .col_expr(provider_state::Column::UpdatedAt, Expr::value(at))
                .filter(provider_state::Column::Key.eq(key))
                .filter(provider_state::Column::Version.eq(version))
                .exec(&tx)
                .await
                .during(db, ACTION)?
                .rows_affected;
            (changed == 1).then_some(version + 1)
        }
        None => {
            // A savepoint: on PostgreSQL a duplicate would abort the whole transaction.
            let sp = tx.savepoint().await.during(db, ACTION)?;
            let row = provider_state::ActiveModel {
                key: Set(key.to_string()),
                value: Set(value.to_string()),
                updated_at: Set(at),
                version: Set(FIRST_VERSION),
            };
            match provider_state::Entity::insert(row)
                .exec_without_returning(&sp)
                .await
            {
                Ok(_) => {
                    sp.commit().await.during(db, ACTION)?;
                    Some(FIRST_VERSION)
                }
                Err(e) if is_duplicate(&e) => {
                    sp.rollback().await.during(db, ACTION)?;
                    None
                }
                Err(e) => return Err(db.map(e, ACTION)),
            }
        }
    };
    let Some(version) = written else {
        tx.rollback().await.during(db, ACTION)?;
        return Ok(StateWrite::Conflict);
    };
    tx.commit().await.during(db, ACTION)?;
    Ok(StateWrite::Written { version })
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

    async fn get_state_versioned(&self, key: &str) -> Result<Option<VersionedState>> {
        get_versioned(&self.conn, &self.db, key).await
    }

    async fn put_state_if(
        &self,
        key: &str,
        expected: Option<i64>,
        value: &str,
        fence: Option<&JobFence>,
    ) -> Result<StateWrite> {
        put_if(&self.conn, &self.db, key, expected, value, fence).await
    }

    async fn erase_state(&self, key: &str) -> Result<()> {
        erase(&self.conn, &self.db, key).await
    }
}

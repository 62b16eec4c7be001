//! `SeaStore`: the [`Store`](crate::Store) on SQLite, PostgreSQL or MySQL through
//! sea-orm. Each feature's trait is implemented in its own directory below
//! (`sea/<feature>/`: `mod.rs`, `entity.rs`, `migration.rs`); this module holds the
//! shared connection and [`Health`].

// Shared by every feature: the connection, opening it, error mapping, the entity
// macro and the migrator (which registers each feature's migrations in order).
mod conn;
mod connect;
mod entity;
mod errors;
mod group;
mod migration;

// One directory per feature: `mod.rs` implements its trait, beside `entity.rs` and
// `migration.rs`.
mod alerts;
mod assets;
mod audit;
mod cards;
mod channels;
mod deploy;
mod jobs;
mod leases;
mod outbox;
mod policy;
mod pool;
mod processed;
mod prune;
mod state;
mod tokens;

use crate::url::{redact, Target};
use crate::{Health, Result};
use async_trait::async_trait;
use conn::Conn;
use errors::{Db, During};
use sea_orm::ConnectionTrait;

/// The sea-orm store. Cheap to share behind an `Arc`; the pool inside is shared.
#[derive(Debug, Clone)]
pub struct SeaStore {
    conn: Conn,
    db: Db,
    /// The writer that commits message ids and audit rows in batches.
    group: std::sync::Arc<group::GroupCommit>,
}

impl SeaStore {
    /// Connects to `url` and migrates the schema; see [`crate::connect`].
    pub async fn open(url: &str) -> Result<SeaStore> {
        let target = Target::parse(url)?;
        let db = Db {
            backend: target.backend(),
            target: redact(url),
        };
        let conn = Conn::new(connect::open(&target, &db).await?);
        Ok(SeaStore {
            conn,
            db,
            group: Default::default(),
        })
    }

    /// `sqlite`, `postgres` or `mysql`.
    pub fn backend(&self) -> &'static str {
        self.db.backend
    }

    /// Closes the connection pool (tests drop their database afterwards).
    pub async fn close(self) {
        self.conn.close().await;
    }
}

#[async_trait]
impl Health for SeaStore {
    async fn ping(&self) -> Result<()> {
        self.conn
            .execute_unprepared("SELECT 1")
            .await
            .during(&self.db, "checking the connection")?;
        Ok(())
    }
}

//! `SeaStore`: the [`Store`](crate::Store) on SQLite, PostgreSQL or MySQL through
//! sea-orm. This module wires the trait to the per-area modules below it.

mod alerts;
mod assets;
mod audit;
mod channels;
mod conn;
mod connect;
mod entity;
mod entity_alerts;
mod entity_assets;
mod errors;
mod jobs;
mod leases;
mod migration;
mod migration_agent_bindings;
mod migration_alerts;
mod migration_assets;
mod migration_channels;
mod migration_leases;
mod migration_outbox;
mod migration_processed;
mod migration_tags;
mod migration_tokens;
mod outbox;
mod policy;
mod pool;
mod state;
mod tokens;

use crate::url::{redact, Target};
use crate::{
    AuditQuery, ChangeQuery, InterruptFilter, JobQuery, NewJob, NewOutbox, OutboxClaim, OutboxItem,
    OutboxQuery, PolicyData, PoolSnapshot, Result, Store, SyncReport,
};
use async_trait::async_trait;
use conn::Conn;
use errors::{Db, During};
use opsbot_core::{AuditEntry, Change, Inventory, JobId, JobRecord, JobState, Vm};
use sea_orm::ConnectionTrait;
use std::time::Duration;

/// The sea-orm store. Cheap to share behind an `Arc`; the pool inside is shared.
#[derive(Debug, Clone)]
pub struct SeaStore {
    conn: Conn,
    db: Db,
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
        Ok(SeaStore { conn, db })
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
impl Store for SeaStore {
    async fn ping(&self) -> Result<()> {
        self.conn
            .execute_unprepared("SELECT 1")
            .await
            .during(&self.db, "checking the connection")?;
        Ok(())
    }

    async fn pool_version(&self) -> Result<i64> {
        pool::version(&self.conn, &self.db).await
    }

    async fn load_pool(&self) -> Result<PoolSnapshot> {
        pool::load_pool(&self.conn, &self.db).await
    }

    async fn apply_inventory(
        &self,
        provider: &str,
        inventory: &Inventory,
        source: &str,
    ) -> Result<SyncReport> {
        pool::apply_inventory(&self.conn, &self.db, provider, inventory, source).await
    }

    async fn upsert_vm(&self, vm: &Vm, source: &str) -> Result<Vec<Change>> {
        pool::upsert_vm(&self.conn, &self.db, vm, source).await
    }

    async fn apply_vm_delta(
        &self,
        provider: &str,
        vms: &[Vm],
        removed: &[String],
        source: &str,
    ) -> Result<SyncReport> {
        pool::apply_vm_delta(&self.conn, &self.db, provider, vms, removed, source).await
    }

    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<Change>> {
        pool::changes(&self.conn, &self.db, query).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64> {
        audit::append(&self.conn, &self.db, entry).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        audit::query(&self.conn, &self.db, query).await
    }

    async fn mark_processed(&self, channel: &str, msg_id: &str) -> Result<bool> {
        state::mark_processed(&self.conn, &self.db, channel, msg_id).await
    }

    async fn prune_processed(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        state::prune_processed(&self.conn, &self.db, before).await
    }

    async fn create_job(&self, job: &NewJob) -> Result<JobId> {
        jobs::create(&self.conn, &self.db, job).await
    }

    async fn update_job(
        &self,
        id: JobId,
        state: JobState,
        progress: u8,
        message: &str,
    ) -> Result<()> {
        jobs::update(&self.conn, &self.db, id, state, progress, message).await
    }

    async fn heartbeat_jobs(&self, owner: &str) -> Result<()> {
        jobs::heartbeat(&self.conn, &self.db, owner).await
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        jobs::get(&self.conn, &self.db, id).await
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobRecord>> {
        jobs::list(&self.conn, &self.db, query).await
    }

    async fn interrupt_jobs(&self, which: &InterruptFilter, message: &str) -> Result<Vec<JobId>> {
        jobs::interrupt(&self.conn, &self.db, which, message).await
    }

    async fn replace_policy(&self, policy: &PolicyData) -> Result<()> {
        policy::replace(&self.conn, &self.db, policy).await
    }

    async fn load_policy(&self) -> Result<PolicyData> {
        policy::load(&self.conn, &self.db).await
    }

    async fn outbox_push(&self, item: &NewOutbox) -> Result<i64> {
        outbox::push(&self.conn, &self.db, item).await
    }

    async fn outbox_hold(&self, job: JobId, items: &[NewOutbox]) -> Result<()> {
        outbox::hold(&self.conn, &self.db, job, items).await
    }

    async fn outbox_drop_held(&self, job: JobId) -> Result<u64> {
        outbox::drop_held(&self.conn, &self.db, job).await
    }

    async fn outbox_claim(
        &self,
        channel_prefix: &str,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<OutboxItem>> {
        outbox::claim(&self.conn, &self.db, channel_prefix, owner, lease, limit).await
    }

    async fn outbox_sent(&self, id: i64, claim: &OutboxClaim) -> Result<bool> {
        outbox::sent(&self.conn, &self.db, id, claim).await
    }

    async fn outbox_retry(
        &self,
        id: i64,
        claim: &OutboxClaim,
        next_attempt_at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<bool> {
        outbox::retry(&self.conn, &self.db, id, claim, next_attempt_at, error).await
    }

    async fn outbox_dead(&self, id: i64, claim: &OutboxClaim, error: &str) -> Result<bool> {
        outbox::dead(&self.conn, &self.db, id, claim, error).await
    }

    async fn outbox_list(&self, query: &OutboxQuery) -> Result<Vec<OutboxItem>> {
        outbox::list(&self.conn, &self.db, query).await
    }

    async fn outbox_depth(&self) -> Result<u64> {
        outbox::depth(&self.conn, &self.db).await
    }

    async fn get_state(&self, key: &str) -> Result<Option<String>> {
        state::get(&self.conn, &self.db, key).await
    }

    async fn put_state(&self, key: &str, value: &str) -> Result<()> {
        state::put(&self.conn, &self.db, key, value).await
    }

    async fn erase_state(&self, key: &str) -> Result<()> {
        state::erase(&self.conn, &self.db, key).await
    }
}

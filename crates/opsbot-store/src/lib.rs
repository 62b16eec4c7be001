//! Persistence for opsbot. Two traits, each with interchangeable backends:
//!
//! - [`Store`]: the resource pool (with change history), audit log, jobs, processed
//!   message ids, the permission policy and small provider state blobs. One sea-orm
//!   model serves SQLite (default), PostgreSQL and MySQL; migrations run on connect.
//! - [`TokenStore`] (a supertrait of `Store`): issued API and agent tokens, hashed.
//! - [`LeaseStore`] (a supertrait of `Store`): which instance runs each scheduled job.
//! - [`ChannelStore`] (a supertrait of `Store`): smart-robot streams and reply windows.
//! - [`AlertStore`] (a supertrait of `Store`): alerts, raw payloads, pending notices
//!   and silences of the alert gateway.
//! - [`AssetStore`] (a supertrait of `Store`): CMDB assets, their facts and changes.
//! - [`SessionStore`]: short-lived per-user conversation state with a TTL, in process
//!   memory (default) or Redis.
//!
//! [`retention`] runs the periodic pruning of what the store must not keep forever.

pub mod alerts;
mod assets;
mod channels;
mod error;
mod leases;
pub mod retention;
mod sea;
mod session;
mod tokens;
mod types;
mod url;

pub use alerts::AlertStore;
pub use assets::{AssetIngest, AssetQuery, AssetStore, IngestOutcome};
pub use channels::{ChannelStore, NewStream, StreamOpened, StreamRecord, StreamState};
pub use error::{Result, StoreError};
pub use leases::LeaseStore;
pub use sea::SeaStore;
pub use session::{connect_sessions, MemorySessions, RedisSessions};
pub use tokens::{NewToken, TokenRecord, TokenStore};
pub use types::*;
pub use url::{redact, ACCEPTED_SCHEMES};

use async_trait::async_trait;
use opsbot_core::{AuditEntry, Change, Inventory, JobId, JobRecord, JobState, Role, Vm};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Opens the store named by `url` and brings its schema up to date.
///
/// Accepts `sqlite://PATH` (relative to the working directory; the directory and file
/// are created when missing), `sqlite::memory:`, `postgres://` / `postgresql://` and
/// `mysql://` / `mariadb://`. A server that does not answer within about 3 s gives
/// [`StoreError::Unavailable`]; an unknown scheme gives [`StoreError::BadUrl`].
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(SeaStore::open(url).await?))
}

/// Everything opsbot keeps durably. Object-safe: used as `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    Send + Sync + TokenStore + LeaseStore + ChannelStore + AlertStore + AssetStore
{
    /// Cheap check that the database answers (for `/readyz` and error recovery).
    async fn ping(&self) -> Result<()>;

    // ---- resource pool -------------------------------------------------------------

    /// A counter bumped by every write to the pool; readers cache the pool and reload
    /// only when it moves, so several opsbot processes stay consistent.
    async fn pool_version(&self) -> Result<i64>;

    /// All live (not removed) pool objects of every provider, with template numbers.
    async fn load_pool(&self) -> Result<PoolSnapshot>;

    /// Makes the pool mirror `inventory` for `provider`: inserts new objects, updates
    /// changed ones, marks objects missing from the inventory as removed, numbers new
    /// templates, and records every difference in the change history with `source`.
    async fn apply_inventory(
        &self,
        provider: &str,
        inventory: &Inventory,
        source: &str,
    ) -> Result<SyncReport>;

    /// Writes one VM as an operation left it (insert or update), recording changes.
    /// A template VM gets a template number if it has none.
    async fn upsert_vm(&self, vm: &Vm, source: &str) -> Result<Vec<Change>>;

    /// A partial re-sync of `provider`: `vms` changed or appeared, the VMs `removed`
    /// (ids) are gone; nothing else is touched. Differences are recorded as by
    /// [`Store::apply_inventory`]; the report's counts are the provider's afterwards.
    async fn apply_vm_delta(
        &self,
        provider: &str,
        vms: &[Vm],
        removed: &[String],
        source: &str,
    ) -> Result<SyncReport>;

    /// The change history, newest first.
    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<Change>>;

    // ---- audit --------------------------------------------------------------------

    /// Appends an entry and returns its id.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64>;

    /// The audit log, newest first.
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    // ---- inbound message de-duplication ---------------------------------------------

    /// Records that `msg_id` from `channel` was taken in. Returns `false` when it was
    /// already recorded (a retry), so a command never runs twice, also across restarts.
    async fn mark_processed(&self, channel: &str, msg_id: &str) -> Result<bool>;

    /// Forgets the ids recorded before `before` (see [`retention`]: only ids whose
    /// message can no longer arrive again); returns how many.
    async fn prune_processed(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64>;

    // ---- jobs -----------------------------------------------------------------------

    async fn create_job(&self, job: &NewJob) -> Result<JobId>;

    /// Sets state, progress and message and refreshes the heartbeat, of a job that is
    /// still running; a job in a final state is left as it is.
    async fn update_job(
        &self,
        id: JobId,
        state: JobState,
        progress: u8,
        message: &str,
    ) -> Result<()>;

    /// Refreshes the heartbeat of every running job owned by `owner`.
    async fn heartbeat_jobs(&self, owner: &str) -> Result<()>;

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>>;

    /// Jobs, newest first.
    async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobRecord>>;

    /// Marks running jobs as interrupted with `message`: those of one owner (graceful
    /// shutdown) or those whose heartbeat is older than a deadline (a crashed process).
    /// Returns the ids it changed.
    async fn interrupt_jobs(&self, which: &InterruptFilter, message: &str) -> Result<Vec<JobId>>;

    // ---- permission policy ----------------------------------------------------------

    /// Replaces all roles and bindings (the configuration is their source).
    async fn replace_policy(&self, policy: &PolicyData) -> Result<()>;

    async fn load_policy(&self) -> Result<PolicyData>;

    // ---- outbox -------------------------------------------------------------------------

    /// Durably queues a message for an outside service (WeCom, a group robot); it stays
    /// until delivered or declared dead, across crashes and restarts.
    async fn outbox_push(&self, item: &NewOutbox) -> Result<i64>;

    /// Queues `items` held for job `job`: they become pending (and are delivered like any
    /// other) only if the job ends interrupted, whoever marks it so and whenever; they are
    /// dropped by [`Store::outbox_drop_held`] when it ends otherwise. This is how the
    /// asker of a job hears of it when the process running it died.
    async fn outbox_hold(&self, job: JobId, items: &[NewOutbox]) -> Result<()>;

    /// Drops the items held for `job` (it ended, not interrupted); also any left held for
    /// jobs that ended so meanwhile. Returns how many went.
    async fn outbox_drop_held(&self, job: JobId) -> Result<u64>;

    /// Claims up to `limit` pending items whose channel starts with `channel_prefix` and
    /// whose next attempt is due, for `lease`: until the lease ends no other claimer
    /// (another task or process) gets them. Oldest first. Each item carries its
    /// [`OutboxClaim`], which marking it needs. Held items whose job was interrupted are
    /// released (made pending) first.
    async fn outbox_claim(
        &self,
        channel_prefix: &str,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<OutboxItem>>;

    /// Delivered: never sent again. `false` (and nothing changes) unless the item is
    /// pending under exactly this claim: another worker claimed it since.
    async fn outbox_sent(&self, id: i64, claim: &OutboxClaim) -> Result<bool>;

    /// Failed for now: counts the attempt, records the error, releases the claim and
    /// makes the item due again at `next_attempt_at`. `false` (and nothing changes)
    /// unless the item is pending under exactly this claim.
    async fn outbox_retry(
        &self,
        id: i64,
        claim: &OutboxClaim,
        next_attempt_at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<bool>;

    /// Failed for good (the dead-letter list): counts the attempt, records the error.
    /// `false` (and nothing changes) unless the item is pending under exactly this claim.
    async fn outbox_dead(&self, id: i64, claim: &OutboxClaim, error: &str) -> Result<bool>;

    /// Items by state, newest first (`limit` 0 = all).
    async fn outbox_list(&self, query: &OutboxQuery) -> Result<Vec<OutboxItem>>;

    /// How many items are pending (the outbox depth, for metrics).
    async fn outbox_depth(&self) -> Result<u64>;

    // ---- provider state -------------------------------------------------------------

    /// A small opaque blob a provider keeps between runs (the sim cluster's state).
    async fn get_state(&self, key: &str) -> Result<Option<String>>;

    async fn put_state(&self, key: &str, value: &str) -> Result<()>;

    /// Deletes state for good, a secret that must not stay behind: on SQLite the
    /// deleted bytes are overwritten in the database file and the write-ahead log is
    /// checkpointed, so a later copy of the file does not hold them. (PostgreSQL and
    /// MySQL keep deleted rows on disk until they reuse the space; logical backups
    /// made afterwards do not have them.)
    async fn erase_state(&self, key: &str) -> Result<()>;
}

/// Short-lived conversation state (menu position, pending confirmation, paging).
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` under `key`, expiring `ttl` after this call.
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()>;
    async fn remove(&self, key: &str) -> Result<()>;
    /// `memory` or `redis`.
    fn backend(&self) -> &'static str;
}

/// Roles and who holds them, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyData {
    pub roles: Vec<Role>,
    pub users: BTreeMap<String, Vec<String>>,
    pub chats: BTreeMap<String, Vec<String>>,
}

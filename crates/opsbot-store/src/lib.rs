//! Persistence for opsbot. Narrow traits, one per feature and each declared in its
//! module beside its types, with interchangeable backends:
//!
//! - [`PoolStore`] and [`ChangeLog`]: the resource pool and its change history;
//!   [`AuditStore`]: the audit log; [`JobStore`]: background jobs; [`MessageIdStore`]:
//!   processed inbound message ids; [`PolicyStore`]: the permission policy;
//!   [`OutboxStore`]: messages queued for outside services; [`StateStore`]: small
//!   provider state blobs; [`TokenStore`]: issued API and agent tokens, hashed;
//!   [`LeaseStore`]: which instance runs each scheduled job; [`ChannelStore`]:
//!   smart-robot streams and reply windows; [`AlertStore`]: alerts, raw payloads,
//!   pending notices and silences of the alert gateway; [`AssetStore`]: CMDB assets,
//!   their facts and changes; [`DeployStore`]: deploy projects, builds, release
//!   orders with their hosts and logs, and what each host runs; [`CardStore`]: sent
//!   interactive cards, their one-time codes and action slots, and the admission of
//!   automatic remediation runs. One sea-orm model ([`SeaStore`], laid out as
//!   `sea/<feature>/`) serves SQLite (default), PostgreSQL and MySQL; migrations run
//!   on connect.
//! - [`Store`]: the umbrella of all of them (plus [`Health`]), what [`connect`] opens.
//!   A consumer takes the narrow trait it needs; `Arc<dyn Store>` coerces to it.
//! - [`SessionStore`]: short-lived per-user conversation state with a TTL, in process
//!   memory (default) or Redis.
//! - [`RedisWindows`]: rate-limit windows every instance shares
//!   ([`opsbot_core::RateWindows`]), in Redis.
//!
//! [`retention`] runs the periodic pruning of what the store must not keep forever.

pub mod alerts;
mod assets;
mod audit;
pub mod cards;
mod channels;
pub mod deploy;
mod error;
mod jobs;
mod leases;
mod limits;
mod outbox;
mod policy;
mod pool;
mod processed;
mod redis_link;
pub mod retention;
mod sea;
mod session;
mod state;
mod tokens;
mod url;

pub use alerts::AlertStore;
pub use assets::{AssetIngest, AssetQuery, AssetStore, IngestOutcome};
pub use audit::{AuditQuery, AuditStore};
pub use cards::{
    ActionClaim, Admission, CardRecord, CardStore, ClaimResult, NewCard, RemediationRecord,
    RemediationRun,
};
pub use channels::{ChannelStore, NewStream, StreamOpened, StreamRecord, StreamState};
pub use deploy::DeployStore;
pub use error::{Result, StoreError};
pub use jobs::{InterruptFilter, InterruptMessage, JobQuery, JobStore, NewJob};
pub use leases::{Lease, LeaseStore};
pub use limits::RedisWindows;
pub use outbox::{NewOutbox, OutboxClaim, OutboxItem, OutboxQuery, OutboxState, OutboxStore};
pub use policy::{PolicyData, PolicyStore};
pub use pool::{ChangeLog, ChangeQuery, PoolSnapshot, PoolStore, SyncReport};
pub use processed::MessageIdStore;
pub use sea::SeaStore;
pub use session::{connect_sessions, MemorySessions, RedisSessions};
pub use state::{StateStore, StateWrite, VersionedState};
pub use tokens::{NewToken, TokenRecord, TokenStore};
pub use url::{redact, ACCEPTED_SCHEMES};

use async_trait::async_trait;
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

/// Everything opsbot keeps durably, as one object: the umbrella of the narrow traits.
/// Object-safe: used as `Arc<dyn Store>`, which coerces to any narrow trait
/// (`Arc<dyn TokenStore>`, `&dyn StateStore`, ...) where a consumer needs only that.
/// Implemented for every type that implements them all.
pub trait Store:
    Health
    + PoolStore
    + ChangeLog
    + AuditStore
    + MessageIdStore
    + JobStore
    + PolicyStore
    + OutboxStore
    + StateStore
    + TokenStore
    + LeaseStore
    + ChannelStore
    + AlertStore
    + AssetStore
    + DeployStore
    + CardStore
{
}

impl<T> Store for T where
    T: Health
        + PoolStore
        + ChangeLog
        + AuditStore
        + MessageIdStore
        + JobStore
        + PolicyStore
        + OutboxStore
        + StateStore
        + TokenStore
        + LeaseStore
        + ChannelStore
        + AlertStore
        + AssetStore
        + DeployStore
        + CardStore
        + ?Sized
{
}

/// Whether the database answers.
#[async_trait]
pub trait Health: Send + Sync {
    /// Cheap check that the database answers (for `/readyz` and error recovery).
    async fn ping(&self) -> Result<()>;
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

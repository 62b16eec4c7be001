//! Provider state: small opaque blobs a provider (or the key check of `opsbot-auth`)
//! keeps between runs, by key.

use crate::Result;
use async_trait::async_trait;

/// Keyed state blobs.
#[async_trait]
pub trait StateStore: Send + Sync {
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

//! Provider state: small opaque blobs a provider (or the key check of `opsbot-auth`)
//! keeps between runs, by key.

use crate::Result;
use async_trait::async_trait;
use opsbot_core::JobFence;

/// A blob with the version it was read at (see [`StateStore::put_state_if`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedState {
    pub value: String,
    pub version: i64,
}

/// What [`StateStore::put_state_if`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateWrite {
    /// Written; the blob now has this version.
    Written { version: i64 },
    /// Someone wrote the blob since it was read (or created it, when it was absent):
    /// nothing written. Read it again and redo the change.
    Conflict,
    /// The job's claim no longer holds (interrupted, finished, or taken over): nothing
    /// written.
    FencedOut,
}

/// Keyed state blobs.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// A small opaque blob a provider keeps between runs (the sim cluster's state).
    async fn get_state(&self, key: &str) -> Result<Option<String>>;

    /// Writes the blob whatever it holds now (last writer wins).
    async fn put_state(&self, key: &str, value: &str) -> Result<()>;

    /// The blob and its version, for a later [`StateStore::put_state_if`].
    async fn get_state_versioned(&self, key: &str) -> Result<Option<VersionedState>>;

    /// Writes the blob only if it is still at `expected` (`None`: only if there is
    /// none), and, given a job's `fence`, only if that job is still running under that
    /// claim. One transaction that holds the job's row, so it and
    /// [`crate::JobStore::interrupt_jobs`] serialise: either the interruption comes
    /// first and this writes nothing, or this write comes first and the job is
    /// interrupted after it.
    async fn put_state_if(
        &self,
        key: &str,
        expected: Option<i64>,
        value: &str,
        fence: Option<&JobFence>,
    ) -> Result<StateWrite>;

    /// Deletes state for good, a secret that must not stay behind: on SQLite the
    /// deleted bytes are overwritten in the database file and the write-ahead log is
    /// checkpointed, so a later copy of the file does not hold them. (PostgreSQL and
    /// MySQL keep deleted rows on disk until they reuse the space; logical backups
    /// made afterwards do not have them.)
    async fn erase_state(&self, key: &str) -> Result<()>;
}

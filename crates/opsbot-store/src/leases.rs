//! Leases: a named job (a scheduled sync, a scheduled collection) that one opsbot
//! instance at a time may run, when several share a store (SPEC §9). A lease is held
//! until it expires or its holder releases it; the holder renews it by taking it again.

use crate::Result;
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews lease `name` for `owner` for `ttl`. `false` when another owner
    /// holds it and it has not expired. Of several instances racing for a free lease
    /// exactly one gets it.
    async fn lease_take(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool>;

    /// Gives the lease up early (a graceful stop), if `owner` holds it.
    async fn lease_release(&self, name: &str, owner: &str) -> Result<()>;
}

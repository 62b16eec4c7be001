//! Leases: a named job (a scheduled sync, a scheduled collection, a project's deploy)
//! that one opsbot instance at a time may run, when several share a store (SPEC §9). A
//! lease is held until it expires or its holder releases it; the holder renews it by
//! taking it again.
//!
//! Each holding carries a fencing token, which moves every time the lease changes hands
//! (a renewal keeps it). Work done under a lease presents its [`Lease`]; a write fenced
//! by it is refused once the lease went to someone else, so an instance that was frozen
//! past its lease cannot write over what the new holder did.

use crate::Result;
use async_trait::async_trait;
use std::time::Duration;

/// A lease as held: what work done under it presents to be fenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub owner: String,
    /// Moves every time the lease changes hands; the same while one holder renews it.
    pub token: i64,
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews lease `name` for `owner` for `ttl`: the lease as held, or `None`
    /// when another owner holds it and it has not expired. Of several instances racing
    /// for a free lease exactly one gets it. A renewal keeps the token; a lease taken
    /// after another owner held it (or after a release) gets a new one.
    async fn lease_take(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>>;

    /// Whether `lease` is still held as it was taken: same owner, same token, not
    /// expired.
    async fn lease_check(&self, lease: &Lease) -> Result<bool>;

    /// Gives the lease up early (a graceful stop, or another instance finding its
    /// holder dead), if `owner` holds it. Whoever takes it next gets a new token.
    async fn lease_release(&self, name: &str, owner: &str) -> Result<()>;
}

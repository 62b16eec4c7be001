//! Rate windows shared by every instance: the narrow trait the WeCom sending limits, the
//! alert notifier's pacing and the REST API's per-caller budget count against when
//! several opsbot processes run behind one load balancer. A limit kept in one process's
//! memory is multiplied by the number of processes; a shared one is not.
//!
//! The Redis implementation is `opsbot_store::RedisWindows`; the process-local default
//! is `opsbot_wecom::ratelimit::LocalWindows` (and governor in the HTTP layer).

use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// Sliding windows of hits per key, shared by whoever holds the same backend.
#[async_trait]
pub trait RateWindows: Send + Sync + fmt::Debug {
    /// Counts one hit for every key in `keys`, all or none: zero when each key had
    /// fewer than `limit` hits within the last `window` (and now has one more), else how
    /// long to wait before trying again (nothing counted). A key blocked by
    /// [`RateWindows::penalize`] waits until its penalty ends.
    async fn try_acquire(
        &self,
        keys: &[String],
        limit: u32,
        window: Duration,
    ) -> Result<Duration, RateError>;

    /// Blocks `key` for `duration` from now (at least: a longer penalty already set stays).
    async fn penalize(&self, key: &str, duration: Duration) -> Result<(), RateError>;

    /// `memory` or `redis`, for logs.
    fn backend(&self) -> &'static str;
}

/// Why the shared windows could not answer. Callers decide per limit whether that
/// lets the hit through (an API budget) or makes it wait (a WeCom send).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RateError {
    /// The backend is unreachable or did not answer in time; the message names no host
    /// and no password.
    #[error("rate limits unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error (a script it refused, a wrong key type).
    #[error("rate limits refused the call: {0}")]
    Refused(String),
}

//! The ids of inbound messages already taken in, so a platform's retry or a replay
//! never runs a command twice (pruned by [`crate::retention`]).

use crate::Result;
use async_trait::async_trait;

/// Inbound message ids, per channel.
#[async_trait]
pub trait MessageIdStore: Send + Sync {
    /// Records that `msg_id` from `channel` was taken in. Returns `false` when it was
    /// already recorded (a retry), so a command never runs twice, also across restarts.
    async fn mark_processed(&self, channel: &str, msg_id: &str) -> Result<bool>;

    /// Forgets the ids recorded before `before` (see [`crate::retention`]: only ids whose
    /// message can no longer arrive again); returns how many.
    async fn prune_processed(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64>;
}

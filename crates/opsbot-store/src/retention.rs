//! What the store must not keep forever, pruned periodically by the running instance.
//!
//! **Processed message ids** (`processed_message`) exist so a WeCom or WeChat retry or
//! replay of a message already taken in is acknowledged and ignored. A message can
//! arrive again only while its callback verifies:
//! - a replay of a captured request carries the request's timestamp, which the
//!   channel accepts while it is within its `timestamp_window` of now (either
//!   direction; 5 min by default). That timestamp may itself have been up to one
//!   window ahead of our clock when the message first arrived, so a replay can come
//!   at most 2 × window after the id was recorded;
//! - the platforms' own retries (WeCom apps, smart robots and Official Accounts retry
//!   a callback three times, about 5 s apart, when it is not answered within 5 s) come
//!   within seconds, with fresh timestamps.
//!
//! So an id is kept 2 × the longest window plus a margin of an hour for clock
//! differences between instances and platforms ([`processed_retention`]), and pruned
//! after. With several instances on one store, the holder of a lease prunes.

use crate::{LeaseStore, MessageIdStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The lease whose holder prunes processed message ids.
pub const PRUNE_PROCESSED_LEASE: &str = "schedule:prune:processed_message";

/// How much longer than a replay can come an id is kept.
const MARGIN: Duration = Duration::from_secs(3600);

/// How long to keep processed message ids, given the longest callback timestamp
/// window of the channels (see the module documentation).
pub fn processed_retention(longest_window: Duration) -> Duration {
    longest_window * 2 + MARGIN
}

/// Every `every` until `stop`: if this instance (`owner`) holds the pruning lease,
/// deletes the processed message ids older than `keep`. A failed round is logged and
/// tried again at the next tick; the lease is released on stop. Needs only the leases
/// and the message ids: an `Arc<dyn Store>` serves.
pub async fn prune_processed_periodically<S>(
    store: Arc<S>,
    owner: String,
    keep: Duration,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) where
    S: LeaseStore + MessageIdStore + ?Sized,
{
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        match store
            .lease_take(PRUNE_PROCESSED_LEASE, &owner, every + every / 2)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue, // another instance prunes
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the pruning lease; skipping this round");
                continue;
            }
        }
        let before = chrono::Utc::now()
            .checked_sub_signed(keep)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        match store.prune_processed(before).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, %before, "pruned processed message ids"),
            Err(e) => {
                tracing::warn!(error = %e, "pruning processed message ids failed; trying again later")
            }
        }
    }
    if let Err(e) = store.lease_release(PRUNE_PROCESSED_LEASE, &owner).await {
        tracing::debug!(error = %e, "could not release the pruning lease");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_outlive_every_replay_by_an_hour() {
        assert_eq!(
            processed_retention(Duration::from_secs(300)),
            Duration::from_secs(600 + 3600)
        );
    }
}

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
//! after.
//!
//! **Cards** (`cards`, `card_claims`) are kept until a day after they expire: a late
//! click on a dead button still finds its card and is told it expired, rather than
//! that the card is unknown ([`CARD_GRACE`]). **Remediation runs** are kept a week
//! ([`REMEDIATION_RETENTION`]): the hourly limit needs one hour of them, the rest is
//! history for the REST API and the cards. **Alert status changes**
//! (`alert_transition`), which tell a flapping alert from a steady one, are kept two
//! days ([`TRANSITION_RETENTION`]), longer than any flap window the gateway accepts (a
//! day); they are pruned with the remediation runs, whose refusals they decide.
//!
//! With several instances on one store, the holder of a lease prunes, one lease per
//! kind of data.

use crate::{AlertStore, CardStore, LeaseStore, MessageIdStore};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The lease whose holder prunes processed message ids.
pub const PRUNE_PROCESSED_LEASE: &str = "schedule:prune:processed_message";

/// The lease whose holder prunes expired cards and old remediation runs.
pub const PRUNE_CARDS_LEASE: &str = "schedule:prune:cards";

/// How much longer than a replay can come an id is kept.
const MARGIN: Duration = Duration::from_secs(3600);

/// How long past its expiry a card (and its claims) is kept.
pub const CARD_GRACE: Duration = Duration::from_secs(24 * 3600);

/// How long a remediation run is kept.
pub const REMEDIATION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long an alert's status change is kept.
pub const TRANSITION_RETENTION: Duration = Duration::from_secs(2 * 24 * 3600);

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
    stop: watch::Receiver<bool>,
) where
    S: LeaseStore + MessageIdStore + ?Sized,
{
    let pruner = store.clone();
    under_lease(store, PRUNE_PROCESSED_LEASE, owner, every, stop, || {
        let store = pruner.clone();
        async move {
            let before = ago(keep);
            match store.prune_processed(before).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, %before, "pruned processed message ids"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning processed message ids failed; trying again later")
                }
            }
        }
    })
    .await
}

/// Every `every` until `stop`: if this instance (`owner`) holds the card pruning lease,
/// deletes the cards (with their claims) that expired more than [`CARD_GRACE`] ago, the
/// remediation runs older than [`REMEDIATION_RETENTION`] and the alert status changes
/// older than [`TRANSITION_RETENTION`]. A failed round is logged
/// and tried again at the next tick; the lease is released on stop. An
/// `Arc<dyn Store>` serves.
pub async fn prune_cards_periodically<S>(
    store: Arc<S>,
    owner: String,
    every: Duration,
    stop: watch::Receiver<bool>,
) where
    S: LeaseStore + CardStore + AlertStore + ?Sized,
{
    let pruner = store.clone();
    under_lease(store, PRUNE_CARDS_LEASE, owner, every, stop, || {
        let store = pruner.clone();
        async move {
            let expired_before = ago(CARD_GRACE);
            match store.cards_prune(expired_before).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, %expired_before, "pruned expired cards"),
                Err(e) => tracing::warn!(error = %e, "pruning expired cards failed; trying again later"),
            }
            let before = ago(REMEDIATION_RETENTION);
            match store.remediation_prune(before).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, %before, "pruned remediation runs"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning remediation runs failed; trying again later")
                }
            }
            let before = ago(TRANSITION_RETENTION);
            match store.alert_transitions_prune(before).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, %before, "pruned alert status changes"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning alert status changes failed; trying again later")
                }
            }
        }
    })
    .await
}

/// Now minus `age`, or the earliest time when that is out of range.
fn ago(age: Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// Runs `round` every `every` until `stop`, in the rounds where this instance (`owner`)
/// holds `lease` (taken for one and a half periods, so it outlives a late tick but not
/// a dead holder for long); releases the lease on stop.
async fn under_lease<S, F, Fut>(
    store: Arc<S>,
    lease: &str,
    owner: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut round: F,
) where
    S: LeaseStore + ?Sized,
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        match store.lease_take(lease, &owner, every + every / 2).await {
            // Pruning deletes only what is past retention, the same rows whoever does
            // it: a round that outlives its lease needs no fence.
            Ok(Some(_)) => round().await,
            Ok(None) => {} // another instance prunes
            Err(e) => {
                tracing::warn!(error = %e, lease, "cannot take the pruning lease; skipping this round");
            }
        }
    }
    if let Err(e) = store.lease_release(lease, &owner).await {
        tracing::debug!(error = %e, lease, "could not release the pruning lease");
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

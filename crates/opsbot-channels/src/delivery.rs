//! The delivery worker every channel shares: claims due outbox items of one channel
//! family (`wecom:`, `wecom-bot:`, `wechat:`), hands each to the family's [`Courier`],
//! and records the outcome: sent; retried later with backoff (network trouble, busy,
//! rate limits); or dead-lettered with the reason an operator must act on. Claims are
//! leased, so several opsbot processes can run workers without sending anything twice.

use async_trait::async_trait;
use opsbot_store::{OutboxItem, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Wait before attempt n+1 after n failures (the last entry repeats).
    pub delays: Vec<Duration>,
    /// After this many failed attempts an item is dead-lettered.
    pub max_attempts: u32,
    /// How long a claimed item is ours before another worker may take it.
    pub lease: Duration,
    /// How often the worker looks for due items when nothing wakes it.
    pub poll: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let s = Duration::from_secs;
        RetryPolicy {
            delays: vec![
                s(2),
                s(5),
                s(15),
                s(30),
                s(60),
                s(120),
                s(300),
                s(600),
                s(1800),
                s(3600),
            ],
            // About a day of retrying before giving up.
            max_attempts: 30,
            lease: s(120),
            poll: s(1),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, failures: u32) -> Duration {
        let i = (failures as usize).min(self.delays.len().saturating_sub(1));
        self.delays
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }
}

/// Why one attempt failed.
pub(crate) enum Failure {
    /// Worth trying again, not before `at_least`.
    Retry { error: String, at_least: Duration },
    /// No retry can fix it.
    Permanent(String),
}

impl Failure {
    /// The classification the platform client gives its errors.
    pub(crate) fn of(e: &opsbot_wecom::Error) -> Self {
        if e.is_retryable() {
            Failure::Retry {
                error: e.to_string(),
                at_least: e.retry_after().unwrap_or_default(),
            }
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

/// Sends one outbox item of a channel family.
#[async_trait]
pub(crate) trait Courier: Send + Sync {
    async fn send(&self, item: &OutboxItem) -> Result<(), Failure>;
}

/// Sends at most this many messages at once (a client-side limiter may hold some).
const CONCURRENCY: usize = 16;

pub struct Delivery {
    store: Arc<dyn Store>,
    /// The channel family this worker empties: outbox channels starting with it.
    prefix: &'static str,
    courier: Arc<dyn Courier>,
    owner: String,
    wake: Arc<Notify>,
    policy: RetryPolicy,
}

impl Delivery {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        prefix: &'static str,
        courier: Arc<dyn Courier>,
        owner: String,
        wake: Arc<Notify>,
        policy: RetryPolicy,
    ) -> Self {
        Delivery {
            store,
            prefix,
            courier,
            owner,
            wake,
            policy,
        }
    }

    /// Notifying this wakes the worker at once (it also polls).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs until `stop` turns true. Items in flight finish; unsent ones stay queued.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        let policy = Arc::new(self.policy.clone());
        loop {
            if *stop.borrow() {
                break;
            }
            let free = slots.available_permits().max(1) as u64;
            match self
                .store
                .outbox_claim(self.prefix, &self.owner, self.policy.lease, free)
                .await
            {
                Ok(items) => {
                    let busy = !items.is_empty();
                    for item in items {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let (store, policy) = (self.store.clone(), policy.clone());
                        let courier = self.courier.clone();
                        tokio::spawn(async move {
                            deliver(store.as_ref(), courier.as_ref(), item, &policy).await;
                            drop(permit);
                        });
                    }
                    if busy {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, prefix = self.prefix, "outbox unavailable; delivery paused")
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.policy.poll) => {}
                _ = stop.changed() => {}
            }
        }
        // Let sends in flight record their outcome.
        let _ = slots.acquire_many(CONCURRENCY as u32).await;
    }
}

async fn deliver(store: &dyn Store, courier: &dyn Courier, item: OutboxItem, policy: &RetryPolicy) {
    let outcome = courier.send(&item).await;
    let recorded = match outcome {
        Ok(()) => store.outbox_sent(item.id).await,
        Err(Failure::Retry { error, at_least }) if item.attempts + 1 < policy.max_attempts => {
            let wait = policy.delay(item.attempts).max(at_least);
            tracing::warn!(id = item.id, attempts = item.attempts + 1, ?wait, %error, "delivery failed; will retry");
            let next = chrono::Utc::now()
                + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            store.outbox_retry(item.id, next, &error).await
        }
        Err(Failure::Retry { error, .. }) | Err(Failure::Permanent(error)) => {
            tracing::error!(id = item.id, channel = %item.channel, %error, "delivery failed for good; dead-lettered");
            store.outbox_dead(item.id, &error).await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the item is tried again: sent twice at worst, never lost.
        tracing::error!(id = item.id, error = %e, "could not record a delivery outcome");
    }
}

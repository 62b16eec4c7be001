//! The delivery worker every channel shares: claims due outbox items of one channel
//! family (`wecom:`, `wecom-bot:`, `wechat:`), hands each to the family's [`Courier`],
//! and records the outcome: sent; retried later with backoff (network trouble, busy,
//! rate limits); or dead-lettered with the reason an operator must act on.
//!
//! What is guaranteed is **at least once**: an item leaves the outbox only as sent or
//! dead. Duplicates are kept rare and never come from two workers at once:
//! - a claim is leased, and the lease covers the whole attempt: a send still unfinished
//!   shortly before the lease ends is abandoned (checked before every step, so a worker
//!   that froze past it does not send on waking), so nobody else can claim an item
//!   while its send may still go out;
//! - the outcome is recorded only under the claim the item was taken with, so a worker
//!   that lost its claim cannot mark or reschedule what another worker holds;
//! - a send whose outcome is unknown (a timeout, a connection lost after the request
//!   went out, an abandoned attempt) is retried only after a pause longer than the
//!   client's timeout, never at once; a process that died while sending leaves its claim
//!   to run out, which takes longer still.
//!
//! A message can still arrive twice: when WeCom took it but its answer never reached
//! us, the retry sends it again.
//!
//! Producers that speak the neutral outbox (the alert gateway) queue a message whole;
//! the courier knows its platform's limits and [`Courier::split`] turns one too long
//! into parts, which replace it in the outbox as items of their own before anything is
//! sent, so a retry never re-sends a part that already arrived.

use async_trait::async_trait;
use opsbot_store::{NewOutbox, OutboxClaim, OutboxItem, OutboxStore};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Wait before attempt n+1 after n failures (the last entry repeats).
    pub delays: Vec<Duration>,
    /// After this many failed attempts an item is dead-lettered.
    pub max_attempts: u32,
    /// How long a claimed item is ours before another worker may take it. Raised to at
    /// least [`Delivery`]'s floor (four client timeouts: a token fetch, the send, and a
    /// refetch with one more send), so an attempt is never cut short by its own lease.
    pub lease: Duration,
    /// How often the worker looks for due items when nothing wakes it.
    pub poll: Duration,
    /// The least wait before retrying a send whose outcome is unknown (WeCom may have
    /// taken it). Raised to at least twice the client's timeout.
    pub unsure_pause: Duration,
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
            unsure_pause: s(30),
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
#[derive(Debug)]
pub(crate) enum Failure {
    /// Not sent; worth trying again, not before `at_least`.
    Retry { error: String, at_least: Duration },
    /// Maybe sent, maybe not (no answer, or the answer was lost): tried again only after
    /// the pause for unknown outcomes.
    Unsure(String),
    /// No retry can fix it.
    Permanent(String),
}

impl Failure {
    /// The classification the platform client gives its errors.
    pub(crate) fn of(e: &opsbot_wecom::Error) -> Self {
        if e.outcome_unknown() {
            Failure::Unsure(e.to_string())
        } else if e.is_retryable() {
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
    /// The parts, in order, that replace `item` when it is too long for one message of
    /// this platform; `None` sends it as it is.
    fn split(&self, _item: &OutboxItem) -> Option<Vec<NewOutbox>> {
        None
    }

    async fn send(&self, item: &OutboxItem) -> Result<(), Failure>;
}

/// Sends at most this many messages at once (a client-side limiter may hold some).
const CONCURRENCY: usize = 16;

pub struct Delivery {
    store: Arc<dyn OutboxStore>,
    /// The channel family this worker empties: outbox channels starting with it.
    prefix: &'static str,
    courier: Arc<dyn Courier>,
    owner: String,
    wake: Arc<Notify>,
    policy: RetryPolicy,
    /// How long an attempt may run: the lease minus a margin for clocks and the store.
    attempt: Duration,
}

impl Delivery {
    /// `client_timeout` is the courier's whole-request timeout: leases and the pause
    /// after an unknown outcome are sized from it.
    pub(crate) fn new(
        store: Arc<dyn OutboxStore>,
        prefix: &'static str,
        courier: Arc<dyn Courier>,
        owner: String,
        wake: Arc<Notify>,
        policy: RetryPolicy,
        client_timeout: Duration,
    ) -> Self {
        let mut policy = policy;
        let attempt = policy.lease.max(client_timeout * 4);
        // Other instances compare the lease with their own clocks; the margin absorbs
        // some skew and the store write that records the outcome.
        let margin = (attempt / 10).min(Duration::from_secs(5));
        policy.lease = attempt + margin;
        policy.unsure_pause = policy.unsure_pause.max(client_timeout * 2);
        Delivery {
            store,
            prefix,
            courier,
            owner,
            wake,
            policy,
            attempt,
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
            // Taken before the claim, so the deadline falls before the stored lease end.
            let claimed_at = Instant::now();
            match self
                .store
                .outbox_claim(self.prefix, &self.owner, self.policy.lease, free)
                .await
            {
                Ok(items) => {
                    let busy = !items.is_empty();
                    let deadline = claimed_at + self.attempt;
                    for item in items {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let (store, policy) = (self.store.clone(), policy.clone());
                        let courier = self.courier.clone();
                        tokio::spawn(async move {
                            deliver(store.as_ref(), courier.as_ref(), item, &policy, deadline)
                                .await;
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

async fn deliver(
    store: &dyn OutboxStore,
    courier: &dyn Courier,
    item: OutboxItem,
    policy: &RetryPolicy,
    deadline: Instant,
) {
    let Some(claim) = item.claim.clone() else {
        tracing::error!(id = item.id, "a claimed outbox item came without its claim");
        return;
    };
    if let Some(parts) = courier.split(&item) {
        replace(store, &item, &claim, &parts, policy).await;
        return;
    }
    let outcome = match before(deadline, courier.send(&item)).await {
        Some(outcome) => outcome,
        None => Err(Failure::Unsure(format!(
            "not finished within its lease ({} s); abandoned",
            policy.lease.as_secs()
        ))),
    };
    let last = item.attempts + 1 >= policy.max_attempts;
    let recorded = match outcome {
        Ok(()) => store.outbox_sent(item.id, &claim).await,
        Err(Failure::Retry { error, at_least }) if !last => {
            let wait = policy.delay(item.attempts).max(at_least);
            reschedule(store, &item, &claim, &error, wait).await
        }
        Err(Failure::Unsure(error)) if !last => {
            let wait = policy.delay(item.attempts).max(policy.unsure_pause);
            let error = format!("{error} (outcome unknown: it may have been delivered)");
            reschedule(store, &item, &claim, &error, wait).await
        }
        Err(Failure::Retry { error, .. } | Failure::Unsure(error) | Failure::Permanent(error)) => {
            tracing::error!(id = item.id, channel = %item.channel, %error, "delivery failed for good; dead-lettered");
            store.outbox_dead(item.id, &claim, &error).await
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            id = item.id,
            "outbox item claimed by another worker meanwhile; its outcome here is not recorded"
        ),
        // The lease runs out and the item is tried again: sent twice at worst, never lost.
        Err(e) => tracing::error!(id = item.id, error = %e, "could not record a delivery outcome"),
    }
}

/// Queues `parts` in place of `item`. A store failure part-way leaves `item` to be
/// split again later: a part may then arrive twice, never not at all.
async fn replace(
    store: &dyn OutboxStore,
    item: &OutboxItem,
    claim: &OutboxClaim,
    parts: &[NewOutbox],
    policy: &RetryPolicy,
) {
    for part in parts {
        if let Err(e) = store.outbox_push(part).await {
            let error = format!("could not queue its parts: {e}");
            let wait = policy.delay(item.attempts);
            if let Err(e) = reschedule(store, item, claim, &error, wait).await {
                tracing::error!(id = item.id, error = %e, "could not record a delivery outcome");
            }
            return;
        }
    }
    tracing::debug!(
        id = item.id,
        parts = parts.len(),
        "outbox item split to the platform's limit"
    );
    match store.outbox_sent(item.id, claim).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            id = item.id,
            "outbox item claimed by another worker while being split; its parts may go twice"
        ),
        Err(e) => tracing::error!(id = item.id, error = %e, "could not record a delivery outcome"),
    }
}

async fn reschedule(
    store: &dyn OutboxStore,
    item: &OutboxItem,
    claim: &OutboxClaim,
    error: &str,
    wait: Duration,
) -> opsbot_store::Result<bool> {
    tracing::warn!(id = item.id, attempts = item.attempts + 1, ?wait, %error, "delivery failed; will retry");
    let next =
        chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    store.outbox_retry(item.id, claim, next, error).await
}

/// Runs `work` until `deadline`. The deadline is checked before every poll, so work
/// that was suspended past it (the process froze, the runtime was starved) makes no
/// further step, such as writing its request, on waking.
async fn before<T>(deadline: Instant, work: impl Future<Output = T>) -> Option<T> {
    let mut work = pin!(work);
    let mut timer = pin!(tokio::time::sleep_until(deadline));
    std::future::poll_fn(|cx| {
        if Instant::now() >= deadline {
            return Poll::Ready(None);
        }
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        // Wakes us at the deadline if the work does not first.
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_past_its_deadline_takes_no_further_step() {
        let steps = std::sync::atomic::AtomicU32::new(0);
        let work = async {
            loop {
                steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        };
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(before(deadline, work).await.is_none());
        let taken = steps.load(std::sync::atomic::Ordering::SeqCst);
        // Polled again after the deadline: not a single step more.
        let work = async {
            steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        assert!(before(deadline, work).await.is_none());
        assert_eq!(steps.load(std::sync::atomic::Ordering::SeqCst), taken);
        assert_eq!(
            before(Instant::now() + Duration::from_secs(5), async { 7 }).await,
            Some(7)
        );
    }
}

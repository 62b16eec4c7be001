//! The delivery worker: claims due outbox items, sends them with the app's API client,
//! and records the outcome: sent; retried later with backoff (network trouble, 45009,
//! busy); or dead-lettered with the reason an operator must act on (60020 names the IP
//! to trust, 81013/82001 recipients, 40001 the secret). Claims are leased, so several
//! opsbot processes can run workers without sending anything twice.

use super::outbox::{Body, Target};
use super::App;
use opsbot_store::{OutboxItem, Store};
use opsbot_wecom::api::{AppMessage, Recipients};
use std::collections::HashMap;
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

/// Sends at most this many messages at once (the per-member limiter may hold some).
const CONCURRENCY: usize = 16;

pub struct Delivery {
    store: Arc<dyn Store>,
    /// By outbox channel (`wecom:<app>`).
    apps: HashMap<String, Arc<App>>,
    owner: String,
    wake: Arc<Notify>,
    policy: RetryPolicy,
}

impl Delivery {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        apps: HashMap<String, Arc<App>>,
        owner: String,
        wake: Arc<Notify>,
        policy: RetryPolicy,
    ) -> Self {
        let apps = apps.into_values().map(|a| (a.channel.clone(), a)).collect();
        Delivery {
            store,
            apps,
            owner,
            wake,
            policy,
        }
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
                .outbox_claim("wecom:", &self.owner, self.policy.lease, free)
                .await
            {
                Ok(items) => {
                    let busy = !items.is_empty();
                    for item in items {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let app = self.apps.get(&item.channel).cloned();
                        let (store, policy) = (self.store.clone(), policy.clone());
                        tokio::spawn(async move {
                            deliver(store.as_ref(), app, item, &policy).await;
                            drop(permit);
                        });
                    }
                    if busy {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "outbox unavailable; delivery paused"),
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

async fn deliver(store: &dyn Store, app: Option<Arc<App>>, item: OutboxItem, policy: &RetryPolicy) {
    let outcome = send(app.as_deref(), &item).await;
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

enum Failure {
    Retry { error: String, at_least: Duration },
    Permanent(String),
}

async fn send(app: Option<&App>, item: &OutboxItem) -> Result<(), Failure> {
    let app =
        app.ok_or_else(|| Failure::Permanent(format!("{} is no longer configured", item.channel)))?;
    let target: Target = serde_json::from_str(&item.target)
        .map_err(|e| Failure::Permanent(format!("unreadable outbox target: {e}")))?;
    let Body::Text { content } = serde_json::from_str(&item.body)
        .map_err(|e| Failure::Permanent(format!("unreadable outbox body: {e}")))?;
    let result = match &target {
        Target::User { user } => app
            .client
            .send_text(&Recipients::users([user.as_str()]), &content)
            .await
            .map(|receipt| {
                if receipt.is_partial() {
                    tracing::warn!(app = %app.name, ?receipt, "some recipients were invalid");
                }
            }),
        Target::Chat { chat, .. } => {
            app.client
                .appchat_send(chat, &AppMessage::Text(content))
                .await
        }
    };
    result.map_err(|e| {
        if e.is_retryable() {
            Failure::Retry {
                error: e.to_string(),
                at_least: e.retry_after().unwrap_or_default(),
            }
        } else {
            Failure::Permanent(e.to_string())
        }
    })
}

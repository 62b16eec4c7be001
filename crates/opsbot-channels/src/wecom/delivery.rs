//! The delivery worker: claims due outbox items, sends them with the app's API client
//! (`message/send`, `appchat/send`) or a group robot's webhook,
//! and records the outcome: sent; retried later with backoff (network trouble, 45009,
//! busy); or dead-lettered with the reason an operator must act on (60020 names the IP
//! to trust, 81013/82001 recipients, 40001 the secret). Claims are leased, so several
//! opsbot processes can run workers without sending anything twice.

use super::outbox::{robot_channel, Body, Target};
use super::{App, ChannelError, RobotConfig};
use opsbot_store::{OutboxItem, Store};
use opsbot_wecom::api::{AppMessage, Recipients, RobotMessage};
use opsbot_wecom::{ClientConfig, WecomClient};
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
    /// By outbox channel (`wecom:robot/<name>`).
    robots: HashMap<String, Arc<Robot>>,
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
            robots: HashMap::new(),
            owner,
            wake,
            policy,
        }
    }

    /// Also delivers to these group robots (the alert gateway's targets).
    pub fn with_robots(mut self, robots: &[RobotConfig]) -> Result<Self, ChannelError> {
        let mut clients: HashMap<String, WecomClient> = HashMap::new();
        for r in robots {
            let client = match clients.get(&r.api_base) {
                Some(c) => c.clone(),
                None => {
                    let config = ClientConfig {
                        api_base: r.api_base.clone(),
                        ..ClientConfig::default()
                    };
                    let c = WecomClient::new(config).map_err(|e| ChannelError::BadApp {
                        app: r.name.clone(),
                        problem: e.to_string(),
                    })?;
                    clients.insert(r.api_base.clone(), c.clone());
                    c
                }
            };
            let robot = Robot {
                key: r.key.clone(),
                client,
            };
            self.robots.insert(robot_channel(&r.name), Arc::new(robot));
        }
        Ok(self)
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
                .outbox_claim("wecom:", &self.owner, self.policy.lease, free)
                .await
            {
                Ok(items) => {
                    let busy = !items.is_empty();
                    for item in items {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let dest = match self.apps.get(&item.channel) {
                            Some(app) => Some(Dest::App(app.clone())),
                            None => self.robots.get(&item.channel).cloned().map(Dest::Robot),
                        };
                        let (store, policy) = (self.store.clone(), policy.clone());
                        tokio::spawn(async move {
                            deliver(store.as_ref(), dest, item, &policy).await;
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

/// A configured group robot.
struct Robot {
    key: String,
    client: WecomClient,
}

/// Who sends an outbox item: an app or a robot.
enum Dest {
    App(Arc<App>),
    Robot(Arc<Robot>),
}

async fn deliver(store: &dyn Store, dest: Option<Dest>, item: OutboxItem, policy: &RetryPolicy) {
    let outcome = send(dest, &item).await;
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

async fn send(dest: Option<Dest>, item: &OutboxItem) -> Result<(), Failure> {
    let dest = dest
        .ok_or_else(|| Failure::Permanent(format!("{} is no longer configured", item.channel)))?;
    let target: Target = serde_json::from_str(&item.target)
        .map_err(|e| Failure::Permanent(format!("unreadable outbox target: {e}")))?;
    let body: Body = serde_json::from_str(&item.body)
        .map_err(|e| Failure::Permanent(format!("unreadable outbox body: {e}")))?;
    let message = match body {
        Body::Text { content } => AppMessage::Text(content),
        Body::Markdown { content } => AppMessage::Markdown(content),
    };
    let app = match (dest, &target) {
        (Dest::Robot(robot), Target::Robot) => {
            let message = match message {
                AppMessage::Markdown(content) => RobotMessage::Markdown(content),
                AppMessage::Text(content) => RobotMessage::text(content),
                AppMessage::TextCard(card) => RobotMessage::text(card.description),
            };
            return robot
                .client
                .webhook_send(&robot.key, &message)
                .await
                .map_err(failure);
        }
        (Dest::Robot(_), _) | (Dest::App(_), Target::Robot) => {
            return Err(Failure::Permanent(format!(
                "outbox target {} does not fit channel {}",
                item.target, item.channel
            )))
        }
        (Dest::App(app), _) => app,
    };
    let result = match &target {
        Target::User { user } => {
            send_members(&app, &Recipients::users([user.as_str()]), &message).await
        }
        Target::Members {
            users,
            parties,
            tags,
        } => {
            let to = Recipients {
                users: users.clone(),
                parties: parties.clone(),
                tags: tags.clone(),
            };
            send_members(&app, &to, &message).await
        }
        Target::Chat { chat, .. } | Target::AppChat { chat } => {
            app.client.appchat_send(chat, &message).await
        }
        Target::Robot => unreachable!("answered above"),
    };
    result.map_err(failure)
}

async fn send_members(
    app: &App,
    to: &Recipients,
    message: &AppMessage,
) -> Result<(), opsbot_wecom::Error> {
    let receipt = app.client.send(to, message).await?;
    if receipt.is_partial() {
        tracing::warn!(app = %app.name, ?receipt, "some recipients were invalid");
    }
    Ok(())
}

fn failure(e: opsbot_wecom::Error) -> Failure {
    if e.is_retryable() {
        Failure::Retry {
            error: e.to_string(),
            at_least: e.retry_after().unwrap_or_default(),
        }
    } else {
        Failure::Permanent(e.to_string())
    }
}

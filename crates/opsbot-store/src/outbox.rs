//! The outbox: messages for outside services (WeCom, group robots), kept durably until
//! delivered or declared dead, and claimed by one sender at a time.

use crate::Result;
use async_trait::async_trait;
use opsbot_core::JobId;
use std::time::Duration;

/// A message to queue for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutbox {
    /// Who delivers it: `wecom:<app>`, `robot:<name>`, ...
    pub channel: String,
    /// Where it goes, as the channel encodes it (JSON).
    pub target: String,
    /// What is sent, as the channel encodes it (JSON).
    pub body: String,
}

impl From<&opsbot_core::Notice> for NewOutbox {
    /// The stored form of a platform-neutral message, whoever queues it.
    fn from(notice: &opsbot_core::Notice) -> Self {
        NewOutbox {
            channel: notice.channel.clone(),
            target: notice.target_json(),
            body: notice.body_json(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    Pending,
    Sent,
    Dead,
    /// Kept back for a job: released (pending) if the job ends interrupted, dropped if it
    /// ends otherwise. How an asker hears of a job whose process died.
    Held,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Dead => "dead",
            OutboxState::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => OutboxState::Pending,
            "sent" => OutboxState::Sent,
            "dead" => OutboxState::Dead,
            "held" => OutboxState::Held,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub channel: String,
    pub target: String,
    pub body: String,
    pub state: OutboxState,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The current claim, if any (it may have run out): set on every claimed item.
    pub claim: Option<OutboxClaim>,
    /// The job a held item waits for.
    pub hold_job: Option<i64>,
}

/// One claim of an outbox item. Marking the item (sent, retry, dead) needs the claim it
/// was taken with: a worker whose lease ran out, and whose item another worker claimed
/// since, can no longer mark it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxClaim {
    /// Who claimed it (an id unique per process).
    pub owner: String,
    /// Unique per claim: the same owner claiming an item again gets another token.
    pub token: i64,
    /// When the lease ends and the item is free to claim again.
    pub until: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxQuery {
    pub state: Option<OutboxState>,
    pub channel_prefix: Option<String>,
    pub limit: u64,
}

/// Queued outgoing messages.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Durably queues a message for an outside service (WeCom, a group robot); it stays
    /// until delivered or declared dead, across crashes and restarts.
    async fn outbox_push(&self, item: &NewOutbox) -> Result<i64>;

    /// Queues `items` held for job `job`: they become pending (and are delivered like any
    /// other) only if the job ends interrupted, whoever marks it so and whenever; they are
    /// dropped by [`OutboxStore::outbox_drop_held`] when it ends otherwise. This is how the
    /// asker of a job hears of it when the process running it died.
    async fn outbox_hold(&self, job: JobId, items: &[NewOutbox]) -> Result<()>;

    /// Drops the items held for `job` (it ended, not interrupted); also any left held for
    /// jobs that ended so meanwhile. Returns how many went.
    async fn outbox_drop_held(&self, job: JobId) -> Result<u64>;

    /// Claims up to `limit` pending items whose channel starts with `channel_prefix` and
    /// whose next attempt is due, for `lease`: until the lease ends no other claimer
    /// (another task or process) gets them. Oldest first. Each item carries its
    /// [`OutboxClaim`], which marking it needs. Held items whose job was interrupted are
    /// released (made pending) first.
    async fn outbox_claim(
        &self,
        channel_prefix: &str,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<OutboxItem>>;

    /// Delivered: never sent again. `false` (and nothing changes) unless the item is
    /// pending under exactly this claim: another worker claimed it since.
    async fn outbox_sent(&self, id: i64, claim: &OutboxClaim) -> Result<bool>;

    /// Failed for now: counts the attempt, records the error, releases the claim and
    /// makes the item due again at `next_attempt_at`. `false` (and nothing changes)
    /// unless the item is pending under exactly this claim.
    async fn outbox_retry(
        &self,
        id: i64,
        claim: &OutboxClaim,
        next_attempt_at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<bool>;

    /// Failed for good (the dead-letter list): counts the attempt, records the error.
    /// `false` (and nothing changes) unless the item is pending under exactly this claim.
    async fn outbox_dead(&self, id: i64, claim: &OutboxClaim, error: &str) -> Result<bool>;

    /// Items by state, newest first (`limit` 0 = all).
    async fn outbox_list(&self, query: &OutboxQuery) -> Result<Vec<OutboxItem>>;

    /// How many items are pending (the outbox depth, for metrics).
    async fn outbox_depth(&self) -> Result<u64>;
}

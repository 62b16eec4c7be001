//! Plain data passed in and out of the store.

use opsbot_core::{AuditResult, Inventory, JobState, Template};

/// The whole live pool as last written, and the version it was read at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolSnapshot {
    pub version: i64,
    pub inventory: Inventory,
    /// Templates with their stable numbers, ordered by number.
    pub templates: Vec<Template>,
}

/// What one `apply_inventory` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncReport {
    pub provider: String,
    pub datacenters: usize,
    pub clusters: usize,
    pub hosts: usize,
    /// VMs, templates excluded.
    pub vms: usize,
    pub templates: usize,
    pub datastores: usize,
    pub networks: usize,
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// The provider reported no change since the last sync, so nothing was read in full
    /// or written; the counts are those of the last sync.
    #[serde(default)]
    pub unchanged: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeQuery {
    pub provider: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub result: Option<AuditResult>,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    pub user: Option<String>,
    pub state: Option<JobState>,
    pub limit: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The process running the job (an id unique per process).
    pub owner: String,
    pub user: String,
    pub channel: String,
    pub chat: Option<String>,
    pub command: String,
    pub text: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptFilter {
    Owner(String),
    StaleBefore(chrono::DateTime<chrono::Utc>),
}

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

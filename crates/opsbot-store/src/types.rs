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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

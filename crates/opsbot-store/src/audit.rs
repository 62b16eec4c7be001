//! The audit log: one entry per command a user ran, kept for review.

use crate::Result;
use async_trait::async_trait;
use opsbot_core::{AuditEntry, AuditResult};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub result: Option<AuditResult>,
    pub limit: u64,
    pub offset: u64,
}

/// Who did what, when, with which result.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry and returns its id.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64>;

    /// The audit log, newest first.
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
}

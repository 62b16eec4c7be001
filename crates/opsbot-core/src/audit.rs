//! Audit log entries: every command, allowed or denied, succeeded or failed.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    /// Ran and succeeded (for jobs: the job finished successfully).
    Ok,
    /// Refused by the permission policy.
    Denied,
    /// The text did not parse or named something that does not exist.
    Invalid,
    /// Ran and failed.
    Failed,
    /// Waiting for the user's confirmation.
    Pending,
    /// Accepted as a background job; the job's own entry follows.
    Accepted,
    /// The user declined a confirmation, or the job was interrupted.
    Cancelled,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Denied => "denied",
            AuditResult::Invalid => "invalid",
            AuditResult::Failed => "failed",
            AuditResult::Pending => "pending",
            AuditResult::Accepted => "accepted",
            AuditResult::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => AuditResult::Ok,
            "denied" => AuditResult::Denied,
            "invalid" => AuditResult::Invalid,
            "failed" => AuditResult::Failed,
            "pending" => AuditResult::Pending,
            "accepted" => AuditResult::Accepted,
            "cancelled" => AuditResult::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Assigned by the store; 0 before it is written.
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub user: String,
    /// console, wecom:<app>, api, ...
    pub channel: String,
    pub chat: Option<String>,
    pub text: String,
    /// Canonical command name, when the text parsed; when the text only chose the
    /// command (a confirming `y`, a menu digit, 下一页), the canonical command that ran
    /// (`CPU:web-01,4`), so the entry says what was done.
    pub command: Option<String>,
    pub result: AuditResult,
    pub message: String,
    pub duration_ms: i64,
    pub job_id: Option<i64>,
}

//! Jobs: long operations that run in the background and report progress.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    /// The process stopped (SIGTERM, crash) before the job finished; its real
    /// outcome on the provider is unknown and must be checked.
    Interrupted,
    /// Stopped on request (`取消:#N`) before it finished; what it had done so far was
    /// undone or never committed by the provider.
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Interrupted => "interrupted",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "interrupted" => JobState::Interrupted,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        self != JobState::Running
    }

    pub fn label(self) -> &'static str {
        match self {
            JobState::Running => "进行中",
            JobState::Succeeded => "成功",
            JobState::Failed => "失败",
            JobState::Interrupted => "已中断",
            JobState::Cancelled => "已取消",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub user: String,
    pub channel: String,
    pub chat: Option<String>,
    /// Canonical command name (克隆, 关机, ...).
    pub command: String,
    /// The text that started it.
    pub text: String,
    pub state: JobState,
    pub progress: u8,
    /// Latest progress note, or the final result.
    pub message: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// What the job acts on, as `provider/vm-id`, when it acts on one VM: how the
    /// sweep of a dead instance's jobs finds the state to report.
    pub target: Option<String>,
}

/// A job's claim: the instance running it and the token it was given when it took the
/// job. The store gives a new token whenever a job changes hands (created, taken over,
/// interrupted), so a paused instance that comes back holds a token the store refuses:
/// it can no longer record the job's result or commit the job's change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobFence {
    pub job: JobId,
    pub owner: String,
    pub token: i64,
}

#[cfg(test)]
mod tests {
    use super::JobState;

    /// The stores keep the state as its text: every state reads back as itself.
    #[test]
    fn every_state_reads_back_from_its_text() {
        for s in [
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Interrupted,
            JobState::Cancelled,
        ] {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::Cancelled.label(), "已取消");
        assert!(JobState::Cancelled.is_final());
    }
}

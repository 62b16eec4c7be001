//! Background jobs: what runs, for whom, how far along, and which process owns it.

use crate::Result;
use async_trait::async_trait;
use opsbot_core::{JobId, JobRecord, JobState};

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

/// Background jobs with their progress and the heartbeat of the process running them.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn create_job(&self, job: &NewJob) -> Result<JobId>;

    /// Sets state, progress and message and refreshes the heartbeat, of a job that is
    /// still running; a job in a final state is left as it is.
    async fn update_job(
        &self,
        id: JobId,
        state: JobState,
        progress: u8,
        message: &str,
    ) -> Result<()>;

    /// Refreshes the heartbeat of every running job owned by `owner`.
    async fn heartbeat_jobs(&self, owner: &str) -> Result<()>;

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>>;

    /// Jobs, newest first.
    async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobRecord>>;

    /// Marks running jobs as interrupted with `message`: those of one owner (graceful
    /// shutdown) or those whose heartbeat is older than a deadline (a crashed process).
    /// Returns the ids it changed.
    async fn interrupt_jobs(&self, which: &InterruptFilter, message: &str) -> Result<Vec<JobId>>;
}

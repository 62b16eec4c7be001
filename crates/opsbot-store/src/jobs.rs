//! Background jobs: what runs, for whom, how far along, and which process owns it
//! under which claim (its fencing token).

use crate::Result;
use async_trait::async_trait;
use opsbot_core::{JobFence, JobId, JobRecord, JobState};

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
    /// `provider/vm-id` of the VM the job acts on, when it acts on one.
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptFilter {
    Owner(String),
    StaleBefore(chrono::DateTime<chrono::Utc>),
}

/// The message an interrupted job is left with, from its record (its target's state).
pub type InterruptMessage<'a> = &'a (dyn Fn(&JobRecord) -> String + Send + Sync);

/// Background jobs with their progress and the heartbeat of the process running them.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Records a running job and gives its first claim.
    async fn start_job(&self, job: &NewJob) -> Result<JobFence>;

    /// [`JobStore::start_job`] when the claim is not needed.
    async fn create_job(&self, job: &NewJob) -> Result<JobId> {
        Ok(self.start_job(job).await?.job)
    }

    /// Sets state, progress and message and refreshes the heartbeat, of a job that is
    /// still running; a job in a final state is left as it is.
    async fn update_job(
        &self,
        id: JobId,
        state: JobState,
        progress: u8,
        message: &str,
    ) -> Result<()>;

    /// [`JobStore::update_job`] by the holder of `fence` only: `false` (nothing
    /// written) when the job is no longer running under that claim, so an instance
    /// that was called dead cannot record a result over the interruption.
    async fn update_fenced_job(
        &self,
        fence: &JobFence,
        state: JobState,
        progress: u8,
        message: &str,
    ) -> Result<bool>;

    /// Whether the job is still running under `fence`.
    async fn fence_holds(&self, fence: &JobFence) -> Result<bool>;

    /// Refreshes the heartbeat of every running job owned by `owner`.
    async fn heartbeat_jobs(&self, owner: &str) -> Result<()>;

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>>;

    /// Jobs, newest first.
    async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobRecord>>;

    /// Marks running jobs as interrupted, each with the message `say` gives for it:
    /// those of one owner (graceful shutdown) or those whose heartbeat is older than a
    /// deadline (a crashed or paused process). Each gets a new fencing token, so its
    /// former holder can neither record a result nor commit a change through the
    /// store. Returns the ids it changed.
    async fn interrupt_jobs_saying(
        &self,
        which: &InterruptFilter,
        say: InterruptMessage<'_>,
    ) -> Result<Vec<JobId>>;

    /// [`JobStore::interrupt_jobs_saying`] with one message for all.
    async fn interrupt_jobs(&self, which: &InterruptFilter, message: &str) -> Result<Vec<JobId>> {
        self.interrupt_jobs_saying(which, &|_| message.to_string())
            .await
    }
}

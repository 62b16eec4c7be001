//! What the engine sends back: the immediate response to a message, and later replies
//! (job progress and results) through a sink the channel provides.

use opsbot_core::{Card, JobId, JobState};
use opsbot_store::NewOutbox;

/// How a message was handled; channels map it to exit codes, HTTP statuses, icons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Answered or done.
    Ok,
    /// Running as a background job; its result comes through the sink.
    Accepted(JobId),
    /// Waiting for 确认 / 取消.
    NeedsConfirmation,
    /// Refused by the permission policy.
    Denied,
    /// Not a valid command, or names something that does not exist.
    Invalid,
    /// Valid and allowed, but it failed (including a store or provider being down).
    Failed,
}

impl Status {
    pub fn is_success(self) -> bool {
        matches!(self, Status::Ok | Status::Accepted(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub text: String,
    /// The same answer with buttons (a confirmation's 确认 / 取消), for channels that
    /// show cards; its text form is `text`.
    pub card: Option<Card>,
}

impl Response {
    pub fn new(status: Status, text: impl Into<String>) -> Self {
        Response {
            status,
            text: text.into(),
            card: None,
        }
    }

    pub fn job(&self) -> Option<JobId> {
        match self.status {
            Status::Accepted(id) => Some(id),
            _ => None,
        }
    }
}

/// A message sent after the response: job progress or a job's final result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub job: JobId,
    pub text: String,
    pub progress: Option<u8>,
    /// Set on the job's last reply.
    pub finished: Option<JobState>,
}

impl Reply {
    pub fn progress(job: JobId, percent: u8, text: String) -> Self {
        Reply {
            job,
            text,
            progress: Some(percent),
            finished: None,
        }
    }

    pub fn finished(job: JobId, state: JobState, text: String) -> Self {
        Reply {
            job,
            text,
            progress: None,
            finished: Some(state),
        }
    }
}

/// Where a channel wants later replies delivered. Must not block.
pub trait ReplySink: Send + Sync {
    fn send(&self, reply: Reply);

    /// Outbox items that tell this sink's asker `text`: that job `job` was interrupted.
    /// They are stored with the job before it starts and go out only if it ends
    /// interrupted, whoever marks it so: also when the process running it died and this
    /// sink with it. Empty (the default) for askers who read the job's state instead
    /// (console, API, web) or are told through [`ReplySink::send`].
    fn interrupt_notice(&self, _job: JobId, _text: &str) -> Vec<NewOutbox> {
        Vec::new()
    }
}

impl ReplySink for tokio::sync::mpsc::UnboundedSender<Reply> {
    fn send(&self, reply: Reply) {
        // The channel went away (user disconnected): the job's result is still in the
        // store and the audit log.
        let _ = tokio::sync::mpsc::UnboundedSender::send(self, reply);
    }
}

/// A sink that drops replies, for callers that only want the immediate response.
#[derive(Debug, Default)]
pub struct Discard;

impl ReplySink for Discard {
    fn send(&self, _reply: Reply) {}
}

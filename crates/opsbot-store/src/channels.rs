//! State of the chat channels that outlives a request: the smart robot's passive
//! streams (WeCom refreshes them for up to six minutes, possibly through another opsbot
//! instance), and reply windows (a platform lets us answer a user only so many times
//! within so long of their last message: a WeChat Official Account 5 times in 48 hours).
//!
//! Every transition is one conditional write, so instances sharing a database never
//! both win: a stream is finished by its owner or handed over at its deadline, never
//! both; a window's last message is taken by exactly one sender.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A stream as opened for an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStream {
    /// `wecom-bot:<name>`.
    pub channel: String,
    /// Our id, sent with the first reply; WeCom's refreshes carry it back.
    pub stream_id: String,
    /// The platform's message id: a second stream for one message is refused.
    pub msg_id: String,
    /// Who asked (named in group answers).
    pub asker: String,
    pub chat: Option<String>,
    /// Where the answer goes once the stream has ended (single use, time-limited).
    pub response_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Being answered: refreshes get what there is so far.
    Open,
    /// Answered in full: refreshes get it and the stream ends.
    Done,
    /// Ended at its deadline before the answer was complete; the rest goes by
    /// `response_url`.
    HandedOver,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Open => "open",
            StreamState::Done => "done",
            StreamState::HandedOver => "handed_over",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => StreamState::Open,
            "done" => StreamState::Done,
            "handed_over" => StreamState::HandedOver,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub channel: String,
    pub stream_id: String,
    pub msg_id: String,
    pub asker: String,
    pub chat: Option<String>,
    pub response_url: Option<String>,
    /// The full text so far (WeCom shows each reply whole, not as a delta).
    pub content: String,
    pub state: StreamState,
    /// The job the message started, once known.
    pub job_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`ChannelStore::stream_open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOpened {
    /// A new stream: the message is to be run.
    New(StreamRecord),
    /// The message already has one (a retry or replay): it must not run again.
    Existing(StreamRecord),
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    // ---- smart-robot streams -----------------------------------------------------------

    /// Opens a stream for `stream.msg_id`, or returns the one it already has.
    async fn stream_open(&self, stream: &NewStream) -> Result<StreamOpened>;

    /// Opens the streams of several messages at once, as [`ChannelStore::stream_open`]
    /// does each, in one transaction where the backend allows (a burst of group messages
    /// is then one write). A message named twice is opened once; the second gets the
    /// first as `Existing`. An error means none may have been opened: open them one by
    /// one to find which.
    async fn stream_open_many(&self, streams: &[NewStream]) -> Result<Vec<StreamOpened>> {
        let mut opened = Vec::with_capacity(streams.len());
        for s in streams {
            opened.push(self.stream_open(s).await?);
        }
        Ok(opened)
    }

    async fn stream_get(&self, channel: &str, stream_id: &str) -> Result<Option<StreamRecord>>;

    /// Writes an open stream's text (and job); `done` ends it. `false` when the stream
    /// is not open any more (handed over, or unknown): the caller then delivers the rest
    /// another way.
    async fn stream_fill(
        &self,
        channel: &str,
        stream_id: &str,
        content: &str,
        job_id: Option<i64>,
        done: bool,
    ) -> Result<bool>;

    /// Ends an open stream at its deadline with `content`. `false` when it was not open
    /// (it was answered in full meanwhile).
    async fn stream_hand_over(&self, channel: &str, stream_id: &str, content: &str)
        -> Result<bool>;

    /// Forgets streams created before `before`; returns how many.
    async fn stream_purge(&self, before: DateTime<Utc>) -> Result<u64>;

    // ---- reply windows -----------------------------------------------------------------

    /// The user behind `target` wrote: a new window from now with nothing used. Returns
    /// how many replies the previous window could not take (to tell the user).
    async fn window_open(&self, channel: &str, target: &str) -> Result<u32>;

    /// Takes one reply from the window if it opened at or after `opened_after` and fewer
    /// than `limit` were taken. `false`: the window is closed or used up.
    async fn window_take(
        &self,
        channel: &str,
        target: &str,
        opened_after: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool>;

    /// Counts a reply that could not be delivered because the window was closed.
    async fn window_missed(&self, channel: &str, target: &str) -> Result<()>;
}

//! The alert desk: what the chat engine may ask of the alert gateway (`告警`, `确认:id`,
//! `静默:匹配,时长`, the firing count in `概况`, the dead letters). The engine calls it
//! after its own permission check and audits the answer; the gateway implements it over
//! the store, so the engine stays channel- and store-agnostic.

use async_trait::async_trait;

/// A failure the desk reports to the asker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    /// The request names nothing or is malformed (answered as invalid).
    #[error("{0}")]
    Invalid(String),
    /// The store or another service is down (answered as failed).
    #[error("{0}")]
    Unavailable(String),
}

/// One screen of a list: lines already formatted for a phone, and the total count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeskPage {
    pub total: u64,
    pub lines: Vec<String>,
}

#[async_trait]
pub trait AlertDesk: Send + Sync {
    /// Firing alerts, newest first: `limit` lines from `offset`.
    async fn firing(&self, offset: u64, limit: u64) -> Result<DeskPage, DeskError>;

    /// How many alerts are firing (for 概况).
    async fn firing_count(&self) -> Result<u64, DeskError>;

    /// Acknowledges alert `id` as `user` and tells its routes; returns the reply.
    async fn ack(&self, id: &str, user: &str) -> Result<String, DeskError>;

    /// Silences alerts matching `matcher` for `minutes`; returns the reply.
    async fn silence(&self, matcher: &str, minutes: u32, user: &str) -> Result<String, DeskError>;

    /// The latest messages that could not be delivered, newest first.
    async fn dead_letters(&self, limit: u64) -> Result<DeskPage, DeskError>;
}

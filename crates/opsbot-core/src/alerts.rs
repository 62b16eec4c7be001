//! The alert desk: what the chat engine may ask of the alert gateway (`告警`, `确认:id`,
//! `静默:匹配,时长`, the firing count in `概况`, the dead letters). The engine calls it
//! after its own permission check and audits the answer; the gateway implements it over
//! the store, so the engine stays channel- and store-agnostic. The desk answers with
//! data; `opsbot_engine::render::desk` words it.

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset};

/// Why a desk could not answer. `Display` is for logs; the engine words it for chat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    /// An alert id that is not a number (`确认:abc`), as typed.
    #[error("alert id {0:?} is not a number")]
    BadAlertId(String),
    /// No alert has this id.
    #[error("no alert #{0}")]
    NoSuchAlert(i64),
    /// A silence matcher that does not parse, with the matcher parser's reason.
    #[error("invalid matcher: {0}")]
    BadMatcher(String),
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

/// An alert as an acknowledgement names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRef {
    pub id: i64,
    pub name: String,
    /// Empty when the alert names no endpoint.
    pub endpoint: String,
}

/// What `确认:id` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acked {
    /// Acknowledged now; `told` names the routes that were told who acknowledged it.
    Now {
        alert: AlertRef,
        /// The alert had already resolved.
        recovered: bool,
        told: Vec<String>,
    },
    /// Someone acknowledged it earlier (times in the gateway's zone).
    Already {
        alert: AlertRef,
        by: Option<String>,
        at: Option<DateTime<FixedOffset>>,
    },
}

/// What a silence covers: one alert (`静默:#42,1d`) or a matcher as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Silenced {
    Alert { id: i64, name: String },
    Matching(String),
}

/// What `静默` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub what: Silenced,
    pub minutes: u32,
    /// When it ends, in the gateway's zone.
    pub until: DateTime<FixedOffset>,
    /// How many firing alerts it covers now.
    pub covered: usize,
}

#[async_trait]
pub trait AlertDesk: Send + Sync {
    /// Firing alerts, newest first: `limit` lines from `offset`.
    async fn firing(&self, offset: u64, limit: u64) -> Result<DeskPage, DeskError>;

    /// How many alerts are firing (for 概况).
    async fn firing_count(&self) -> Result<u64, DeskError>;

    /// Acknowledges alert `id` (as typed) as `user` and tells its routes.
    async fn ack(&self, id: &str, user: &str) -> Result<Acked, DeskError>;

    /// Silences alerts matching `matcher` for `minutes`.
    async fn silence(&self, matcher: &str, minutes: u32, user: &str) -> Result<Silence, DeskError>;

    /// The latest messages that could not be delivered, newest first.
    async fn dead_letters(&self, limit: u64) -> Result<DeskPage, DeskError>;
}

//! The alert desk: what the chat engine may ask of the alert gateway (`告警`, `确认:id`,
//! `静默:匹配,时长`, the firing count in `概况`, the dead letters). The engine calls it
//! after its own permission check and audits the answer; the gateway implements it over
//! the store, so the engine stays channel- and store-agnostic. The desk answers with
//! data; `opsbot_engine::render::desk` words it.

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset};

/// The most alerts one `确认` acknowledges (a group card's 确认 button names at most
/// these).
pub const MAX_ACK_IDS: usize = 100;

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

/// One screen of a list: its rows and the total count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskPage<T> {
    pub total: u64,
    pub rows: Vec<T>,
}

/// A firing alert as the 告警 list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiringAlert {
    pub id: i64,
    pub name: String,
    /// As the source sent it (`critical`, `P2`, …); may be empty.
    pub severity: String,
    /// Empty when the alert names no endpoint.
    pub endpoint: String,
    /// When it started, in the gateway's zone.
    pub since: DateTime<FixedOffset>,
    /// Who acknowledged it, if anyone has.
    pub acked_by: Option<String>,
    /// The payload could not be parsed (the alert was stored from what could be read).
    pub unparsed: bool,
}

/// Who an undeliverable message was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    User(String),
    Chat(String),
    /// Users, departments and tags of one message.
    Members {
        users: Vec<String>,
        parties: Vec<String>,
        tags: Vec<String>,
    },
    Robot,
    /// The stored target could not be read.
    Unknown,
}

/// A message that could not be delivered (告警:死信).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: i64,
    /// When it was given up on, in the gateway's zone.
    pub at: DateTime<FixedOffset>,
    /// The application it was sent through (the outbox channel without its platform).
    pub app: String,
    pub to: Recipient,
    /// The last delivery error, as the platform said it.
    pub error: String,
}

/// 🔴 critical-ish, 🟠 warning-ish, 🔵 otherwise: one mark for a severity, shared by the
/// gateway's notifications and the engine's alert list.
pub fn severity_icon(severity: &str) -> &'static str {
    let s = severity.to_ascii_lowercase();
    if matches!(
        s.as_str(),
        "p0" | "p1" | "critical" | "disaster" | "high" | "emergency" | "fatal"
    ) {
        "🔴"
    } else if matches!(
        s.as_str(),
        "p2" | "p3" | "warning" | "average" | "major" | "error"
    ) {
        "🟠"
    } else {
        "🔵"
    }
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
    /// Firing alerts, newest first: `limit` rows from `offset`.
    async fn firing(&self, offset: u64, limit: u64) -> Result<DeskPage<FiringAlert>, DeskError>;

    /// How many alerts are firing (for 概况).
    async fn firing_count(&self) -> Result<u64, DeskError>;

    /// Acknowledges alert `id` (as typed) as `user` and tells its routes.
    async fn ack(&self, id: &str, user: &str) -> Result<Acked, DeskError>;

    /// Acknowledges several alerts at once (`确认:42,43`, the 确认 button of a group's
    /// card): one answer per id, in order. A desk that can tells each route once for
    /// all of them; by default this is [`AlertDesk::ack`] for each.
    async fn ack_all(&self, ids: &[String], user: &str) -> Vec<Result<Acked, DeskError>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.ack(id, user).await);
        }
        out
    }

    /// Silences alerts matching `matcher` for `minutes`.
    async fn silence(&self, matcher: &str, minutes: u32, user: &str) -> Result<Silence, DeskError>;

    /// The latest messages that could not be delivered, newest first.
    async fn dead_letters(&self, limit: u64) -> Result<DeskPage<DeadLetter>, DeskError>;
}

//! Per-user conversation state (menu position, pending confirmation, list paging),
//! kept in the session store with a TTL that restarts on every message.

use crate::menu::Frame;
use opsbot_store::{SessionStore, StoreError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The menu stack, root first; `None` when no menu is open. A stack stored by
    /// another version reads as empty, which the menu answers by starting over.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::menu::lenient_stack"
    )]
    pub menu: Option<Vec<Frame>>,
    /// A destructive command waiting for 确认 / 取消.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// The last paged list, for 下一页.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
    /// How the last confirmation ended, so a 确认 after it says what really happened
    /// (while the session lives, nothing in it can have timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<Settled>,
    /// The menu was closed with 退出 (or 返回 at its top).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub menu_exited: bool,
    /// A command several subsystems claimed, waiting for the asker to pick one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<Choice>,
}

/// What became of a pending confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settled {
    /// The pending command's summary.
    pub summary: String,
    pub how: Settlement,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Settlement {
    /// Another command came first; `by` is its name.
    Dropped {
        by: String,
    },
    Cancelled,
    Confirmed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The command text to run once confirmed.
    pub text: String,
    pub summary: String,
    /// The subsystem the asker chose for it, when several claimed the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<usize>,
}

/// A question the engine asked: which subsystem's object a command meant (扩容:web is
/// a deploy project and a Kubernetes workload). The answer is the option's number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The command as typed (canonical text), run again with the chosen route.
    pub text: String,
    /// Per option (numbered from 1): the registry place of the set and what it names.
    pub options: Vec<(usize, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paging {
    /// The list command without the page number, with its other arguments: filters
    /// (`虚拟机:关机,集群=Cluster-Prod`) or a search's keyword (`查:10.10`).
    pub command: String,
    pub page: u32,
    /// `page` was the last one.
    #[serde(default)]
    pub last: bool,
}

impl Paging {
    /// The command that shows page `page`: the number after the filters, if any.
    pub fn text(&self, page: u32) -> String {
        let sep = if self.command.contains(':') { ',' } else { ':' };
        format!("{}{sep}{page}", self.command)
    }
}

impl Session {
    pub fn is_empty(&self) -> bool {
        self.menu.is_none()
            && self.pending.is_none()
            && self.paging.is_none()
            && self.settled.is_none()
            && !self.menu_exited
            && self.choice.is_none()
    }
}

/// The key of one user's conversation in one chat of one channel.
pub fn key(channel: &str, chat: Option<&str>, user: &str) -> String {
    format!("{channel}|{}|{user}", chat.unwrap_or("-"))
}

pub async fn load(store: &dyn SessionStore, key: &str) -> Result<Session, StoreError> {
    match store.get(key).await? {
        // A session written by another version that no longer parses is dropped,
        // not fatal: the user just starts over.
        Some(json) => Ok(serde_json::from_str(&json).unwrap_or_default()),
        None => Ok(Session::default()),
    }
}

pub async fn save(
    store: &dyn SessionStore,
    key: &str,
    session: &Session,
    ttl: Duration,
) -> Result<(), StoreError> {
    if session.is_empty() {
        return store.remove(key).await;
    }
    let json = serde_json::to_string(session).expect("session serialises");
    store.put(key, &json, ttl).await
}

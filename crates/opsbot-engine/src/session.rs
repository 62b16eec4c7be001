//! Per-user conversation state (menu position, pending confirmation, list paging),
//! kept in the session store with a TTL that restarts on every message.

use crate::menu::MenuNode;
use opsbot_store::{SessionStore, StoreError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The menu stack, root first; `None` when no menu is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu: Option<Vec<MenuNode>>,
    /// A destructive command waiting for 确认 / 取消.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// The last paged list, for 下一页.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The command text to run once confirmed.
    pub text: String,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paging {
    /// The list command, without a page number.
    pub command: String,
    pub page: u32,
}

impl Session {
    pub fn is_empty(&self) -> bool {
        self.menu.is_none() && self.pending.is_none() && self.paging.is_none()
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

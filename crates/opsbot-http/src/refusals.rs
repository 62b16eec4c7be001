//! The audit trail of calls refused before anyone was identified (no or a bad token,
//! an expired session, too many password attempts), kept without letting an anonymous
//! client grow the store at will.
//!
//! Per client address and surface, the first refusal of a window (a minute) is written at
//! once; the rest are only counted, and one row per address says how many there were
//! when the window closes. At most [`MAX_ADDRESSES`] addresses get rows of their own per
//! window; refusals from further addresses are one shared count. Every text a client
//! chose (path, method, user name) is cut to [`MAX_TEXT_CHARS`]. So whatever anonymous
//! clients send, the audit log grows by at most `2 × MAX_ADDRESSES + 1` short rows a
//! minute. Refusals of an identified caller (wrong CSRF token, rate limit) are audited
//! one by one, as before: they are someone's.
//!
//! Counts live in memory until the window closes; a stop loses at most the last
//! window's counts, never a first row.

use opsbot_core::{AuditEntry, AuditResult};
use opsbot_store::AuditStore;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long one window lasts.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses with rows of their own per window.
pub const MAX_ADDRESSES: usize = 32;
/// The longest client-chosen text an audit row keeps.
pub const MAX_TEXT_CHARS: usize = 256;

/// `text` cut to at most `max` characters, saying how much was cut.
pub fn cap(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => {
            let cut = text[end..].chars().count();
            format!("{}…(+{cut} chars)", &text[..end])
        }
    }
}

/// What is counted for one address in the current window.
#[derive(Debug, Default)]
struct Tally {
    /// Refusals after the first (which has its row).
    more: u64,
    last_text: String,
    last_message: String,
}

#[derive(Debug, Default)]
struct Window {
    /// By surface (`api`, `web`) and address.
    by_addr: HashMap<(&'static str, IpAddr), Tally>,
    /// Refusals from addresses beyond [`MAX_ADDRESSES`].
    crowd: u64,
    opened: Option<chrono::DateTime<chrono::Utc>>,
}

/// The refusal log of one process (see the module documentation).
pub struct Refusals {
    store: Arc<dyn AuditStore>,
    window: Mutex<Window>,
}

impl std::fmt::Debug for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refusals").finish_non_exhaustive()
    }
}

impl Refusals {
    /// The log, with a task that closes a window every [`WINDOW`] (it ends when the log
    /// is dropped). Must be called inside the tokio runtime.
    pub fn start(store: Arc<dyn AuditStore>) -> Arc<Refusals> {
        let log = Arc::new(Refusals {
            store,
            window: Mutex::new(Window::default()),
        });
        let weak: Weak<Refusals> = Arc::downgrade(&log);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WINDOW);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(log) = weak.upgrade() else { break };
                log.flush().await;
            }
        });
        log
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // A panic while holding the lock leaves only counters behind: keep going.
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One refused call from `ip` on `surface` (`api`, `web`): `text` what was asked
    /// (client-chosen, capped here), `message` why it was refused.
    pub async fn record(&self, surface: &'static str, ip: IpAddr, text: &str, message: &str) {
        let text = cap(text, MAX_TEXT_CHARS);
        let message = cap(message, MAX_TEXT_CHARS * 2);
        {
            let mut w = self.lock();
            w.opened.get_or_insert_with(chrono::Utc::now);
            if let Some(t) = w.by_addr.get_mut(&(surface, ip)) {
                t.more += 1;
                t.last_text = text;
                t.last_message = message;
                return;
            }
            if w.by_addr.len() >= MAX_ADDRESSES {
                w.crowd += 1;
                return;
            }
            w.by_addr.insert((surface, ip), Tally::default());
        }
        self.write(surface, &who(ip), text, message).await;
    }

    /// Closes the current window: one row per address with refusals beyond its first,
    /// one for the addresses beyond the cap. Runs every [`WINDOW`]; tests call it.
    pub async fn flush(&self) {
        let closed = std::mem::take(&mut *self.lock());
        let since = closed
            .opened
            .map(|t| t.format("%H:%M:%S UTC").to_string())
            .unwrap_or_default();
        for ((surface, ip), t) in closed.by_addr {
            if t.more == 0 {
                continue;
            }
            let message = format!(
                "{} more refused calls from {ip} since {since} (last: {})",
                t.more, t.last_message
            );
            self.write(surface, &who(ip), t.last_text, message).await;
        }
        if closed.crowd > 0 {
            let message = format!(
                "{} refused calls since {since} from addresses beyond the first {MAX_ADDRESSES}",
                closed.crowd
            );
            self.write(
                "api",
                "(unauthenticated, many addresses)",
                String::new(),
                message,
            )
            .await;
        }
    }

    async fn write(&self, surface: &str, user: &str, text: String, message: String) {
        let entry = AuditEntry {
            id: 0,
            at: chrono::Utc::now(),
            user: user.to_string(),
            channel: surface.to_string(),
            chat: None,
            text,
            command: None,
            result: AuditResult::Denied,
            message,
            duration_ms: 0,
            job_id: None,
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(error = %e, "audit entry of a refused call lost");
        }
    }
}

fn who(ip: IpAddr) -> String {
    format!("(unauthenticated {ip})")
}

#[cfg(test)]
mod tests {
    use super::cap;

    #[test]
    fn cap_cuts_on_characters_and_says_how_much() {
        assert_eq!(cap("short", 10), "short");
        assert_eq!(cap("abcdef", 6), "abcdef");
        assert_eq!(cap("abcdefgh", 6), "abcdef…(+2 chars)");
        assert_eq!(cap("告警告警告警", 2), "告警…(+4 chars)");
    }
}

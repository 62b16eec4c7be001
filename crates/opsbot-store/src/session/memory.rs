//! Sessions in process memory: a map with an expiry instant per entry. Expired
//! entries are invisible at once and purged lazily.

use crate::{Result, SessionStore};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Purge all expired entries once every this many writes, so abandoned sessions do
/// not pile up without making every write scan the map.
const PURGE_EVERY: u32 = 256;

#[derive(Debug, Default)]
pub struct MemorySessions {
    entries: Mutex<HashMap<String, (String, Instant)>>,
    writes: AtomicU32,
}

impl MemorySessions {
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        // A panic while holding the lock cannot leave the map half-updated (every
        // operation is a single insert/remove), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut entries = self.entries();
        match entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Ok(Some(value.clone())),
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let now = Instant::now();
        let mut entries = self.entries();
        if self.writes.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        entries.insert(key.to_string(), (value.to_string(), now + ttl));
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.entries().remove(key);
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

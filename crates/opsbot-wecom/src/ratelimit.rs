//! A small async sliding-window rate limiter keyed by recipient or robot.
//!
//! WeCom silently drops app messages beyond 30 per minute to one member, and rejects
//! robot messages beyond 20 per minute with a minute-long block. Neither is recoverable
//! after the fact, so we wait *before* sending. A sliding window guarantees the limit in
//! every window, hence also in WeCom's (possibly calendar-aligned) minutes.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;

/// Sweep idle keys after this many acquisitions, bounding memory for many recipients.
const SWEEP_EVERY: u64 = 1024;

/// At most `limit` acquisitions per key within any `window`.
pub struct SlidingWindowLimiter<K> {
    limit: usize,
    window: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<LimiterState<K>>,
}

struct LimiterState<K> {
    keys: HashMap<K, KeyState>,
    acquisitions: u64,
}

#[derive(Default)]
struct KeyState {
    /// Acquisition times, oldest first.
    hits: VecDeque<Duration>,
    /// Set after the server reported a limit breach; nothing passes before it.
    blocked_until: Option<Duration>,
}

impl<K> fmt::Debug for SlidingWindowLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingWindowLimiter")
            .field("limit", &self.limit)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone> SlidingWindowLimiter<K> {
    /// A limiter allowing `limit` (at least 1) acquisitions per key per `window`.
    pub fn new(limit: usize, window: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            limit: limit.max(1),
            window,
            clock,
            state: Mutex::new(LimiterState {
                keys: HashMap::new(),
                acquisitions: 0,
            }),
        }
    }

    /// Wait until `key` may be used, then count one use.
    pub async fn acquire(&self, key: K) {
        self.acquire_all(std::slice::from_ref(&key)).await;
    }

    /// Wait until every key in `keys` may be used, then count one use for each, all at
    /// once: reserving keys one by one could hold some while waiting for others.
    pub async fn acquire_all(&self, keys: &[K]) {
        loop {
            let wait = self.try_acquire_all(keys);
            if wait.is_zero() {
                return;
            }
            tracing::debug!(wait_ms = wait.as_millis() as u64, "rate limit: waiting");
            self.clock.sleep(wait).await;
        }
    }

    /// Block `key` for `duration` from now, e.g. after WeCom answered 45009.
    pub fn penalize(&self, key: K, duration: Duration) {
        let until = self.clock.now() + duration;
        let mut state = self.lock();
        let entry = state.keys.entry(key).or_default();
        entry.blocked_until = Some(entry.blocked_until.map_or(until, |old| old.max(until)));
    }

    /// Without waiting: zero if every key was acquired (counted once each), else how
    /// long to wait before trying again (nothing counted).
    pub fn try_acquire_all(&self, keys: &[K]) -> Duration {
        let now = self.clock.now();
        let mut state = self.lock();
        let mut wait = Duration::ZERO;
        for key in keys {
            let Some(entry) = state.keys.get_mut(key) else {
                continue;
            };
            expire(entry, now, self.window);
            if let Some(until) = entry.blocked_until {
                wait = wait.max(until.saturating_sub(now));
            }
            if entry.hits.len() >= self.limit {
                let oldest_needed = entry.hits[entry.hits.len() - self.limit];
                wait = wait.max((oldest_needed + self.window).saturating_sub(now));
            }
        }
        if !wait.is_zero() {
            return wait;
        }
        for key in keys {
            state
                .keys
                .entry(key.clone())
                .or_default()
                .hits
                .push_back(now);
        }
        state.acquisitions += 1;
        if state.acquisitions.is_multiple_of(SWEEP_EVERY) {
            let window = self.window;
            state.keys.retain(|_, entry| {
                expire(entry, now, window);
                !entry.hits.is_empty() || entry.blocked_until.is_some()
            });
        }
        Duration::ZERO
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState<K>> {
        // The state stays consistent even if a holder panicked mid-update: at worst one
        // hit is missing.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn expire(entry: &mut KeyState, now: Duration, window: Duration) {
    while entry
        .hits
        .front()
        .is_some_and(|&hit| now.saturating_sub(hit) >= window)
    {
        entry.hits.pop_front();
    }
    if entry.blocked_until.is_some_and(|until| until <= now) {
        entry.blocked_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn waits_for_the_window_to_slide() {
        let clock = Arc::new(ManualClock::new());
        let limiter = SlidingWindowLimiter::new(3, Duration::from_secs(60), clock.clone());
        for _ in 0..3 {
            limiter.acquire("a").await;
        }
        limiter.acquire("b").await;
        assert_eq!(clock.total_slept(), Duration::ZERO);
        limiter.acquire("a").await;
        assert_eq!(clock.total_slept(), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn acquire_all_is_atomic_and_penalize_blocks() {
        let clock = Arc::new(ManualClock::new());
        let limiter = SlidingWindowLimiter::new(1, Duration::from_secs(10), clock.clone());
        limiter.acquire("a").await;
        clock.advance(Duration::from_secs(5));
        limiter.acquire_all(&["a", "b"]).await;
        assert_eq!(clock.total_slept(), Duration::from_secs(5));
        limiter.penalize("c", Duration::from_secs(60));
        limiter.acquire("c").await;
        assert_eq!(clock.total_slept(), Duration::from_secs(65));
    }
}

//! A small async sliding-window rate limiter keyed by recipient or robot.
//!
//! WeCom silently drops app messages beyond 30 per minute to one member, and rejects
//! robot messages beyond 20 per minute with a minute-long block. Neither is recoverable
//! after the fact, so we wait *before* sending. A sliding window guarantees the limit in
//! every window, hence also in WeCom's (possibly calendar-aligned) minutes.
//!
//! The windows are kept by an [`opsbot_core::RateWindows`]: this process's memory
//! ([`LocalWindows`], the default) or a store every instance shares (Redis, in
//! `opsbot-store`), so N instances together stay within WeCom's limits. When the shared
//! store cannot be asked, a send waits and asks again: going ahead could exceed the
//! limit, and WeCom would drop the excess without a word, while waiting only delays it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use opsbot_core::{RateError, RateWindows};

use crate::clock::Clock;

/// Sweep idle keys after this many acquisitions, bounding memory for many recipients.
const SWEEP_EVERY: u64 = 1024;
/// While the shared windows cannot be asked, ask again this often.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);
/// At most one warning about unavailable windows per limiter this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// At most `limit` acquisitions per key within any `window`.
pub struct SlidingWindowLimiter<K> {
    limit: u32,
    window: Duration,
    clock: Arc<dyn Clock>,
    windows: Arc<dyn RateWindows>,
    /// Keeps this limiter's keys apart from other limiters' in shared windows.
    scope: String,
    /// Clock reading (ms) of the last warning about unavailable windows, plus one.
    warned: AtomicU64,
    keys: PhantomData<fn(&K)>,
}

impl<K> fmt::Debug for SlidingWindowLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingWindowLimiter")
            .field("limit", &self.limit)
            .field("window", &self.window)
            .field("scope", &self.scope)
            .field("backend", &self.windows.backend())
            .finish_non_exhaustive()
    }
}

impl<K: fmt::Display> SlidingWindowLimiter<K> {
    /// A limiter allowing `limit` (at least 1) acquisitions per key per `window`, kept in
    /// this process's memory.
    pub fn new(limit: usize, window: Duration, clock: Arc<dyn Clock>) -> Self {
        let windows = Arc::new(LocalWindows::new(clock.clone()));
        Self::with_windows(limit, window, clock, windows, "local")
    }

    /// The same limit kept in `windows`, shared with every limiter of the same `scope`
    /// (e.g. `wecom:member`) on the same backend, whichever process holds it.
    pub fn with_windows(
        limit: usize,
        window: Duration,
        clock: Arc<dyn Clock>,
        windows: Arc<dyn RateWindows>,
        scope: &str,
    ) -> Self {
        Self {
            limit: u32::try_from(limit.max(1)).unwrap_or(u32::MAX),
            window,
            clock,
            windows,
            scope: scope.to_string(),
            warned: AtomicU64::new(0),
            keys: PhantomData,
        }
    }

    /// Wait until `key` may be used, then count one use.
    pub async fn acquire(&self, key: K) {
        self.acquire_all(std::slice::from_ref(&key)).await;
    }

    /// Wait until every key in `keys` may be used, then count one use for each, all at
    /// once: reserving keys one by one could hold some while waiting for others.
    pub async fn acquire_all(&self, keys: &[K]) {
        // Without a bound the only outcome is success.
        let _ = self.acquire_all_within(keys, None).await;
    }

    /// As [`Self::acquire_all`], but gives up as soon as the next wait would take the
    /// total past `max` (`None`: never), returning that wait (nothing counted).
    pub async fn acquire_all_within(
        &self,
        keys: &[K],
        max: Option<Duration>,
    ) -> Result<(), Duration> {
        let mut waited = Duration::ZERO;
        loop {
            let wait = self.try_acquire_all(keys).await;
            if wait.is_zero() {
                return Ok(());
            }
            if max.is_some_and(|max| waited + wait > max) {
                return Err(wait);
            }
            tracing::debug!(wait_ms = wait.as_millis() as u64, "rate limit: waiting");
            self.clock.sleep(wait).await;
            waited += wait;
        }
    }

    /// Block `key` for `duration` from now, e.g. after WeCom answered 45009. If the
    /// shared windows cannot be told, the penalty is lost (logged): WeCom will answer
    /// 45009 again and the next penalty will hold.
    pub async fn penalize(&self, key: K, duration: Duration) {
        if let Err(e) = self.windows.penalize(&self.key(&key), duration).await {
            tracing::warn!(scope = %self.scope, error = %e, "could not record a rate-limit penalty");
        }
    }

    /// Without waiting: zero if every key was acquired (counted once each), else how
    /// long to wait before trying again (nothing counted). Windows that cannot be asked
    /// give a short wait, never a grant.
    pub async fn try_acquire_all(&self, keys: &[K]) -> Duration {
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match self
            .windows
            .try_acquire(&keys, self.limit, self.window)
            .await
        {
            Ok(wait) => wait,
            Err(e) => {
                self.warn_unavailable(&e);
                UNAVAILABLE_RETRY
            }
        }
    }

    fn key(&self, key: &K) -> String {
        format!("{}:{key}", self.scope)
    }

    fn warn_unavailable(&self, e: &RateError) {
        let now = self.clock.now().as_millis() as u64 + 1;
        let last = self.warned.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(scope = %self.scope, backend = self.windows.backend(), error = %e,
                "shared rate limits unavailable: sends wait until they can be counted");
        }
    }
}

/// Rate windows in this process's memory, on `clock`: what one instance alone needs.
pub struct LocalWindows {
    clock: Arc<dyn Clock>,
    state: Mutex<LocalState>,
}

struct LocalState {
    keys: HashMap<String, KeyState>,
    acquisitions: u64,
}

#[derive(Default)]
struct KeyState {
    /// Acquisition times, oldest first.
    hits: VecDeque<Duration>,
    /// Set after the server reported a limit breach; nothing passes before it.
    blocked_until: Option<Duration>,
}

impl fmt::Debug for LocalWindows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalWindows").finish_non_exhaustive()
    }
}

impl LocalWindows {
    /// Empty windows reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            state: Mutex::new(LocalState {
                keys: HashMap::new(),
                acquisitions: 0,
            }),
        }
    }

    fn acquire_now(&self, keys: &[String], limit: u32, window: Duration) -> Duration {
        let limit = limit.max(1) as usize;
        let now = self.clock.now();
        let mut state = self.lock();
        let mut wait = Duration::ZERO;
        for key in keys {
            let Some(entry) = state.keys.get_mut(key) else {
                continue;
            };
            expire(entry, now, window);
            if let Some(until) = entry.blocked_until {
                wait = wait.max(until.saturating_sub(now));
            }
            if entry.hits.len() >= limit {
                let oldest_needed = entry.hits[entry.hits.len() - limit];
                wait = wait.max((oldest_needed + window).saturating_sub(now));
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
            state.keys.retain(|_, entry| {
                expire(entry, now, window);
                !entry.hits.is_empty() || entry.blocked_until.is_some()
            });
        }
        Duration::ZERO
    }

    fn penalize_now(&self, key: &str, duration: Duration) {
        let until = self.clock.now() + duration;
        let mut state = self.lock();
        let entry = state.keys.entry(key.to_string()).or_default();
        entry.blocked_until = Some(entry.blocked_until.map_or(until, |old| old.max(until)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LocalState> {
        // The state stays consistent even if a holder panicked mid-update: at worst one
        // hit is missing.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl RateWindows for LocalWindows {
    async fn try_acquire(
        &self,
        keys: &[String],
        limit: u32,
        window: Duration,
    ) -> Result<Duration, RateError> {
        Ok(self.acquire_now(keys, limit, window))
    }

    async fn penalize(&self, key: &str, duration: Duration) -> Result<(), RateError> {
        self.penalize_now(key, duration);
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
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
        limiter.penalize("c", Duration::from_secs(60)).await;
        limiter.acquire("c").await;
        assert_eq!(clock.total_slept(), Duration::from_secs(65));
    }

    #[tokio::test]
    async fn limiters_on_one_backend_share_a_scope_and_not_another() {
        let clock = Arc::new(ManualClock::new());
        let windows: Arc<dyn RateWindows> = Arc::new(LocalWindows::new(clock.clone()));
        let window = Duration::from_secs(60);
        let one =
            SlidingWindowLimiter::with_windows(2, window, clock.clone(), windows.clone(), "m");
        let two =
            SlidingWindowLimiter::with_windows(2, window, clock.clone(), windows.clone(), "m");
        let other = SlidingWindowLimiter::with_windows(2, window, clock.clone(), windows, "r");
        assert!(one.try_acquire_all(&["u"]).await.is_zero());
        assert!(two.try_acquire_all(&["u"]).await.is_zero());
        assert_eq!(one.try_acquire_all(&["u"]).await, window);
        assert!(other.try_acquire_all(&["u"]).await.is_zero());
        assert_eq!(
            two.acquire_all_within(&["u"], Some(Duration::from_secs(1)))
                .await,
            Err(window)
        );
        assert_eq!(clock.total_slept(), Duration::ZERO);
    }

    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl RateWindows for Down {
        async fn try_acquire(
            &self,
            _: &[String],
            _: u32,
            _: Duration,
        ) -> Result<Duration, RateError> {
            Err(RateError::Unavailable("connection refused".into()))
        }
        async fn penalize(&self, _: &str, _: Duration) -> Result<(), RateError> {
            Err(RateError::Unavailable("connection refused".into()))
        }
        fn backend(&self) -> &'static str {
            "down"
        }
    }

    #[tokio::test]
    async fn unavailable_windows_make_sends_wait_never_pass() {
        let clock = Arc::new(ManualClock::new());
        let limiter = SlidingWindowLimiter::with_windows(
            30,
            Duration::from_secs(60),
            clock.clone(),
            Arc::new(Down),
            "m",
        );
        assert_eq!(limiter.try_acquire_all(&["u"]).await, UNAVAILABLE_RETRY);
        assert_eq!(
            limiter
                .acquire_all_within(&["u"], Some(Duration::from_secs(3)))
                .await,
            Err(UNAVAILABLE_RETRY)
        );
        assert_eq!(clock.total_slept(), Duration::from_secs(3));
    }
}

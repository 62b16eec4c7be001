//! A per-key request budget (`per_minute` with a `burst`): governor in this process, or,
//! when several instances run behind one load balancer, windows they all share
//! ([`opsbot_core::RateWindows`], Redis), so a caller's budget is not multiplied by the
//! number of instances.
//!
//! Shared, the budget is a sliding window of `burst` requests per `burst` emission
//! intervals (60 s / `per_minute` each): never more than `burst` at once and never more
//! than `per_minute` in any minute, as governor's quota means. When the shared windows
//! cannot be asked, the request is checked against this process's governor instead
//! (with a warning): a Redis outage must not take the API down, and the budget then
//! still holds per instance.

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use opsbot_core::RateWindows;
use std::fmt::Display;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most one warning about unavailable shared windows per budget this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

pub struct Budget<K: Hash + Eq + Clone> {
    local: DefaultKeyedRateLimiter<K>,
    per_minute: NonZeroU32,
    burst: NonZeroU32,
    shared: Option<Shared>,
}

struct Shared {
    windows: Arc<dyn RateWindows>,
    /// Keeps this budget's keys apart from other limits' in the shared windows.
    scope: &'static str,
    started: Instant,
    /// Milliseconds since `started` of the last warning, plus one (0: never).
    warned: AtomicU64,
}

impl<K: Hash + Eq + Clone + Display> Budget<K> {
    /// `per_minute` requests a minute per key, `burst` of them at once.
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        Budget {
            local: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            per_minute,
            burst,
            shared: None,
        }
    }

    /// Counts in `windows` from now on, under `scope` (e.g. `api`).
    pub fn share(&mut self, windows: Arc<dyn RateWindows>, scope: &'static str) {
        self.shared = Some(Shared {
            windows,
            scope,
            started: Instant::now(),
            warned: AtomicU64::new(0),
        });
    }

    /// Spends one request of `key`'s budget, or says how long until one is free.
    pub async fn check(&self, key: &K) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            let limit = self.burst.get();
            // `burst` emission intervals of 60 s / per_minute.
            let window = Duration::from_secs(60) * limit / self.per_minute.get();
            let keys = [format!("{}:{key}", shared.scope)];
            match shared.windows.try_acquire(&keys, limit, window).await {
                Ok(wait) if wait.is_zero() => return Ok(()),
                Ok(wait) => return Err(wait),
                Err(e) => shared.warn(&e),
            }
        }
        self.local
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

impl Shared {
    fn warn(&self, e: &opsbot_core::RateError) {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.warned.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(scope = self.scope, backend = self.windows.backend(), error = %e,
                "shared rate limits unavailable: checking this instance's own budget instead");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use opsbot_core::RateError;
    use std::sync::Mutex;

    /// Windows that count like Redis would, or are down.
    #[derive(Debug, Default)]
    struct Counting {
        hits: Mutex<Vec<(String, u32, Duration)>>,
        down: bool,
    }

    #[async_trait]
    impl RateWindows for Counting {
        async fn try_acquire(
            &self,
            keys: &[String],
            limit: u32,
            window: Duration,
        ) -> Result<Duration, RateError> {
            if self.down {
                return Err(RateError::Unavailable("connection refused".into()));
            }
            let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
            let used = hits.iter().filter(|(k, _, _)| *k == keys[0]).count() as u32;
            if used >= limit {
                return Ok(window);
            }
            hits.push((keys[0].clone(), limit, window));
            Ok(Duration::ZERO)
        }
        async fn penalize(&self, _: &str, _: Duration) -> Result<(), RateError> {
            Ok(())
        }
        fn backend(&self) -> &'static str {
            "test"
        }
    }

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
    }

    #[tokio::test]
    async fn shared_budget_is_burst_per_burst_intervals() {
        let windows = Arc::new(Counting::default());
        let mut budget: Budget<String> = Budget::new(n(600), n(60));
        budget.share(windows.clone(), "api");
        for _ in 0..60 {
            assert_eq!(budget.check(&"token:1".to_string()).await, Ok(()));
        }
        assert_eq!(
            budget.check(&"token:1".to_string()).await,
            Err(Duration::from_secs(6))
        );
        let hits = windows.hits.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(hits[0], ("api:token:1".into(), 60, Duration::from_secs(6)));
    }

    #[tokio::test]
    async fn unavailable_shared_windows_fall_back_to_the_local_budget() {
        let mut budget: Budget<String> = Budget::new(n(1), n(2));
        budget.share(
            Arc::new(Counting {
                down: true,
                ..Counting::default()
            }),
            "api",
        );
        let key = "web:admin".to_string();
        assert_eq!(budget.check(&key).await, Ok(()));
        assert_eq!(budget.check(&key).await, Ok(()));
        assert!(budget.check(&key).await.is_err());
    }
}

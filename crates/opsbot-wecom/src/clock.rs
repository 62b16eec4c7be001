//! Time source for token expiry and rate limiting.
//!
//! WeCom's limits are measured in minutes and tokens live two hours; tests cannot wait
//! that long. Everything time-dependent in this crate reads a [`Clock`], and tests pass a
//! [`ManualClock`] whose `sleep` jumps forward instead of waiting. The fake server can
//! share the same `ManualClock`, so a client that "waits 60 s" is seen by the server to
//! have waited 60 s.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A boxed `Send` future, the return type of [`Clock::sleep`].
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A monotonic time source that can also wait.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Time elapsed since this clock's own origin. Only differences are meaningful.
    fn now(&self) -> Duration;
    /// Wait for `duration` as measured by this clock.
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

/// The real clock: `std::time::Instant` for reading, `tokio::time::sleep` for waiting.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that only moves when told to; `sleep` advances it instantly.
///
/// Concurrent sleepers each advance it, so two tasks that both "wait 60 s" move it by
/// 120 s. That over-estimates elapsed time, which is the safe direction for rate limits.
#[derive(Debug, Default)]
pub struct ManualClock {
    inner: Mutex<ManualState>,
}

#[derive(Debug, Default)]
struct ManualState {
    now: Duration,
    slept: Duration,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.now += by;
    }

    /// Total time spent in `sleep` (not counting `advance`), to assert back-off.
    pub fn total_slept(&self) -> Duration {
        self.lock().slept
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A panic while holding this lock cannot leave the two Durations inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.lock().now
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        {
            let mut state = self.lock();
            state.now += duration;
            state.slept += duration;
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_sleep_advances_instantly() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(5));
        clock.sleep(Duration::from_secs(60)).await;
        assert_eq!(clock.now(), Duration::from_secs(65));
        assert_eq!(clock.total_slept(), Duration::from_secs(60));
    }
}

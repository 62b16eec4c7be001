//! Acknowledge first, work after. The store and engine work a message starts waits until
//! no callback has arrived for a moment (at most a bounded time, so a steady stream of
//! callbacks cannot starve it): in a burst of group messages the acknowledgements then
//! get the CPU before the hundred engines they started. Nobody sees the delay: WeCom
//! shows the answer at its next refresh of the stream, well after it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Quiet {
    origin: Instant,
    /// When the latest callback arrived, in µs since `origin`.
    last: AtomicU64,
    /// How long without callbacks counts as quiet.
    pause: Duration,
    /// The longest the work waits for quiet.
    at_most: Duration,
}

impl Quiet {
    pub(crate) fn new(pause: Duration, at_most: Duration) -> Self {
        Quiet {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            pause,
            at_most,
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// A callback arrived.
    pub(crate) fn arrived(&self) {
        self.last.fetch_max(self.now(), Ordering::Relaxed);
    }

    /// Returns once no callback arrived for `pause`, or after `at_most`.
    pub(crate) async fn settled(&self) {
        let give_up = tokio::time::Instant::now() + self.at_most;
        let pause = u64::try_from(self.pause.as_micros()).unwrap_or(u64::MAX);
        loop {
            let since = self.now().saturating_sub(self.last.load(Ordering::Relaxed));
            if since >= pause {
                return;
            }
            let wait = tokio::time::Instant::now() + Duration::from_micros(pause - since);
            if wait >= give_up {
                tokio::time::sleep_until(give_up).await;
                return;
            }
            tokio::time::sleep_until(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn quiet_at_once_when_nothing_arrived_and_bounded_otherwise() {
        let q = Quiet::new(Duration::from_millis(2), Duration::from_millis(20));
        q.settled().await;
        q.arrived();
        // Arrivals keep coming: the wait still ends by `at_most`.
        let keep_busy = async {
            loop {
                q.arrived();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::select! {
            _ = q.settled() => {}
            _ = keep_busy => unreachable!(),
        }
    }
}

//! Where the engine's later replies (job progress and results) for one WeCom asker go:
//! into the outbox, in order, with progress thinned out so a busy job does not run into
//! WeCom's silent per-member limit.

use super::outbox::{enqueue, Target};
use opsbot_core::JobId;
use opsbot_engine::{Reply, ReplySink};
use opsbot_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// A text waiting to be written into the outbox.
pub(crate) struct Queued {
    pub channel: String,
    pub target: Target,
    pub text: String,
}

/// Writes queued texts into the outbox one at a time (keeping their order) and wakes
/// the delivery worker. A store outage delays the write; it does not drop it.
pub(crate) fn spawn_writer(
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
) -> mpsc::UnboundedSender<Queued> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
    tokio::spawn(async move {
        while let Some(q) = rx.recv().await {
            let mut wait = Duration::from_millis(200);
            loop {
                match enqueue(store.as_ref(), &q.channel, &q.target, &q.text).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(channel = %q.channel, error = %e, "cannot queue a reply; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(10));
                    }
                }
            }
            wake.notify_one();
        }
    });
    tx
}

pub(crate) struct WecomSink {
    pub channel: String,
    pub target: Target,
    pub queue: mpsc::UnboundedSender<Queued>,
    pub progress_interval: Duration,
    pub last_progress: Mutex<HashMap<JobId, Instant>>,
}

impl WecomSink {
    pub fn push(&self, text: String) {
        let _ = self.queue.send(Queued {
            channel: self.channel.clone(),
            target: self.target.clone(),
            text,
        });
    }
}

impl ReplySink for WecomSink {
    fn send(&self, reply: Reply) {
        {
            let mut last = self.last_progress.lock().unwrap_or_else(|e| e.into_inner());
            if reply.finished.is_some() {
                last.remove(&reply.job);
            } else {
                if last
                    .get(&reply.job)
                    .is_some_and(|t| t.elapsed() < self.progress_interval)
                {
                    return;
                }
                last.insert(reply.job, Instant::now());
            }
        }
        self.push(reply.text);
    }
}

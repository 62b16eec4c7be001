//! Where the engine's later replies (job progress and results) for one WeCom asker go:
//! into the outbox, in order, with progress thinned out so a busy job does not run into
//! WeCom's silent per-member limit; and the notice held for a job in case it is
//! interrupted, addressed the same way.

use super::outbox::{items, Target};
use crate::handoff::Late;
use opsbot_core::JobId;
use opsbot_engine::{Reply, ReplySink, Response};
use opsbot_store::NewOutbox;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub(crate) struct WecomSink {
    pub channel: String,
    pub target: Target,
    pub queue: mpsc::UnboundedSender<Vec<NewOutbox>>,
    pub progress_interval: Duration,
    pub last_progress: Mutex<HashMap<JobId, Instant>>,
}

impl WecomSink {
    pub fn push(&self, text: String) {
        let _ = self.queue.send(items(&self.channel, &self.target, &text));
    }
}

impl Late for WecomSink {
    fn late(&self, response: Response) {
        self.push(response.text);
    }
}

impl ReplySink for WecomSink {
    fn interrupt_notice(&self, _job: JobId, text: &str) -> Vec<NewOutbox> {
        items(&self.channel, &self.target, text)
    }

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

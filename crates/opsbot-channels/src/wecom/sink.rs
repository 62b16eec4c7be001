//! Where the engine's later replies (job progress and results) for one WeCom asker go:
//! into the outbox, in order, with progress thinned out so a busy job does not run into
//! WeCom's silent per-member limit; and the notice held for a job in case it is
//! interrupted, addressed the same way.

use super::outbox::{items, outbox_item, Body, Target};
use crate::handoff::Late;
use opsbot_core::{Card, JobId, Notice};
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

    /// Queues `body` to the asker whole (a card, a card update).
    pub fn push_body(&self, body: Body) {
        let notice = Notice {
            channel: self.channel.clone(),
            target: self.target.clone(),
            body,
        };
        let _ = self.queue.send(vec![outbox_item(&notice)]);
    }

    /// The answer's card, if it has one and the asker can be shown it (one person, not
    /// a group chat, which gets the text).
    pub fn card_of<'a>(&self, response: &'a Response) -> Option<&'a Card> {
        response
            .card
            .as_ref()
            .filter(|_| matches!(self.target, Target::User { .. }))
    }

    /// Queues the answer: its card where the asker can see one, its text otherwise.
    pub fn push_response(&self, response: Response) {
        match self.card_of(&response) {
            Some(card) => self.push_body(Body::Card { card: card.clone() }),
            None => self.push(response.text),
        }
    }
}

impl Late for WecomSink {
    fn late(&self, response: Response) {
        self.push_response(response);
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

//! Where the engine's later output for one Official Account user goes: answers that
//! missed the passive reply and job results, as customer-service messages through the
//! outbox. Job progress is not sent: the window allows 5 messages per user message, and
//! a clone's progress alone would use them up before its result.

use super::courier::{ServiceBody, ServiceTarget};
use crate::handoff::Late;
use opsbot_core::JobId;
use opsbot_engine::{Reply, ReplySink, Response};
use opsbot_store::NewOutbox;
use opsbot_wecom::mp::TEXT_MAX_BYTES;
use opsbot_wecom::split::split_message;
use std::sync::Mutex;
use tokio::sync::mpsc;

pub(crate) struct MpSink {
    pub channel: String,
    pub open_id: String,
    pub queue: mpsc::UnboundedSender<Vec<NewOutbox>>,
    /// Said once, with whatever reaches the user first.
    pub notice: Mutex<Option<String>>,
}

impl MpSink {
    pub(crate) fn take_notice(&self) -> Option<String> {
        self.notice.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn push(&self, text: &str) {
        let text = self.take_notice().unwrap_or_default() + text;
        self.queue_parts(split_message(&text, TEXT_MAX_BYTES));
    }

    pub(crate) fn queue_parts(&self, parts: Vec<String>) {
        let _ = self.queue.send(self.items(parts));
    }

    fn items(&self, parts: Vec<String>) -> Vec<NewOutbox> {
        let target = serde_json::to_string(&ServiceTarget {
            open_id: self.open_id.clone(),
        })
        .expect("target serialises");
        parts
            .into_iter()
            .map(|content| NewOutbox {
                channel: self.channel.clone(),
                target: target.clone(),
                body: serde_json::to_string(&ServiceBody::Text { content })
                    .expect("body serialises"),
            })
            .collect()
    }
}

impl Late for MpSink {
    fn late(&self, response: Response) {
        self.push(&response.text);
    }
}

impl ReplySink for MpSink {
    /// A customer-service message like a result (it takes a place in the window).
    fn interrupt_notice(&self, _job: JobId, text: &str) -> Vec<NewOutbox> {
        self.items(split_message(text, TEXT_MAX_BYTES))
    }

    fn send(&self, reply: Reply) {
        if reply.finished.is_some() {
            self.push(&reply.text);
        } else {
            tracing::trace!(
                job = reply.job.0,
                "progress not sent to an Official Account user"
            );
        }
    }
}

//! One message's stream, from the side that runs it: the engine's answer and the job's
//! progress and result are gathered into the stream's text (the whole text each time,
//! as WeCom shows it), addressed to the asker in a group, and written to the store in
//! order by a task of the stream's own. Once the stream has been handed over at its
//! deadline, the result goes once through the message's `response_url` instead.

use super::courier::{ResponseUrlBody, ResponseUrlTarget, StreamEnd};
use opsbot_core::JobId;
use opsbot_engine::{Reply, ReplySink, Response};
use opsbot_store::{ChannelStore, NewOutbox, StreamRecord};
use opsbot_wecom::aibot::{truncate_to, CONTENT_MAX_BYTES};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Progress lines kept in a stream (the newest), so it stays phone-sized.
const PROGRESS_LINES: usize = 8;

enum Update {
    Response(Response),
    Reply(Reply),
}

/// The engine's sink for one message; cheap to call, never blocks.
pub(crate) struct StreamSink {
    tx: mpsc::UnboundedSender<Update>,
    channel: String,
    stream_id: String,
    /// Who to name: set in group chats.
    asker: Option<String>,
    response_url: Option<ResponseUrlTarget>,
}

impl StreamSink {
    /// Starts the stream's writer task for `record`.
    pub(crate) fn start(
        store: Arc<dyn ChannelStore>,
        record: &StreamRecord,
        outbox: mpsc::UnboundedSender<Vec<NewOutbox>>,
        response_url_ttl: Duration,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let response_url = record.response_url.clone().map(|url| ResponseUrlTarget {
            response_url: Some(url),
            expires_at: record.created_at
                + chrono::Duration::from_std(response_url_ttl).unwrap_or_default(),
            stream: None,
        });
        let asker = record.chat.as_ref().map(|_| record.asker.clone());
        let writer = Writer {
            store,
            channel: record.channel.clone(),
            stream_id: record.stream_id.clone(),
            asker: asker.clone(),
            response_url: response_url.clone(),
            outbox,
        };
        tokio::spawn(writer.run(rx));
        Arc::new(StreamSink {
            tx,
            channel: record.channel.clone(),
            stream_id: record.stream_id.clone(),
            asker,
            response_url,
        })
    }

    /// The engine's immediate response to the message.
    pub(crate) fn respond(&self, response: Response) {
        let _ = self.tx.send(Update::Response(response));
    }
}

impl ReplySink for StreamSink {
    fn send(&self, reply: Reply) {
        let _ = self.tx.send(Update::Reply(reply));
    }

    /// Ends the stream if WeCom still refreshes it, else goes by `response_url`.
    fn interrupt_notice(&self, _job: JobId, text: &str) -> Vec<NewOutbox> {
        let target = ResponseUrlTarget {
            response_url: self
                .response_url
                .as_ref()
                .and_then(|t| t.response_url.clone()),
            expires_at: self
                .response_url
                .as_ref()
                .map_or_else(chrono::Utc::now, |t| t.expires_at),
            stream: Some(StreamEnd {
                stream_id: self.stream_id.clone(),
                line: text.to_string(),
            }),
        };
        vec![NewOutbox {
            channel: self.channel.clone(),
            target: serde_json::to_string(&target).expect("target serialises"),
            body: serde_json::to_string(&ResponseUrlBody::Markdown {
                content: address(self.asker.as_deref(), text),
            })
            .expect("body serialises"),
        }]
    }
}

/// `text` as the asker reads it: named in a group, within WeCom's size.
fn address(asker: Option<&str>, text: &str) -> String {
    let text = match asker {
        Some(asker) => crate::mention(asker, text),
        None => text.to_string(),
    };
    truncate_to(&text, CONTENT_MAX_BYTES).to_string()
}

/// What the stream says, before addressing.
#[derive(Default)]
struct View {
    answer: Option<String>,
    job: Option<JobId>,
    progress: Vec<String>,
    result: Option<String>,
}

impl View {
    fn apply(&mut self, update: Update) {
        match update {
            Update::Response(r) => {
                self.job = r.job();
                self.answer = Some(r.text);
            }
            // A fast job may report before the engine's answer is in: kept all the same.
            Update::Reply(r) if r.finished.is_some() => self.result = Some(r.text),
            Update::Reply(r) => {
                self.progress.push(r.text);
                if self.progress.len() > PROGRESS_LINES {
                    self.progress.remove(0);
                }
            }
        }
    }

    /// Answered, and the job (if any) has ended.
    fn done(&self) -> bool {
        self.answer.is_some() && (self.job.is_none() || self.result.is_some())
    }

    fn render(&self) -> String {
        let mut lines: Vec<&str> = Vec::new();
        lines.extend(self.answer.as_deref());
        lines.extend(self.progress.iter().map(String::as_str));
        lines.extend(self.result.as_deref());
        lines.join("\n")
    }
}

struct Writer {
    store: Arc<dyn ChannelStore>,
    channel: String,
    stream_id: String,
    /// Who to name: set in group chats.
    asker: Option<String>,
    response_url: Option<ResponseUrlTarget>,
    outbox: mpsc::UnboundedSender<Vec<NewOutbox>>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Update>) {
        let mut view = View::default();
        let mut handed_over = false;
        while let Some(update) = rx.recv().await {
            view.apply(update);
            // Whatever else is queued goes into the same write.
            while let Ok(more) = rx.try_recv() {
                view.apply(more);
            }
            let done = view.done();
            if !handed_over {
                let content = self.address(&view.render());
                let job = view.job.map(|j| j.0);
                handed_over = !self.fill(&content, job, done).await;
            }
            if handed_over && done {
                self.follow_up(&view);
            }
            if done {
                return;
            }
        }
    }

    fn address(&self, text: &str) -> String {
        address(self.asker.as_deref(), text)
    }

    /// Writes the stream; `false` when it is no longer open. A store outage is waited
    /// out: this is the only copy of the answer.
    async fn fill(&self, content: &str, job: Option<i64>, done: bool) -> bool {
        let mut wait = Duration::from_millis(200);
        loop {
            match self
                .store
                .stream_fill(&self.channel, &self.stream_id, content, job, done)
                .await
            {
                Ok(open) => return open,
                Err(e) => {
                    tracing::error!(stream = %self.stream_id, error = %e, "cannot write a robot stream; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The stream ended before the answer did: the result, once, by `response_url`.
    fn follow_up(&self, view: &View) {
        let text = view
            .result
            .clone()
            .or_else(|| view.answer.clone())
            .unwrap_or_default();
        let Some(target) = &self.response_url else {
            tracing::warn!(stream = %self.stream_id, "a result after the stream ended, and no response_url to send it by");
            return;
        };
        let item = NewOutbox {
            channel: self.channel.clone(),
            target: serde_json::to_string(target).expect("target serialises"),
            body: serde_json::to_string(&ResponseUrlBody::Markdown {
                content: self.address(&text),
            })
            .expect("body serialises"),
        };
        let _ = self.outbox.send(vec![item]);
    }
}

/// What a stream says when it is ended at its deadline with the job still running.
pub(crate) fn handover_text(record: &StreamRecord) -> String {
    let note = match (record.response_url.is_some(), record.job_id) {
        (true, Some(job)) => {
            format!("⏳ #{job} 仍在执行,完成后在这里回复结果(1 小时内);也可发送 任务:{job} 查看")
        }
        (true, None) => "⏳ 仍在处理,完成后在这里回复结果".to_string(),
        (false, Some(job)) => format!("⏳ #{job} 仍在执行,完成后发送 任务:{job} 查看结果"),
        (false, None) => "⏳ 仍在处理,稍后发送 任务 查看结果".to_string(),
    };
    let text = if record.content.is_empty() {
        match &record.chat {
            Some(_) => crate::mention(&record.asker, &note),
            None => note,
        }
    } else {
        format!("{}\n{note}", record.content)
    };
    truncate_to(&text, CONTENT_MAX_BYTES).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsbot_core::JobState;
    use opsbot_engine::Status;

    #[test]
    fn a_fast_result_before_the_answer_still_renders_in_order() {
        let mut v = View::default();
        v.apply(Update::Reply(Reply::finished(
            JobId(3),
            JobState::Succeeded,
            "✅ #3 完成".into(),
        )));
        assert!(!v.done(), "the answer is not in yet");
        v.apply(Update::Response(Response::new(
            Status::Accepted(JobId(3)),
            "已受理 #3",
        )));
        assert!(v.done());
        assert_eq!(v.render(), "已受理 #3\n✅ #3 完成");
    }

    #[test]
    fn progress_is_capped_and_plain_answers_are_done_at_once() {
        let mut v = View::default();
        v.apply(Update::Response(Response::new(
            Status::Accepted(JobId(1)),
            "已受理 #1",
        )));
        for p in 0..20u8 {
            v.apply(Update::Reply(Reply::progress(
                JobId(1),
                p,
                format!("#1 {p}%"),
            )));
        }
        assert!(!v.done());
        let text = v.render();
        assert_eq!(text.lines().count(), 1 + PROGRESS_LINES);
        assert!(text.ends_with("#1 19%"), "{text}");
        let mut plain = View::default();
        plain.apply(Update::Response(Response::new(Status::Ok, "【资源概况】")));
        assert!(plain.done());
    }
}

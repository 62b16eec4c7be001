//! A click on a robot's card (CARDS.md §5.2): WeCom posts it once and drops it after
//! 5 s, so the engine gets the click budget and its answer is the passive reply: the
//! card replaced for the clicker (`update_template_card`, the only way a robot's card
//! changes: there is no update API and no `response_code`) when the action ran or
//! someone had taken it, a text (a finished stream) when it was refused. A job the
//! click started reports its result once through the click's `response_url`; an
//! answer too late for the passive reply goes that way too.

use super::courier::{ResponseUrlBody, ResponseUrlTarget};
use super::{Bot, BotChannel};
use crate::handoff::{within, Handoff};
use crate::wecom::card::template_card;
use opsbot_core::{Card, JobId};
use opsbot_engine::{Click, Clicked, Reply, ReplySink};
use opsbot_store::NewOutbox;
use opsbot_wecom::aibot::{self, truncate_to, BotMessage, Chat, CONTENT_MAX_BYTES};
use opsbot_wecom::card::bot_update_card_reply_json;
use rand::distr::{Alphanumeric, SampleString};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the clicker reads when the engine task ended without answering.
const CLICK_LOST: &str = "⚠ 处理卡片按钮时出错,请重试或直接发送命令";

impl BotChannel {
    /// The passive reply to a click (plain JSON), within the click budget.
    pub(super) async fn answer_click(&self, bot: &Bot, msg: &BotMessage, click: Click) -> String {
        let sink = Arc::new(ClickSink {
            channel: bot.channel.clone(),
            target: msg.response_url.clone().map(|url| ResponseUrlTarget {
                response_url: Some(url),
                expires_at: chrono::Utc::now()
                    + chrono::Duration::from_std(self.settings.response_url_ttl)
                        .unwrap_or_default(),
                stream: None,
            }),
            asker: match &msg.chat {
                Chat::Group(_) => Some(msg.from.clone()),
                Chat::Single => None,
            },
            outbox: self.outbox.clone(),
        });
        let engine = self.engine.clone();
        let jobs: Arc<dyn ReplySink> = sink.clone();
        let late = sink.clone();
        let answer = within(
            async move { engine.click(click, jobs).await },
            move |clicked| late.late(clicked),
            self.settings.click_budget,
        )
        .await;
        match answer {
            Handoff::InTime(clicked) => reply(msg, &sink, clicked),
            Handoff::Late => {
                tracing::warn!(bot = %bot.name, "card click slower than the click budget; its answer follows by response_url");
                aibot::stream_reply_json(&new_stream_id(), true, &sink.address("⏳ 正在处理…"))
            }
            Handoff::Lost => {
                tracing::error!(bot = %bot.name, "the engine task ended without answering a click");
                aibot::stream_reply_json(&new_stream_id(), true, &sink.address(CLICK_LOST))
            }
        }
    }
}

/// The passive reply to a click answered in time.
fn reply(msg: &BotMessage, sink: &ClickSink, clicked: Clicked) -> String {
    let (card, text) = match clicked {
        Clicked::Done {
            card,
            job,
            message,
            button_text,
        } => {
            // No job's result will follow: what the command answered goes instead.
            if job.is_none() && !message.trim().is_empty() {
                sink.say(&message);
            }
            (card, button_text)
        }
        Clicked::Taken { card, button_text } => (card, button_text),
        Clicked::Refused { text } => {
            return aibot::stream_reply_json(&new_stream_id(), true, &sink.address(&text))
        }
    };
    // In a group only the clicker's copy: the others keep theirs, as WeCom cannot
    // change them later.
    let userids = match &msg.chat {
        Chat::Group(_) => vec![msg.from.clone()],
        Chat::Single => Vec::new(),
    };
    match bot_update_card_reply_json(&userids, &template_card(&card)) {
        Ok(json) => json,
        Err(e) => {
            tracing::warn!(task = %card.task_id, error = %e, "a settled card does not render; answering in text");
            aibot::stream_reply_json(&new_stream_id(), true, &sink.address(&text))
        }
    }
}

fn new_stream_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}

/// Where a click's later words go: its `response_url`, once.
pub(super) struct ClickSink {
    channel: String,
    /// `None`: the click came without a `response_url`; nothing can follow.
    target: Option<ResponseUrlTarget>,
    /// Who to name: set in group chats.
    asker: Option<String>,
    outbox: mpsc::UnboundedSender<Vec<NewOutbox>>,
}

impl ClickSink {
    fn address(&self, text: &str) -> String {
        let text = match &self.asker {
            Some(asker) => crate::mention(asker, text),
            None => text.to_string(),
        };
        truncate_to(&text, CONTENT_MAX_BYTES).to_string()
    }

    fn item(&self, text: &str) -> Option<NewOutbox> {
        let Some(target) = &self.target else {
            tracing::warn!(channel = %self.channel, "a click's answer, and no response_url to send it by");
            return None;
        };
        Some(NewOutbox {
            channel: self.channel.clone(),
            target: serde_json::to_string(target).expect("target serialises"),
            body: serde_json::to_string(&ResponseUrlBody::Markdown {
                content: self.address(text),
            })
            .expect("body serialises"),
        })
    }

    /// Sends `text` by the click's `response_url` (its one use).
    fn say(&self, text: &str) {
        if let Some(item) = self.item(text) {
            let _ = self.outbox.send(vec![item]);
        }
    }

    /// An answer too late for the passive reply.
    fn late(&self, clicked: Clicked) {
        match clicked {
            // The job's result takes the response_url.
            Clicked::Done { job: Some(_), .. } => {}
            Clicked::Done {
                button_text,
                message,
                ..
            } => self.say(&format!("{button_text}\n{message}")),
            Clicked::Taken { button_text, .. } => self.say(&button_text),
            Clicked::Refused { text } => self.say(&text),
        }
    }
}

impl ReplySink for ClickSink {
    /// Only the result: a `response_url` takes one message.
    fn send(&self, reply: Reply) {
        if reply.finished.is_some() {
            self.say(&reply.text);
        }
    }

    fn interrupt_notice(&self, _job: JobId, text: &str) -> Vec<NewOutbox> {
        self.item(text).into_iter().collect()
    }
}

/// The card of a confirmation, to follow the stream by the message's `response_url`.
pub(super) fn card_item(channel: &str, target: &ResponseUrlTarget, card: Card) -> NewOutbox {
    NewOutbox {
        channel: channel.to_string(),
        target: serde_json::to_string(target).expect("target serialises"),
        body: serde_json::to_string(&ResponseUrlBody::Card { card }).expect("body serialises"),
    }
}

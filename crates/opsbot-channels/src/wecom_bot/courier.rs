//! Posting a robot's late result to the message's `response_url`: plain JSON markdown,
//! once. An expired URL is dead-lettered without a call (WeCom would refuse it); a used
//! or refused one is dead-lettered with WeCom's answer; network trouble is retried.
//!
//! A notice held for a job in case it is interrupted names the message's stream too: if
//! WeCom still refreshes it, the notice ends the stream (conditional on it being open,
//! like every finish); otherwise it goes by `response_url` like a late result.
//!
//! A card (a confirmation's 确认 / 取消) goes the same way as a `template_card`
//! message, kept in the store first so its clicks can be checked against it.

use super::Bot;
use crate::delivery::{Courier, Failure};
use crate::wecom::card::template_card;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use opsbot_core::Card;
use opsbot_store::{CardStore, ChannelStore, NewCard, OutboxItem, StreamState};
use opsbot_wecom::aibot::{markdown_message, truncate_to, CONTENT_MAX_BYTES};
use opsbot_wecom::card::response_url_card;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where a robot reply goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResponseUrlTarget {
    /// `None`: the message came without one (only the stream can say it).
    pub response_url: Option<String>,
    /// After this WeCom refuses it.
    pub expires_at: DateTime<Utc>,
    /// Set on an interruption notice: the stream to end with it while WeCom refreshes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamEnd>,
}

/// How a notice ends a stream that is still open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamEnd {
    pub stream_id: String,
    /// The notice as a line below what the stream already says (unaddressed: the stream
    /// names the asker at its start).
    pub line: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ResponseUrlBody {
    Markdown {
        content: String,
    },
    /// A card with buttons, as a `template_card` message.
    Card {
        card: Card,
    },
}

pub(crate) struct ResponseUrlCourier {
    /// By outbox channel (`wecom-bot:<name>`).
    pub(crate) bots: HashMap<String, Arc<Bot>>,
    pub(crate) store: Arc<dyn ChannelStore>,
    /// Where sent cards are kept for their clicks.
    pub(crate) cards: Arc<dyn CardStore>,
    /// How long WeCom refreshes a stream (the channel's stream window).
    pub(crate) stream_window: Duration,
}

fn retry(e: impl std::fmt::Display) -> Failure {
    Failure::Retry {
        error: e.to_string(),
        at_least: Duration::ZERO,
    }
}

impl ResponseUrlCourier {
    /// Ends the stream with the notice if WeCom still refreshes it; `true` when the
    /// stream says it (or already said the last word), `false` when the notice must go
    /// by `response_url`.
    async fn end_stream(
        &self,
        channel: &str,
        end: &StreamEnd,
        addressed: &str,
    ) -> Result<bool, Failure> {
        let Some(record) = self
            .store
            .stream_get(channel, &end.stream_id)
            .await
            .map_err(retry)?
        else {
            return Ok(false);
        };
        match record.state {
            // Finished by the job after all: the asker has its answer.
            StreamState::Done => return Ok(true),
            StreamState::HandedOver => return Ok(false),
            StreamState::Open => {}
        }
        let text = if record.content.is_empty() {
            addressed.to_string()
        } else {
            format!("{}\n{}", record.content, end.line)
        };
        let text = truncate_to(&text, CONTENT_MAX_BYTES);
        let window =
            chrono::Duration::from_std(self.stream_window).unwrap_or(chrono::Duration::MAX);
        if Utc::now() - record.created_at < window {
            // `false`: a refresh handed it over meanwhile; the response_url then.
            return self
                .store
                .stream_fill(channel, &end.stream_id, text, record.job_id, true)
                .await
                .map_err(retry);
        }
        // WeCom stopped refreshing it: ended with the notice for any late refresh, and
        // the notice goes by response_url.
        self.store
            .stream_hand_over(channel, &end.stream_id, text)
            .await
            .map_err(retry)?;
        Ok(false)
    }
}

#[async_trait]
impl Courier for ResponseUrlCourier {
    async fn send(&self, item: &OutboxItem) -> Result<(), Failure> {
        let bot = self.bots.get(&item.channel).ok_or_else(|| {
            Failure::Permanent(format!("{} is no longer configured", item.channel))
        })?;
        let target: ResponseUrlTarget = serde_json::from_str(&item.target)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox target: {e}")))?;
        let body: ResponseUrlBody = serde_json::from_str(&item.body)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox body: {e}")))?;
        if let (Some(end), ResponseUrlBody::Markdown { content }) = (&target.stream, &body) {
            if self.end_stream(&item.channel, end, content).await? {
                return Ok(());
            }
        }
        let Some(response_url) = &target.response_url else {
            return Err(Failure::Permanent(
                "the message came without a response_url and its stream has ended; \
                 the asker can see the result with 任务"
                    .into(),
            ));
        };
        if Utc::now() >= target.expires_at {
            return Err(Failure::Permanent(format!(
                "the response_url expired at {} (WeCom keeps it one hour after the message); \
                 the asker can see the result with 任务",
                target.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
            )));
        }
        let message = match body {
            ResponseUrlBody::Markdown { content } => markdown_message(&content),
            ResponseUrlBody::Card { card } => self.keep(item, &card).await?,
        };
        bot.client
            .aibot_respond(response_url, &message)
            .await
            .map_err(|e| Failure::of(&e))
    }
}

impl ResponseUrlCourier {
    /// Keeps `card` (idempotent: a retry finds it kept) and gives its message.
    async fn keep(&self, item: &OutboxItem, card: &Card) -> Result<serde_json::Value, Failure> {
        let message = response_url_card(&template_card(card))
            .map_err(|e| Failure::Permanent(format!("the card cannot be sent: {e}")))?;
        let kept = NewCard {
            task_id: card.task_id.clone(),
            channel: item.channel.clone(),
            // The response_url is single use and soon spent: where the card went is
            // the chat, which the clicks carry themselves.
            target: "{}".into(),
            card: card.to_json(),
            expires_at: chrono::DateTime::from_timestamp(card.expires_at, 0)
                .unwrap_or_else(Utc::now),
        };
        self.cards.card_put(&kept).await.map_err(retry)?;
        Ok(message)
    }
}

//! Posting a robot's late result to the message's `response_url`: plain JSON markdown,
//! once. An expired URL is dead-lettered without a call (WeCom would refuse it); a used
//! or refused one is dead-lettered with WeCom's answer; network trouble is retried.

use super::Bot;
use crate::delivery::{Courier, Failure};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use opsbot_store::OutboxItem;
use opsbot_wecom::aibot::markdown_message;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Where a robot reply goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResponseUrlTarget {
    pub response_url: String,
    /// After this WeCom refuses it.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ResponseUrlBody {
    Markdown { content: String },
}

pub(crate) struct ResponseUrlCourier {
    /// By outbox channel (`wecom-bot:<name>`).
    pub(crate) bots: HashMap<String, Arc<Bot>>,
}

#[async_trait]
impl Courier for ResponseUrlCourier {
    async fn send(&self, item: &OutboxItem) -> Result<(), Failure> {
        let bot = self.bots.get(&item.channel).ok_or_else(|| {
            Failure::Permanent(format!("{} is no longer configured", item.channel))
        })?;
        let target: ResponseUrlTarget = serde_json::from_str(&item.target)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox target: {e}")))?;
        let ResponseUrlBody::Markdown { content } = serde_json::from_str(&item.body)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox body: {e}")))?;
        if Utc::now() >= target.expires_at {
            return Err(Failure::Permanent(format!(
                "the response_url expired at {} (WeCom keeps it one hour after the message); \
                 the asker can see the result with 任务",
                target.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
            )));
        }
        bot.client
            .aibot_respond(&target.response_url, &markdown_message(&content))
            .await
            .map_err(|e| Failure::of(&e))
    }
}

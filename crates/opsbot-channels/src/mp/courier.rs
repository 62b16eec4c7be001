//! Sending a customer-service message (客服消息): first a place in the user's window is
//! taken in the store (48 hours after their last message, 5 messages), then
//! `message/custom/send`. A closed window, ours or WeChat's (45015, 45047), is
//! dead-lettered with the reason and counted, so the user hears of it when they next
//! write; everything else is classified by the client.

use super::Account;
use crate::delivery::{Courier, Failure};
use async_trait::async_trait;
use opsbot_store::{ChannelStore, OutboxItem};
use opsbot_wecom::Error as WecomError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceTarget {
    pub open_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServiceBody {
    Text { content: String },
}

pub(crate) struct ServiceCourier {
    /// By outbox channel (`wechat:<name>`).
    pub(crate) accounts: HashMap<String, Arc<Account>>,
    pub(crate) store: Arc<dyn ChannelStore>,
    pub(crate) window: Duration,
    pub(crate) window_messages: Option<u32>,
}

impl ServiceCourier {
    async fn missed(&self, channel: &str, open_id: &str) {
        if let Err(e) = self.store.window_missed(channel, open_id).await {
            tracing::warn!(error = %e, "could not count a missed customer-service message");
        }
    }
}

#[async_trait]
impl Courier for ServiceCourier {
    async fn send(&self, item: &OutboxItem) -> Result<(), Failure> {
        let account = self.accounts.get(&item.channel).ok_or_else(|| {
            Failure::Permanent(format!("{} is no longer configured", item.channel))
        })?;
        let target: ServiceTarget = serde_json::from_str(&item.target)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox target: {e}")))?;
        let ServiceBody::Text { content } = serde_json::from_str(&item.body)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox body: {e}")))?;
        // One place per message, taken at its first attempt: a retry after a network
        // failure does not take a second one.
        if let (Some(limit), 0) = (self.window_messages, item.attempts) {
            let opened_after =
                chrono::Utc::now() - chrono::Duration::from_std(self.window).unwrap_or_default();
            let open = self
                .store
                .window_take(&item.channel, &target.open_id, opened_after, limit)
                .await
                .map_err(|e| Failure::Retry {
                    error: e.to_string(),
                    at_least: Duration::ZERO,
                })?;
            if !open {
                self.missed(&item.channel, &target.open_id).await;
                return Err(Failure::Permanent(format!(
                    "customer-service window closed for {}: no message from the user within {} h, \
                     or its {limit} messages are used up; not sent to WeChat (the user is told at \
                     their next message)",
                    target.open_id,
                    self.window.as_secs() / 3600
                )));
            }
        }
        match account.client.send_text(&target.open_id, &content).await {
            Ok(()) => Ok(()),
            Err(
                e @ (WecomError::ServiceWindowClosed { .. }
                | WecomError::ServiceQuotaExhausted { .. }),
            ) => {
                self.missed(&item.channel, &target.open_id).await;
                Err(Failure::Permanent(e.to_string()))
            }
            Err(e) => Err(Failure::of(&e)),
        }
    }
}

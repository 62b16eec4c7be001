//! How the app channel delivers an outbox item: `message/send` to a member or
//! `appchat/send` to a chat, with the app's API client. Failures are classified by the
//! client: network trouble, 45009 and busy are retried; 60020 (naming the IP to trust),
//! 81013/82001 (recipients) and 40001 (the secret) are dead-lettered.

use super::outbox::{Body, Target};
use super::App;
use crate::delivery::{Courier, Failure};
use async_trait::async_trait;
use opsbot_store::OutboxItem;
use opsbot_wecom::api::{AppMessage, Recipients};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) struct AppCourier {
    /// By outbox channel (`wecom:<app>`).
    pub(crate) apps: HashMap<String, Arc<App>>,
}

#[async_trait]
impl Courier for AppCourier {
    async fn send(&self, item: &OutboxItem) -> Result<(), Failure> {
        let app = self.apps.get(&item.channel).ok_or_else(|| {
            Failure::Permanent(format!("{} is no longer configured", item.channel))
        })?;
        let target: Target = serde_json::from_str(&item.target)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox target: {e}")))?;
        let Body::Text { content } = serde_json::from_str(&item.body)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox body: {e}")))?;
        let result = match &target {
            Target::User { user } => app
                .client
                .send_text(&Recipients::users([user.as_str()]), &content)
                .await
                .map(|receipt| {
                    if receipt.is_partial() {
                        tracing::warn!(app = %app.name, ?receipt, "some recipients were invalid");
                    }
                }),
            Target::Chat { chat, .. } => {
                app.client
                    .appchat_send(chat, &AppMessage::Text(content))
                    .await
            }
        };
        result.map_err(|e| Failure::of(&e))
    }
}

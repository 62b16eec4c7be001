//! How the app channel delivers an outbox item: `message/send` to members, departments
//! or tags, `appchat/send` to a chat, with the app's API client, or a group robot's
//! webhook (the alert gateway's targets). Failures are classified by the client:
//! network trouble, 45009 and busy are retried; 60020 (naming the IP to trust),
//! 81013/82001 (recipients) and 40001 (the secret) are dead-lettered.

use super::outbox::{robot_channel, Body, Target};
use super::{App, ChannelError, RobotConfig};
use crate::delivery::{Courier, Failure};
use async_trait::async_trait;
use opsbot_store::OutboxItem;
use opsbot_wecom::api::{AppMessage, Recipients, RobotMessage};
use opsbot_wecom::{ClientConfig, WecomClient};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) struct AppCourier {
    /// By outbox channel (`wecom:<app>`).
    pub(crate) apps: HashMap<String, Arc<App>>,
    /// By outbox channel (`wecom:robot/<name>`).
    pub(crate) robots: HashMap<String, Robot>,
}

/// A configured group robot.
pub(crate) struct Robot {
    key: String,
    client: WecomClient,
}

/// The robots' clients, one per API base.
pub(crate) fn robots(
    configs: &[RobotConfig],
    timeout: std::time::Duration,
) -> Result<HashMap<String, Robot>, ChannelError> {
    let mut clients: HashMap<String, WecomClient> = HashMap::new();
    let mut robots = HashMap::new();
    for r in configs {
        let client = match clients.get(&r.api_base) {
            Some(c) => c.clone(),
            None => {
                let config = ClientConfig {
                    api_base: r.api_base.clone(),
                    timeout,
                    ..ClientConfig::default()
                };
                let c = WecomClient::new(config).map_err(|e| ChannelError::BadApp {
                    app: r.name.clone(),
                    problem: e.to_string(),
                })?;
                clients.insert(r.api_base.clone(), c.clone());
                c
            }
        };
        robots.insert(
            robot_channel(&r.name),
            Robot {
                key: r.key.clone(),
                client,
            },
        );
    }
    Ok(robots)
}

#[async_trait]
impl Courier for AppCourier {
    async fn send(&self, item: &OutboxItem) -> Result<(), Failure> {
        let target: Target = serde_json::from_str(&item.target)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox target: {e}")))?;
        let body: Body = serde_json::from_str(&item.body)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox body: {e}")))?;
        let message = match body {
            Body::Text { content } => AppMessage::Text(content),
            Body::Markdown { content } => AppMessage::Markdown(content),
        };
        if let Some(robot) = self.robots.get(&item.channel) {
            if target != Target::Robot {
                return Err(mismatch(item));
            }
            let message = match message {
                AppMessage::Markdown(content) => RobotMessage::Markdown(content),
                AppMessage::Text(content) => RobotMessage::text(content),
                AppMessage::TextCard(card) => RobotMessage::text(card.description),
            };
            return robot
                .client
                .webhook_send(&robot.key, &message)
                .await
                .map_err(|e| Failure::of(&e));
        }
        let app = self.apps.get(&item.channel).ok_or_else(|| {
            Failure::Permanent(format!("{} is no longer configured", item.channel))
        })?;
        let result = match &target {
            Target::User { user } => {
                send_members(app, &Recipients::users([user.as_str()]), &message).await
            }
            Target::Members {
                users,
                parties,
                tags,
            } => {
                let to = Recipients {
                    users: users.clone(),
                    parties: parties.clone(),
                    tags: tags.clone(),
                };
                send_members(app, &to, &message).await
            }
            Target::Chat { chat, .. } | Target::AppChat { chat } => {
                app.client.appchat_send(chat, &message).await
            }
            Target::Robot => return Err(mismatch(item)),
        };
        result.map_err(|e| Failure::of(&e))
    }
}

fn mismatch(item: &OutboxItem) -> Failure {
    Failure::Permanent(format!(
        "outbox target {} does not fit channel {}",
        item.target, item.channel
    ))
}

async fn send_members(
    app: &App,
    to: &Recipients,
    message: &AppMessage,
) -> Result<(), opsbot_wecom::Error> {
    let receipt = app.client.send(to, message).await?;
    if receipt.is_partial() {
        tracing::warn!(app = %app.name, ?receipt, "some recipients were invalid");
    }
    Ok(())
}

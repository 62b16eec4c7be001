//! How the app channel delivers an outbox item: `message/send` to members, departments
//! or tags, `appchat/send` to a chat, with the app's API client, or a group robot's
//! webhook (the alert gateway's targets). Failures are classified by the client:
//! network trouble, 45009 and busy are retried; 60020 (naming the IP to trust),
//! 81013/82001 (recipients) and 40001 (the secret) are dead-lettered. Messages queued
//! whole (the alert gateway's) are split here to WeCom's limits: 2048 bytes of app text
//! or markdown, 4096 of robot markdown.

use super::outbox::{robot_channel, Body, Target};
use super::{App, ChannelError, RobotConfig};
use crate::delivery::{Courier, Failure};
use async_trait::async_trait;
use opsbot_store::{NewOutbox, OutboxItem};
use opsbot_wecom::api::{AppMessage, Recipients, RobotMessage};
use opsbot_wecom::split::{split_message, APP_TEXT_MAX_BYTES, ROBOT_MARKDOWN_MAX_BYTES};
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

impl AppCourier {
    /// The most one message of `body` through `channel` may carry.
    fn max_bytes(&self, channel: &str, body: &Body) -> usize {
        match body {
            Body::Markdown { .. } if self.robots.contains_key(channel) => ROBOT_MARKDOWN_MAX_BYTES,
            _ => APP_TEXT_MAX_BYTES,
        }
    }
}

#[async_trait]
impl Courier for AppCourier {
    fn split(&self, item: &OutboxItem) -> Option<Vec<NewOutbox>> {
        // Unreadable items are sent as they are, which dead-letters them with the reason.
        let body: Body = serde_json::from_str(&item.body).ok()?;
        let limit = self.max_bytes(&item.channel, &body);
        if body.content().len() <= limit {
            return None;
        }
        let parts = split_message(body.content(), limit)
            .into_iter()
            .map(|part| NewOutbox {
                channel: item.channel.clone(),
                target: item.target.clone(),
                body: body.with_content(part).to_json(),
            })
            .collect();
        Some(parts)
    }

    async fn send(&self, item: &OutboxItem) -> Result<(), Failure> {
        let target: Target = serde_json::from_str(&item.target)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox target: {e}")))?;
        let body: Body = serde_json::from_str(&item.body)
            .map_err(|e| Failure::Permanent(format!("unreadable outbox body: {e}")))?;
        let message = match body {
            Body::Text { content } => AppMessage::Text(content),
            Body::Markdown { content } => AppMessage::Markdown(content),
            // Until cards are rendered here: their text form.
            Body::Card { card } if card.markdown => AppMessage::Markdown(card.text),
            Body::Card { card } => AppMessage::Text(card.text),
            Body::CardUpdate { .. } => {
                return Err(Failure::Permanent(
                    "card updates are not supported yet".into(),
                ))
            }
        };
        if let Some(robot) = self.robots.get(&item.channel) {
            if target != Target::Robot {
                return Err(mismatch(item));
            }
            let message = match message {
                AppMessage::Markdown(content) => RobotMessage::Markdown(content),
                AppMessage::Text(content) => RobotMessage::text(content),
                AppMessage::TextCard(card) => RobotMessage::text(card.description),
                AppMessage::TemplateCard(card) => {
                    RobotMessage::text(card.main_title.and_then(|t| t.title).unwrap_or_default())
                }
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

//! How the app channel delivers an outbox item: `message/send` to members, departments
//! or tags, `appchat/send` to a chat, with the app's API client, or a group robot's
//! webhook (the alert gateway's targets). Failures are classified by the client:
//! network trouble, 45009 and busy are retried; 60020 (naming the IP to trust),
//! 81013/82001 (recipients) and 40001 (the secret) are dead-lettered. Messages queued
//! whole (the alert gateway's) are split here to WeCom's limits: 2048 bytes of app text
//! or markdown, 4096 of robot markdown.
//!
//! A card to members goes as a template card: kept in the store first (a click may
//! reach any instance, which checks it against the card as sent), then sent, and the
//! send's one-time `response_code` kept beside it. Chats and robots get the card's text.
//! A card update (`update_template_card`, for everyone the card went to) is tried once
//! per code: WeCom may have spent the code whatever it answered.

use super::card::template_card;
use super::outbox::{robot_channel, Body, Target};
use super::{App, ChannelError, RobotConfig};
use crate::delivery::{Courier, Failure};
use async_trait::async_trait;
use opsbot_core::Card;
use opsbot_store::{CardStore, NewCard, NewOutbox, OutboxItem};
use opsbot_wecom::api::{AppMessage, Recipients, RobotMessage};
use opsbot_wecom::card::{CardChange, CardUpdate};
use opsbot_wecom::split::{split_message, APP_TEXT_MAX_BYTES, ROBOT_MARKDOWN_MAX_BYTES};
use opsbot_wecom::{ClientConfig, WecomClient};
use std::collections::HashMap;
use std::sync::Arc;

/// errcode of a `task_id` WeCom has seen before in this app.
const TASK_ID_USED: i64 = 42014;

pub(crate) struct AppCourier {
    /// By outbox channel (`wecom:<app>`).
    pub(crate) apps: HashMap<String, Arc<App>>,
    /// By outbox channel (`wecom:robot/<name>`).
    pub(crate) robots: HashMap<String, Robot>,
    /// Where sent cards are kept for their clicks.
    pub(crate) cards: Arc<dyn CardStore>,
}

/// A configured group robot.
pub(crate) struct Robot {
    key: String,
    client: WecomClient,
}

/// The robots' clients, one per API base.
pub(crate) fn robots(
    configs: &[RobotConfig],
    settings: &super::Settings,
) -> Result<HashMap<String, Robot>, ChannelError> {
    let mut clients: HashMap<String, WecomClient> = HashMap::new();
    let mut robots = HashMap::new();
    for r in configs {
        let client = match clients.get(&r.api_base) {
            Some(c) => c.clone(),
            None => {
                let config = ClientConfig {
                    api_base: r.api_base.clone(),
                    timeout: settings.api_timeout,
                    limit_windows: settings.limit_windows.clone(),
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
    /// The most one message of `body` through `channel` to `target` may carry; `None`
    /// when it is not split (a card to members goes whole, as a card).
    fn max_bytes(&self, channel: &str, target: &str, body: &Body) -> Option<usize> {
        let robot = self.robots.contains_key(channel);
        match body {
            Body::CardUpdate { .. } => None,
            Body::Card { .. } if !robot && shows_cards(target) => None,
            Body::Markdown { .. } if robot => Some(ROBOT_MARKDOWN_MAX_BYTES),
            Body::Card { card } if robot && card.markdown => Some(ROBOT_MARKDOWN_MAX_BYTES),
            _ => Some(APP_TEXT_MAX_BYTES),
        }
    }
}

/// Whether an app message to `target` (the outbox's JSON) can be a template card:
/// `message/send` to members; group chats take text.
fn shows_cards(target: &str) -> bool {
    matches!(
        serde_json::from_str::<Target>(target),
        Ok(Target::User { .. } | Target::Members { .. })
    )
}

#[async_trait]
impl Courier for AppCourier {
    fn split(&self, item: &OutboxItem) -> Option<Vec<NewOutbox>> {
        // Unreadable items are sent as they are, which dead-letters them with the reason.
        let body: Body = serde_json::from_str(&item.body).ok()?;
        let limit = self.max_bytes(&item.channel, &item.target, &body)?;
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
        if let Some(robot) = self.robots.get(&item.channel) {
            if target != Target::Robot {
                return Err(mismatch(item));
            }
            let message = match body {
                Body::Markdown { content } => RobotMessage::Markdown(content),
                Body::Text { content } => RobotMessage::text(content),
                // A robot's webhook shows no buttons: the card's words.
                Body::Card { card } if card.markdown => RobotMessage::Markdown(card.text),
                Body::Card { card } => RobotMessage::text(card.text),
                Body::CardUpdate { .. } => return Err(mismatch(item)),
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
        let message = match body {
            Body::Text { content } => AppMessage::Text(content),
            Body::Markdown { content } => AppMessage::Markdown(content),
            Body::Card { card } => return self.send_card(app, item, &target, card).await,
            Body::CardUpdate { code, card } => return update_card(app, &code, &card).await,
        };
        let result = match &target {
            Target::User { user } => {
                send_members(app, &Recipients::users([user.as_str()]), &message)
                    .await
                    .map(drop)
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
                send_members(app, &to, &message).await.map(drop)
            }
            Target::Chat { chat, .. } | Target::AppChat { chat } => {
                app.client.appchat_send(chat, &message).await
            }
            Target::Robot => return Err(mismatch(item)),
        };
        result.map_err(|e| Failure::of(&e))
    }
}

impl AppCourier {
    /// A card: with its buttons to members (kept first, its code after), as its words
    /// to a group chat.
    async fn send_card(
        &self,
        app: &App,
        item: &OutboxItem,
        target: &Target,
        card: Card,
    ) -> Result<(), Failure> {
        let to = match target {
            Target::User { user } => Recipients::users([user.as_str()]),
            Target::Members {
                users,
                parties,
                tags,
            } => Recipients {
                users: users.clone(),
                parties: parties.clone(),
                tags: tags.clone(),
            },
            Target::Chat { chat, .. } | Target::AppChat { chat } => {
                let words = if card.markdown {
                    AppMessage::Markdown(card.text)
                } else {
                    AppMessage::Text(card.text)
                };
                return app
                    .client
                    .appchat_send(chat, &words)
                    .await
                    .map_err(|e| Failure::of(&e));
            }
            Target::Robot => return Err(mismatch(item)),
        };
        let kept = NewCard {
            task_id: card.task_id.clone(),
            channel: item.channel.clone(),
            target: item.target.clone(),
            card: card.to_json(),
            expires_at: chrono::DateTime::from_timestamp(card.expires_at, 0)
                .unwrap_or_else(chrono::Utc::now),
        };
        // Unkept, its buttons could not be checked: not sent until it is.
        self.cards
            .card_put(&kept)
            .await
            .map_err(|e| Failure::Retry {
                error: format!("cannot keep the card before sending it: {e}"),
                at_least: std::time::Duration::ZERO,
            })?;
        let message = AppMessage::TemplateCard(template_card(&card));
        let receipt = match send_members(app, &to, &message).await {
            Ok(receipt) => receipt,
            // An earlier attempt whose answer was lost did deliver it.
            Err(e) if item.attempts > 0 && e.code() == Some(TASK_ID_USED) => {
                tracing::info!(task = %card.task_id, "card already sent by an earlier attempt");
                return Ok(());
            }
            Err(e) => return Err(Failure::of(&e)),
        };
        if let Some(code) = receipt.response_code {
            // Sent is sent: a lost code only means no update before the first click.
            if let Err(e) = self
                .cards
                .card_set_code(&card.task_id, &code, chrono::Utc::now())
                .await
            {
                tracing::warn!(task = %card.task_id, error = %e, "could not keep a card's response_code");
            }
        }
        Ok(())
    }
}

/// Replaces a sent card for everyone it went to, with a one-time `code`.
async fn update_card(app: &App, code: &str, card: &Card) -> Result<(), Failure> {
    let update = CardUpdate::for_all(code, CardChange::Card(template_card(card)));
    match app.client.update_template_card(&update).await {
        Ok(()) => Ok(()),
        // The code may be spent whatever WeCom answered: never the same code twice.
        Err(e @ opsbot_wecom::Error::CardUpdateRefused { .. }) => {
            Err(Failure::Permanent(e.to_string()))
        }
        Err(e) => Err(Failure::of(&e)),
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
) -> Result<opsbot_wecom::api::SendReceipt, opsbot_wecom::Error> {
    let receipt = app.client.send(to, message).await?;
    if receipt.is_partial() {
        tracing::warn!(app = %app.name, ?receipt, "some recipients were invalid");
    }
    Ok(receipt)
}

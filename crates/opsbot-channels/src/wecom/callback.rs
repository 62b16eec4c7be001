//! The WeCom app's protocol for the shared pipeline: URL verification (GET) and message
//! callbacks (POST), per PROTOCOLS.md §1.7–§1.9. Quick, short answers to one person go
//! back in the encrypted passive reply; everything else through the outbox with
//! `message/send` or `appchat/send`. A confirmation to one person goes as a card
//! through the outbox, with no passive text.
//!
//! A card click (`template_card_event`, CARDS.md §3) goes to [`Engine::click`] under
//! the same budget. What it answers in time is the passive reply: the clicked button
//! replaced (`update_button`) when the action ran or someone else's click had, a text
//! when it was refused (the card stays as it is). When it ran, the whole settled card
//! also goes to everyone it was sent to (`update_template_card` with the click's
//! one-time code), so all see who acted.

use super::outbox::{Body, Target};
use super::sink::WecomSink;
use super::{App, WecomChannel};
use crate::error::{bad, CallbackError};
use crate::handoff::{within, Handoff};
use crate::inbound::{
    within_deadline, Ask, Asker, ChannelCodec, ChannelKind, Deadline, Opened, Turn,
};
use crate::query::Signed;
use crate::{TEXT_ONLY, WELCOME};
use async_trait::async_trait;
use opsbot_engine::{Click, Clicked, Engine, Response};
use opsbot_store::MessageIdStore;
use opsbot_wecom::card::update_button_reply_xml;
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::split::APP_TEXT_MAX_BYTES;
use opsbot_wecom::{Event, Message, MessageBody};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `/wecom/{app}/callback`.
pub const KIND: ChannelKind = ChannelKind {
    name: "wecom",
    route: "/wecom/{app}/callback",
    not_configured: "WeCom is not configured on this server\n",
    reply_type: "application/xml; charset=utf-8",
    nothing: "",
};

/// A passive reply of the app, before it is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppReply {
    /// A text message to the sender.
    Text(String),
    /// A click's answer: the clicked button of the clicker's copy now reads this, greyed.
    UpdateButton(String),
}

/// What the clicker reads when the engine task ended without answering.
const CLICK_LOST: &str = "⚠ 处理卡片按钮时出错,请重试或直接发送命令";

#[async_trait]
impl ChannelCodec for WecomChannel {
    type Endpoint = App;
    type Message = Message;
    type Reply = AppReply;

    const KIND: &'static ChannelKind = &KIND;
    const SIGNATURE: &'static str = "msg_signature";

    fn endpoint(&self, name: &str) -> Result<Arc<App>, CallbackError> {
        self.apps
            .get(name)
            .cloned()
            .ok_or_else(|| CallbackError::UnknownApp(name.to_string()))
    }

    fn channel(app: &App) -> &str {
        &app.channel
    }

    fn message_ids(&self) -> &dyn MessageIdStore {
        self.store.as_ref()
    }

    fn timestamp_window(&self) -> Duration {
        self.settings.timestamp_window
    }

    /// The decrypted `echostr`.
    fn verify_url(&self, app: &App, s: &Signed, echostr: &str) -> Result<String, CallbackError> {
        app.crypto
            .verify_url(&s.signature, &s.timestamp, &s.nonce, echostr)
            .map_err(bad)
    }

    fn open(&self, app: &App, s: &Signed, body: &str) -> Result<Opened, CallbackError> {
        let plaintext = app
            .crypto
            .decrypt_message(&s.signature, &s.timestamp, &s.nonce, body)
            .map_err(bad)?;
        Ok(Opened {
            plaintext,
            single_use: None,
        })
    }

    fn decode(&self, app: &App, xml: &str) -> Result<Message, CallbackError> {
        let msg = Message::parse(xml).map_err(bad)?;
        if let Some(agent) = msg.agent_id {
            if agent != app.agent_id {
                return Err(bad(format!(
                    "message for agent {agent} reached app {} (agent {})",
                    app.name, app.agent_id
                )));
            }
        }
        Ok(msg)
    }

    fn dedup_key(msg: &Message) -> String {
        msg.dedup_key()
    }

    fn turn(&self, app: &App, msg: &Message) -> Turn<AppReply> {
        let (text, chat) = match &msg.body {
            MessageBody::Text {
                content, chat_id, ..
            } => (content.clone(), chat_id.clone()),
            MessageBody::Event(Event::Click { key }) => (key.clone(), None),
            MessageBody::Event(Event::TemplateCard {
                event_key,
                task_id,
                selected_items,
                ..
            }) => {
                return Turn::Click(Click {
                    channel: app.channel.clone(),
                    user: msg.from.clone(),
                    chat: None,
                    task_id: task_id.clone(),
                    key: event_key.clone(),
                    selected: selected_items
                        .iter()
                        .map(|i| (i.question_key.clone(), i.option_ids.clone()))
                        .collect(),
                })
            }
            MessageBody::Event(Event::EnterAgent) => {
                return Turn::Reply(AppReply::Text(WELCOME.into()))
            }
            MessageBody::Event(_) => return Turn::Nothing,
            MessageBody::Other { .. } => return Turn::Reply(AppReply::Text(TEXT_ONLY.into())),
        };
        Turn::Ask(Ask {
            text,
            chat,
            typed: true,
        })
    }

    async fn converse(
        &self,
        app: &Arc<App>,
        msg: &Message,
        ask: Ask,
    ) -> Result<Option<AppReply>, CallbackError> {
        within_deadline(self, app, msg, ask).await
    }

    /// A card click: the engine's answer within the ack budget, the rest later.
    async fn click(
        &self,
        app: &Arc<App>,
        msg: &Message,
        click: Click,
    ) -> Result<Option<AppReply>, CallbackError> {
        let code = match &msg.body {
            MessageBody::Event(Event::TemplateCard { response_code, .. }) => response_code.clone(),
            _ => None,
        };
        let sink = Arc::new(self.sink(
            app,
            Target::User {
                user: msg.from.clone(),
            },
        ));
        let engine = self.engine.clone();
        let jobs: Arc<dyn opsbot_engine::ReplySink> = sink.clone();
        let late_sink = sink.clone();
        let late_code = code.clone();
        let answer = within(
            async move { engine.click(click, jobs).await },
            move |clicked| {
                // Too late for the passive reply: everyone's copy, the clicker included,
                // changes by the API; a refusal is told by message.
                if let Some(text) = clicked_late(&late_sink, late_code.as_deref(), clicked) {
                    late_sink.push(text);
                }
            },
            self.settings.ack_budget,
        )
        .await;
        Ok(match answer {
            Handoff::InTime(clicked) => clicked_in_time(&sink, code.as_deref(), clicked),
            Handoff::Late => {
                tracing::warn!(app = %app.name, "card click slower than the ack budget; its answer follows by the outbox");
                None
            }
            Handoff::Lost => {
                tracing::error!(app = %app.name, "the engine task ended without answering a click");
                sink.push(CLICK_LOST.into());
                None
            }
        })
    }

    /// The encrypted passive reply to `msg`.
    fn encode(&self, app: &App, s: &Signed, msg: &Message, reply: AppReply) -> String {
        let now = chrono::Utc::now().timestamp();
        let plain = match reply {
            AppReply::Text(text) => text_reply_xml(&msg.from, &app.corp_id, now, &text),
            AppReply::UpdateButton(name) => {
                update_button_reply_xml(&msg.from, &app.corp_id, now, &name)
            }
        };
        app.crypto.encrypt_reply(&plain, &s.timestamp, &s.nonce)
    }
}

impl WecomChannel {
    /// Where later replies to `target` through `app` go.
    fn sink(&self, app: &App, target: Target) -> WecomSink {
        WecomSink {
            channel: app.channel.clone(),
            target,
            queue: self.queue.clone(),
            progress_interval: self.settings.progress_interval,
            last_progress: Mutex::new(HashMap::new()),
        }
    }
}

/// The passive reply to a click answered in time; what changes for everyone is queued.
fn clicked_in_time(sink: &WecomSink, code: Option<&str>, clicked: Clicked) -> Option<AppReply> {
    match clicked {
        Clicked::Done {
            button_text,
            card,
            job,
            message,
        } => {
            // With the click's code the card changes for everyone, the clicker too, and
            // the passive reply stays empty (CARDS.md §6.2): a passive `update_button`
            // greys all the clicker's buttons, and if it were applied after the update
            // it would leave them grey for good.
            let updated = code.is_some();
            update_everyone(sink, code, card);
            tell_outcome(sink, job, message);
            (!updated).then_some(AppReply::UpdateButton(button_text))
        }
        // Said, not shown on the card: the winner's update changes everyone's card.
        Clicked::Taken { button_text, .. } => Some(AppReply::Text(button_text)),
        Clicked::Refused { text } if text.len() <= APP_TEXT_MAX_BYTES => Some(AppReply::Text(text)),
        Clicked::Refused { text } => {
            sink.push(text);
            None
        }
    }
}

/// A click answered after the passive reply: the card changes for everyone (the clicker
/// too) where it can; the text to tell the clicker by message, if any.
fn clicked_late(sink: &WecomSink, code: Option<&str>, clicked: Clicked) -> Option<String> {
    match clicked {
        Clicked::Done {
            button_text,
            card,
            job,
            message,
        } => {
            let updated = code.is_some();
            update_everyone(sink, code, card);
            tell_outcome(sink, job, message);
            (!updated).then_some(button_text)
        }
        Clicked::Taken { button_text, .. } => Some(button_text),
        Clicked::Refused { text } => Some(text),
    }
}

/// Queues the settled card for everyone it went to, with the click's one-time code.
fn update_everyone(sink: &WecomSink, code: Option<&str>, card: opsbot_core::Card) {
    match code {
        Some(code) => sink.push_body(Body::CardUpdate {
            code: code.to_string(),
            card,
        }),
        None => {
            tracing::warn!(task = %card.task_id, "a click without a ResponseCode: the card is updated for the clicker only")
        }
    }
}

/// What a button's command answered, when no job's result will follow.
fn tell_outcome(sink: &WecomSink, job: Option<opsbot_core::JobId>, message: String) {
    if job.is_none() && !message.trim().is_empty() {
        sink.push(message);
    }
}

#[async_trait]
impl Deadline for WecomChannel {
    type Courier = WecomSink;

    fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn ack_budget(&self) -> Duration {
        self.settings.ack_budget
    }

    async fn asker(
        &self,
        app: &App,
        msg: &Message,
        ask: &Ask,
    ) -> Result<Asker<WecomSink, AppReply>, CallbackError> {
        let target = match &ask.chat {
            Some(chat) => Target::Chat {
                chat: chat.clone(),
                mention: msg.from.clone(),
            },
            None => Target::User {
                user: msg.from.clone(),
            },
        };
        Ok(Asker::User(
            msg.from.clone(),
            Arc::new(self.sink(app, target)),
        ))
    }

    /// Passive only to one person and within WeCom's size; a group is answered with a
    /// mention, which only `appchat/send` can do. A card (a confirmation's buttons)
    /// cannot be a passive reply: it goes by the outbox, and nothing is said now.
    fn in_time(&self, sink: &WecomSink, response: Response) -> Option<AppReply> {
        if sink.card_of(&response).is_some() {
            sink.push_response(response);
            None
        } else if matches!(sink.target, Target::User { .. })
            && response.text.len() <= APP_TEXT_MAX_BYTES
        {
            Some(AppReply::Text(response.text))
        } else {
            sink.push(response.text);
            None
        }
    }

    fn lost(&self, sink: &WecomSink) -> Option<AppReply> {
        sink.push("⚠ 处理消息时出错,请重试".into());
        None
    }
}

//! The WeCom app's protocol for the shared pipeline: URL verification (GET) and message
//! callbacks (POST), per PROTOCOLS.md §1.7–§1.9. Quick, short answers to one person go
//! back in the encrypted passive reply; everything else through the outbox with
//! `message/send` or `appchat/send`.

use super::outbox::Target;
use super::sink::WecomSink;
use super::{App, WecomChannel};
use crate::error::{bad, CallbackError};
use crate::inbound::{
    within_deadline, Ask, Asker, ChannelCodec, ChannelKind, Deadline, Opened, Turn,
};
use crate::query::Signed;
use crate::{TEXT_ONLY, WELCOME};
use async_trait::async_trait;
use opsbot_engine::{Engine, Response};
use opsbot_store::MessageIdStore;
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

#[async_trait]
impl ChannelCodec for WecomChannel {
    type Endpoint = App;
    type Message = Message;
    /// The text of the passive reply.
    type Reply = String;

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

    fn turn(&self, _app: &App, msg: &Message) -> Turn<String> {
        let (text, chat) = match &msg.body {
            MessageBody::Text {
                content, chat_id, ..
            } => (content.clone(), chat_id.clone()),
            MessageBody::Event(Event::Click { key }) => (key.clone(), None),
            MessageBody::Event(Event::TemplateCard { event_key, .. }) => (event_key.clone(), None),
            MessageBody::Event(Event::EnterAgent) => return Turn::Reply(WELCOME.into()),
            MessageBody::Event(_) => return Turn::Nothing,
            MessageBody::Other { .. } => return Turn::Reply(TEXT_ONLY.into()),
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
    ) -> Result<Option<String>, CallbackError> {
        within_deadline(self, app, msg, ask).await
    }

    /// The encrypted passive text reply to `msg`.
    fn encode(&self, app: &App, s: &Signed, msg: &Message, text: String) -> String {
        let plain = text_reply_xml(
            &msg.from,
            &app.corp_id,
            chrono::Utc::now().timestamp(),
            &text,
        );
        app.crypto.encrypt_reply(&plain, &s.timestamp, &s.nonce)
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
    ) -> Result<Asker<WecomSink, String>, CallbackError> {
        let target = match &ask.chat {
            Some(chat) => Target::Chat {
                chat: chat.clone(),
                mention: msg.from.clone(),
            },
            None => Target::User {
                user: msg.from.clone(),
            },
        };
        let sink = Arc::new(WecomSink {
            channel: app.channel.clone(),
            target,
            queue: self.queue.clone(),
            progress_interval: self.settings.progress_interval,
            last_progress: Mutex::new(HashMap::new()),
        });
        Ok(Asker::User(msg.from.clone(), sink))
    }

    /// Passive only to one person and within WeCom's size; a group is answered with a
    /// mention, which only `appchat/send` can do.
    fn in_time(&self, sink: &WecomSink, response: Response) -> Option<String> {
        if matches!(sink.target, Target::User { .. }) && response.text.len() <= APP_TEXT_MAX_BYTES {
            Some(response.text)
        } else {
            sink.push(response.text);
            None
        }
    }

    fn lost(&self, sink: &WecomSink) -> Option<String> {
        sink.push("⚠ 处理消息时出错,请重试".into());
        None
    }
}

//! The callback URL: URL verification (GET) and message callbacks (POST), per
//! PROTOCOLS.md §1.7–§1.9.

use super::outbox::Target;
use super::sink::WecomSink;
use super::{App, WecomChannel};
use crate::error::{bad, unavailable, CallbackError};
use crate::handoff::{hand_off, Handoff, Late};
use crate::query::{fresh, signed, Signed};
use opsbot_engine::{Incoming, ReplySink};
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::split::APP_TEXT_MAX_BYTES;
use opsbot_wecom::{Event, Message, MessageBody};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{TEXT_ONLY, WELCOME};

impl WecomChannel {
    fn app(&self, name: &str) -> Result<Arc<App>, CallbackError> {
        self.apps
            .get(name)
            .cloned()
            .ok_or_else(|| CallbackError::UnknownApp(name.to_string()))
    }

    fn fresh(&self, timestamp: &str) -> Result<(), CallbackError> {
        fresh(timestamp, self.settings.timestamp_window)
    }

    /// GET: proves we hold the token and key by returning the decrypted `echostr`.
    pub fn verify_url(&self, app: &str, raw_query: &str) -> Result<String, CallbackError> {
        let app = self.app(app)?;
        let s = signed(raw_query, "msg_signature")?;
        let echostr = s
            .rest
            .get("echostr")
            .ok_or_else(|| bad("missing query parameter echostr"))?;
        self.fresh(&s.timestamp)?;
        app.crypto
            .verify_url(&s.signature, &s.timestamp, &s.nonce, echostr)
            .map_err(bad)
    }

    /// POST: one message or event. Returns the HTTP body: an encrypted passive reply,
    /// or empty (acknowledged; anything further comes by `message/send`).
    pub async fn receive(
        &self,
        app_name: &str,
        raw_query: &str,
        body: &str,
    ) -> Result<String, CallbackError> {
        let app = self.app(app_name)?;
        let s = signed(raw_query, "msg_signature")?;
        self.fresh(&s.timestamp)?;
        let xml = app
            .crypto
            .decrypt_message(&s.signature, &s.timestamp, &s.nonce, body)
            .map_err(bad)?;
        let msg = Message::parse(&xml).map_err(bad)?;
        if let Some(agent) = msg.agent_id {
            if agent != app.agent_id {
                return Err(bad(format!(
                    "message for agent {agent} reached app {} (agent {})",
                    app.name, app.agent_id
                )));
            }
        }
        // Marked before it runs: WeCom's retries (and replays within the timestamp
        // window) find it and get an empty acknowledgement, so nothing runs twice.
        let fresh = self
            .store
            .mark_processed(&app.channel, &msg.dedup_key())
            .await
            .map_err(unavailable)?;
        if !fresh {
            tracing::debug!(app = %app.name, key = %msg.dedup_key(), "duplicate callback ignored");
            return Ok(String::new());
        }
        let (text, chat) = match &msg.body {
            MessageBody::Text {
                content, chat_id, ..
            } => (content.clone(), chat_id.clone()),
            MessageBody::Event(Event::Click { key }) => (key.clone(), None),
            MessageBody::Event(Event::TemplateCard { event_key, .. }) => (event_key.clone(), None),
            MessageBody::Event(Event::EnterAgent) => {
                return Ok(self.passive(&app, &msg, &s, WELCOME))
            }
            MessageBody::Event(_) => return Ok(String::new()),
            MessageBody::Other { .. } => return Ok(self.passive(&app, &msg, &s, TEXT_ONLY)),
        };
        let target = match &chat {
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
            target: target.clone(),
            queue: self.queue.clone(),
            progress_interval: self.settings.progress_interval,
            last_progress: Mutex::new(HashMap::new()),
        });
        let incoming = Incoming {
            channel: app.channel.clone(),
            user: msg.from.clone(),
            chat,
            text,
            assume_yes: false,
        };
        let jobs: Arc<dyn ReplySink> = sink.clone();
        let late: Arc<dyn Late> = sink.clone();
        // If the engine is slow, the callback still answers in time and the response
        // follows through the outbox.
        let response = match hand_off(&self.engine, incoming, jobs, late, self.settings.ack_budget)
            .await
        {
            Handoff::InTime(response) => response,
            Handoff::Lost => {
                tracing::error!(app = %app.name, "the engine task ended without a response");
                sink.push("⚠ 处理消息时出错,请重试".into());
                return Ok(String::new());
            }
            Handoff::Late => {
                tracing::warn!(app = %app.name, "engine slower than the ack budget; the reply follows by message/send");
                return Ok(String::new());
            }
        };
        if matches!(target, Target::User { .. }) && response.text.len() <= APP_TEXT_MAX_BYTES {
            Ok(self.passive(&app, &msg, &s, &response.text))
        } else {
            sink.push(response.text);
            Ok(String::new())
        }
    }

    /// The encrypted passive text reply to `msg`.
    fn passive(&self, app: &App, msg: &Message, s: &Signed, text: &str) -> String {
        let plain = text_reply_xml(
            &msg.from,
            &app.corp_id,
            chrono::Utc::now().timestamp(),
            text,
        );
        app.crypto.encrypt_reply(&plain, &s.timestamp, &s.nonce)
    }
}

//! The robot's protocol for the shared pipeline: URL verification (GET, answered from
//! memory well within WeCom's 1 s) and callbacks (POST). Its capability is the stream:
//! a user message is acknowledged once its stream is recorded (the streams of messages
//! arriving together in one write; the record is its de-duplication), so a crash after
//! the acknowledgement cannot lose it, and a store that cannot record it answers 503,
//! which WeCom retries; the engine runs after the acknowledgement. Refreshes get the
//! stream as it stands; events get a welcome or nothing, card clicks the engine's
//! answer ([`super::click`]).

use super::courier::ResponseUrlTarget;
use super::quiet::Quiet;
use super::stream::{self, StreamSink};
use super::{Bot, BotChannel};
use crate::error::{bad, unavailable, CallbackError};
use crate::inbound::{Ask, ChannelCodec, ChannelKind, Opened, Turn};
use crate::query::Signed;
use crate::{TEXT_ONLY, WELCOME};
use async_trait::async_trait;
use opsbot_engine::{Click, Engine, Incoming, ReplySink};
use opsbot_store::{
    MessageIdStore, NewOutbox, NewStream, Store, StreamOpened, StreamRecord, StreamState,
};
use opsbot_wecom::aibot::{self, BotBody, BotMessage, Chat};
use rand::distr::{Alphanumeric, SampleString};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// `/wecom/bot/{bot}/callback`.
pub const KIND: ChannelKind = ChannelKind {
    name: "wecom-bot",
    route: "/wecom/bot/{bot}/callback",
    not_configured: "no WeCom robot is configured on this server\n",
    reply_type: "application/json; charset=utf-8",
    nothing: "",
};

/// What a refresh of a stream we do not know is told; it ends the stream.
const STREAM_GONE: &str = "⚠ 这条消息的回复已失效(已超过回复时限)。发送 任务 查看最近任务的结果";

#[async_trait]
impl ChannelCodec for BotChannel {
    type Endpoint = Bot;
    type Message = BotMessage;
    /// The plain JSON reply, before encryption.
    type Reply = String;

    const KIND: &'static ChannelKind = &KIND;
    const SIGNATURE: &'static str = "msg_signature";
    const RECORDS_ASKS: bool = true;

    fn endpoint(&self, name: &str) -> Result<Arc<Bot>, CallbackError> {
        self.bots
            .get(name)
            .cloned()
            .ok_or_else(|| CallbackError::UnknownBot(name.to_string()))
    }

    fn channel(bot: &Bot) -> &str {
        &bot.channel
    }

    fn message_ids(&self) -> &dyn MessageIdStore {
        self.store.as_ref()
    }

    fn timestamp_window(&self) -> Duration {
        self.settings.timestamp_window
    }

    fn arrived(&self) {
        self.quiet.arrived();
    }

    /// The decrypted `echostr`.
    fn verify_url(&self, bot: &Bot, s: &Signed, echostr: &str) -> Result<String, CallbackError> {
        bot.crypto
            .verify_url(&s.signature, &s.timestamp, &s.nonce, echostr)
            .map_err(bad)
    }

    fn open(&self, bot: &Bot, s: &Signed, body: &str) -> Result<Opened, CallbackError> {
        let plaintext = bot
            .crypto
            .decrypt_json_message(&s.signature, &s.timestamp, &s.nonce, body)
            .map_err(bad)?;
        Ok(Opened {
            plaintext,
            single_use: None,
        })
    }

    fn decode(&self, bot: &Bot, json: &str) -> Result<BotMessage, CallbackError> {
        let msg = BotMessage::parse(json).map_err(bad)?;
        if let Some(expected) = &bot.bot_id {
            if &msg.bot_id != expected {
                return Err(bad(format!(
                    "callback for robot {:?} reached robot {} ({expected})",
                    msg.bot_id, bot.name
                )));
            }
        }
        Ok(msg)
    }

    fn dedup_key(msg: &BotMessage) -> String {
        msg.msg_id.clone()
    }

    fn turn(&self, bot: &Bot, msg: &BotMessage) -> Turn<String> {
        if let Some(event) = &msg.card_event {
            return Turn::Click(Click {
                channel: bot.channel.clone(),
                user: msg.from.clone(),
                chat: match &msg.chat {
                    Chat::Group(chat) => Some(chat.clone()),
                    Chat::Single => None,
                },
                task_id: event.task_id.clone(),
                key: event.event_key.clone(),
                selected: event
                    .selected_items
                    .iter()
                    .map(|i| (i.question_key.clone(), i.option_ids.clone()))
                    .collect(),
            });
        }
        match &msg.body {
            BotBody::StreamRefresh { id } => Turn::Resume(id.clone()),
            BotBody::Text(text) => {
                let (chat, text) = match &msg.chat {
                    Chat::Group(chat) => (Some(chat.clone()), aibot::strip_mention(text)),
                    Chat::Single => (None, text.trim()),
                };
                Turn::Ask(Ask {
                    text: text.to_string(),
                    chat,
                    typed: true,
                })
            }
            // A text reply is documented for the welcome only.
            BotBody::Event(event) if event == "enter_chat" => {
                Turn::Reply(aibot::text_reply_json(WELCOME))
            }
            BotBody::Event(_) => Turn::Nothing,
            BotBody::Other(_) => Turn::Reply(aibot::stream_reply_json(
                &new_stream_id(),
                true,
                &address(msg, TEXT_ONLY),
            )),
        }
    }

    /// A refresh: the stream as it stands.
    async fn resume(
        &self,
        bot: &Arc<Bot>,
        stream_id: &str,
    ) -> Result<Option<String>, CallbackError> {
        let record = self
            .store
            .stream_get(&bot.channel, stream_id)
            .await
            .map_err(unavailable)?;
        let reply = match record {
            Some(record) => self.stream_state(bot, record).await?,
            None => {
                tracing::warn!(bot = %bot.name, stream = %stream_id, "refresh for an unknown stream; ending it");
                aibot::stream_reply_json(stream_id, true, STREAM_GONE)
            }
        };
        Ok(Some(reply))
    }

    /// A user message: its stream recorded, then acknowledged (empty); the engine runs
    /// in the background. A retry of a message already recorded is acknowledged with the
    /// same stream and runs nothing.
    async fn converse(
        &self,
        bot: &Arc<Bot>,
        msg: &BotMessage,
        ask: Ask,
    ) -> Result<Option<String>, CallbackError> {
        let stream_id = aibot::stream_id(&msg.msg_id);
        let stream = NewStream {
            channel: bot.channel.clone(),
            stream_id: stream_id.clone(),
            msg_id: msg.msg_id.clone(),
            asker: msg.from.clone(),
            chat: ask.chat,
            response_url: msg.response_url.clone(),
        };
        match self.opener.open(stream).await {
            Ok(StreamOpened::New(record)) => {
                let run = Run {
                    store: self.store.clone(),
                    engine: self.engine.clone(),
                    outbox: self.outbox.clone(),
                    quiet: self.quiet.clone(),
                    response_url_ttl: self.settings.response_url_ttl,
                };
                tokio::spawn(run.answer(record, ask.text));
            }
            Ok(StreamOpened::Existing(_)) => {
                tracing::debug!(bot = %bot.name, msgid = %msg.msg_id, "duplicate message; its stream is answering it");
            }
            Err(e) => {
                tracing::warn!(bot = %bot.name, msgid = %msg.msg_id, error = %e, "cannot record a robot message; refused for WeCom to retry");
                return Err(unavailable(format!("cannot record the message: {e}")));
            }
        }
        Ok(Some(aibot::stream_reply_json(&stream_id, false, "")))
    }

    async fn click(
        &self,
        bot: &Arc<Bot>,
        msg: &BotMessage,
        click: Click,
    ) -> Result<Option<String>, CallbackError> {
        Ok(Some(self.answer_click(bot, msg, click).await))
    }

    fn encode(&self, bot: &Bot, s: &Signed, _msg: &BotMessage, plain: String) -> String {
        bot.crypto
            .encrypt_json_reply(&plain, &s.timestamp, &s.nonce)
    }
}

impl BotChannel {
    /// The reply for `record`: what there is so far while it runs, the whole answer when
    /// done; past its deadline it is ended and the rest left to `response_url`.
    async fn stream_state(&self, bot: &Bot, record: StreamRecord) -> Result<String, CallbackError> {
        let id = record.stream_id.clone();
        match record.state {
            StreamState::Done | StreamState::HandedOver => {
                Ok(aibot::stream_reply_json(&id, true, &record.content))
            }
            StreamState::Open => {
                let age = chrono::Utc::now() - record.created_at;
                let window = chrono::Duration::from_std(self.settings.stream_window)
                    .unwrap_or(chrono::Duration::MAX);
                if age < window {
                    return Ok(aibot::stream_reply_json(&id, false, &record.content));
                }
                let content = stream::handover_text(&record);
                let handed = self
                    .store
                    .stream_hand_over(&bot.channel, &id, &content)
                    .await
                    .map_err(unavailable)?;
                if handed {
                    tracing::info!(bot = %bot.name, stream = %id, job = ?record.job_id, "stream window over; the result follows by response_url");
                    return Ok(aibot::stream_reply_json(&id, true, &content));
                }
                // Finished meanwhile: the whole answer after all.
                let now = self
                    .store
                    .stream_get(&bot.channel, &id)
                    .await
                    .map_err(unavailable)?;
                let content = now.map(|r| r.content).unwrap_or(content);
                Ok(aibot::stream_reply_json(&id, true, &content))
            }
        }
    }
}

/// Runs a recorded message: the engine's answer and its job's output fill the stream.
struct Run {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    outbox: mpsc::UnboundedSender<Vec<NewOutbox>>,
    quiet: Arc<Quiet>,
    response_url_ttl: Duration,
}

impl Run {
    async fn answer(self, record: StreamRecord, text: String) {
        // Acknowledge first, work after (see `quiet`).
        self.quiet.settled().await;
        let sink = StreamSink::start(
            self.store.clone(),
            &record,
            self.outbox.clone(),
            self.response_url_ttl,
        );
        let incoming = Incoming {
            channel: record.channel.clone(),
            user: record.asker.clone(),
            chat: record.chat.clone(),
            text,
            assume_yes: false,
        };
        let jobs: Arc<dyn ReplySink> = sink.clone();
        let mut response = self.engine.handle(incoming, jobs).await;
        // The stream says the prompt (确认 typed still works); the card with its
        // buttons follows as a message of its own, by the message's response_url.
        if let (Some(card), Some(url)) = (response.card.take(), &record.response_url) {
            let target = ResponseUrlTarget {
                response_url: Some(url.clone()),
                expires_at: record.created_at
                    + chrono::Duration::from_std(self.response_url_ttl).unwrap_or_default(),
                stream: None,
            };
            let _ = self.outbox.send(vec![super::click::card_item(
                &record.channel,
                &target,
                card,
            )]);
        }
        sink.respond(response);
    }
}

fn new_stream_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}

/// `text` addressed to the sender in a group chat.
fn address(msg: &BotMessage, text: &str) -> String {
    match msg.chat {
        Chat::Group(_) => crate::mention(&msg.from, text),
        Chat::Single => text.to_string(),
    }
}

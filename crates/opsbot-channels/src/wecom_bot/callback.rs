//! The robot's callback URL: URL verification (GET, answered from memory well within
//! WeCom's 1 s) and callbacks (POST): a user message is acknowledged once its stream is
//! recorded (the streams of messages arriving together in one write), so a crash after
//! the acknowledgement cannot lose it, and a store that cannot record it answers 503,
//! which WeCom retries; refreshes get the stream as it stands; events get a welcome or
//! nothing.

use super::quiet::Quiet;
use super::stream::{self, StreamSink};
use super::{Bot, BotChannel};
use crate::error::{bad, unavailable, CallbackError};
use crate::query::{fresh, signed};
use crate::{TEXT_ONLY, WELCOME};
use opsbot_engine::{Engine, Incoming, ReplySink};
use opsbot_store::{NewOutbox, NewStream, Store, StreamOpened, StreamRecord, StreamState};
use opsbot_wecom::aibot::{self, BotBody, BotMessage, Chat};
use rand::distr::{Alphanumeric, SampleString};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What a refresh of a stream we do not know is told; it ends the stream.
const STREAM_GONE: &str = "⚠ 这条消息的回复已失效(已超过回复时限)。发送 任务 查看最近任务的结果";

impl BotChannel {
    fn bot(&self, name: &str) -> Result<Arc<Bot>, CallbackError> {
        self.bots
            .get(name)
            .cloned()
            .ok_or_else(|| CallbackError::UnknownBot(name.to_string()))
    }

    /// GET: proves we hold the token and key by returning the decrypted `echostr`.
    pub fn verify_url(&self, bot: &str, raw_query: &str) -> Result<String, CallbackError> {
        let bot = self.bot(bot)?;
        let s = signed(raw_query, "msg_signature")?;
        let echostr = s
            .rest
            .get("echostr")
            .ok_or_else(|| bad("missing query parameter echostr"))?;
        fresh(&s.timestamp, self.settings.timestamp_window)?;
        bot.crypto
            .verify_url(&s.signature, &s.timestamp, &s.nonce, echostr)
            .map_err(bad)
    }

    /// POST: one callback. Returns the HTTP body: an encrypted JSON reply, or empty (no
    /// reply).
    pub async fn receive(
        &self,
        bot_name: &str,
        raw_query: &str,
        body: &str,
    ) -> Result<String, CallbackError> {
        self.quiet.arrived();
        let bot = self.bot(bot_name)?;
        let s = signed(raw_query, "msg_signature")?;
        fresh(&s.timestamp, self.settings.timestamp_window)?;
        let json = bot
            .crypto
            .decrypt_json_message(&s.signature, &s.timestamp, &s.nonce, body)
            .map_err(bad)?;
        let msg = BotMessage::parse(&json).map_err(bad)?;
        if let Some(expected) = &bot.bot_id {
            if &msg.bot_id != expected {
                return Err(bad(format!(
                    "callback for robot {:?} reached robot {} ({expected})",
                    msg.bot_id, bot.name
                )));
            }
        }
        let reply = match &msg.body {
            BotBody::StreamRefresh { id } => Some(self.refresh(&bot, id).await?),
            BotBody::Text(text) => Some(self.ask(&bot, &msg, text).await?),
            BotBody::Event(event) => {
                let fresh = self.first_time(&bot, &msg).await?;
                // A text reply is documented for the welcome only.
                (fresh && event == "enter_chat").then(|| aibot::text_reply_json(WELCOME))
            }
            BotBody::Other(_) => {
                let fresh = self.first_time(&bot, &msg).await?;
                fresh.then(|| {
                    aibot::stream_reply_json(&new_stream_id(), true, &address(&msg, TEXT_ONLY))
                })
            }
        };
        Ok(reply
            .map(|plain| {
                bot.crypto
                    .encrypt_json_reply(&plain, &s.timestamp, &s.nonce)
            })
            .unwrap_or_default())
    }

    /// Records a callback that opens no stream; `false` for a retry or replay.
    async fn first_time(&self, bot: &Bot, msg: &BotMessage) -> Result<bool, CallbackError> {
        let fresh = self
            .store
            .mark_processed(&bot.channel, &msg.msg_id)
            .await
            .map_err(unavailable)?;
        if !fresh {
            tracing::debug!(bot = %bot.name, msgid = %msg.msg_id, "duplicate callback ignored");
        }
        Ok(fresh)
    }

    /// A user message: its stream recorded, then acknowledged (empty); the engine runs
    /// in the background. A retry of a message already recorded is acknowledged with the
    /// same stream and runs nothing.
    async fn ask(
        &self,
        bot: &Arc<Bot>,
        msg: &BotMessage,
        text: &str,
    ) -> Result<String, CallbackError> {
        let (chat, text) = match &msg.chat {
            Chat::Group(chat) => (Some(chat.clone()), aibot::strip_mention(text)),
            Chat::Single => (None, text.trim()),
        };
        let stream_id = aibot::stream_id(&msg.msg_id);
        let stream = NewStream {
            channel: bot.channel.clone(),
            stream_id: stream_id.clone(),
            msg_id: msg.msg_id.clone(),
            asker: msg.from.clone(),
            chat,
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
                tokio::spawn(run.answer(record, text.to_string()));
            }
            Ok(StreamOpened::Existing(_)) => {
                tracing::debug!(bot = %bot.name, msgid = %msg.msg_id, "duplicate message; its stream is answering it");
            }
            Err(e) => {
                tracing::warn!(bot = %bot.name, msgid = %msg.msg_id, error = %e, "cannot record a robot message; refused for WeCom to retry");
                return Err(unavailable(format!("cannot record the message: {e}")));
            }
        }
        Ok(aibot::stream_reply_json(&stream_id, false, ""))
    }

    /// A refresh: the stream as it stands.
    async fn refresh(&self, bot: &Bot, stream_id: &str) -> Result<String, CallbackError> {
        let record = self
            .store
            .stream_get(&bot.channel, stream_id)
            .await
            .map_err(unavailable)?;
        match record {
            Some(record) => self.stream_state(bot, record).await,
            None => {
                tracing::warn!(bot = %bot.name, stream = %stream_id, "refresh for an unknown stream; ending it");
                Ok(aibot::stream_reply_json(stream_id, true, STREAM_GONE))
            }
        }
    }

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
            self.outbox,
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
        let response = self.engine.handle(incoming, jobs).await;
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

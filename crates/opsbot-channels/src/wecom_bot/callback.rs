//! The robot's callback URL: URL verification (GET, answered from memory well within
//! WeCom's 1 s) and callbacks (POST): user messages open a stream and are acknowledged
//! at once, refreshes get the stream as it stands, events get a welcome or nothing.

use super::stream::{self, StreamSink};
use super::{Bot, BotChannel};
use crate::error::{bad, unavailable, CallbackError};
use crate::query::{fresh, signed};
use crate::{TEXT_ONLY, WELCOME};
use opsbot_engine::{Incoming, ReplySink};
use opsbot_store::{NewStream, StreamOpened, StreamRecord, StreamState};
use opsbot_wecom::aibot::{self, BotBody, BotMessage, Chat};
use rand::distr::{Alphanumeric, SampleString};
use std::sync::Arc;

/// What a refresh of a stream we do not know is told; it ends the stream.
const STREAM_GONE: &str = "⚠ 这条消息的回复已失效(opsbot 重启过,或已超过回复时限)。发送 任务 查看最近任务的结果";

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
            .map(|plain| bot.crypto.encrypt_json_reply(&plain, &s.timestamp, &s.nonce))
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

    /// A user message: open its stream (or find the one a retry already has), start the
    /// engine, and acknowledge with the empty stream.
    async fn ask(&self, bot: &Bot, msg: &BotMessage, text: &str) -> Result<String, CallbackError> {
        let (chat, text) = match &msg.chat {
            Chat::Group(chat) => (Some(chat.clone()), aibot::strip_mention(text)),
            Chat::Single => (None, text.trim()),
        };
        let opened = self
            .store
            .stream_open(&NewStream {
                channel: bot.channel.clone(),
                stream_id: new_stream_id(),
                msg_id: msg.msg_id.clone(),
                asker: msg.from.clone(),
                chat: chat.clone(),
                response_url: msg.response_url.clone(),
            })
            .await
            .map_err(unavailable)?;
        let record = match opened {
            StreamOpened::New(record) => record,
            StreamOpened::Existing(record) => {
                // WeCom's retry: the stream it should have had, and nothing runs again.
                tracing::debug!(bot = %bot.name, msgid = %msg.msg_id, "duplicate message; answering with its stream");
                return self.stream_state(bot, record).await;
            }
        };
        if let Some(chat) = &chat {
            tracing::debug!(bot = %bot.name, chat = %chat, user = %msg.from, "group message");
        }
        let sink = StreamSink::start(
            self.store.clone(),
            &record,
            self.outbox.clone(),
            self.settings.response_url_ttl,
        );
        let incoming = Incoming {
            channel: bot.channel.clone(),
            user: msg.from.clone(),
            chat,
            text: text.to_string(),
            assume_yes: false,
        };
        let engine = self.engine.clone();
        tokio::spawn(async move {
            let jobs: Arc<dyn ReplySink> = sink.clone();
            let response = engine.handle(incoming, jobs).await;
            sink.respond(response);
        });
        Ok(aibot::stream_reply_json(&record.stream_id, false, ""))
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

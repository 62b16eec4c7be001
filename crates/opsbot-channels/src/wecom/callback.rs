//! The callback URL: URL verification (GET) and message callbacks (POST), per
//! PROTOCOLS.md §1.7–§1.9.

use super::outbox::Target;
use super::sink::WecomSink;
use super::{App, WecomChannel};
use opsbot_engine::{Incoming, ReplySink};
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::split::APP_TEXT_MAX_BYTES;
use opsbot_wecom::{check_timestamp, Event, Message, MessageBody};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const WELCOME: &str = "欢迎使用 opsbot。发送 帮助 查看可用命令,发送 菜单 使用数字菜单";
const TEXT_ONLY: &str = "暂时只支持文字命令。发送 帮助 查看可用命令";

/// Why a callback was refused; the HTTP layer maps it to a status.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("unknown WeCom app {0:?}")]
    UnknownApp(String),
    #[error("{0}")]
    BadRequest(String),
    /// The store is down: WeCom should retry later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

impl CallbackError {
    pub fn status(&self) -> u16 {
        match self {
            CallbackError::UnknownApp(_) => 404,
            CallbackError::BadRequest(_) => 400,
            CallbackError::Unavailable(_) => 503,
        }
    }
}

fn bad(e: impl std::fmt::Display) -> CallbackError {
    CallbackError::BadRequest(e.to_string())
}

/// The signed query parameters of a callback.
struct Signed {
    signature: String,
    timestamp: String,
    nonce: String,
    rest: HashMap<String, String>,
}

fn signed(raw_query: &str) -> Result<Signed, CallbackError> {
    let mut q = crate::query::parse(raw_query).ok_or_else(|| bad("malformed query string"))?;
    let mut take = |k: &str| {
        q.remove(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(format!("missing query parameter {k}")))
    };
    let signature = take("msg_signature")?;
    let timestamp = take("timestamp")?;
    let nonce = take("nonce")?;
    Ok(Signed {
        signature,
        timestamp,
        nonce,
        rest: q,
    })
}

impl WecomChannel {
    fn app(&self, name: &str) -> Result<Arc<App>, CallbackError> {
        self.apps
            .get(name)
            .cloned()
            .ok_or_else(|| CallbackError::UnknownApp(name.to_string()))
    }

    fn fresh(&self, timestamp: &str) -> Result<(), CallbackError> {
        let now = chrono::Utc::now().timestamp();
        check_timestamp(
            timestamp,
            now,
            self.settings.timestamp_window.as_secs() as i64,
        )
        .map_err(bad)
    }

    /// GET: proves we hold the token and key by returning the decrypted `echostr`.
    pub fn verify_url(&self, app: &str, raw_query: &str) -> Result<String, CallbackError> {
        let app = self.app(app)?;
        let s = signed(raw_query)?;
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
        let s = signed(raw_query)?;
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
            .map_err(|e| CallbackError::Unavailable(e.to_string()))?;
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
        let engine = self.engine.clone();
        let job_sink: Arc<dyn ReplySink> = sink.clone();
        let late = sink.clone();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        // The engine runs in its own task: if it is slow, the callback still answers in
        // time and the response follows through the outbox.
        tokio::spawn(async move {
            let response = engine.handle(incoming, job_sink).await;
            if let Err(response) = tx.send(response) {
                late.push(response.text);
            }
        });
        let response = match tokio::time::timeout(self.settings.ack_budget, &mut rx).await {
            Ok(Ok(response)) => response,
            Ok(Err(_)) => {
                tracing::error!(app = %app.name, "the engine task ended without a response");
                sink.push("⚠ 处理消息时出错,请重试".into());
                return Ok(String::new());
            }
            Err(_) => {
                // Closing first means a response that lands now is either taken here or
                // refused to the task, which then queues it: never lost, never twice.
                rx.close();
                if let Ok(response) = rx.try_recv() {
                    sink.push(response.text);
                }
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

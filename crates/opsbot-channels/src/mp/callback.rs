//! An account's protocol for the shared pipeline: URL verification (GET: `echostr` back
//! unchanged) and messages (POST), in plain or safe mode.
//!
//! In plain mode WeChat signs only the query (token, timestamp, nonce), not the body, so
//! each signed query is accepted once, by a GET (URL check) or a POST alike: a captured
//! one cannot carry another body. Safe mode signs the ciphertext as well
//! (`msg_signature`).

use super::sink::MpSink;
use super::{Account, MpChannel};
use crate::error::{bad, unavailable, CallbackError};
use crate::inbound::{
    within_deadline, Ask, Asker, ChannelCodec, ChannelKind, Deadline, Opened, Turn,
};
use crate::query::Signed;
use crate::{TEXT_ONLY, WELCOME};
use async_trait::async_trait;
use opsbot_core::{AuditEntry, AuditResult};
use opsbot_engine::{Engine, Response, Status};
use opsbot_store::MessageIdStore;
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::mp::{verify_signature, TEXT_MAX_BYTES};
use opsbot_wecom::split::split_message;
use opsbot_wecom::{Event, Message, MessageBody};
use std::sync::Arc;
use std::time::Duration;

pub use crate::inbound::Answer;

/// `/wechat/{account}/callback`.
pub const KIND: ChannelKind = ChannelKind {
    name: "wechat",
    route: "/wechat/{account}/callback",
    not_configured: "no WeChat Official Account is configured on this server\n",
    reply_type: "application/xml; charset=utf-8",
    // WeChat's "nothing to say": it does not try again and shows nothing.
    nothing: "success",
};

/// Where later results go, said with an accepted job.
const RESULTS_FOLLOW: &str = "(结果将以客服消息发到这里)";

#[async_trait]
impl ChannelCodec for MpChannel {
    type Endpoint = Account;
    type Message = Message;
    /// The text of the passive reply.
    type Reply = String;

    const KIND: &'static ChannelKind = &KIND;
    const SIGNATURE: &'static str = "signature";

    fn endpoint(&self, name: &str) -> Result<Arc<Account>, CallbackError> {
        self.accounts
            .get(name)
            .cloned()
            .ok_or_else(|| CallbackError::UnknownAccount(name.to_string()))
    }

    fn channel(account: &Account) -> &str {
        &account.channel
    }

    fn message_ids(&self) -> &dyn MessageIdStore {
        self.store.as_ref()
    }

    fn timestamp_window(&self) -> Duration {
        self.settings.timestamp_window
    }

    /// The signature covers neither `echostr` nor a body, so `echostr` must be what
    /// WeChat sends (a short string of digits and letters; it is reflected, and must
    /// never be markup).
    fn check_echostr(&self, echostr: &str) -> Result<(), CallbackError> {
        if safe_echostr(echostr) {
            Ok(())
        } else {
            Err(bad(format!(
                "query parameter echostr must be 1 to {ECHOSTR_MAX} ASCII letters or digits \
                 (WeChat sends digits); it is sent back as the answer"
            )))
        }
    }

    /// The signature proves WeChat holds our token; `echostr` goes back unchanged.
    fn verify_url(
        &self,
        account: &Account,
        s: &Signed,
        echostr: &str,
    ) -> Result<String, CallbackError> {
        verify_signature(&account.token, &s.signature, &s.timestamp, &s.nonce).map_err(bad)?;
        Ok(echostr.to_string())
    }

    /// Recorded under the same key as a plain-mode POST's, so a URL check can be
    /// replayed neither as another URL check nor as a message with a body of the
    /// replayer's choice.
    fn url_check_once(&self, s: &Signed) -> Option<String> {
        Some(signed_once(s))
    }

    fn open(&self, account: &Account, s: &Signed, body: &str) -> Result<Opened, CallbackError> {
        verify_signature(&account.token, &s.signature, &s.timestamp, &s.nonce).map_err(bad)?;
        let encrypted = s.rest.get("encrypt_type").map(String::as_str) == Some("aes");
        match (&account.crypto, encrypted) {
            (Some(crypto), true) => {
                let msg_signature = s
                    .rest
                    .get("msg_signature")
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| bad("missing query parameter msg_signature"))?;
                let plaintext = crypto
                    .decrypt_message(msg_signature, &s.timestamp, &s.nonce, body)
                    .map_err(bad)?;
                Ok(Opened {
                    plaintext,
                    single_use: None,
                })
            }
            (Some(_), false) => Err(bad(format!(
                "account {} is in safe mode (encoding_aes_key is set) but the message is \
                 not encrypted: set 消息加解密方式 to 安全模式, or remove encoding_aes_key",
                account.name
            ))),
            (None, true) => Err(bad(format!(
                "the message is encrypted but account {} has no encoding_aes_key: add the \
                 account's EncodingAESKey, or set 消息加解密方式 to 明文模式",
                account.name
            ))),
            (None, false) => Ok(Opened {
                plaintext: body.to_string(),
                single_use: Some(signed_once(s)),
            }),
        }
    }

    fn decode(&self, account: &Account, xml: &str) -> Result<Message, CallbackError> {
        let msg = Message::parse(xml).map_err(bad)?;
        if let Some(expected) = &account.original_id {
            if &msg.to != expected {
                return Err(bad(format!(
                    "message for account {:?} reached account {} ({expected})",
                    msg.to, account.name
                )));
            }
        }
        Ok(msg)
    }

    fn dedup_key(msg: &Message) -> String {
        msg.dedup_key()
    }

    fn turn(&self, account: &Account, msg: &Message) -> Turn<String> {
        let (text, typed) = match &msg.body {
            MessageBody::Text { content, .. } => (content.clone(), true),
            MessageBody::Event(Event::Click { key }) => (key.clone(), false),
            MessageBody::Event(Event::Subscribe) => {
                return Turn::Reply(match account.users.contains_key(&msg.from) {
                    true => WELCOME.to_string(),
                    false => format!("{WELCOME}\n\n{}", unbound(&msg.from)),
                })
            }
            MessageBody::Event(_) => return Turn::Nothing,
            MessageBody::Other { .. } => return Turn::Reply(TEXT_ONLY.into()),
        };
        Turn::Ask(Ask {
            text,
            chat: None,
            typed,
        })
    }

    async fn converse(
        &self,
        account: &Arc<Account>,
        msg: &Message,
        ask: Ask,
    ) -> Result<Option<String>, CallbackError> {
        within_deadline(self, account, msg, ask).await
    }

    /// The account's XML, encrypted in safe mode.
    fn encode(&self, account: &Account, s: &Signed, msg: &Message, text: String) -> String {
        let xml = text_reply_xml(&msg.from, &msg.to, chrono::Utc::now().timestamp(), &text);
        match &account.crypto {
            Some(crypto) => crypto.encrypt_reply(&xml, &s.timestamp, &s.nonce),
            None => xml,
        }
    }
}

#[async_trait]
impl Deadline for MpChannel {
    type Courier = MpSink;

    fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn ack_budget(&self) -> Duration {
        self.settings.ack_budget
    }

    /// The opsbot user bound to the openid; a message the user typed opens their
    /// customer-service window, and whatever could not reach them since is said first.
    async fn asker(
        &self,
        account: &Account,
        msg: &Message,
        ask: &Ask,
    ) -> Result<Asker<MpSink, String>, CallbackError> {
        let Some(user) = account.users.get(&msg.from).cloned() else {
            return Ok(Asker::Refused(self.refuse(account, msg, &ask.text).await));
        };
        let missed = if ask.typed {
            self.store
                .window_open(&account.channel, &msg.from)
                .await
                .map_err(unavailable)?
        } else {
            0
        };
        let sink = Arc::new(MpSink {
            channel: account.channel.clone(),
            open_id: msg.from.clone(),
            queue: self.outbox.clone(),
            notice: std::sync::Mutex::new(missed_notice(missed)),
        });
        Ok(Asker::User(user, sink))
    }

    /// One passive reply per message: what does not fit follows as messages.
    fn in_time(&self, sink: &MpSink, response: Response) -> Option<String> {
        let mut text = sink.take_notice().unwrap_or_default() + &response.text;
        if matches!(response.status, Status::Accepted(_)) {
            text.push('\n');
            text.push_str(RESULTS_FOLLOW);
        }
        let mut parts = split_message(&text, TEXT_MAX_BYTES).into_iter();
        let first = parts.next().unwrap_or_default();
        let rest: Vec<String> = parts.collect();
        if !rest.is_empty() {
            sink.queue_parts(rest);
        }
        Some(first)
    }

    fn lost(&self, _sink: &MpSink) -> Option<String> {
        Some("⚠ 处理消息时出错,请重试".into())
    }
}

impl MpChannel {
    /// An openid nobody bound: refused, politely, and written to the audit log.
    async fn refuse(&self, account: &Account, msg: &Message, text: &str) -> String {
        let entry = AuditEntry {
            id: 0,
            at: chrono::Utc::now(),
            user: format!("openid:{}", msg.from),
            channel: account.channel.clone(),
            chat: None,
            text: text.to_string(),
            command: None,
            result: AuditResult::Denied,
            message: "unknown openid: not bound to an opsbot user".into(),
            duration_ms: 0,
            job_id: None,
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(error = %e, openid = %msg.from, "audit entry lost");
        }
        tracing::warn!(account = %account.name, openid = %msg.from, "message from an unbound openid refused");
        unbound(&msg.from)
    }
}

/// The longest `echostr` sent back.
const ECHOSTR_MAX: usize = 64;

/// WeChat's `echostr` is a string of digits; anything but letters and digits is not
/// from WeChat, and reflecting it could carry markup.
fn safe_echostr(echostr: &str) -> bool {
    (1..=ECHOSTR_MAX).contains(&echostr.len()) && echostr.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The replay key of a signed query: in plain mode the signature covers the query
/// only, so each one is good for one request, GET or POST.
fn signed_once(s: &Signed) -> String {
    format!("signed:{}:{}", s.timestamp, s.nonce)
}

/// What a WeChat user nobody bound is told: the openid the administrator needs.
fn unbound(open_id: &str) -> String {
    format!("⛔ 这个微信号尚未绑定 opsbot 用户,不能执行命令。请把下面的 openid 发给管理员绑定:\n{open_id}")
}

/// What the user is told when results could not reach them since their last message.
fn missed_notice(missed: u32) -> Option<String> {
    (missed > 0).then(|| {
        format!(
            "⚠ 有 {missed} 条结果没能发给您:公众号在您发消息后 48 小时内最多只能回复 5 条客服消息,窗口已关闭。发送 任务 查看最近任务的结果。\n\n"
        )
    })
}

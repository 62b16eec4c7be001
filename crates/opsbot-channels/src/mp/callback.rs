//! An account's callback URL: URL verification (GET: `echostr` back unchanged) and
//! messages (POST), in plain or safe mode.
//!
//! In plain mode WeChat signs only the query (token, timestamp, nonce), not the body, so
//! each signed query is accepted once, by a GET (URL check) or a POST alike: a captured
//! one cannot carry another body. Safe mode signs the ciphertext as well
//! (`msg_signature`).

use super::sink::MpSink;
use super::{Account, MpChannel};
use crate::error::{bad, unavailable, CallbackError};
use crate::handoff::{hand_off, Handoff, Late};
use crate::query::{fresh, signed, Signed};
use crate::{TEXT_ONLY, WELCOME};
use opsbot_core::{AuditEntry, AuditResult};
use opsbot_engine::{Incoming, ReplySink, Status};
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::mp::{verify_signature, TEXT_MAX_BYTES};
use opsbot_wecom::split::split_message;
use opsbot_wecom::{Event, Message, MessageBody};
use std::sync::Arc;

/// What the POST answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A passive reply: the XML body (encrypted in safe mode).
    Reply(String),
    /// Nothing to say now: `success`, so WeChat does not try again.
    Nothing,
}

/// Where later results go, said with an accepted job.
const RESULTS_FOLLOW: &str = "(结果将以客服消息发到这里)";

impl MpChannel {
    fn account(&self, name: &str) -> Result<Arc<Account>, CallbackError> {
        self.accounts
            .get(name)
            .cloned()
            .ok_or_else(|| CallbackError::UnknownAccount(name.to_string()))
    }

    fn check(&self, account: &Account, s: &Signed) -> Result<(), CallbackError> {
        fresh(&s.timestamp, self.settings.timestamp_window)?;
        verify_signature(&account.token, &s.signature, &s.timestamp, &s.nonce).map_err(bad)
    }

    /// GET: the signature proves WeChat holds our token; `echostr` goes back unchanged.
    ///
    /// The signature covers neither `echostr` nor a body, so two things are checked
    /// besides it: `echostr` must be what WeChat sends (a short string of digits and
    /// letters; it is reflected, and must never be markup), and the signed query is
    /// recorded as used under the same key as a plain-mode POST's, so it can be replayed
    /// neither as another URL check nor as a message with a body of the replayer's choice.
    pub async fn verify_url(
        &self,
        account: &str,
        raw_query: &str,
    ) -> Result<String, CallbackError> {
        let account = self.account(account)?;
        let s = signed(raw_query, "signature")?;
        let echostr = s
            .rest
            .get("echostr")
            .ok_or_else(|| bad("missing query parameter echostr"))?
            .clone();
        if !safe_echostr(&echostr) {
            return Err(bad(format!(
                "query parameter echostr must be 1 to {ECHOSTR_MAX} ASCII letters or digits \
                 (WeChat sends digits); it is sent back as the answer"
            )));
        }
        self.check(&account, &s)?;
        if !self.first_time(&account, &signed_once(&s)).await? {
            return Err(bad(
                "this signed query (signature, timestamp, nonce) was already used; \
                 WeChat signs every URL check afresh",
            ));
        }
        Ok(echostr)
    }

    /// POST: one message or event.
    pub async fn receive(
        &self,
        name: &str,
        raw_query: &str,
        body: &str,
    ) -> Result<Answer, CallbackError> {
        let account = self.account(name)?;
        let s = signed(raw_query, "signature")?;
        self.check(&account, &s)?;
        let encrypted = s.rest.get("encrypt_type").map(String::as_str) == Some("aes");
        let xml = match (&account.crypto, encrypted) {
            (Some(crypto), true) => {
                let msg_signature = s
                    .rest
                    .get("msg_signature")
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| bad("missing query parameter msg_signature"))?;
                crypto
                    .decrypt_message(msg_signature, &s.timestamp, &s.nonce, body)
                    .map_err(bad)?
            }
            (Some(_), false) => {
                return Err(bad(format!(
                    "account {} is in safe mode (encoding_aes_key is set) but the message is \
                     not encrypted: set 消息加解密方式 to 安全模式, or remove encoding_aes_key",
                    account.name
                )))
            }
            (None, true) => {
                return Err(bad(format!(
                    "the message is encrypted but account {} has no encoding_aes_key: add the \
                     account's EncodingAESKey, or set 消息加解密方式 to 明文模式",
                    account.name
                )))
            }
            (None, false) => {
                if !self.first_time(&account, &signed_once(&s)).await? {
                    return Ok(Answer::Nothing);
                }
                body.to_string()
            }
        };
        let msg = Message::parse(&xml).map_err(bad)?;
        if let Some(expected) = &account.original_id {
            if &msg.to != expected {
                return Err(bad(format!(
                    "message for account {:?} reached account {} ({expected})",
                    msg.to, account.name
                )));
            }
        }
        // Marked before it runs: WeChat's retries find it and get `success`.
        if !self.first_time(&account, &msg.dedup_key()).await? {
            return Ok(Answer::Nothing);
        }
        let (text, opens_window) = match &msg.body {
            MessageBody::Text { content, .. } => (content.clone(), true),
            MessageBody::Event(Event::Click { key }) => (key.clone(), false),
            MessageBody::Event(Event::Subscribe) => {
                let text = match account.users.contains_key(&msg.from) {
                    true => WELCOME.to_string(),
                    false => format!("{WELCOME}\n\n{}", unbound(&msg.from)),
                };
                return Ok(self.passive(&account, &msg, &s, &text));
            }
            MessageBody::Event(_) => return Ok(Answer::Nothing),
            MessageBody::Other { .. } => return Ok(self.passive(&account, &msg, &s, TEXT_ONLY)),
        };
        let Some(user) = account.users.get(&msg.from).cloned() else {
            return self.refuse(&account, &msg, &s, &text).await;
        };
        let missed = if opens_window {
            self.store
                .window_open(&account.channel, &msg.from)
                .await
                .map_err(unavailable)?
        } else {
            0
        };
        let notice = missed_notice(missed);
        let sink = Arc::new(MpSink {
            channel: account.channel.clone(),
            open_id: msg.from.clone(),
            queue: self.outbox.clone(),
            notice: std::sync::Mutex::new(notice.clone()),
        });
        let incoming = Incoming {
            channel: account.channel.clone(),
            user,
            chat: None,
            text,
            assume_yes: false,
        };
        let jobs: Arc<dyn ReplySink> = sink.clone();
        let late: Arc<dyn Late> = sink.clone();
        let response = match hand_off(&self.engine, incoming, jobs, late, self.settings.ack_budget)
            .await
        {
            Handoff::InTime(response) => response,
            Handoff::Lost => {
                tracing::error!(account = %account.name, "the engine task ended without a response");
                return Ok(self.passive(&account, &msg, &s, "⚠ 处理消息时出错,请重试"));
            }
            Handoff::Late => {
                tracing::warn!(account = %account.name, "engine slower than the ack budget; the reply follows as a customer-service message");
                return Ok(Answer::Nothing);
            }
        };
        let mut text = sink.take_notice().unwrap_or_default() + &response.text;
        if matches!(response.status, Status::Accepted(_)) {
            text.push('\n');
            text.push_str(RESULTS_FOLLOW);
        }
        // One passive reply per message: what does not fit follows as messages.
        let mut parts = split_message(&text, TEXT_MAX_BYTES).into_iter();
        let first = parts.next().unwrap_or_default();
        let rest: Vec<String> = parts.collect();
        if !rest.is_empty() {
            sink.queue_parts(rest);
        }
        Ok(self.passive(&account, &msg, &s, &first))
    }

    /// Records `key` for this account; `false` when it was already seen.
    async fn first_time(&self, account: &Account, key: &str) -> Result<bool, CallbackError> {
        let fresh = self
            .store
            .mark_processed(&account.channel, key)
            .await
            .map_err(unavailable)?;
        if !fresh {
            tracing::debug!(account = %account.name, %key, "duplicate callback ignored");
        }
        Ok(fresh)
    }

    /// An openid nobody bound: refused, politely, and written to the audit log.
    async fn refuse(
        &self,
        account: &Account,
        msg: &Message,
        s: &Signed,
        text: &str,
    ) -> Result<Answer, CallbackError> {
        let answer = unbound(&msg.from);
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
        Ok(self.passive(account, msg, s, &answer))
    }

    /// The passive text reply to `msg`: the account's XML, encrypted in safe mode.
    fn passive(&self, account: &Account, msg: &Message, s: &Signed, text: &str) -> Answer {
        let xml = text_reply_xml(&msg.from, &msg.to, chrono::Utc::now().timestamp(), text);
        Answer::Reply(match &account.crypto {
            Some(crypto) => crypto.encrypt_reply(&xml, &s.timestamp, &s.nonce),
            None => xml,
        })
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

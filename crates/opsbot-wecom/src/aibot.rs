//! The WeCom smart robot (智能机器人) in API mode (CHANNELS.md §1): JSON callbacks
//! encrypted with the app scheme under receive id `""`, typed decrypted messages, the
//! leading @mention of group messages, and the encrypted JSON passive replies (stream,
//! welcome text) and the plain `response_url` message.
//!
//! Parsing is strict about what the channel acts on (msgid, chat type, sender, text,
//! stream id, a card click's key and task) and keeps unknown message and event types by name, like [`crate::message`].

use serde::Serialize;
use serde_json::Value;

use crate::card::SelectedItem;
use crate::crypto::WecomCrypto;
use crate::error::{Error, Result};

/// The robot's receive id: WeCom encrypts its callbacks for `""` (doc 101033).
pub const RECEIVE_ID: &str = "";

/// `stream.content` and `response_url` markdown are at most this many bytes of UTF-8.
pub const CONTENT_MAX_BYTES: usize = 20480;

/// The encrypted POST body `{"encrypt": "…"}`: the `encrypt` value is what is signed.
pub fn envelope_encrypt(body_json: &str) -> Result<String> {
    let value: Value = serde_json::from_str(body_json)
        .map_err(|e| Error::ParseJson(format!("the body is not JSON ({e})")))?;
    match value.get("encrypt") {
        Some(Value::String(encrypt)) if !encrypt.is_empty() => Ok(encrypt.clone()),
        _ => Err(Error::ParseJson(
            "the body has no \"encrypt\" string".into(),
        )),
    }
}

impl WecomCrypto {
    /// Verify and decrypt a robot callback POST (`{"encrypt": …}`) into its JSON text.
    pub fn decrypt_json_message(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        body_json: &str,
    ) -> Result<String> {
        let encrypt = envelope_encrypt(body_json)?;
        self.verify_signature(msg_signature, timestamp, nonce, &encrypt)?;
        self.decrypt(&encrypt)
    }

    /// The encrypted passive reply body for `plaintext_json`, with a fresh random prefix:
    /// `{"encrypt","msgsignature","timestamp","nonce"}`, timestamp and nonce being the
    /// callback's (the doc requires its nonce). The timestamp is a string, as the official
    /// library sends it.
    pub fn encrypt_json_reply(&self, plaintext_json: &str, timestamp: &str, nonce: &str) -> String {
        let random16: [u8; 16] = rand::random();
        self.encrypt_json_reply_with_random(plaintext_json, timestamp, nonce, &random16)
    }

    /// [`Self::encrypt_json_reply`] with an injected random prefix, for byte-exact tests.
    pub fn encrypt_json_reply_with_random(
        &self,
        plaintext_json: &str,
        timestamp: &str,
        nonce: &str,
        random16: &[u8; 16],
    ) -> String {
        let encrypt = self.encrypt_with_random(plaintext_json, random16);
        let msgsignature = self.signature(timestamp, nonce, &encrypt);
        serde_json::json!({
            "encrypt": encrypt,
            "msgsignature": msgsignature,
            "timestamp": timestamp,
            "nonce": nonce,
        })
        .to_string()
    }
}

/// Where a robot message was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chat {
    /// A one-to-one chat with the robot.
    Single,
    /// A group chat (the robot was @'d), by `chatid`.
    Group(String),
}

/// One decrypted robot callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotMessage {
    /// `msgid`: unique per callback; WeCom may call back more than once with it.
    pub msg_id: String,
    /// `aibotid`: the robot.
    pub bot_id: String,
    /// `chattype` with `chatid`.
    pub chat: Chat,
    /// `from.userid`.
    pub from: String,
    /// `response_url`: one active reply within an hour (user messages and card clicks).
    pub response_url: Option<String>,
    /// What was sent.
    pub body: BotBody,
    /// The click of a `template_card_event` (the body is then
    /// `BotBody::Event("template_card_event")`); `None` for everything else, and for a
    /// card event WeCom sent without its `template_card_event` details.
    pub card_event: Option<BotCardEvent>,
}

/// A click on a robot's template card (CARDS.md §5.2). Unlike the app's there is no
/// `response_code`: the card changes only through the passive reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotCardEvent {
    /// `event_key`: the key of the clicked button (or submit button, or menu item).
    pub event_key: String,
    /// `task_id` of the card.
    pub task_id: String,
    /// `card_type`, e.g. `button_interaction`.
    pub card_type: Option<String>,
    /// `selected_items.selected_item[]`: the answers of a card with choices.
    pub selected_items: Vec<SelectedItem>,
}

/// The type-specific part of a [`BotMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotBody {
    /// Text the user typed (`text`, the text items of `mixed`, or a `voice` transcript),
    /// as sent: in groups it still starts with the @mention (see [`strip_mention`]).
    Text(String),
    /// A refresh of a stream we opened (`msgtype: stream`).
    StreamRefresh {
        /// `stream.id`, ours.
        id: String,
    },
    /// `msgtype: event`, by `event.eventtype` (`enter_chat`, `template_card_event`, …).
    Event(String),
    /// Image, file, video, …: recognised but not interpreted.
    Other(String),
}

impl BotMessage {
    /// Parse the plaintext JSON returned by [`WecomCrypto::decrypt_json_message`].
    pub fn parse(json: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(json)
            .map_err(|e| Error::ParseJson(format!("the message is not JSON ({e})")))?;
        let msg_id = required_str(&v, "msgid")?;
        let chat = match required_str(&v, "chattype")?.as_str() {
            "single" => Chat::Single,
            "group" => Chat::Group(required_str(&v, "chatid")?),
            other => {
                return Err(Error::InvalidJsonField {
                    field: "chattype",
                    reason: format!("{other:?} is neither \"single\" nor \"group\""),
                })
            }
        };
        let from = v
            .get("from")
            .and_then(|f| f.get("userid"))
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or(Error::MissingJsonField("from.userid"))?
            .to_owned();
        let msg_type = required_str(&v, "msgtype")?;
        let text_of = |key: &'static str| -> Result<String> {
            v.get(key)
                .and_then(|t| t.get("content"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(Error::MissingJsonField(key))
        };
        let body = match msg_type.as_str() {
            "text" => BotBody::Text(text_of("text")?),
            "voice" => BotBody::Text(text_of("voice")?),
            "mixed" => BotBody::Text(mixed_text(&v)?),
            "stream" => BotBody::StreamRefresh {
                id: v
                    .get("stream")
                    .and_then(|s| s.get("id"))
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .ok_or(Error::MissingJsonField("stream.id"))?
                    .to_owned(),
            },
            "event" => BotBody::Event(
                v.get("event")
                    .and_then(|e| e.get("eventtype"))
                    .and_then(Value::as_str)
                    .ok_or(Error::MissingJsonField("event.eventtype"))?
                    .to_owned(),
            ),
            other => BotBody::Other(other.to_owned()),
        };
        let card_event = match &body {
            BotBody::Event(name) if name == "template_card_event" => card_event(&v)?,
            _ => None,
        };
        Ok(Self {
            msg_id,
            card_event,
            bot_id: v
                .get("aibotid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            chat,
            from,
            response_url: v
                .get("response_url")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
            body,
        })
    }
}

/// `event.template_card_event`, strict about what a click acts on (key and task).
fn card_event(v: &Value) -> Result<Option<BotCardEvent>> {
    let Some(event) = v.get("event").and_then(|e| e.get("template_card_event")) else {
        return Ok(None);
    };
    let text = |field: &'static str, name: &str| -> Result<String> {
        match event.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) | None => Err(Error::MissingJsonField(field)),
            Some(_) => Err(Error::InvalidJsonField {
                field,
                reason: "not a string".into(),
            }),
        }
    };
    let items = event
        .get("selected_items")
        .and_then(|s| s.get("selected_item"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let selected_items = items
        .iter()
        .map(|item| {
            let question_key = item
                .get("question_key")
                .and_then(Value::as_str)
                .filter(|q| !q.is_empty())
                .ok_or(Error::MissingJsonField(
                    "event.template_card_event.selected_items.selected_item[].question_key",
                ))?
                .to_owned();
            let option_ids = item
                .get("option_ids")
                .and_then(|o| o.get("option_id"))
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Ok(SelectedItem {
                question_key,
                option_ids,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(BotCardEvent {
        event_key: text("event.template_card_event.event_key", "event_key")?,
        task_id: text("event.template_card_event.task_id", "task_id")?,
        card_type: event
            .get("card_type")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        selected_items,
    }))
}

fn required_str(v: &Value, field: &'static str) -> Result<String> {
    match v.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None => Err(Error::MissingJsonField(field)),
        Some(_) => Err(Error::InvalidJsonField {
            field,
            reason: "not a string".into(),
        }),
    }
}

/// The text items of a `mixed` message, one per line.
fn mixed_text(v: &Value) -> Result<String> {
    let items = v
        .get("mixed")
        .and_then(|m| m.get("msg_item"))
        .and_then(Value::as_array)
        .ok_or(Error::MissingJsonField("mixed.msg_item"))?;
    let texts: Vec<&str> = items
        .iter()
        .filter(|item| item.get("msgtype").and_then(Value::as_str) == Some("text"))
        .filter_map(|item| item.get("text")?.get("content")?.as_str())
        .collect();
    Ok(texts.join("\n"))
}

/// Our stream id for the message `msg_id`: a function of the id alone, so WeCom's retry
/// of a message (to any opsbot instance, before or after a restart) is acknowledged with
/// the same stream it may already be refreshing.
pub fn stream_id(msg_id: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(msg_id.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Remove one leading `@name` and the blank after it, as WeCom keeps the robot's mention
/// in group text (`@运维机器人 克隆:…`). Blanks are ASCII whitespace, U+00A0 and U+2005
/// (the separator is undocumented); a later `@someone` stays. Text with no leading
/// mention, or nothing after it, is returned trimmed.
pub fn strip_mention(content: &str) -> &str {
    let is_blank = |c: char| c.is_whitespace() || c == '\u{a0}' || c == '\u{2005}';
    let trimmed = content.trim_start_matches(is_blank);
    let Some(rest) = trimmed.strip_prefix('@') else {
        return trimmed.trim_end_matches(is_blank);
    };
    match rest.find(is_blank) {
        Some(end) => rest[end..].trim_matches(is_blank),
        // Only a mention: nothing was asked.
        None => "",
    }
}

/// The plaintext JSON of a stream reply: `{"msgtype":"stream","stream":{"id","finish","content"}}`.
pub fn stream_reply_json(id: &str, finish: bool, content: &str) -> String {
    #[derive(Serialize)]
    struct Stream<'a> {
        id: &'a str,
        finish: bool,
        content: &'a str,
    }
    #[derive(Serialize)]
    struct Reply<'a> {
        msgtype: &'static str,
        stream: Stream<'a>,
    }
    serde_json::to_string(&Reply {
        msgtype: "stream",
        stream: Stream {
            id,
            finish,
            content: truncate_to(content, CONTENT_MAX_BYTES),
        },
    })
    .expect("a stream reply serialises")
}

/// The plaintext JSON of a text reply, documented for the `enter_chat` welcome only.
pub fn text_reply_json(content: &str) -> String {
    serde_json::json!({ "msgtype": "text", "text": { "content": content } }).to_string()
}

/// The `response_url` message: markdown, plain JSON.
pub fn markdown_message(content: &str) -> Value {
    serde_json::json!({
        "msgtype": "markdown",
        "markdown": { "content": truncate_to(content, CONTENT_MAX_BYTES) },
    })
}

/// `text` cut to at most `max` bytes at a char boundary, marking the cut.
pub fn truncate_to(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_follow_the_message_id() {
        let a = stream_id("CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=");
        assert_eq!(a, stream_id("CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="));
        assert_ne!(a, stream_id("CAIQz7/MjQYY/NGagIOAgAMgl8jK/gI="));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn mention_is_stripped_once() {
        assert_eq!(
            strip_mention("@运维机器人 克隆:2,工具柜管理系统,192.168.2.182"),
            "克隆:2,工具柜管理系统,192.168.2.182"
        );
        assert_eq!(strip_mention("@RobotA\u{2005}概况"), "概况");
        assert_eq!(strip_mention(" @Bot\u{a0} 查:web @lisi"), "查:web @lisi");
        assert_eq!(strip_mention("概况 "), "概况");
        assert_eq!(strip_mention("@运维机器人"), "");
        assert_eq!(strip_mention(""), "");
    }

    #[test]
    fn messages_parse_and_missing_fields_are_named() {
        let m = BotMessage::parse(r#"{"msgid":"m1","aibotid":"b","chattype":"single","from":{"userid":"zhangsan"},"response_url":"https://x/r","msgtype":"mixed","mixed":{"msg_item":[{"msgtype":"text","text":{"content":"概况"}},{"msgtype":"image","image":{"url":"u"}}]}}"#).unwrap();
        assert_eq!(m.chat, Chat::Single);
        assert_eq!(m.body, BotBody::Text("概况".into()));
        assert_eq!(m.response_url.as_deref(), Some("https://x/r"));
        let e = BotMessage::parse(r#"{"msgid":"m1","chattype":"group","from":{"userid":"u"},"msgtype":"text","text":{"content":"x"}}"#).unwrap_err();
        assert!(e.to_string().contains("chatid"), "{e}");
        let e =
            BotMessage::parse(r#"{"msgid":"m1","chattype":"single","from":{},"msgtype":"text"}"#)
                .unwrap_err();
        assert!(e.to_string().contains("from.userid"), "{e}");
        assert_eq!(BotMessage::parse("[1]").unwrap_err().code(), Some(-40002));
        let e = BotMessage::parse(
            r#"{"msgid":"m","chattype":"team","from":{"userid":"u"},"msgtype":"text"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("team"), "{e}");
        let ev = BotMessage::parse(r#"{"msgid":"m","chattype":"single","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"enter_chat"}}"#).unwrap();
        assert_eq!(ev.body, BotBody::Event("enter_chat".into()));
        let img = BotMessage::parse(r#"{"msgid":"m","chattype":"single","from":{"userid":"u"},"msgtype":"image","image":{"url":"u"}}"#).unwrap();
        assert_eq!(img.body, BotBody::Other("image".into()));
    }

    #[test]
    fn card_events_carry_the_click() {
        let m = BotMessage::parse(r#"{"msgid":"e1","chattype":"group","chatid":"wr1","from":{"userid":"lisi"},"response_url":"https://x/r","msgtype":"event","event":{"eventtype":"template_card_event","template_card_event":{"card_type":"multiple_interaction","event_key":"submit","task_id":"t1","selected_items":{"selected_item":[{"question_key":"q1","option_ids":{"option_id":["a","b"]}}]}}}}"#).unwrap();
        assert_eq!(m.body, BotBody::Event("template_card_event".into()));
        let card = m.card_event.unwrap();
        assert_eq!(
            (card.event_key.as_str(), card.task_id.as_str()),
            ("submit", "t1")
        );
        assert_eq!(card.card_type.as_deref(), Some("multiple_interaction"));
        assert_eq!(
            card.selected_items,
            vec![SelectedItem {
                question_key: "q1".into(),
                option_ids: vec!["a".into(), "b".into()]
            }]
        );
        let bare = BotMessage::parse(r#"{"msgid":"e2","chattype":"single","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"template_card_event"}}"#).unwrap();
        assert_eq!(bare.card_event, None);
        let keyless = BotMessage::parse(r#"{"msgid":"e3","chattype":"single","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"template_card_event","template_card_event":{"task_id":"t"}}}"#).unwrap_err();
        assert!(keyless.to_string().contains("event_key"), "{keyless}");
        let other = BotMessage::parse(r#"{"msgid":"e4","chattype":"single","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"enter_chat"}}"#).unwrap();
        assert_eq!(other.card_event, None);
    }

    #[test]
    fn envelope_needs_an_encrypt_string() {
        assert_eq!(envelope_encrypt(r#"{"encrypt":"abc"}"#).unwrap(), "abc");
        for bad in ["", "<xml/>", "{}", r#"{"encrypt":1}"#, r#"{"encrypt":""}"#] {
            assert_eq!(
                envelope_encrypt(bad).unwrap_err().code(),
                Some(-40002),
                "{bad}"
            );
        }
    }

    #[test]
    fn stream_content_is_capped_at_a_char_boundary() {
        let long = "克".repeat(CONTENT_MAX_BYTES);
        let json = stream_reply_json("s", true, &long);
        let v: Value = serde_json::from_str(&json).unwrap();
        let content = v["stream"]["content"].as_str().unwrap();
        assert!(content.len() <= CONTENT_MAX_BYTES && content.len() > CONTENT_MAX_BYTES - 3);
        assert_eq!(
            stream_reply_json("stream-0001", false, ""),
            r#"{"msgtype":"stream","stream":{"id":"stream-0001","finish":false,"content":""}}"#
        );
    }
}

//! The smart robot (智能机器人) in the fake: `response_url`s minted for callbacks and the
//! endpoint behind them (single use, valid one hour of fake time, markdown ≤ 20480
//! bytes), plus builders for the encrypted JSON callbacks WeCom posts to the robot's URL
//! (messages, stream refreshes, template-card clicks) and readers of the robot's
//! passive replies (a new card, or `update_template_card`).
//!
//! WeCom documents no errcodes for a used or expired `response_url` (CHANNELS.md §1.5);
//! the fake's are its own ([`RESPONSE_URL_USED`], …), so a client must not depend on
//! their values, only on their being non-zero.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{
    exchange, intake, ok, parse_body, percent_encode, wecom, with_query, CallbackOutcome,
    CallbackPost, FakeWecom, RecordedMessage, Shared,
};
use opsbot_wecom::clock::Clock;
use opsbot_wecom::crypto::WecomCrypto;

/// The fake's answer to a second use of a `response_url`.
pub const RESPONSE_URL_USED: i64 = 600_001;
/// The fake's answer to a `response_url` older than one hour.
pub const RESPONSE_URL_EXPIRED: i64 = 600_002;
/// The fake's answer to a `response_code` it never issued.
pub const RESPONSE_URL_INVALID: i64 = 600_003;

const LIFETIME: Duration = Duration::from_secs(3600);
const CONTENT_LIMIT: usize = 20480;

#[derive(Debug, Clone)]
pub(super) struct IssuedResponseUrl {
    issued_at: Duration,
    used: bool,
}

impl FakeWecom {
    /// A fresh `response_url` as WeCom puts in a robot callback: single use, valid for
    /// one hour of the fake's clock from now.
    pub fn mint_response_url(&self) -> String {
        let issued_at = self.shared.clock.now();
        let mut state = self.state();
        let code = format!("rc{}", state.next_id());
        state.response_urls.insert(
            code.clone(),
            IssuedResponseUrl {
                issued_at,
                used: false,
            },
        );
        format!(
            "{}/cgi-bin/aibot/response?response_code={code}",
            self.base_url()
        )
    }
}

pub(super) async fn response(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "aibot/response";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    let code = params.get("response_code").cloned().unwrap_or_default();
    let Some(issued) = state.response_urls.get(&code).cloned() else {
        return wecom(RESPONSE_URL_INVALID, "invalid response_code");
    };
    if issued.used {
        return wecom(RESPONSE_URL_USED, "response_code has been used");
    }
    if now.saturating_sub(issued.issued_at) >= LIFETIME {
        return wecom(RESPONSE_URL_EXPIRED, "response_code expired");
    }
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(reject) => return axum::response::IntoResponse::into_response(reject),
    };
    let msgtype = body.get("msgtype").and_then(Value::as_str).unwrap_or("");
    let payload = body.get(msgtype).and_then(Value::as_object);
    match (msgtype, payload) {
        ("markdown", Some(markdown)) => match markdown.get("content").and_then(Value::as_str) {
            None | Some("") => return wecom(44004, "empty content"),
            Some(content) if content.len() > CONTENT_LIMIT => {
                return wecom(45002, "content size out of limit")
            }
            Some(_) => {}
        },
        ("template_card", Some(_)) => {}
        ("", _) => return wecom(41008, "missing msgtype"),
        (_, Some(_)) => return wecom(40008, "invalid message type"),
        (_, None) => return wecom(47001, "data format error"),
    }
    // Single use whatever happens next: the code is spent by an accepted reply.
    if let Some(issued) = state.response_urls.get_mut(&code) {
        issued.used = true;
    }
    state.sent.push(RecordedMessage {
        endpoint: ENDPOINT.into(),
        body: Value::Object(body),
        at: now,
    });
    ok(Map::new())
}

/// Encrypt `plaintext_json` into a robot callback POST (`{"encrypt": …}`, CHANNELS.md
/// §1.2) for the robot behind `crypto` (receive id `""`).
pub fn build_aibot_post(
    crypto: &WecomCrypto,
    plaintext_json: &str,
    random16: &[u8; 16],
    timestamp: &str,
    nonce: &str,
) -> CallbackPost {
    let encrypt = crypto.encrypt_with_random(plaintext_json, random16);
    let msg_signature = crypto.signature(timestamp, nonce, &encrypt);
    CallbackPost {
        query: format!(
            "msg_signature={msg_signature}&timestamp={}&nonce={}",
            percent_encode(timestamp),
            percent_encode(nonce)
        ),
        body: json!({ "encrypt": encrypt }).to_string(),
        msg_signature,
        encrypt,
    }
}

/// POST a robot callback as WeCom does (`Content-Type: application/json`).
pub async fn push_aibot_callback(
    callback_url: &str,
    post: &CallbackPost,
) -> Result<CallbackOutcome, reqwest::Error> {
    let request = reqwest::Client::new()
        .post(with_query(callback_url, &post.query))
        .header("content-type", "application/json")
        .body(post.body.clone());
    exchange(request).await
}

/// Verify and decrypt a robot's passive reply (`{"encrypt","msgsignature","timestamp",
/// "nonce"}`) as WeCom would, returning the reply JSON. `Err` says what is wrong.
pub fn decrypt_aibot_reply(crypto: &WecomCrypto, body: &str) -> Result<Value, String> {
    let envelope: Value =
        serde_json::from_str(body).map_err(|e| format!("reply is not JSON ({e}): {body:?}"))?;
    let field = |name: &str| -> Result<String, String> {
        match &envelope[name] {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(format!("reply lacks {name}: {body}")),
        }
    };
    let (encrypt, signature) = (field("encrypt")?, field("msgsignature")?);
    let (timestamp, nonce) = (field("timestamp")?, field("nonce")?);
    crypto
        .verify_signature(&signature, &timestamp, &nonce, &encrypt)
        .map_err(|e| e.to_string())?;
    let plain = crypto.decrypt(&encrypt).map_err(|e| e.to_string())?;
    serde_json::from_str(&plain).map_err(|e| format!("reply plaintext is not JSON ({e}): {plain}"))
}

/// The plaintext of a text message to the robot: a group message when `chat` is given
/// (WeCom keeps the @mention in `content`), else a single chat.
pub fn aibot_text_json(
    msg_id: &str,
    chat: Option<&str>,
    user: &str,
    content: &str,
    response_url: &str,
) -> String {
    let mut v = json!({
        "msgid": msg_id,
        "aibotid": "aibAbCdEfGhIjKlMnOpQrStUvWxYz01",
        "chattype": if chat.is_some() { "group" } else { "single" },
        "from": { "userid": user },
        "response_url": response_url,
        "msgtype": "text",
        "text": { "content": content },
    });
    if let Some(chat) = chat {
        v["chatid"] = json!(chat);
    }
    v.to_string()
}

/// A click on a robot's template card (CARDS.md §5.2): the decrypted JSON WeCom posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotClickEvent {
    /// `msgid`: the dedup key of the callback.
    pub msg_id: String,
    /// `create_time`.
    pub create_time: i64,
    /// `aibotid`.
    pub bot_id: String,
    /// `from.userid`: who clicked.
    pub user: String,
    /// `chatid` of a group chat; `None` for a single chat.
    pub chat: Option<String>,
    /// `response_url`: one later message, within an hour.
    pub response_url: String,
    /// `card_type`.
    pub card_type: String,
    /// `event_key`: the key of the button pressed.
    pub event_key: String,
    /// `task_id` of the card.
    pub task_id: String,
    /// `selected_items`: (question key, option ids) per question of the card.
    pub selected_items: Vec<(String, Vec<String>)>,
}

impl BotClickEvent {
    /// The plaintext JSON, members in the order of WeCom's sample and the vectors.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct From<'a> {
            userid: &'a str,
        }
        #[derive(Serialize)]
        struct OptionIds<'a> {
            option_id: &'a [String],
        }
        #[derive(Serialize)]
        struct Item<'a> {
            question_key: &'a str,
            option_ids: OptionIds<'a>,
        }
        #[derive(Serialize)]
        struct Items<'a> {
            selected_item: Vec<Item<'a>>,
        }
        #[derive(Serialize)]
        struct Card<'a> {
            card_type: &'a str,
            event_key: &'a str,
            task_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            selected_items: Option<Items<'a>>,
        }
        #[derive(Serialize)]
        struct Event<'a> {
            eventtype: &'static str,
            template_card_event: Card<'a>,
        }
        #[derive(Serialize)]
        struct Callback<'a> {
            msgid: &'a str,
            create_time: i64,
            aibotid: &'a str,
            from: From<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            chatid: Option<&'a str>,
            chattype: &'static str,
            response_url: &'a str,
            msgtype: &'static str,
            event: Event<'a>,
        }
        let selected_items = (!self.selected_items.is_empty()).then(|| Items {
            selected_item: self
                .selected_items
                .iter()
                .map(|(question_key, ids)| Item {
                    question_key,
                    option_ids: OptionIds { option_id: ids },
                })
                .collect(),
        });
        let callback = Callback {
            msgid: &self.msg_id,
            create_time: self.create_time,
            aibotid: &self.bot_id,
            from: From { userid: &self.user },
            chatid: self.chat.as_deref(),
            chattype: if self.chat.is_some() {
                "group"
            } else {
                "single"
            },
            response_url: &self.response_url,
            msgtype: "event",
            event: Event {
                eventtype: "template_card_event",
                template_card_event: Card {
                    card_type: &self.card_type,
                    event_key: &self.event_key,
                    task_id: &self.task_id,
                    selected_items,
                },
            },
        };
        // Strings and integers only: serialising cannot fail.
        serde_json::to_string(&callback).unwrap_or_default()
    }
}

/// A robot card click ready to be posted to the robot's callback URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotCardClick {
    /// What the callback says.
    pub event: BotClickEvent,
    /// The encrypted request.
    pub post: CallbackPost,
}

impl FakeWecom {
    /// Member `user` presses button `event_key` of the robot card `task_id` (a
    /// `button_interaction` card) in group `chat` (or a single chat): the callback, with
    /// a fresh `response_url` of this fake, encrypted for the robot behind `crypto`.
    pub fn aibot_card_click(
        &self,
        crypto: &WecomCrypto,
        chat: Option<&str>,
        user: &str,
        task_id: &str,
        event_key: &str,
        selected_items: &[(&str, &[&str])],
    ) -> BotCardClick {
        let response_url = self.mint_response_url();
        let id = self.state().next_id();
        let unix_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let event = BotClickEvent {
            msg_id: format!("CAIQcardclick{id:08}"),
            create_time: i64::try_from(unix_now).unwrap_or(i64::MAX),
            bot_id: "aibAbCdEfGhIjKlMnOpQrStUvWxYz01".into(),
            user: user.to_owned(),
            chat: chat.map(str::to_owned),
            response_url,
            card_type: "button_interaction".into(),
            event_key: event_key.to_owned(),
            task_id: task_id.to_owned(),
            selected_items: selected_items
                .iter()
                .map(|(q, ids)| {
                    (
                        (*q).to_owned(),
                        ids.iter().map(|i| (*i).to_owned()).collect(),
                    )
                })
                .collect(),
        };
        let mut random16 = *b"botcardclick0000";
        for (slot, digit) in random16[12..]
            .iter_mut()
            .zip(format!("{:04}", id % 10_000).bytes())
        {
            *slot = digit;
        }
        let post = build_aibot_post(
            crypto,
            &event.to_json(),
            &random16,
            &unix_now.to_string(),
            &format!("{}", 2_000_000 + id),
        );
        BotCardClick { event, post }
    }
}

/// A robot's passive reply to a card click or a message, decrypted.
#[derive(Debug, Clone, PartialEq)]
pub enum BotCardReply {
    /// `{"response_type":"update_template_card", "userids", "template_card"}`: the card
    /// replaced for `userids` (everyone in the message when empty).
    UpdateCard {
        /// `userids`.
        userids: Vec<String>,
        /// The new card.
        card: Value,
    },
    /// `{"msgtype":"template_card","template_card"}`: a new card.
    Card(Value),
    /// Anything else (stream, text), as decrypted.
    Other(Value),
}

/// Verify and decrypt a robot's passive reply ([`decrypt_aibot_reply`]) and say whether
/// it updates or sends a card. An update must carry a `template_card` object.
pub fn decrypt_aibot_card_reply(crypto: &WecomCrypto, body: &str) -> Result<BotCardReply, String> {
    let reply = decrypt_aibot_reply(crypto, body)?;
    if reply["response_type"] == "update_template_card" {
        let card = reply
            .get("template_card")
            .filter(|c| c.is_object())
            .cloned()
            .ok_or_else(|| format!("update_template_card without a template_card: {reply}"))?;
        let userids = match reply.get("userids") {
            None => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| id.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("userids must be strings: {reply}"))?,
            Some(_) => return Err(format!("userids must be an array: {reply}")),
        };
        return Ok(BotCardReply::UpdateCard { userids, card });
    }
    if reply["msgtype"] == "template_card" {
        return match reply.get("template_card") {
            Some(card) if card.is_object() => Ok(BotCardReply::Card(card.clone())),
            _ => Err(format!("a template_card message without its card: {reply}")),
        };
    }
    Ok(BotCardReply::Other(reply))
}

/// The plaintext of WeCom's refresh callback for stream `stream_id`.
pub fn aibot_refresh_json(msg_id: &str, chat: Option<&str>, user: &str, stream_id: &str) -> String {
    let mut v = json!({
        "msgid": msg_id,
        "aibotid": "aibAbCdEfGhIjKlMnOpQrStUvWxYz01",
        "chattype": if chat.is_some() { "group" } else { "single" },
        "from": { "userid": user },
        "msgtype": "stream",
        "stream": { "id": stream_id },
    });
    if let Some(chat) = chat {
        v["chatid"] = json!(chat);
    }
    v.to_string()
}

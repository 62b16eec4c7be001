//! The smart robot (智能机器人) in the fake: `response_url`s minted for callbacks and the
//! endpoint behind them (single use, valid one hour of fake time, markdown ≤ 20480
//! bytes), plus builders for the encrypted JSON callbacks WeCom posts to the robot's URL.
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

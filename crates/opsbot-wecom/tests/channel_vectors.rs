//! Every vector of `tests/fixtures/channels/` (`wecom_aibot_vectors.json`,
//! `mp_vectors.json`, made by the generators beside them) as a test at the protocol level: callbacks verify, decrypt and
//! parse; ciphertexts and passive replies are reproduced byte for byte from the pinned
//! random prefixes. The API-shape vectors are exercised against the fakes in
//! `channel_api.rs`, and the same vectors go through the HTTP router in opsbot-http.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::sync::OnceLock;

use base64::Engine;
use opsbot_fakes::{build_aibot_post, decrypt_aibot_reply, decrypt_mp_reply};
use opsbot_wecom::aibot::{self, BotBody, BotMessage, Chat};
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::{mp, Message, MessageBody, WecomCrypto};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/channels/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the test vectors at {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn aibot_vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| load("wecom_aibot_vectors.json"))
}

fn mp_vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| load("mp_vectors.json"))
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .unwrap_or_else(|| panic!("vector field {path:?} is not a string"))
}

fn rnd(text: &str) -> [u8; 16] {
    text.as_bytes().try_into().expect("a 16-byte random prefix")
}

fn aibot_crypto() -> WecomCrypto {
    let meta = &aibot_vectors()["_meta"];
    assert_eq!(s(meta, &["receiveid"]), aibot::RECEIVE_ID);
    WecomCrypto::new(
        s(meta, &["token"]),
        s(meta, &["encoding_aes_key"]),
        aibot::RECEIVE_ID,
    )
    .unwrap()
}

fn mp_crypto() -> WecomCrypto {
    let meta = &mp_vectors()["_meta"];
    WecomCrypto::new(
        s(meta, &["token"]),
        s(meta, &["encoding_aes_key"]),
        s(meta, &["appid"]),
    )
    .unwrap()
}

fn padded_len(encrypt: &str) -> usize {
    base64::engine::general_purpose::STANDARD
        .decode(encrypt)
        .unwrap()
        .len()
}

// ---- WeCom smart robot --------------------------------------------------------------

#[test]
fn aibot_url_verification() {
    let v = &aibot_vectors()["url_verification"];
    let q = |k: &str| s(v, &["query", k]);
    let plain = aibot_crypto()
        .verify_url(q("msg_signature"), q("timestamp"), q("nonce"), q("echostr"))
        .unwrap();
    assert_eq!(plain, s(v, &["expected_response_body"]));
    assert_eq!(
        padded_len(q("echostr")) as u64,
        v["padded_len"].as_u64().unwrap()
    );
    let forged =
        aibot_crypto().verify_url(&"0".repeat(40), q("timestamp"), q("nonce"), q("echostr"));
    assert_eq!(forged.unwrap_err().code(), Some(-40001));
}

#[test]
fn aibot_group_text_at_robot() {
    let v = &aibot_vectors()["group_text_at_robot"];
    let q = |k: &str| s(v, &["query", k]);
    let crypto = aibot_crypto();
    let json = crypto
        .decrypt_json_message(
            q("msg_signature"),
            q("timestamp"),
            q("nonce"),
            s(v, &["body"]),
        )
        .unwrap();
    assert_eq!(json, s(v, &["decrypted_json"]));
    let msg = BotMessage::parse(&json).unwrap();
    let d = &v["decrypted"];
    assert_eq!(msg.msg_id, s(d, &["msgid"]));
    assert_eq!(msg.bot_id, s(d, &["aibotid"]));
    assert_eq!(msg.chat, Chat::Group(s(d, &["chatid"]).into()));
    assert_eq!(msg.from, "zhangsan");
    assert_eq!(msg.response_url.as_deref(), Some(s(d, &["response_url"])));
    let BotBody::Text(content) = &msg.body else {
        panic!("not text: {:?}", msg.body)
    };
    assert_eq!(content, s(d, &["text", "content"]));
    assert_eq!(
        aibot::strip_mention(content),
        s(v, &["expected_command_text_after_strip"])
    );
    // The same callback built by the fake is byte-identical.
    let post = build_aibot_post(
        &crypto,
        &json,
        &rnd("aibotMessageRnd2"),
        q("timestamp"),
        q("nonce"),
    );
    let body: Value = serde_json::from_str(s(v, &["body"])).unwrap();
    assert_eq!(post.encrypt, body["encrypt"].as_str().unwrap());
    assert_eq!(post.msg_signature, q("msg_signature"));
    assert_eq!(
        padded_len(&post.encrypt) as u64,
        v["padded_len"].as_u64().unwrap()
    );
    // A tampered body fails the signature.
    let tampered = s(v, &["body"]).replacen('A', "B", 1);
    let err = crypto
        .decrypt_json_message(q("msg_signature"), q("timestamp"), q("nonce"), &tampered)
        .unwrap_err();
    assert_eq!(err.code(), Some(-40001));
}

#[test]
fn aibot_stream_refresh() {
    let v = &aibot_vectors()["stream_refresh"];
    let q = |k: &str| s(v, &["query", k]);
    let crypto = aibot_crypto();
    let json = crypto
        .decrypt_json_message(
            q("msg_signature"),
            q("timestamp"),
            q("nonce"),
            s(v, &["body"]),
        )
        .unwrap();
    assert_eq!(json, s(v, &["decrypted_json"]));
    let msg = BotMessage::parse(&json).unwrap();
    assert_eq!(
        msg.body,
        BotBody::StreamRefresh {
            id: "stream-0001".into()
        }
    );
    assert_eq!(msg.response_url, None, "refreshes carry no response_url");
    let post = build_aibot_post(
        &crypto,
        &json,
        &rnd("aibotRefreshRnd3"),
        q("timestamp"),
        q("nonce"),
    );
    let body: Value = serde_json::from_str(s(v, &["body"])).unwrap();
    assert_eq!(post.encrypt, body["encrypt"].as_str().unwrap());
    assert_eq!(post.msg_signature, q("msg_signature"));
}

fn check_passive(name: &str, finish: bool, content: &str, random: &str) {
    let v = &aibot_vectors()[name];
    let cb = &aibot_vectors()[s(v, &["in_reply_to"])]["query"];
    let (ts, nonce) = (s(cb, &["timestamp"]), s(cb, &["nonce"]));
    let plain = aibot::stream_reply_json("stream-0001", finish, content);
    assert_eq!(plain, s(v, &["reply_plain_json"]), "{name}: plaintext JSON");
    let crypto = aibot_crypto();
    let body = crypto.encrypt_json_reply_with_random(&plain, ts, nonce, &rnd(random));
    let ours: Value = serde_json::from_str(&body).unwrap();
    let theirs: Value = serde_json::from_str(s(v, &["body"])).unwrap();
    assert_eq!(ours, theirs, "{name}: the encrypted reply");
    let reply = decrypt_aibot_reply(&crypto, s(v, &["body"])).unwrap();
    assert_eq!(reply["stream"]["finish"], finish);
    assert_eq!(
        padded_len(theirs["encrypt"].as_str().unwrap()) as u64,
        v["padded_len"].as_u64().unwrap()
    );
}

#[test]
fn aibot_passive_reply_stream_finish() {
    check_passive(
        "passive_reply_stream_finish",
        true,
        "已收到克隆请求：数量 2，系统「工具柜管理系统」，源 192.168.2.182。任务已排队。",
        "aibotReplyRand04",
    );
}

#[test]
fn aibot_passive_reply_stream_ack() {
    check_passive("passive_reply_stream_ack", false, "", "aibotAckRandom05");
}

#[test]
fn aibot_response_url_markdown() {
    let v = &aibot_vectors()["response_url_markdown"];
    let theirs: Value = serde_json::from_str(s(v, &["body"])).unwrap();
    let content = theirs["markdown"]["content"].as_str().unwrap();
    assert_eq!(aibot::markdown_message(content), theirs);
}

// ---- WeChat Official Account ----------------------------------------------------------

#[test]
fn mp_plain_url_verification() {
    let v = &mp_vectors()["plain_url_verification"];
    let q = |k: &str| s(v, &["query", k]);
    let token = s(&mp_vectors()["_meta"], &["token"]);
    mp::verify_signature(token, q("signature"), q("timestamp"), q("nonce")).unwrap();
    assert_eq!(
        mp::signature(token, q("timestamp"), q("nonce")),
        q("signature")
    );
    assert_eq!(
        q("echostr"),
        s(v, &["expected_body"]),
        "echostr is returned unchanged"
    );
    assert!(mp::verify_signature("other", q("signature"), q("timestamp"), q("nonce")).is_err());
}

#[test]
fn mp_safe_text_message() {
    let v = &mp_vectors()["safe_text_message"];
    let q = |k: &str| s(v, &["query", k]);
    let meta = &mp_vectors()["_meta"];
    assert_eq!(q("encrypt_type"), "aes");
    mp::verify_signature(
        s(meta, &["token"]),
        q("signature"),
        q("timestamp"),
        q("nonce"),
    )
    .unwrap();
    let crypto = mp_crypto();
    let xml = crypto
        .decrypt_message(
            q("msg_signature"),
            q("timestamp"),
            q("nonce"),
            s(v, &["body"]),
        )
        .unwrap();
    assert_eq!(xml, s(v, &["decrypted_xml"]));
    let msg = Message::parse(&xml).unwrap();
    let p = &v["parsed"];
    assert_eq!(msg.to, s(p, &["ToUserName"]));
    assert_eq!(msg.from, s(p, &["FromUserName"]));
    assert_eq!(msg.from, q("openid"));
    assert_eq!(msg.create_time, p["CreateTime"].as_i64().unwrap());
    assert_eq!(
        msg.body,
        MessageBody::Text {
            content: s(p, &["Content"]).into(),
            msg_id: p["MsgId"].as_u64().unwrap().to_string(),
            chat_id: None,
        }
    );
    assert_eq!(msg.dedup_key(), "msg:24301234567890123");
    // The same ciphertext from the pinned prefix, and a wrong AppID is refused.
    let encrypt = crypto.encrypt_with_random(&xml, &rnd("mpIncomingRand02"));
    assert!(s(v, &["body"]).contains(&encrypt));
    let other = WecomCrypto::new(
        s(meta, &["token"]),
        s(meta, &["encoding_aes_key"]),
        "wxsomeoneelse",
    )
    .unwrap();
    let err = other
        .decrypt_message(
            q("msg_signature"),
            q("timestamp"),
            q("nonce"),
            s(v, &["body"]),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(-40005));
}

#[test]
fn mp_safe_passive_reply() {
    let v = &mp_vectors()["safe_passive_reply"];
    let cb = &mp_vectors()["safe_text_message"]["query"];
    let crypto = mp_crypto();
    let body = crypto.encrypt_reply_with_random(
        s(v, &["plain_reply_xml"]),
        "1700000001",
        s(cb, &["nonce"]),
        &rnd("mpReplyRandom003"),
    );
    assert_eq!(body, s(v, &["body"]), "byte for byte");
    assert_eq!(
        decrypt_mp_reply(&crypto, &body).unwrap(),
        s(v, &["plain_reply_xml"])
    );
}

#[test]
fn mp_plain_passive_reply() {
    let v = &mp_vectors()["plain_passive_reply"];
    let meta = &mp_vectors()["_meta"];
    // A passive reply has no MsgId; one is added so the message parser takes it.
    let theirs =
        Message::parse(&s(v, &["body"]).replace("<MsgType>", "<MsgId>0</MsgId><MsgType>")).unwrap();
    let ours = Message::parse(
        &text_reply_xml(
            s(meta, &["openid (FromUserName)"]),
            s(meta, &["gh_id (ToUserName)"]),
            1_700_000_001,
            "已收到克隆请求，处理中。",
        )
        .replace("<MsgType>", "<MsgId>0</MsgId><MsgType>"),
    )
    .unwrap();
    assert_eq!(ours, theirs, "the same reply, field for field");
    let bodies: Vec<&str> = v["no_reply_bodies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["success", ""]);
}

#[test]
fn every_vector_in_both_files_has_a_test() {
    // `api_shapes` is exercised against the fake WeChat API in channel_api.rs.
    let covered = [
        "url_verification",
        "group_text_at_robot",
        "stream_refresh",
        "passive_reply_stream_finish",
        "passive_reply_stream_ack",
        "response_url_markdown",
        "plain_url_verification",
        "safe_text_message",
        "safe_passive_reply",
        "plain_passive_reply",
        "api_shapes",
    ];
    for file in [aibot_vectors(), mp_vectors()] {
        for name in file.as_object().unwrap().keys() {
            assert!(
                name == "_meta" || covered.contains(&name.as_str()),
                "vector {name:?} has no test"
            );
        }
    }
}

//! Every vector of `tests/fixtures/wecom_vectors.json` (see the README beside it) as a test: positive vectors decrypt,
//! verify and re-encrypt byte for byte; official Tencent samples pass; negative vectors
//! are refused with their documented WXBizMsgCrypt code.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::collections::BTreeSet;
use std::sync::OnceLock;

use opsbot_fakes::build_callback_post;
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::{Event, Message, MessageBody, WecomCrypto};
use serde_json::Value;

const VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/wecom_vectors.json"
);

fn vectors() -> &'static Value {
    static VECTORS: OnceLock<Value> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let text = std::fs::read_to_string(VECTORS_PATH).unwrap_or_else(|e| {
            panic!("cannot read the WeCom test vectors at {VECTORS_PATH}: {e}")
        });
        serde_json::from_str(&text).expect("wecom_vectors.json is not valid JSON")
    })
}

fn find(section: &str, name: &str) -> &'static Value {
    vectors()[section]
        .as_array()
        .unwrap_or_else(|| panic!("no array {section:?} in wecom_vectors.json"))
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("vector {name:?} not found in {section:?}"))
}

fn s<'a>(vector: &'a Value, field: &str) -> &'a str {
    vector[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector {} lacks string field {field:?}", vector["name"]))
}

fn random16(vector: &Value) -> [u8; 16] {
    let hex = s(vector, "random16_hex");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("random16_hex is hex"))
        .collect();
    bytes.try_into().expect("random16_hex is 16 bytes")
}

fn crypto_for(vector: &Value, receive_id_field: &str) -> WecomCrypto {
    WecomCrypto::new(
        s(vector, "token"),
        s(vector, "encoding_aes_key"),
        s(vector, receive_id_field),
    )
    .expect("vector key is valid")
}

/// The `Encrypt` inside a callback POST body, located textually so this test does not
/// depend on the parser under test.
fn encrypt_of(body: &str) -> &str {
    let start = body.find("<Encrypt><![CDATA[").expect("body has Encrypt") + 18;
    let end = start + body[start..].find("]]>").expect("Encrypt CDATA closes");
    &body[start..end]
}

/// Percent-decoding as a query parser does, where `+` in a value must not become a space
/// unless it was sent as `+` (WeCom sends `%2B`).
fn query_param<'a>(path_and_query: &'a str, name: &str) -> String {
    let query = path_and_query.split_once('?').expect("has a query").1;
    let raw: &'a str = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name} in the query"));
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).expect("percent escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 query")
}

fn check_positive(name: &str) {
    let v = find("vectors", name);
    let crypto = crypto_for(v, "receiveid");
    let (ts, nonce, sig) = (s(v, "timestamp"), s(v, "nonce"), s(v, "msg_signature"));
    match s(v, "kind") {
        "url_verification_get" => {
            let echostr = s(v, "echostr");
            let path = s(v, "request_path_and_query");
            assert_eq!(query_param(path, "echostr"), echostr);
            assert_eq!(query_param(path, "msg_signature"), sig);
            assert_eq!(crypto.signature(ts, nonce, echostr), sig);
            let body = crypto.verify_url(sig, ts, nonce, echostr).unwrap();
            assert_eq!(body, s(v, "expected_response_body"));
            assert_eq!(crypto.encrypt_with_random(&body, &random16(v)), echostr);
        }
        "callback_post" => {
            let encrypt = s(v, "encrypt");
            let post_body = s(v, "post_body");
            assert_eq!(encrypt_of(post_body), encrypt);
            assert_eq!(crypto.signature(ts, nonce, encrypt), sig);
            let sorted: Vec<&str> = v["signature_input_sorted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            let mut ours = vec![s(v, "token"), ts, nonce, encrypt];
            ours.sort_unstable();
            assert_eq!(ours, sorted);

            let plain = crypto.decrypt_message(sig, ts, nonce, post_body).unwrap();
            assert_eq!(plain, s(v, "decrypted_xml"));
            assert_eq!(plain, s(v, "msg"));
            assert_eq!(plain.len() as u64, v["msg_utf8_len"].as_u64().unwrap());
            assert_eq!(crypto.encrypt_with_random(&plain, &random16(v)), encrypt);

            // The fake's callback builder produces WeCom's exact POST.
            let built = build_callback_post(&crypto, 1_000_002, &plain, &random16(v), ts, nonce);
            assert_eq!(built.body, post_body);
            let path = s(v, "request_path_and_query");
            assert_eq!(path.split_once('?').unwrap().1, built.query);

            check_parsed(name, &Message::parse(&plain).unwrap());
        }
        "encrypted_passive_reply" => {
            let reply_plain = s(v, "reply_plain_xml");
            assert_eq!(
                text_reply_xml(
                    "zhangsan",
                    s(v, "receiveid"),
                    1_700_000_400,
                    "已收到：ACK_ALERT_42"
                ),
                reply_plain
            );
            let body = crypto.encrypt_reply_with_random(reply_plain, ts, nonce, &random16(v));
            assert_eq!(body, s(v, "response_body"));
            assert!(body.contains(s(v, "encrypt")) && body.contains(sig));
            // What we send, WeCom (or we) can verify and decrypt.
            assert_eq!(
                crypto.decrypt_message(sig, ts, nonce, &body).unwrap(),
                reply_plain
            );
        }
        other => panic!("unknown vector kind {other:?}"),
    }
}

fn check_parsed(name: &str, msg: &Message) {
    assert_eq!(msg.to, "wx5823bf96d3bd56c7");
    assert_eq!(msg.from, "zhangsan");
    assert_eq!(msg.agent_id, Some(1_000_002));
    let text = |content: &str| MessageBody::Text {
        content: content.into(),
        msg_id: "7193012345678901234".into(),
        chat_id: None,
    };
    let expected = match name {
        "text_ascii" => text("hello wecom"),
        "text_chinese_utf8" => text("你好，世界！告警已恢复 ✅"),
        "pad_full_block" => text("xxxxxx"),
        "event_enter_agent" => MessageBody::Event(Event::EnterAgent),
        "event_click" => MessageBody::Event(Event::Click {
            key: "ACK_ALERT_42".into(),
        }),
        other => panic!("no expectation for {other}"),
    };
    assert_eq!(msg.body, expected, "{name}");
}

fn check_negative(name: &str) {
    let v = find("negative_vectors", name);
    let expected = v["expected_error"].as_i64().unwrap();
    let crypto = crypto_for(v, "receiveid_expected_by_receiver");
    let (ts, nonce, sig) = (s(v, "timestamp"), s(v, "nonce"), s(v, "msg_signature"));

    let err = crypto
        .decrypt_message(sig, ts, nonce, s(v, "post_body"))
        .expect_err("negative vector must be refused");
    assert_eq!(err.code(), Some(expected), "{name}: got {err}");
    assert!(!err.to_string().is_empty());

    // The same ciphertext as an echostr takes the same path through the URL check.
    let err = crypto
        .verify_url(sig, ts, nonce, s(v, "encrypt"))
        .expect_err("negative vector must be refused as echostr too");
    assert_eq!(err.code(), Some(expected), "{name} (verify_url): got {err}");
}

macro_rules! vector_tests {
    ($check:ident: $($test:ident => $name:literal),* $(,)?) => {
        $( #[test] fn $test() { $check($name) } )*
    };
}

vector_tests! { check_positive:
    positive_echostr_verify => "echostr_verify",
    positive_text_ascii => "text_ascii",
    positive_text_chinese_utf8 => "text_chinese_utf8",
    positive_event_enter_agent => "event_enter_agent",
    positive_event_click => "event_click",
    positive_pad_full_block => "pad_full_block",
    positive_passive_reply_text => "passive_reply_text",
}

vector_tests! { check_negative:
    negative_bad_signature => "bad_signature",
    negative_signature_wrong_timestamp => "signature_wrong_timestamp",
    negative_wrong_corpid => "wrong_corpid",
    negative_truncated_ciphertext => "truncated_ciphertext",
    negative_truncated_two_blocks => "truncated_two_blocks",
    negative_bad_padding_zero => "bad_padding_zero",
    negative_bad_padding_inconsistent => "bad_padding_inconsistent",
    negative_bad_padding_33 => "bad_padding_33",
    negative_msg_len_overflow => "msg_len_overflow",
    negative_bad_base64 => "bad_base64",
}

#[test]
fn official_verify_url() {
    let v = find("official_vectors", "official_verify_url");
    let crypto = crypto_for(v, "receiveid");
    let body = crypto
        .verify_url(
            s(v, "msg_signature"),
            s(v, "timestamp"),
            s(v, "nonce"),
            s(v, "echostr"),
        )
        .unwrap();
    assert_eq!(body, s(v, "expected_response_body"));
}

#[test]
fn official_decrypt_msg() {
    let v = find("official_vectors", "official_decrypt_msg");
    let crypto = crypto_for(v, "receiveid");
    let post_body = s(v, "post_body");
    let plain = crypto
        .decrypt_message(
            s(v, "msg_signature"),
            s(v, "timestamp"),
            s(v, "nonce"),
            post_body,
        )
        .unwrap();
    assert_eq!(plain, s(v, "decrypted_xml"));
    assert_eq!(
        crypto.encrypt_with_random(&plain, &random16(v)),
        encrypt_of(post_body)
    );
    let msg = Message::parse(&plain).unwrap();
    assert_eq!(msg.from, "ChenJiaShun");
    assert_eq!(msg.create_time, 1_476_422_779);
    assert!(matches!(msg.body, MessageBody::Text { ref content, .. } if content == "你好"));
}

/// A vector added to the file without a test here fails this test.
#[test]
fn every_vector_in_the_file_has_a_test() {
    let names = |section: &str| -> BTreeSet<String> {
        vectors()[section]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let set = |items: &[&str]| {
        items
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        names("vectors"),
        set(&[
            "echostr_verify",
            "text_ascii",
            "text_chinese_utf8",
            "event_enter_agent",
            "event_click",
            "pad_full_block",
            "passive_reply_text",
        ])
    );
    assert_eq!(
        names("official_vectors"),
        set(&["official_verify_url", "official_decrypt_msg"])
    );
    assert_eq!(
        names("negative_vectors"),
        set(&[
            "bad_signature",
            "signature_wrong_timestamp",
            "wrong_corpid",
            "truncated_ciphertext",
            "truncated_two_blocks",
            "bad_padding_zero",
            "bad_padding_inconsistent",
            "bad_padding_33",
            "msg_len_overflow",
            "bad_base64",
        ])
    );
}

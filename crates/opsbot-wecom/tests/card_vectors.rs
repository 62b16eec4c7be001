//! Every vector of `tests/fixtures/cards/card_vectors.json` (made with wechatpy 1.8.18 by
//! the generator beside it): app and robot card clicks decrypt and parse, the fake's
//! click builders reproduce the callbacks byte for byte, and the passive replies that
//! update a card are rebuilt byte for byte from the pinned random prefixes.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::sync::OnceLock;

use opsbot_fakes::{
    build_aibot_post, build_callback_post, decrypt_aibot_card_reply, decrypt_mp_reply,
    AppClickEvent, BotCardReply, BotClickEvent,
};
use opsbot_wecom::aibot::{self, BotBody, BotMessage, Chat};
use opsbot_wecom::card::{
    bot_update_card_reply_json, update_button_reply_xml, Button, CardType, SelectedItem,
    TemplateCard, Title,
};
use opsbot_wecom::{Event, Message, MessageBody, WecomCrypto};
use serde_json::Value;

fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let path = format!(
            "{}/tests/fixtures/cards/card_vectors.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the test vectors at {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
    })
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .unwrap_or_else(|| panic!("vector field {path:?} is not a string"))
}

fn rnd(v: &Value) -> [u8; 16] {
    s(v, &["random16"]).as_bytes().try_into().unwrap()
}

fn meta(field: &str) -> &'static str {
    s(&vectors()["_meta"], &[field])
}

fn agent_id() -> i64 {
    vectors()["_meta"]["agentid"].as_i64().unwrap()
}

fn app_crypto() -> WecomCrypto {
    WecomCrypto::new(meta("token"), meta("encoding_aes_key"), meta("corpid")).unwrap()
}

fn bot_crypto() -> WecomCrypto {
    WecomCrypto::new(meta("token"), meta("encoding_aes_key"), aibot::RECEIVE_ID).unwrap()
}

/// Decrypt an app click vector, parse it, and rebuild it with the fake's builders.
fn app_click(name: &str, selected: &[(&str, &[&str])]) -> Message {
    let v = &vectors()[name];
    let q = |k: &str| s(v, &["query", k]);
    let crypto = app_crypto();
    let plain = crypto
        .decrypt_message(
            q("msg_signature"),
            q("timestamp"),
            q("nonce"),
            s(v, &["post_body"]),
        )
        .unwrap();
    assert_eq!(plain, s(v, &["plaintext"]), "{name}: plaintext");
    let msg = Message::parse(&plain).unwrap();
    let MessageBody::Event(Event::TemplateCard {
        event_key,
        task_id,
        card_type,
        response_code,
        ..
    }) = &msg.body
    else {
        panic!("{name}: not a card event: {:?}", msg.body)
    };
    let event = AppClickEvent {
        corp_id: meta("corpid").into(),
        user: msg.from.clone(),
        create_time: msg.create_time,
        event_key: event_key.clone(),
        task_id: task_id.clone(),
        card_type: card_type.clone().unwrap(),
        response_code: response_code.clone().unwrap(),
        agent_id: msg.agent_id.unwrap(),
        selected_items: selected
            .iter()
            .map(|(q, ids)| ((*q).into(), ids.iter().map(|i| (*i).into()).collect()))
            .collect(),
    };
    assert_eq!(event.to_xml(), plain, "{name}: the fake's event XML");
    let post = build_callback_post(
        &crypto,
        agent_id(),
        &plain,
        &rnd(v),
        q("timestamp"),
        q("nonce"),
    );
    assert_eq!(
        post.body,
        s(v, &["post_body"]),
        "{name}: the fake's POST body"
    );
    assert_eq!(post.msg_signature, q("msg_signature"), "{name}: signature");
    msg
}

#[test]
fn app_button_click() {
    let v = &vectors()["app_button_click"];
    let msg = app_click("app_button_click", &[]);
    let e = &v["expected_fields"];
    assert_eq!(msg.from, s(e, &["FromUserName"]));
    assert_eq!(msg.agent_id.unwrap().to_string(), s(e, &["AgentID"]));
    assert_eq!(
        msg.body,
        MessageBody::Event(Event::TemplateCard {
            event_key: s(e, &["EventKey"]).into(),
            task_id: s(e, &["TaskId"]).into(),
            card_type: Some(s(e, &["CardType"]).into()),
            response_code: Some(s(e, &["ResponseCode"]).into()),
            selected_items: Vec::new(),
        })
    );
    assert!(msg.dedup_key().starts_with("card:1796000000:"));
}

#[test]
fn app_vote_click() {
    let v = &vectors()["app_vote_click"];
    let msg = app_click("app_vote_click", &[("decision", &["approve"])]);
    let e = &v["expected_fields"];
    let MessageBody::Event(Event::TemplateCard {
        event_key,
        task_id,
        card_type,
        selected_items,
        ..
    }) = msg.body
    else {
        panic!("not a card event")
    };
    assert_eq!(event_key, s(e, &["EventKey"]));
    assert_eq!(task_id, s(e, &["TaskId"]));
    assert_eq!(card_type.as_deref(), Some(s(e, &["CardType"])));
    let expected: Vec<SelectedItem> = e["SelectedItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| SelectedItem {
            question_key: s(item, &["QuestionKey"]).into(),
            option_ids: item["OptionIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().into())
                .collect(),
        })
        .collect();
    assert_eq!(selected_items, expected);
}

#[test]
fn app_passive_update_button() {
    let v = &vectors()["app_passive_update_button"];
    let click = &vectors()[s(v, &["in_reply_to"])];
    let (ts, nonce) = (
        s(click, &["query", "timestamp"]),
        s(click, &["query", "nonce"]),
    );
    let plain =
        update_button_reply_xml("lisi", meta("corpid"), 1_796_000_001, "已由 lisi 执行 #42");
    assert_eq!(plain, s(v, &["reply_plaintext"]));
    let crypto = app_crypto();
    let body = crypto.encrypt_reply_with_random(&plain, ts, nonce, &rnd(v));
    assert_eq!(body, s(v, &["response_body"]));
    assert_eq!(decrypt_mp_reply(&crypto, &body).unwrap(), plain);
}

fn alert_bot_card() -> TemplateCard {
    TemplateCard {
        main_title: Some(Title::new(
            "[P1] HighCPU web-01",
            Some("已静默 1 小时".into()),
        )),
        sub_title_text: Some("由 lisi 于 1796000120 静默".into()),
        task_id: Some("bot-alert-42-5f3a9c".into()),
        button_list: vec![Button::callback("已静默", 4, "noop.al42")],
        ..TemplateCard::new(CardType::ButtonInteraction)
    }
}

#[test]
fn bot_button_click() {
    let v = &vectors()["bot_button_click"];
    let q = |k: &str| s(v, &["query", k]);
    let crypto = bot_crypto();
    let plain = crypto
        .decrypt_json_message(
            q("msg_signature"),
            q("timestamp"),
            q("nonce"),
            s(v, &["post_body"]),
        )
        .unwrap();
    assert_eq!(plain, s(v, &["plaintext"]));
    let msg = BotMessage::parse(&plain).unwrap();
    let d = &v["decrypted"];
    assert_eq!(msg.msg_id, s(d, &["msgid"]));
    assert_eq!(msg.from, "lisi");
    assert_eq!(msg.chat, Chat::Group(s(d, &["chatid"]).into()));
    assert_eq!(msg.response_url.as_deref(), Some(s(d, &["response_url"])));
    assert_eq!(msg.body, BotBody::Event("template_card_event".into()));
    let card = msg.card_event.clone().unwrap();
    let e = &d["event"]["template_card_event"];
    assert_eq!(card.event_key, s(e, &["event_key"]));
    assert_eq!(card.task_id, s(e, &["task_id"]));
    assert_eq!(card.card_type.as_deref(), Some(s(e, &["card_type"])));
    assert!(card.selected_items.is_empty());

    let event = BotClickEvent {
        msg_id: msg.msg_id.clone(),
        create_time: d["create_time"].as_i64().unwrap(),
        bot_id: msg.bot_id.clone(),
        user: msg.from.clone(),
        chat: Some(s(d, &["chatid"]).into()),
        response_url: msg.response_url.clone().unwrap(),
        card_type: card.card_type.clone().unwrap(),
        event_key: card.event_key.clone(),
        task_id: card.task_id.clone(),
        selected_items: Vec::new(),
    };
    assert_eq!(event.to_json(), plain, "the fake's robot click JSON");
    let post = build_aibot_post(&crypto, &plain, &rnd(v), q("timestamp"), q("nonce"));
    assert_eq!(post.encrypt, s(v, &["encrypt"]));
    assert_eq!(post.msg_signature, q("msg_signature"));
    // Python's json.dumps puts a blank after ':'; the members are the same.
    let ours: Value = serde_json::from_str(&post.body).unwrap();
    let theirs: Value = serde_json::from_str(s(v, &["post_body"])).unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn bot_passive_update_card() {
    let v = &vectors()["bot_passive_update_card"];
    let click = &vectors()[s(v, &["in_reply_to"])];
    let (ts, nonce) = (
        s(click, &["query", "timestamp"]),
        s(click, &["query", "nonce"]),
    );
    let plain = bot_update_card_reply_json(&["lisi".into()], &alert_bot_card()).unwrap();
    assert_eq!(plain, s(v, &["reply_plaintext"]));
    let crypto = bot_crypto();
    let body = crypto.encrypt_json_reply_with_random(&plain, ts, nonce, &rnd(v));
    let ours: Value = serde_json::from_str(&body).unwrap();
    let theirs: Value = serde_json::from_str(s(v, &["response_body"])).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(ours["encrypt"], s(v, &["encrypt"]));
    let BotCardReply::UpdateCard { userids, card } =
        decrypt_aibot_card_reply(&crypto, s(v, &["response_body"])).unwrap()
    else {
        panic!("not a card update")
    };
    assert_eq!(userids, ["lisi"]);
    assert_eq!(card, alert_bot_card().to_json());
}

#[test]
fn every_vector_in_the_file_has_a_test() {
    let tested = [
        "app_button_click",
        "app_vote_click",
        "app_passive_update_button",
        "bot_button_click",
        "bot_passive_update_card",
    ];
    let names: Vec<&String> = vectors()
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.starts_with('_'))
        .collect();
    assert_eq!(names.len(), tested.len(), "{names:?}");
    for name in names {
        assert!(tested.contains(&name.as_str()), "no test for vector {name}");
    }
}

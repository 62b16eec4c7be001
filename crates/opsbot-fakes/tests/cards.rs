//! Template cards end to end through the fake: cards sent with the API client, clicks
//! posted to a small callback endpoint built on `opsbot-wecom` (as opsbot's is), its
//! passive replies read back and applied to the clicker's copy, robot card clicks, and
//! the HTML rendering of a card as a member sees it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use opsbot_fakes::{card_html, decrypt_aibot_card_reply, BotCardReply, FakeWecom, PassiveReply};
use opsbot_wecom::aibot::BotMessage;
use opsbot_wecom::api::{AppMessage, Recipients};
use opsbot_wecom::card::{
    bot_update_card_reply_json, update_button_reply_xml, Button, CardChange, CardType, CardUpdate,
    Checkbox, CheckboxOption, SubmitButton, TemplateCard, Title,
};
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::{
    AppClient, AppCredentials, ClientConfig, Event, Message, MessageBody, WecomClient, WecomCrypto,
};
use serde_json::json;

const CORP: &str = "ww7c0ffee0ddba11ad";
const SECRET: &str = "card-app-secret";
const AGENT: i64 = 1_000_002;
const AES_KEY: &str = "q3Jc7vZt0s9XbN2kLm4Pw8Rh1Yd6Fg5Ua0Ei3Ox7Tb2";

fn crypto() -> WecomCrypto {
    WecomCrypto::new("opsbotCardTok", AES_KEY, CORP).unwrap()
}

type Params = Query<HashMap<String, String>>;

/// A stand-in for opsbot's callback: an `ack…` key greys the clicker's buttons, a
/// submit answers with the choices as text, anything else gets no reply.
async fn callback(
    State(crypto): State<WecomCrypto>,
    Query(q): Params,
    body: String,
) -> (StatusCode, String) {
    let param = |name: &str| q.get(name).map_or("", String::as_str);
    let (ts, nonce) = (param("timestamp"), param("nonce"));
    let plain = match crypto.decrypt_message(param("msg_signature"), ts, nonce, &body) {
        Ok(plain) => plain,
        Err(err) => return (StatusCode::FORBIDDEN, err.to_string()),
    };
    let msg = Message::parse(&plain).unwrap();
    let MessageBody::Event(Event::TemplateCard {
        event_key,
        selected_items,
        ..
    }) = &msg.body
    else {
        return (StatusCode::OK, String::new());
    };
    let reply = if event_key.starts_with("ack") {
        update_button_reply_xml(
            &msg.from,
            &msg.to,
            msg.create_time,
            &format!("已由 {} 确认", msg.from),
        )
    } else if event_key.starts_with("submit") {
        let answers: Vec<String> = selected_items
            .iter()
            .map(|item| format!("{}={}", item.question_key, item.option_ids.join("+")))
            .collect();
        text_reply_xml(&msg.from, &msg.to, msg.create_time, &answers.join(","))
    } else {
        return (StatusCode::OK, String::new());
    };
    (StatusCode::OK, crypto.encrypt_reply(&reply, ts, nonce))
}

async fn serve() -> String {
    let router = Router::new()
        .route("/wecom/callback", post(callback))
        .with_state(crypto());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/wecom/callback")
}

struct Harness {
    fake: FakeWecom,
    app: AppClient,
    url: String,
}

async fn harness() -> Harness {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, SECRET, AGENT);
    fake.add_users(&["zhangsan", "lisi", "wangwu"]);
    fake.set_callback(AGENT, crypto());
    let client = WecomClient::new(ClientConfig {
        api_base: fake.base_url(),
        timeout: Duration::from_secs(3),
        ..ClientConfig::default()
    })
    .unwrap();
    let app = client.app(AppCredentials::new(CORP, AGENT, SECRET));
    Harness {
        fake,
        app,
        url: serve().await,
    }
}

fn alert_card(task_id: &str) -> TemplateCard {
    TemplateCard {
        main_title: Some(Title::new("[P1] HighCPU web-01", None)),
        task_id: Some(task_id.into()),
        button_list: vec![
            Button::callback("确认", 1, "ack.al42"),
            Button::callback("静默", 2, "sil.al42"),
            Button::link("runbook", 3, "https://wiki.example/cpu"),
        ],
        ..TemplateCard::new(CardType::ButtonInteraction)
    }
}

async fn send(h: &Harness, card: TemplateCard, users: &[&str]) -> String {
    let receipt = h
        .app
        .send(
            &Recipients::users(users.iter().copied()),
            &AppMessage::TemplateCard(card),
        )
        .await
        .unwrap();
    receipt.response_code.unwrap()
}

#[tokio::test]
async fn a_passive_update_changes_only_the_clickers_copy() {
    let h = harness().await;
    send(&h, alert_card("al42"), &["zhangsan", "lisi"]).await;
    let click = h.fake.click(AGENT, "lisi", "al42", "ack.al42").unwrap();
    // The click verifies and decrypts with opsbot-wecom's crypto.
    let q: HashMap<String, String> = click
        .post
        .query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let plain = crypto()
        .decrypt_message(
            &q["msg_signature"],
            &q["timestamp"],
            &q["nonce"],
            &click.post.body,
        )
        .unwrap();
    assert_eq!(plain, click.event.to_xml());
    assert_eq!(click.event.card_type, "button_interaction");

    let outcome = click.push(&h.url).await.unwrap();
    assert_eq!(outcome.status, 200, "{}", outcome.body);
    let reply = h.fake.apply_passive_reply(&click, &outcome.body).unwrap();
    assert_eq!(reply, PassiveReply::UpdateButton("已由 lisi 确认".into()));
    assert_eq!(
        h.fake.card_as_seen("al42", "lisi").unwrap()["replace_text"],
        "已由 lisi 确认"
    );
    assert!(h.fake.card_as_seen("al42", "zhangsan").unwrap()["replace_text"].is_null());
    let updates = h.fake.card_updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(
        (updates[0].response_code.clone(), updates[0].users.clone()),
        (None, vec!["lisi".to_owned()])
    );

    // lisi's buttons are gone; zhangsan's still work.
    let err = h.fake.click(AGENT, "lisi", "al42", "sil.al42").unwrap_err();
    assert!(err.contains("已由 lisi 确认"), "{err}");
    let second = h.fake.click(AGENT, "zhangsan", "al42", "sil.al42").unwrap();
    let outcome = second.push(&h.url).await.unwrap();
    assert_eq!(
        h.fake.apply_passive_reply(&second, &outcome.body).unwrap(),
        PassiveReply::Nothing
    );
    assert_eq!(h.fake.card_clicks().len(), 2);
}

#[tokio::test]
async fn an_atall_update_changes_every_copy() {
    let h = harness().await;
    send(&h, alert_card("al43"), &["zhangsan", "lisi", "wangwu"]).await;
    let click = h.fake.click(AGENT, "wangwu", "al43", "sil.al42").unwrap();
    h.app
        .update_template_card(&CardUpdate::for_all(
            &click.event.response_code,
            CardChange::ReplaceName("已由 wangwu 静默".into()),
        ))
        .await
        .unwrap();
    for user in ["zhangsan", "lisi", "wangwu"] {
        let seen = h.fake.card_as_seen("al43", user).unwrap();
        assert_eq!(seen["replace_text"], "已由 wangwu 静默", "{user}");
        assert!(
            h.fake.click(AGENT, user, "al43", "ack.al42").is_err(),
            "{user}"
        );
    }
    let updates = h.fake.card_updates();
    assert_eq!(updates.len(), 1);
    assert!(updates[0].atall);
    assert_eq!(updates[0].users, ["zhangsan", "lisi", "wangwu"]);
}

#[tokio::test]
async fn clicks_the_client_could_not_make_are_refused() {
    let h = harness().await;
    send(&h, alert_card("al44"), &["lisi"]).await;
    let refusals = [
        (AGENT, "zhangsan", "al44", "ack.al42", "did not receive"),
        (AGENT, "lisi", "al44", "nope", "not a callback button"),
        (
            AGENT,
            "lisi",
            "al44",
            "https://wiki.example/cpu",
            "not a callback button",
        ),
        (AGENT, "lisi", "al99", "ack.al42", "never sent"),
        (1_000_009, "lisi", "al44", "ack.al42", "no callback"),
    ];
    for (agent, user, task, key, why) in refusals {
        let err = h.fake.click(agent, user, task, key).unwrap_err();
        assert!(err.contains(why), "{user} {task} {key}: {err}");
    }
    assert!(h.fake.card_clicks().is_empty());
}

fn vote_card(task_id: &str, mode: u8) -> TemplateCard {
    let option = |id: &str, text: &str| CheckboxOption {
        id: id.into(),
        text: text.into(),
        is_checked: None,
    };
    TemplateCard {
        main_title: Some(Title::new("发布 web 1.4 到生产?", None)),
        task_id: Some(task_id.into()),
        checkbox: Some(Checkbox {
            question_key: "decision".into(),
            option_list: vec![
                option("approve", "批准"),
                option("reject", "拒绝"),
                option("later", "稍后"),
            ],
            mode: Some(mode),
            disable: None,
        }),
        submit_button: Some(SubmitButton {
            text: "提交".into(),
            key: "submit.dp7".into(),
        }),
        ..TemplateCard::new(CardType::VoteInteraction)
    }
}

#[tokio::test]
async fn votes_carry_their_selected_items() {
    let h = harness().await;
    send(&h, vote_card("dp7", 0), &["wangwu"]).await;
    let click = h
        .fake
        .click_with(
            AGENT,
            "wangwu",
            "dp7",
            "submit.dp7",
            &[("decision", &["approve"])],
        )
        .unwrap();
    assert_eq!(
        click.event.selected_items,
        [("decision".to_owned(), vec!["approve".to_owned()])]
    );
    let outcome = click.push(&h.url).await.unwrap();
    assert_eq!(
        h.fake.apply_passive_reply(&click, &outcome.body).unwrap(),
        PassiveReply::Text("decision=approve".into())
    );
    // A text reply leaves the card as it was.
    assert!(h.fake.card_as_seen("dp7", "wangwu").unwrap()["replace_text"].is_null());

    for (answer, why) in [
        (&["approve", "reject"][..], "takes one answer"),
        (&["maybe"][..], "not an option"),
        (&[][..], "needs an answer"),
    ] {
        let err = h
            .fake
            .click_with(
                AGENT,
                "wangwu",
                "dp7",
                "submit.dp7",
                &[("decision", answer)],
            )
            .unwrap_err();
        assert!(err.contains(why), "{answer:?}: {err}");
    }
    let err = h
        .fake
        .click(AGENT, "wangwu", "dp7", "submit.dp7")
        .unwrap_err();
    assert!(err.contains("needs an answer"), "{err}");
    let err = h
        .fake
        .click_with(AGENT, "wangwu", "dp7", "submit.dp7", &[("other", &["x"])])
        .unwrap_err();
    assert!(err.contains("no question"), "{err}");

    send(&h, vote_card("dp8", 1), &["wangwu"]).await;
    let click = h
        .fake
        .click_with(
            AGENT,
            "wangwu",
            "dp8",
            "submit.dp7",
            &[("decision", &["approve", "later"])],
        )
        .unwrap();
    let outcome = click.push(&h.url).await.unwrap();
    assert_eq!(
        h.fake.apply_passive_reply(&click, &outcome.body).unwrap(),
        PassiveReply::Text("decision=approve+later".into())
    );
}

#[tokio::test]
async fn a_button_selection_sends_its_default() {
    let h = harness().await;
    let card = TemplateCard {
        button_selection: Some(opsbot_wecom::card::ButtonSelection {
            question_key: "host".into(),
            title: Some("主机".into()),
            option_list: vec![
                opsbot_wecom::card::SelectOption::new("web-01", "web-01"),
                opsbot_wecom::card::SelectOption::new("web-02", "web-02"),
            ],
            selected_id: Some("web-02".into()),
        }),
        ..alert_card("al45")
    };
    send(&h, card, &["lisi"]).await;
    let click = h.fake.click(AGENT, "lisi", "al45", "ack.al42").unwrap();
    assert_eq!(
        click.event.selected_items,
        [("host".to_owned(), vec!["web-02".to_owned()])]
    );
    let parsed = Message::parse(&click.event.to_xml()).unwrap();
    let MessageBody::Event(Event::TemplateCard { selected_items, .. }) = parsed.body else {
        panic!("not a card event")
    };
    assert_eq!(selected_items[0].option_ids, ["web-02"]);
}

#[tokio::test]
async fn passive_replies_are_verified() {
    let h = harness().await;
    send(&h, alert_card("al46"), &["lisi", "zhangsan"]).await;
    let click = h.fake.click(AGENT, "lisi", "al46", "ack.al42").unwrap();
    let to_other = update_button_reply_xml("zhangsan", CORP, 1, "x");
    let body = crypto().encrypt_reply(&to_other, "1", "2");
    assert!(h
        .fake
        .apply_passive_reply(&click, &body)
        .unwrap_err()
        .contains("not addressed"));
    let forged = WecomCrypto::new("another-token", AES_KEY, CORP)
        .unwrap()
        .encrypt_reply(&update_button_reply_xml("lisi", CORP, 1, "x"), "1", "2");
    assert!(h.fake.apply_passive_reply(&click, &forged).is_err());
    assert!(h.fake.card_as_seen("al46", "lisi").unwrap()["replace_text"].is_null());
}

#[tokio::test]
async fn appchat_cards_reach_the_chat_members() {
    let h = harness().await;
    h.app
        .appchat_create(&opsbot_wecom::api::NewAppChat {
            users: vec!["lisi".into(), "wangwu".into()],
            chat_id: Some("oncall".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    h.app
        .appchat_send("oncall", &AppMessage::TemplateCard(alert_card("al47")))
        .await
        .unwrap();
    let sent = h.fake.cards_sent();
    assert_eq!(sent[0].endpoint, "appchat/send");
    assert_eq!(sent[0].recipients, ["lisi", "wangwu"]);
    assert!(h.fake.click(AGENT, "wangwu", "al47", "ack.al42").is_ok());
    let reuse = h
        .app
        .appchat_send("oncall", &AppMessage::TemplateCard(alert_card("al47")))
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Some(42014));
}

#[tokio::test]
async fn robot_card_clicks_and_passive_card_updates() {
    let fake = FakeWecom::start().await.unwrap();
    let robot = WecomCrypto::new("botTok", AES_KEY, "").unwrap();
    let click = fake.aibot_card_click(
        &robot,
        Some("wrOpsRoom"),
        "lisi",
        "bot-al42",
        "sil.al42",
        &[],
    );
    let q: HashMap<String, String> = click
        .post
        .query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let plain = robot
        .decrypt_json_message(
            &q["msg_signature"],
            &q["timestamp"],
            &q["nonce"],
            &click.post.body,
        )
        .unwrap();
    let msg = BotMessage::parse(&plain).unwrap();
    let card = msg.card_event.clone().unwrap();
    assert_eq!(
        (card.event_key.as_str(), card.task_id.as_str()),
        ("sil.al42", "bot-al42")
    );
    assert_eq!(msg.from, "lisi");
    // The response_url is one of the fake's, usable once.
    assert!(msg.response_url.unwrap().starts_with(&fake.base_url()));

    let updated = TemplateCard {
        main_title: Some(Title::new(
            "[P1] HighCPU web-01",
            Some("已静默 1 小时".into()),
        )),
        task_id: Some("bot-al42".into()),
        button_list: vec![Button::callback("已静默", 3, "noop.al42")],
        ..TemplateCard::new(CardType::ButtonInteraction)
    };
    let reply = bot_update_card_reply_json(std::slice::from_ref(&msg.from), &updated).unwrap();
    let body = robot.encrypt_json_reply(&reply, &q["timestamp"], &q["nonce"]);
    assert_eq!(
        decrypt_aibot_card_reply(&robot, &body).unwrap(),
        BotCardReply::UpdateCard {
            userids: vec!["lisi".into()],
            card: updated.to_json()
        }
    );
    let sent = opsbot_wecom::card::bot_card_reply_json(&updated).unwrap();
    let body = robot.encrypt_json_reply(&sent, "1", "2");
    assert_eq!(
        decrypt_aibot_card_reply(&robot, &body).unwrap(),
        BotCardReply::Card(updated.to_json())
    );
}

#[test]
fn html_escapes_and_greys_replaced_buttons() {
    let card = json!({
        "card_type": "button_interaction",
        "source": {"desc": "opsbot", "desc_color": 2},
        "main_title": {"title": "<script>alert(1)</script>", "desc": "a & b"},
        "sub_title_text": "CPU \"97%\"",
        "horizontal_content_list": [{"keyname": "实例", "value": "web-01'"}],
        "task_id": "t",
        "button_list": [{"text": "确认", "style": 1, "key": "a"}, {"text": "删除", "style": 4, "key": "b"}]
    });
    let page = card_html(&card);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
    assert!(
        page.contains("a &amp; b")
            && page.contains("&quot;97%&quot;")
            && page.contains("web-01&#39;")
    );
    assert!(page.contains("class=\"btn s1\">确认") && page.contains("class=\"btn s4\">删除"));
    assert!(page.contains("class=\"source c2\""));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing is fetched"
    );
    let mut seen = card.clone();
    seen["replace_text"] = json!("已由 <lisi> 确认");
    let page = card_html(&seen);
    assert!(page.contains("class=\"btn grey\">已由 &lt;lisi&gt; 确认"));
    assert!(!page.contains("class=\"btn s1\""));
}

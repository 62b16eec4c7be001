//! Template cards through the API client against the fake WeCom over real HTTP
//! (CARDS.md §2, §4.2, §8): send and get a response_code, task_id rules, the fake's
//! structure checks, and `update_template_card` with its one-time, 72-hour codes.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::time::Duration;

use opsbot_fakes::{FakeWecom, Fault};
use opsbot_wecom::api::{AppMessage, Recipients, SendReceipt};
use opsbot_wecom::card::{
    Button, CardAction, CardChange, CardType, CardUpdate, HorizontalContent, Source, TemplateCard,
    Title,
};
use opsbot_wecom::{AppClient, AppCredentials, ClientConfig, Error, WecomClient, WecomCrypto};
use serde_json::{json, Value};

const CORP: &str = "ww7c0ffee0ddba11ad";
const SECRET: &str = "card-app-secret";
const AGENT: i64 = 1_000_002;
const OTHER_SECRET: &str = "other-app-secret";
const OTHER_AGENT: i64 = 1_000_003;
const AES_KEY: &str = "q3Jc7vZt0s9XbN2kLm4Pw8Rh1Yd6Fg5Ua0Ei3Ox7Tb2";

struct Harness {
    fake: FakeWecom,
    client: WecomClient,
    app: AppClient,
}

async fn harness() -> Harness {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, SECRET, AGENT);
    fake.add_app(CORP, OTHER_SECRET, OTHER_AGENT);
    fake.add_users(&["zhangsan", "lisi"]);
    fake.set_callback(
        AGENT,
        WecomCrypto::new("opsbotCardTok", AES_KEY, CORP).unwrap(),
    );
    let client = WecomClient::new(ClientConfig {
        api_base: fake.base_url(),
        timeout: Duration::from_secs(3),
        ..ClientConfig::default()
    })
    .unwrap();
    let app = client.app(AppCredentials::new(CORP, AGENT, SECRET));
    Harness { fake, client, app }
}

fn alert_card(task_id: &str) -> TemplateCard {
    TemplateCard {
        source: Some(Source {
            desc: Some("opsbot".into()),
            desc_color: Some(2),
            ..Source::default()
        }),
        main_title: Some(Title::new(
            "[P1] HighCPU web-01",
            Some("firing since 10:02".into()),
        )),
        sub_title_text: Some("CPU 97% > 90% for 5m".into()),
        horizontal_content_list: vec![HorizontalContent::text("实例", "web-01:9100")],
        task_id: Some(task_id.into()),
        button_list: vec![
            Button::callback("确认", 1, "ack.al42"),
            Button::callback("静默 1 小时", 2, "sil1h.al42"),
        ],
        ..TemplateCard::new(CardType::ButtonInteraction)
    }
}

fn both() -> Recipients {
    Recipients::users(["zhangsan", "lisi"])
}

async fn send_card(h: &Harness, task_id: &str) -> SendReceipt {
    h.app
        .send(&both(), &AppMessage::TemplateCard(alert_card(task_id)))
        .await
        .unwrap()
}

fn refused(err: &Error) -> (i64, &str) {
    match err {
        Error::CardUpdateRefused { errcode, errmsg } => (*errcode, errmsg.as_str()),
        other => panic!("expected a refused update, got {other:?}"),
    }
}

fn replace_name(code: &str, name: &str) -> CardUpdate {
    CardUpdate::for_all(code, CardChange::ReplaceName(name.into()))
}

/// POST a raw `message/send` body, past the client's own checks.
async fn raw_send(h: &Harness, body: Value) -> Value {
    let http = reqwest::Client::new();
    let token: Value = http
        .get(format!("{}/cgi-bin/gettoken", h.fake.base_url()))
        .query(&[("corpid", CORP), ("corpsecret", SECRET)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(format!("{}/cgi-bin/message/send", h.fake.base_url()))
        .query(&[("access_token", token["access_token"].as_str().unwrap())])
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

// ---- send ----------------------------------------------------------------------------------

#[tokio::test]
async fn an_interactive_card_gets_a_response_code_and_is_recorded() {
    let h = harness().await;
    let receipt = send_card(&h, "al42-5f3a9c0d").await;
    let code = receipt.response_code.clone().unwrap();
    assert!(receipt.msg_id.is_some() && !receipt.is_partial());
    let sent = h.fake.cards_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].agent_id, AGENT);
    assert_eq!(sent[0].task_id.as_deref(), Some("al42-5f3a9c0d"));
    assert_eq!(sent[0].recipients, ["zhangsan", "lisi"]);
    assert_eq!(sent[0].response_code.as_deref(), Some(code.as_str()));
    assert_eq!(sent[0].card, alert_card("al42-5f3a9c0d").to_json());
    let body = &h.fake.sent_to("message/send")[0].body;
    assert_eq!(body["msgtype"], "template_card");
    assert_eq!(body["agentid"], AGENT);
    assert_eq!(
        h.fake.card_as_seen("al42-5f3a9c0d", "lisi").unwrap(),
        alert_card("al42-5f3a9c0d").to_json()
    );

    let notice = TemplateCard {
        main_title: Some(Title::new("部署完成", None)),
        card_action: Some(CardAction::url("https://opsbot.example/jobs/7")),
        ..TemplateCard::new(CardType::TextNotice)
    };
    let receipt = h
        .app
        .send(&both(), &AppMessage::TemplateCard(notice))
        .await
        .unwrap();
    assert_eq!(
        receipt.response_code, None,
        "only interactive cards get one"
    );
}

#[tokio::test]
async fn a_task_id_is_used_once_per_app_forever() {
    let h = harness().await;
    send_card(&h, "al42-once").await;
    // Also when the card goes to somebody else.
    let again = h
        .app
        .send(
            &Recipients::users(["zhangsan"]),
            &AppMessage::TemplateCard(alert_card("al42-once")),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(42014));
    assert!(again.to_string().contains("taskid has existed"), "{again}");
    assert!(!again.is_retryable());
    // Another app has task ids of its own.
    let other = h
        .client
        .app(AppCredentials::new(CORP, OTHER_AGENT, OTHER_SECRET));
    other
        .send(&both(), &AppMessage::TemplateCard(alert_card("al42-once")))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_fake_names_the_missing_field() {
    let h = harness().await;
    let send = |card: Value| json!({"touser": "lisi", "agentid": AGENT, "msgtype": "template_card", "template_card": card});
    let cases = [
        (
            json!({"card_type": "button_interaction", "main_title": {"title": "t"}, "task_id": "f1"}),
            40058,
            "button_list",
        ),
        (
            json!({"card_type": "button_interaction", "task_id": "f2",
                   "button_list": [{"text": "ok", "key": "k"}]}),
            40058,
            "main_title.title",
        ),
        (
            json!({"card_type": "button_interaction", "main_title": {"title": "t"}, "task_id": "f3",
                   "button_list": [{"text": "ok"}]}),
            40058,
            "button_list[0].key",
        ),
        (
            json!({"card_type": "vote_interaction", "main_title": {"title": "t"}, "task_id": "f4",
                   "checkbox": {"question_key": "q", "option_list": [{"id": "a", "text": "A"}]}}),
            40058,
            "submit_button",
        ),
        (
            json!({"card_type": "button_interaction", "main_title": {"title": "t"},
                   "button_list": [{"text": "ok", "key": "k"}]}),
            42014,
            "taskid",
        ),
        (
            json!({"card_type": "button_interaction", "main_title": {"title": "t"}, "task_id": "bad id",
                   "button_list": [{"text": "ok", "key": "k"}]}),
            42014,
            "taskid",
        ),
        (
            json!({"card_type": "text_notice", "main_title": {"title": "t"}}),
            42045,
            "card_action",
        ),
    ];
    for (card, errcode, field) in cases {
        let answer = raw_send(&h, send(card.clone())).await;
        assert_eq!(answer["errcode"], errcode, "{card} → {answer}");
        assert!(
            answer["errmsg"].as_str().unwrap().contains(field),
            "{card} → {answer}"
        );
    }
    assert!(h.fake.cards_sent().is_empty());
}

#[tokio::test]
async fn the_client_refuses_a_bad_card_before_sending() {
    let h = harness().await;
    let mut card = alert_card("al42-x");
    card.button_list
        .push(Button::callback("dup", 3, "ack.al42"));
    let err = h
        .app
        .send(&both(), &AppMessage::TemplateCard(card))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidCard { field, .. } if field == "button_list[2].key"),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(h.fake.request_count("message/send"), 0);
}

// ---- update_template_card ------------------------------------------------------------------

#[tokio::test]
async fn the_send_code_updates_once() {
    let h = harness().await;
    let code = send_card(&h, "al42-upd").await.response_code.unwrap();
    h.app
        .update_template_card(&replace_name(&code, "已由 lisi 执行 #42"))
        .await
        .unwrap();
    for user in ["lisi", "zhangsan"] {
        let seen = h.fake.card_as_seen("al42-upd", user).unwrap();
        assert_eq!(seen["replace_text"], "已由 lisi 执行 #42", "{user}");
    }
    let updates = h.fake.card_updates();
    assert_eq!(updates.len(), 1);
    assert!(updates[0].atall);
    assert_eq!(updates[0].users, ["zhangsan", "lisi"]);
    assert_eq!(updates[0].response_code.as_deref(), Some(code.as_str()));
    assert_eq!(updates[0].body["agentid"], AGENT);

    let again = h
        .app
        .update_template_card(&replace_name(&code, "again"))
        .await
        .unwrap_err();
    assert_eq!(refused(&again), (40058, "response_code used"));
    assert!(!again.is_retryable() && !again.outcome_unknown());
    assert!(again.to_string().contains("do not retry"), "{again}");
    assert_eq!(h.fake.card_updates().len(), 1);
}

#[tokio::test]
async fn a_click_brings_a_new_code() {
    let h = harness().await;
    let send_code = send_card(&h, "al42-click").await.response_code.unwrap();
    let click = h
        .fake
        .click(AGENT, "lisi", "al42-click", "ack.al42")
        .unwrap();
    let click_code = click.event.response_code.clone();
    assert_ne!(click_code, send_code);
    // One change per code: the send's, then the click's.
    let running = TemplateCard {
        sub_title_text: Some("lisi 正在执行 #42".into()),
        ..alert_card("al42-click")
    };
    h.app
        .update_template_card(&CardUpdate::for_users(
            &send_code,
            ["lisi"],
            CardChange::Card(running.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(
        h.fake.card_as_seen("al42-click", "lisi").unwrap(),
        running.to_json()
    );
    assert_eq!(
        h.fake.card_as_seen("al42-click", "zhangsan").unwrap(),
        alert_card("al42-click").to_json(),
        "only lisi's copy changed"
    );
    h.app
        .update_template_card(&replace_name(&click_code, "已由 lisi 执行 #42"))
        .await
        .unwrap();
    assert_eq!(
        h.fake.card_as_seen("al42-click", "zhangsan").unwrap()["replace_text"],
        "已由 lisi 执行 #42"
    );
}

#[tokio::test]
async fn codes_expire_after_72_hours() {
    let h = harness().await;
    let early = send_card(&h, "al42-early").await.response_code.unwrap();
    let late = send_card(&h, "al42-late").await.response_code.unwrap();
    h.fake.advance(Duration::from_secs(72 * 3600 - 1));
    h.app
        .update_template_card(&replace_name(&early, "ok"))
        .await
        .unwrap();
    h.fake.advance(Duration::from_secs(1));
    let err = h
        .app
        .update_template_card(&replace_name(&late, "too late"))
        .await
        .unwrap_err();
    assert_eq!(refused(&err), (40058, "response_code expired"));
    assert!(h.fake.card_as_seen("al42-late", "lisi").unwrap()["replace_text"].is_null());
}

#[tokio::test]
async fn only_the_sending_app_may_update() {
    let h = harness().await;
    let code = send_card(&h, "al42-agent").await.response_code.unwrap();
    let other = h
        .client
        .app(AppCredentials::new(CORP, OTHER_AGENT, OTHER_SECRET));
    let err = other
        .update_template_card(&replace_name(&code, "stolen"))
        .await
        .unwrap_err();
    assert_eq!(refused(&err).0, 42015);
    // The code was not spent by the refusal.
    h.app
        .update_template_card(&replace_name(&code, "ok"))
        .await
        .unwrap();
}

#[tokio::test]
async fn unknown_tasks_and_codes() {
    let h = harness().await;
    let code = send_card(&h, "al42-task").await.response_code.unwrap();
    send_card(&h, "al43-task").await;
    let ghost = CardUpdate::for_all(&code, CardChange::Card(alert_card("al99-ghost")));
    let err = h.app.update_template_card(&ghost).await.unwrap_err();
    assert_eq!(refused(&err).0, 42016);
    let other_task = CardUpdate::for_all(&code, CardChange::Card(alert_card("al43-task")));
    let err = h.app.update_template_card(&other_task).await.unwrap_err();
    assert_eq!(refused(&err).0, 40058);
    let err = h
        .app
        .update_template_card(&replace_name("rc-never-issued", "x"))
        .await
        .unwrap_err();
    assert_eq!(refused(&err), (40058, "response_code invalid"));

    h.fake.set_card_code_errcode(42099);
    let err = h
        .app
        .update_template_card(&replace_name("rc-never-issued", "x"))
        .await
        .unwrap_err();
    assert_eq!(refused(&err).0, 42099, "no client may depend on 40058");
}

#[tokio::test]
async fn busy_and_limits_stay_retryable_and_tokens_refresh() {
    let h = harness().await;
    let code = send_card(&h, "al42-retry").await.response_code.unwrap();
    let update = replace_name(&code, "done");
    for (errcode, retryable) in [(-1, true), (45009, true), (45033, true), (40058, false)] {
        h.fake.push_fault(
            "message/update_template_card",
            Fault::Json(json!({"errcode": errcode, "errmsg": "injected"})),
        );
        let err = h.app.update_template_card(&update).await.unwrap_err();
        assert_eq!(err.code(), Some(errcode));
        assert_eq!(err.is_retryable(), retryable, "{errcode}: {err}");
    }
    h.fake.push_fault(
        "message/update_template_card",
        Fault::Json(json!({"errcode": 42001, "errmsg": "access_token expired"})),
    );
    h.app.update_template_card(&update).await.unwrap();
    assert_eq!(h.fake.gettoken_calls(), 2);
    assert_eq!(h.fake.card_updates().len(), 1);
}

#[tokio::test]
async fn an_update_card_is_checked_like_a_sent_one() {
    let h = harness().await;
    let code = send_card(&h, "al42-check").await.response_code.unwrap();
    let mut broken = alert_card("al42-check");
    broken.button_list.clear();
    let err = h
        .app
        .update_template_card(&CardUpdate::for_all(&code, CardChange::Card(broken)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCard { .. }), "{err}");
    assert_eq!(h.fake.request_count("message/update_template_card"), 0);
}

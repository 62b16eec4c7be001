//! The API client against the fake WeCom over real HTTP: FAKE_WECOM_SERVER.md "Tests this
//! double must make possible" 1–8, plus the other endpoints and failure classes.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use opsbot_fakes::{FakeWecom, Fault};
use opsbot_wecom::api::{AppMessage, NewAppChat, Recipients, RobotMessage, TextCard, UserIdentity};
use opsbot_wecom::clock::{Clock, ManualClock};
use opsbot_wecom::{AppClient, AppCredentials, ClientConfig, Error, WecomClient};
use serde_json::{json, Value};

const CORP: &str = "wwCORPID0001";
const SECRET: &str = "s3cr3t-app-secret";
const AGENT: i64 = 1_000_002;
const ROBOT: &str = "0f6a6d2e-robot-key";

struct Harness {
    fake: FakeWecom,
    client: WecomClient,
    app: AppClient,
    /// The client's clock; shared with the fake when `shared_clock` was asked for.
    clock: Arc<ManualClock>,
}

async fn harness_with(shared_clock: bool, tweak: impl FnOnce(&mut ClientConfig)) -> Harness {
    let clock = Arc::new(ManualClock::new());
    let fake = if shared_clock {
        FakeWecom::start_with_clock(clock.clone()).await
    } else {
        FakeWecom::start().await
    }
    .expect("fake WeCom starts");
    fake.add_app(CORP, SECRET, AGENT);
    fake.add_users(&["zhangsan", "lisi"]);
    fake.add_parties(&["2"]);
    fake.add_robot_key(ROBOT);
    let mut config = ClientConfig {
        api_base: fake.base_url(),
        timeout: Duration::from_secs(3),
        ..ClientConfig::default()
    };
    tweak(&mut config);
    let client = WecomClient::with_clock(config, clock.clone()).expect("client builds");
    let app = client.app(AppCredentials::new(CORP, AGENT, SECRET));
    Harness {
        fake,
        client,
        app,
        clock,
    }
}

async fn harness() -> Harness {
    harness_with(false, |_| {}).await
}

fn zhangsan() -> Recipients {
    Recipients::users(["zhangsan"])
}

// 1. Token caching -------------------------------------------------------------------------

#[tokio::test]
async fn t1_many_sends_one_gettoken() {
    let h = harness().await;
    for i in 0..5 {
        h.app
            .send_text(&zhangsan(), &format!("hello {i}"))
            .await
            .unwrap();
    }
    assert_eq!(h.fake.gettoken_calls(), 1);
    assert_eq!(h.fake.sent_to("message/send").len(), 5);
}

#[tokio::test]
async fn t1_concurrent_first_calls_share_one_gettoken() {
    let h = harness().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let app = h.app.clone();
        let to = Recipients::users([if i % 2 == 0 { "zhangsan" } else { "lisi" }]);
        tasks.spawn(async move { app.send_text(&to, "concurrent").await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(h.fake.gettoken_calls(), 1, "single-flight refresh");
    // Another handle for the same app shares the cache.
    let again = h.client.app(AppCredentials::new(CORP, AGENT, SECRET));
    again.send_text(&zhangsan(), "x").await.unwrap();
    assert_eq!(h.fake.gettoken_calls(), 1);
}

#[tokio::test]
async fn t1_token_is_refreshed_before_expiry_without_an_error() {
    let h = harness_with(true, |_| {}).await;
    h.app.send_text(&zhangsan(), "a").await.unwrap();
    // 7200 - 300 s after fetching, the client refreshes on its own.
    h.clock.advance(Duration::from_secs(6900));
    h.app.send_text(&zhangsan(), "b").await.unwrap();
    assert_eq!(h.fake.gettoken_calls(), 2);
    assert_eq!(h.fake.request_count("message/send"), 2, "no rejected call");
}

// 2. Expiry --------------------------------------------------------------------------------

#[tokio::test]
async fn t2_expired_token_is_refetched_and_the_call_retried_once() {
    let h = harness().await;
    h.app.send_text(&zhangsan(), "before").await.unwrap();
    // Only the server's clock moves: the client believes its token is fresh.
    h.fake.advance(Duration::from_secs(7201));
    let receipt = h.app.send_text(&zhangsan(), "after").await.unwrap();
    assert!(receipt.msg_id.is_some());
    assert_eq!(h.fake.gettoken_calls(), 2);
    assert_eq!(h.fake.request_count("message/send"), 3);
    assert_eq!(h.fake.sent_to("message/send").len(), 2);
}

// 3. Revocation and no retry loop ------------------------------------------------------------

#[tokio::test]
async fn t3_revoked_token_is_handled_like_expiry() {
    let h = harness().await;
    h.app.send_text(&zhangsan(), "before").await.unwrap();
    h.fake.revoke_all();
    h.app.send_text(&zhangsan(), "after").await.unwrap();
    assert_eq!(h.fake.gettoken_calls(), 2);
    assert_eq!(h.fake.request_count("message/send"), 3);
}

#[tokio::test]
async fn t3_two_consecutive_42001_surface_after_one_retry() {
    let h = harness().await;
    let expired = json!({"errcode": 42001, "errmsg": "access_token expired"});
    h.fake
        .push_fault("message/send", Fault::Json(expired.clone()));
    h.fake.push_fault("message/send", Fault::Json(expired));
    let err = h.app.send_text(&zhangsan(), "x").await.unwrap_err();
    assert!(
        matches!(err, Error::AccessTokenRejected { errcode: 42001, .. }),
        "{err}"
    );
    assert_eq!(h.fake.request_count("message/send"), 2, "exactly one retry");
    assert_eq!(h.fake.gettoken_calls(), 2);
    assert!(h.fake.sent().is_empty());
}

#[tokio::test]
async fn t3_40001_on_a_business_call_also_refreshes_once() {
    let h = harness().await;
    h.fake.push_fault(
        "message/send",
        Fault::Json(json!({"errcode": 40001, "errmsg": "invalid credential"})),
    );
    h.app.send_text(&zhangsan(), "x").await.unwrap();
    assert_eq!(h.fake.gettoken_calls(), 2);
}

// 4. Robot 20/min ----------------------------------------------------------------------------

#[tokio::test]
async fn t4_server_rejects_the_21st_robot_message_within_a_minute() {
    let h = harness_with(false, |c| c.robot_limit_per_minute = None).await;
    for i in 0..20 {
        h.client
            .webhook_send(ROBOT, &RobotMessage::text(format!("alert {i}")))
            .await
            .unwrap();
    }
    let err = h
        .client
        .webhook_send(ROBOT, &RobotMessage::text("one too many"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(err.retry_after().unwrap() >= Duration::from_secs(60));
    assert_eq!(h.fake.sent_to("webhook/send").len(), 20);
}

#[tokio::test]
async fn t4_client_waits_instead_of_hitting_the_robot_limit() {
    let h = harness_with(true, |_| {}).await;
    for i in 0..25 {
        h.client
            .webhook_send(ROBOT, &RobotMessage::Markdown(format!("**alert** {i}")))
            .await
            .unwrap();
    }
    assert!(h.clock.total_slept() >= Duration::from_secs(60));
    assert_eq!(h.fake.request_count("webhook/send"), 25, "nothing refused");
    assert_eq!(h.fake.sent_to("webhook/send").len(), 25);
}

#[tokio::test]
async fn t4_after_45009_the_robot_backs_off_a_full_minute() {
    let h = harness_with(true, |_| {}).await;
    h.fake.push_fault(
        "webhook/send",
        Fault::Json(json!({"errcode": 45009, "errmsg": "api freq out of limit"})),
    );
    let err = h
        .client
        .webhook_send(ROBOT, &RobotMessage::text("first"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(45009));
    assert_eq!(h.clock.total_slept(), Duration::ZERO);
    h.client
        .webhook_send(ROBOT, &RobotMessage::text("second"))
        .await
        .unwrap();
    assert!(h.clock.total_slept() >= Duration::from_secs(60));
}

#[tokio::test]
async fn robot_text_mentions_and_unknown_key() {
    let h = harness().await;
    let message = RobotMessage::Text {
        content: "disk full".into(),
        mentioned_list: vec!["zhangsan".into(), "@all".into()],
        mentioned_mobile_list: vec!["13800001111".into()],
    };
    h.client.webhook_send(ROBOT, &message).await.unwrap();
    let sent = &h.fake.sent_to("webhook/send")[0];
    assert_eq!(
        sent.body,
        json!({"msgtype": "text", "text": {"content": "disk full",
            "mentioned_list": ["zhangsan", "@all"], "mentioned_mobile_list": ["13800001111"]}})
    );
    let err = h
        .client
        .webhook_send("no-such-key", &message)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRobotKey));
    assert!(!err.is_retryable() && err.is_config_error());
    assert!(!err.to_string().contains("no-such-key"));
}

// 5. Trusted IP --------------------------------------------------------------------------------

#[tokio::test]
async fn t5_untrusted_ip_is_a_config_error_naming_the_ip() {
    let h = harness().await;
    let other: IpAddr = "198.51.100.9".parse().unwrap();
    h.fake.set_trusted_ips(Some(vec![other]));
    let err = h.app.send_text(&zhangsan(), "x").await.unwrap_err();
    match &err {
        Error::UntrustedIp { from_ip, .. } => assert_eq!(from_ip.as_deref(), Some("127.0.0.1")),
        other => panic!("expected UntrustedIp, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("127.0.0.1") && message.contains("企业可信IP"),
        "{message}"
    );
    assert!(!err.is_retryable() && err.is_config_error());
    assert_eq!(err.code(), Some(60020));
    assert_eq!(h.fake.request_count("message/send"), 1, "no retry storm");
    assert_eq!(h.fake.gettoken_calls(), 1);
}

// 6. Partial invalid recipients -----------------------------------------------------------------

#[tokio::test]
async fn t6_partial_invaliduser_is_reported_but_delivered() {
    let h = harness().await;
    let to = Recipients {
        users: vec!["zhangsan".into(), "Ghost".into()],
        parties: vec!["2".into(), "99".into()],
        tags: vec![],
    };
    let receipt = h.app.send_text(&to, "partial").await.unwrap();
    assert_eq!(receipt.invalid_users, vec!["ghost"]);
    assert_eq!(receipt.invalid_parties, vec!["99"]);
    assert!(receipt.is_partial());
    let deliveries = h.fake.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].user, "zhangsan");
}

#[tokio::test]
async fn t6_all_recipients_invalid_is_permanent() {
    let h = harness().await;
    let err = h
        .app
        .send_text(&Recipients::users(["ghost1", "ghost2"]), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AllRecipientsInvalid { errcode: 81013, .. }),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(h.fake.request_count("message/send"), 1);
}

// 7. Silent per-member drop ----------------------------------------------------------------------

#[tokio::test]
async fn t7_without_client_limits_wecom_silently_drops_the_31st() {
    let h = harness_with(false, |c| c.member_limit_per_minute = None).await;
    for i in 0..31 {
        h.app
            .send_text(&zhangsan(), &format!("m{i}"))
            .await
            .unwrap();
    }
    let dropped = h.fake.dropped();
    assert_eq!(dropped.len(), 1, "the server answered ok but dropped one");
    assert_eq!(dropped[0].user, "zhangsan");
}

#[tokio::test]
async fn t7_client_limits_itself_per_member() {
    let h = harness_with(true, |_| {}).await;
    for i in 0..30 {
        h.app
            .send_text(&zhangsan(), &format!("m{i}"))
            .await
            .unwrap();
    }
    assert_eq!(h.clock.total_slept(), Duration::ZERO);
    // Another member is not held back by zhangsan's budget.
    h.app
        .send_text(&Recipients::users(["lisi"]), "other")
        .await
        .unwrap();
    assert_eq!(h.clock.total_slept(), Duration::ZERO);
    // Case differences name the same member.
    h.app
        .send_text(&Recipients::users(["ZhangSan"]), "m30")
        .await
        .unwrap();
    assert!(h.clock.total_slept() >= Duration::from_secs(60));
    assert!(h.fake.dropped().is_empty());
    assert_eq!(h.fake.deliveries().len(), 32);
}

// 8. Alertmanager 0.25 interop -------------------------------------------------------------------

#[tokio::test]
async fn t8_alertmanager_string_agentid_and_empty_text_are_accepted() {
    let h = harness().await;
    let http = reqwest::Client::new();
    let base = h.fake.base_url();
    let token: Value = http
        .get(format!(
            "{base}/cgi-bin/gettoken?corpid={CORP}&corpsecret={SECRET}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    // The body exactly as captured in alertmanager_wechat_capture.jsonl.
    let body = "{\"text\":{\"content\":\"\"},\"touser\":\"zhangsan|lisi\",\"agentid\":\"1000002\",\"safe\":\"0\",\"msgtype\":\"markdown\",\"markdown\":{\"content\":\"[FIRING:1] DiskFull (db-01 warning)\\n磁盘使用率 95%\"}}\n";
    let post = |body: String| {
        http.post(format!("{base}/cgi-bin/message/send?access_token={token}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let reply: Value = post(body.to_owned()).await.unwrap().json().await.unwrap();
    assert_eq!(reply["errcode"], 0, "{reply}");
    let sent = h.fake.sent_to("message/send");
    assert_eq!(
        sent[0].body["markdown"]["content"],
        "[FIRING:1] DiskFull (db-01 warning)\n磁盘使用率 95%"
    );
    assert_eq!(h.fake.deliveries().len(), 2);
    // A string agentid of another app is still refused.
    let reply: Value = post(body.replace("1000002", "1000003"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["errcode"], 301002);
}

// Other endpoints ---------------------------------------------------------------------------------

#[tokio::test]
async fn markdown_and_textcard_bodies() {
    let h = harness().await;
    h.app
        .send_markdown(&Recipients::all(), "# 告警\n**db-01**")
        .await
        .unwrap();
    let card = TextCard {
        title: "Disk full".into(),
        description: "<div class=\"highlight\">db-01</div>".into(),
        url: "https://opsbot.example/alerts/1".into(),
        btntxt: Some("详情".into()),
    };
    h.app.send_textcard(&zhangsan(), &card).await.unwrap();
    let sent = h.fake.sent_to("message/send");
    assert_eq!(
        sent[0].body,
        json!({"touser": "@all", "agentid": AGENT, "msgtype": "markdown",
               "markdown": {"content": "# 告警\n**db-01**"}})
    );
    assert_eq!(sent[1].body["msgtype"], "textcard");
    assert_eq!(sent[1].body["textcard"]["btntxt"], "详情");
    assert_eq!(
        sent[1].body["textcard"]["url"],
        "https://opsbot.example/alerts/1"
    );
}

#[tokio::test]
async fn appchat_create_and_send() {
    let h = harness().await;
    let chat = NewAppChat {
        name: Some("oncall".into()),
        owner: Some("zhangsan".into()),
        users: vec!["zhangsan".into(), "lisi".into()],
        chat_id: Some("oncall1".into()),
    };
    assert_eq!(h.app.appchat_create(&chat).await.unwrap(), "oncall1");
    let err = h.app.appchat_create(&chat).await.unwrap_err();
    assert_eq!(err.code(), Some(86215));
    let generated = h
        .app
        .appchat_create(&NewAppChat {
            users: vec!["zhangsan".into(), "lisi".into()],
            ..NewAppChat::default()
        })
        .await
        .unwrap();
    assert!(!generated.is_empty());
    h.app
        .appchat_send("oncall1", &AppMessage::Markdown("**ack**".into()))
        .await
        .unwrap();
    let sent = h.fake.sent_to("appchat/send");
    assert_eq!(
        sent[0].body,
        json!({"chatid": "oncall1", "msgtype": "markdown", "markdown": {"content": "**ack**"}})
    );
    let err = h
        .app
        .appchat_send("nochat", &AppMessage::Text("x".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { errcode: 86003, .. }), "{err}");
    let too_small = NewAppChat {
        users: vec!["zhangsan".into()],
        ..NewAppChat::default()
    };
    assert!(matches!(
        h.app.appchat_create(&too_small).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn oauth_codes_are_single_use_and_expire() {
    let h = harness().await;
    let code = h.fake.mint_code("zhangsan");
    assert_eq!(
        h.app.getuserinfo(&code).await.unwrap(),
        UserIdentity::Member {
            user_id: "zhangsan".into(),
            user_ticket: None
        }
    );
    let reused = h.app.getuserinfo(&code).await.unwrap_err();
    assert!(matches!(reused, Error::InvalidOauthCode));
    assert_eq!(reused.code(), Some(40029));

    let stale = h.fake.mint_code("lisi");
    h.fake.advance(Duration::from_secs(301));
    let err = h.app.getuserinfo(&stale).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOauthCode), "{err}");

    let external = h.fake.mint_external_code("oX1", "wmEXT");
    assert_eq!(
        h.app.getuserinfo(&external).await.unwrap(),
        UserIdentity::NonMember {
            open_id: "oX1".into(),
            external_userid: Some("wmEXT".into())
        }
    );
}

// Failure classes -----------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_secret_is_a_credential_error_without_the_secret() {
    let h = harness().await;
    let app = h
        .client
        .app(AppCredentials::new(CORP, AGENT, "wrong-secret"));
    let err = app.send_text(&zhangsan(), "x").await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidCredential { errcode: 40001, .. }),
        "{err}"
    );
    assert!(err.is_config_error() && !err.is_retryable());
    assert!(!err.to_string().contains("wrong-secret"));
    assert!(!format!("{err:?}").contains("wrong-secret"));
    assert_eq!(h.fake.request_count("message/send"), 0);
}

#[tokio::test]
async fn http_5xx_busy_and_concurrency_errors_are_retryable() {
    let h = harness().await;
    h.fake.push_fault("message/send", Fault::Status(502));
    let err = h.app.send_text(&zhangsan(), "x").await.unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 502, .. }) && err.is_retryable());

    h.fake.push_fault(
        "message/send",
        Fault::Json(json!({"errcode": 45033, "errmsg": "api concurrent out of limit"})),
    );
    let err = h.app.send_text(&zhangsan(), "x").await.unwrap_err();
    assert!(err.is_retryable());
    assert!(err.retry_after().unwrap() < Duration::from_secs(60));

    h.fake.push_fault(
        "message/send",
        Fault::Json(json!({"errcode": -1, "errmsg": "system busy"})),
    );
    let err = h.app.send_text(&zhangsan(), "x").await.unwrap_err();
    assert!(matches!(err, Error::SystemBusy { .. }) && err.is_retryable());

    h.fake.push_fault(
        "message/send",
        Fault::Json(json!({"errcode": 48002, "errmsg": "api forbidden"})),
    );
    let err = h.app.send_text(&zhangsan(), "x").await.unwrap_err();
    assert!(err.is_config_error() && !err.is_retryable());
}

#[tokio::test]
async fn timeouts_and_transport_errors_never_leak_the_token() {
    let h = harness_with(false, |c| c.timeout = Duration::from_millis(300)).await;
    h.app
        .send_text(&zhangsan(), "warm the token")
        .await
        .unwrap();
    h.fake
        .push_fault("message/send", Fault::Delay(Duration::from_secs(2)));
    let err = h.app.send_text(&zhangsan(), "slow").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("tok-"), "{err}");

    // A server that has gone away: the connection is refused.
    let base = h.fake.base_url();
    drop(h.fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = h.app.send_text(&zhangsan(), "gone").await.unwrap_err();
    assert!(
        matches!(err, Error::Transport { .. } | Error::Timeout { .. }),
        "{err}"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains("tok-") && !text.contains(&base), "{text}");
}

#[tokio::test]
async fn oversized_content_is_refused_before_any_request() {
    let h = harness().await;
    let err = h
        .app
        .send_text(&zhangsan(), &"字".repeat(700))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ContentTooLong {
                len: 2100,
                limit: 2048,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(h.fake.gettoken_calls(), 0);
    let err = h
        .client
        .webhook_send(ROBOT, &RobotMessage::Markdown("x".repeat(4097)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ContentTooLong { limit: 4096, .. }));
    assert_eq!(h.fake.request_count("webhook/send"), 0);
}

#[tokio::test]
async fn fake_enforces_sizes_and_per_api_limit_on_raw_requests() {
    let h = harness().await;
    h.fake.set_api_limit_per_minute(Some(2));
    // The client's own checks are bypassed with a hand-made body.
    let http = reqwest::Client::new();
    let base = h.fake.base_url();
    h.app.send_text(&zhangsan(), "one").await.unwrap();
    let token: Value = http
        .get(format!(
            "{base}/cgi-bin/gettoken?corpid={CORP}&corpsecret={SECRET}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let big = json!({"touser": "zhangsan", "agentid": AGENT, "msgtype": "text",
                     "text": {"content": "x".repeat(2049)}});
    let reply: Value = http
        .post(format!("{base}/cgi-bin/message/send?access_token={token}"))
        .json(&big)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["errcode"], 45002);
    let err = h.app.send_text(&zhangsan(), "three").await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err}");
    h.fake.advance(Duration::from_secs(60));
    h.app
        .send_text(&zhangsan(), "after a minute")
        .await
        .unwrap();

    let missing: Value = http
        .post(format!("{base}/cgi-bin/message/send"))
        .json(&big)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(missing["errcode"], 41001);
}

#[tokio::test]
async fn manual_clock_is_shared_between_client_and_fake() {
    let h = harness_with(true, |_| {}).await;
    assert!(Arc::ptr_eq(&h.fake.clock(), &h.clock));
    let before = h.fake.clock().now();
    h.clock.advance(Duration::from_secs(5));
    assert_eq!(h.fake.clock().now() - before, Duration::from_secs(5));
}

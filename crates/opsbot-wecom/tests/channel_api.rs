//! The reply APIs of the two newer channels against their fakes over real HTTP: the
//! smart robot's single-use, one-hour `response_url`, and an Official Account's access
//! token and customer-service messages with the 48-hour / 5-message window
//! (`mp_vectors.json` `api_shapes`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::time::Duration;

use opsbot_fakes::{FakeWechat, FakeWecom, Fault, RESPONSE_URL_EXPIRED, RESPONSE_URL_USED};
use opsbot_wecom::aibot::markdown_message;
use opsbot_wecom::mp::{MpClient, MpClientConfig, MpCredentials};
use opsbot_wecom::{ClientConfig, Error, WecomClient};
use serde_json::{json, Value};

fn mp_shapes() -> Value {
    let path = format!(
        "{}/tests/fixtures/channels/mp_vectors.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["api_shapes"].clone()
}

const APPID: &str = "wx49f0ab532d5d035a";
const SECRET: &str = "mp-app-secret";
const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

// ---- response_url -----------------------------------------------------------------------

async fn robot() -> (FakeWecom, WecomClient) {
    let fake = FakeWecom::start().await.unwrap();
    let client = WecomClient::new(ClientConfig {
        api_base: fake.base_url(),
        ..ClientConfig::default()
    })
    .unwrap();
    (fake, client)
}

#[tokio::test]
async fn a_response_url_takes_one_reply() {
    let (fake, client) = robot().await;
    let url = fake.mint_response_url();
    let message = markdown_message("克隆完成：2 份「工具柜管理系统」");
    client.aibot_respond(&url, &message).await.unwrap();
    let sent = fake.sent_to("aibot/response");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, message);
    let again = client.aibot_respond(&url, &message).await.unwrap_err();
    assert!(
        matches!(again, Error::ResponseUrlRefused { errcode, .. } if errcode == RESPONSE_URL_USED),
        "{again}"
    );
    assert!(!again.is_retryable());
    assert!(again.to_string().contains("1 hour"), "{again}");
}

#[tokio::test]
async fn a_response_url_expires_after_an_hour() {
    let (fake, client) = robot().await;
    let url = fake.mint_response_url();
    fake.advance(Duration::from_secs(3600));
    let err = client
        .aibot_respond(&url, &markdown_message("late"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ResponseUrlRefused { errcode, .. } if errcode == RESPONSE_URL_EXPIRED),
        "{err}"
    );
    assert!(fake.sent_to("aibot/response").is_empty());
}

#[tokio::test]
async fn a_response_url_elsewhere_is_never_called_and_oversize_is_refused() {
    let (fake, client) = robot().await;
    let err = client
        .aibot_respond(
            "http://198.51.100.1/cgi-bin/aibot/response?response_code=x",
            &markdown_message("x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    // A URL that only starts like the base (another port) is not under it either.
    let sneaky = format!(
        "{}9/cgi-bin/aibot/response?response_code=x",
        fake.base_url()
    );
    assert!(client
        .aibot_respond(&sneaky, &markdown_message("x"))
        .await
        .is_err());
    let url = fake.mint_response_url();
    let huge = json!({"msgtype": "markdown", "markdown": {"content": "x".repeat(20481)}});
    let err = client.aibot_respond(&url, &huge).await.unwrap_err();
    assert_eq!(err.code(), Some(45002), "{err}");
    fake.push_fault("aibot/response", Fault::Status(502));
    let err = client
        .aibot_respond(&url, &markdown_message("x"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!err.to_string().contains("response_code=rc"), "{err}");
    client
        .aibot_respond(&url, &markdown_message("x"))
        .await
        .unwrap();
}

// ---- Official Account ------------------------------------------------------------------

async fn account() -> (FakeWechat, MpClient) {
    let fake = FakeWechat::start().await.unwrap();
    fake.add_account(APPID, SECRET);
    let client = MpClient::with_clock(
        MpClientConfig {
            api_base: fake.base_url(),
            timeout: Duration::from_secs(3),
            ..MpClientConfig::default()
        },
        MpCredentials::new(APPID, SECRET),
        fake.clock(),
    )
    .unwrap();
    (fake, client)
}

#[tokio::test]
async fn customer_service_text_has_the_documented_shape_and_the_token_is_cached() {
    let shapes = mp_shapes();
    let (fake, client) = account().await;
    fake.user_wrote(APPID, OPENID);
    let content = shapes["custom_send_text"]["body"]["text"]["content"]
        .as_str()
        .unwrap();
    client.send_text(OPENID, content).await.unwrap();
    client.send_text(OPENID, "第二条").await.unwrap();
    assert_eq!(fake.token_calls(), 1, "one token for both sends");
    let sent = fake.sent();
    assert_eq!(
        (sent[0].open_id.as_str(), sent[0].content.as_str()),
        (
            shapes["custom_send_text"]["body"]["touser"]
                .as_str()
                .unwrap(),
            content
        )
    );
}

#[tokio::test]
async fn the_window_is_five_messages_within_48_hours() {
    let (fake, client) = account().await;
    fake.user_wrote(APPID, OPENID);
    for i in 0..5 {
        client.send_text(OPENID, &format!("#{i}")).await.unwrap();
    }
    let err = client.send_text(OPENID, "#6").await.unwrap_err();
    assert!(matches!(err, Error::ServiceQuotaExhausted { .. }), "{err}");
    assert_eq!(err.code(), Some(45047));
    // The user writes again: a new window.
    fake.user_wrote(APPID, OPENID);
    client.send_text(OPENID, "again").await.unwrap();
    // 48 hours later it is closed, with the vector's errcode.
    fake.advance(Duration::from_secs(48 * 3600));
    let err = client.send_text(OPENID, "too late").await.unwrap_err();
    let shape = &mp_shapes()["custom_send_text"]["err_window"];
    assert_eq!(err.code(), shape["errcode"].as_i64());
    assert!(matches!(err, Error::ServiceWindowClosed { .. }) && !err.is_retryable());
    assert!(err.to_string().contains("48 hours"), "{err}");
    fake.user_wrote(APPID, OPENID);
    fake.unfollow(APPID, OPENID);
    let err = client.send_text(OPENID, "gone").await.unwrap_err();
    assert_eq!(err.code(), Some(45015));
    let never = client
        .send_text("oSomeoneWhoNeverWrote", "hi")
        .await
        .unwrap_err();
    assert_eq!(never.code(), Some(40003));
}

#[tokio::test]
async fn an_expired_or_revoked_token_is_refetched_once() {
    let (fake, client) = account().await;
    fake.user_wrote(APPID, OPENID);
    client.send_text(OPENID, "1").await.unwrap();
    // Past the token's lifetime (the client's cache thinks it fresh: same clock, but the
    // fake's TTL is shorter than what it told the client).
    fake.set_token_ttl(Duration::from_secs(60));
    fake.advance(Duration::from_secs(61));
    client.send_text(OPENID, "2").await.unwrap();
    assert_eq!(fake.token_calls(), 2, "42001 → one refetch");
    fake.revoke_all();
    client.send_text(OPENID, "3").await.unwrap();
    assert_eq!(fake.token_calls(), 3, "40001 → one refetch");
    // Rejected twice in a row: surfaced, not looped.
    fake.push_fault(
        "message/custom/send",
        Fault::Json(json!({"errcode": 40001, "errmsg": "invalid credential"})),
    );
    fake.push_fault(
        "message/custom/send",
        Fault::Json(json!({"errcode": 42001, "errmsg": "access_token expired"})),
    );
    let err = client.send_text(OPENID, "4").await.unwrap_err();
    assert!(
        matches!(err, Error::AccessTokenRejected { errcode: 42001, .. }),
        "{err}"
    );
    assert!(err.is_retryable(), "a later attempt gets a fresh token");
    assert_eq!(fake.sent().len(), 3);
}

#[tokio::test]
async fn bad_credentials_and_untrusted_ips_are_config_errors_without_secrets() {
    let (fake, _) = account().await;
    let wrong = MpClient::new(
        MpClientConfig {
            api_base: fake.base_url(),
            ..MpClientConfig::default()
        },
        MpCredentials::new(APPID, "wrong-secret-value"),
    )
    .unwrap();
    fake.user_wrote(APPID, OPENID);
    let err = wrong.send_text(OPENID, "x").await.unwrap_err();
    assert!(
        matches!(err, Error::WechatCredential { errcode: 40125, .. }),
        "{err}"
    );
    assert!(err.is_config_error() && !err.to_string().contains("wrong-secret-value"));
    let unknown = MpClient::new(
        MpClientConfig {
            api_base: fake.base_url(),
            ..MpClientConfig::default()
        },
        MpCredentials::new("wxunknown", SECRET),
    )
    .unwrap();
    let err = unknown.send_text(OPENID, "x").await.unwrap_err();
    let shape = &mp_shapes()["token"]["err"];
    assert_eq!(err.code(), shape["errcode"].as_i64(), "{err}");

    let (fake, client) = account().await;
    fake.user_wrote(APPID, OPENID);
    fake.set_whitelist(Some(vec!["10.0.0.1".parse().unwrap()]));
    let err = client.send_text(OPENID, "x").await.unwrap_err();
    assert_eq!(err.code(), Some(40164));
    assert!(
        err.to_string().contains("127.0.0.1") && err.is_config_error(),
        "{err}"
    );
}

#[tokio::test]
async fn oversize_text_is_refused_before_sending_and_transient_failures_are_retryable() {
    let (fake, client) = account().await;
    fake.user_wrote(APPID, OPENID);
    let err = client
        .send_text(OPENID, &"字".repeat(700))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ContentTooLong { limit: 2048, .. }),
        "{err}"
    );
    assert_eq!(fake.request_count("message/custom/send"), 0);
    fake.push_fault("message/custom/send", Fault::Status(503));
    let err = client.send_text(OPENID, "x").await.unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("WeChat"),
        "{err}"
    );
    fake.push_fault(
        "message/custom/send",
        Fault::Json(json!({"errcode": -1, "errmsg": "system error"})),
    );
    assert!(client
        .send_text(OPENID, "x")
        .await
        .unwrap_err()
        .is_retryable());
    client.send_text(OPENID, "x").await.unwrap();
}

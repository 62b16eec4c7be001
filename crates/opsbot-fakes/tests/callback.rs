//! The callback side end to end: a minimal axum endpoint built on `WecomCrypto` and
//! `Message`, driven by the fake's `push_callback` / `get_verify_url` helpers, including
//! tampered requests. Here rather than in opsbot-wecom, which has no axum.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use opsbot_fakes::{build_callback_post, build_verify_url_query, get_verify_url, push_callback};
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::{Message, MessageBody, WecomCrypto};

const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP: &str = "wx5823bf96d3bd56c7";

fn crypto() -> WecomCrypto {
    WecomCrypto::new("QDG6eK", KEY, CORP).unwrap()
}

type Params = Query<HashMap<String, String>>;

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

async fn verify(State(crypto): State<WecomCrypto>, Query(q): Params) -> (StatusCode, String) {
    match crypto.verify_url(
        param(&q, "msg_signature"),
        param(&q, "timestamp"),
        param(&q, "nonce"),
        param(&q, "echostr"),
    ) {
        Ok(plain) => (StatusCode::OK, plain),
        Err(err) => (StatusCode::FORBIDDEN, err.to_string()),
    }
}

/// Echo text messages back as an encrypted passive reply.
async fn receive(
    State(crypto): State<WecomCrypto>,
    Query(q): Params,
    body: String,
) -> (StatusCode, String) {
    let (ts, nonce) = (param(&q, "timestamp"), param(&q, "nonce"));
    let plain = match crypto.decrypt_message(param(&q, "msg_signature"), ts, nonce, &body) {
        Ok(plain) => plain,
        Err(err) => {
            return (
                StatusCode::FORBIDDEN,
                format!("{} {err}", err.code().unwrap()),
            )
        }
    };
    let msg = Message::parse(&plain).unwrap();
    let MessageBody::Text { content, .. } = msg.body else {
        return (StatusCode::OK, String::new());
    };
    let reply = text_reply_xml(
        &msg.from,
        &msg.to,
        msg.create_time,
        &format!("echo: {content}"),
    );
    (StatusCode::OK, crypto.encrypt_reply(&reply, ts, nonce))
}

async fn serve() -> String {
    let router = Router::new()
        .route("/wecom/callback", get(verify).post(receive))
        .with_state(crypto());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/wecom/callback")
}

#[tokio::test]
async fn url_verification_round_trip_keeps_plus_and_slash() {
    let url = serve().await;
    // This random prefix yields an echostr containing '+', '/' and '='.
    let query = build_verify_url_query(
        &crypto(),
        "4125867412569870254",
        b"abcdefghijklmnop",
        "1700000000",
        "1372623149",
    );
    assert!(query.contains("%2B") && query.contains("%2F") && query.contains("%3D"));
    let outcome = get_verify_url(&url, &query).await.unwrap();
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.body, "4125867412569870254");
    assert!(outcome.elapsed < Duration::from_secs(5));
}

#[tokio::test]
async fn message_post_gets_an_encrypted_passive_reply() {
    let url = serve().await;
    let crypto = crypto();
    let plain = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[vm list]]></Content><MsgId>1</MsgId><AgentID>1000002</AgentID></xml>";
    let post = build_callback_post(
        &crypto,
        1_000_002,
        plain,
        b"0123456789abcdef",
        "1700000000",
        "42",
    );
    let outcome = push_callback(&url, &post).await.unwrap();
    assert_eq!(outcome.status, 200, "{}", outcome.body);
    let start = outcome.body.find("<MsgSignature><![CDATA[").unwrap() + 23;
    let signature = &outcome.body[start..start + 40];
    let reply = crypto
        .decrypt_message(signature, "1700000000", "42", &outcome.body)
        .unwrap();
    let reply = Message::parse(&reply.replace("</xml>", "<MsgId>r</MsgId></xml>")).unwrap();
    assert_eq!(reply.to, "zhangsan");
    assert!(
        matches!(reply.body, MessageBody::Text { ref content, .. } if content == "echo: vm list")
    );
}

#[tokio::test]
async fn tampered_callbacks_are_refused_with_their_codes() {
    let url = serve().await;
    let crypto = crypto();
    let plain = "<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>enter_agent</Event></xml>";
    let good = build_callback_post(
        &crypto,
        1_000_002,
        plain,
        b"AAAAAAAAAAAAAAAA",
        "1700000100",
        "5",
    );

    let mut wrong_sig = good.clone();
    wrong_sig.query = wrong_sig
        .query
        .replacen(&good.msg_signature[..4], "0000", 1);
    let outcome = push_callback(&url, &wrong_sig).await.unwrap();
    assert_eq!((outcome.status, &outcome.body[..6]), (403, "-40001"));

    let other_corp = WecomCrypto::new("QDG6eK", KEY, "wwOTHERCORP").unwrap();
    let foreign = build_callback_post(
        &other_corp,
        1_000_002,
        plain,
        b"AAAAAAAAAAAAAAAA",
        "1700000100",
        "5",
    );
    let outcome = push_callback(&url, &foreign).await.unwrap();
    assert_eq!((outcome.status, &outcome.body[..6]), (403, "-40005"));

    let mut not_xml = good.clone();
    not_xml.body = "hello".into();
    let outcome = push_callback(&url, &not_xml).await.unwrap();
    assert_eq!((outcome.status, &outcome.body[..6]), (403, "-40002"));

    let outcome = push_callback(&url, &good).await.unwrap();
    assert_eq!((outcome.status, outcome.body.as_str()), (200, ""));
}

//! The WeCom channel end to end over real HTTP: encrypted callbacks exactly as WeCom
//! sends them hit `opsbot serve`'s router; replies come back as encrypted passive
//! replies or reach a fake WeCom API (enforcing WeCom's limits and error codes) through
//! the durable outbox.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_channels::wecom::{AppConfig, RetryPolicy, Settings, WecomChannel};
use opsbot_core::{AuditResult, JobState, Policy, Role};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_fakes::{
    build_callback_post, build_verify_url_query, get_verify_url, push_callback, CallbackPost,
    FakeWecom, Fault,
};
use opsbot_store::{AuditQuery, JobQuery, OutboxQuery, OutboxState, SessionStore, Store};
use opsbot_wecom::WecomCrypto;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const CORP: &str = "ww1436e0e65a779aee";
const AGENT: i64 = 1000002;
const SECRET: &str = "app-secret";
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

struct World {
    fake: FakeWecom,
    store: Arc<dyn Store>,
    sessions: Arc<dyn SessionStore>,
    url: String,
    crypto: WecomCrypto,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn policy() -> Policy {
    Policy::new(
        vec![Role {
            name: "admin".into(),
            commands: vec!["*".into()],
            scopes: vec!["*".into()],
        }],
        BTreeMap::from([("zhangsan".to_string(), vec!["admin".to_string()])]),
        BTreeMap::new(),
    )
    .unwrap()
}

fn settings() -> Settings {
    Settings {
        progress_interval: Duration::from_secs(3600),
        retry: RetryPolicy {
            delays: vec![Duration::from_millis(50)],
            max_attempts: 5,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        ..Settings::default()
    }
}

fn app_config(api_base: &str) -> AppConfig {
    AppConfig {
        callback: opsbot_channels::Callback::new("ops", TOKEN),
        corp_id: CORP.into(),
        agent_id: AGENT,
        secret: SECRET.into(),
        encoding_aes_key: AES_KEY.into(),
        api_base: api_base.into(),
    }
}

/// Starts opsbot (engine, WeCom channel, delivery worker, router) on `store`.
async fn serve(
    store: &Arc<dyn Store>,
    sessions: &Arc<dyn SessionStore>,
    api_base: &str,
    stop: watch::Receiver<bool>,
) -> String {
    serve_apps(store, sessions, vec![app_config(api_base)], stop).await
}

async fn serve_apps(
    store: &Arc<dyn Store>,
    sessions: &Arc<dyn SessionStore>,
    apps: Vec<AppConfig>,
    stop: watch::Receiver<bool>,
) -> String {
    let sim = Arc::new(opsbot_sim::SimProvider::new("sim", store.clone(), 0.01));
    let engine = Engine::new(
        store.clone(),
        sessions.clone(),
        vec![sim],
        policy(),
        EngineSettings::default(),
    )
    .await
    .unwrap();
    engine.ensure_synced().await.unwrap();
    let channel =
        Arc::new(WecomChannel::new(&apps, Arc::new(engine), store.clone(), settings()).unwrap());
    tokio::spawn(
        channel
            .delivery(format!("test-{}", rand_suffix()), &[])
            .unwrap()
            .run(stop),
    );
    let router = opsbot_http::router(opsbot_http::AppState {
        store: store.clone(),
        version: "test",
        channels: opsbot_channels::ChannelRegistry::default().with(channel.clone()),
        alerts: None,
        api: None,
        cmdb: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        opsbot_http::serve(listener, router, std::future::pending())
            .await
            .unwrap()
    });
    format!("http://{addr}/wecom/ops/callback")
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

async fn world() -> World {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, SECRET, AGENT);
    fake.add_users(&["zhangsan", "lisi"]);
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let (stop, rx) = watch::channel(false);
    let url = serve(&store, &sessions, &fake.base_url(), rx).await;
    let crypto = WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap();
    World {
        fake,
        store,
        sessions,
        url,
        crypto,
        _stop: stop,
        _dir: dir,
    }
}

impl World {
    async fn jobs(&self) -> Vec<opsbot_core::JobRecord> {
        self.store
            .jobs(&JobQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// A text message from `user` through the callback, as WeCom would post it.
    async fn send(&self, user: &str, text: &str, msg_id: u64) -> opsbot_fakes::CallbackOutcome {
        push_callback(
            &self.url,
            &text_from(&self.crypto, user, text, msg_id, None),
        )
        .await
        .unwrap()
    }
}

/// The outbox items in `state`, newest first.
async fn outbox(store: &Arc<dyn Store>, state: OutboxState) -> Vec<opsbot_store::OutboxItem> {
    store
        .outbox_list(&OutboxQuery {
            state: Some(state),
            ..Default::default()
        })
        .await
        .unwrap()
}

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

/// A text message from `user` as WeCom encrypts and signs it.
fn text_from(
    crypto: &WecomCrypto,
    user: &str,
    content: &str,
    msg_id: u64,
    chat: Option<&str>,
) -> CallbackPost {
    let chat = chat
        .map(|c| format!("<ChatId><![CDATA[{c}]]></ChatId>"))
        .unwrap_or_default();
    let xml = format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT}</AgentID>{chat}</xml>",
        now()
    );
    build_callback_post(
        crypto,
        AGENT,
        &xml,
        b"0123456789abcdef",
        &now(),
        "1320562132",
    )
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let start = s
        .find(open)
        .map(|i| i + open.len())
        .unwrap_or_else(|| panic!("no {open} in {s}"));
    let end = s[start..]
        .find(close)
        .unwrap_or_else(|| panic!("no {close} in {s}"))
        + start;
    &s[start..end]
}

/// Decrypts an encrypted passive reply and returns its text content.
fn passive_text(crypto: &WecomCrypto, body: &str) -> String {
    let sig = between(body, "<MsgSignature><![CDATA[", "]]>");
    let ts = between(body, "<TimeStamp>", "</TimeStamp>");
    let nonce = between(body, "<Nonce><![CDATA[", "]]>");
    let xml = crypto
        .decrypt_message(sig, ts, nonce, body)
        .expect("passive reply verifies and decrypts");
    between(&xml, "<Content><![CDATA[", "]]></Content>").to_string()
}

/// Waits until the fake recorded a message on `endpoint` containing `needle`.
async fn delivered(fake: &FakeWecom, endpoint: &str, needle: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = fake
            .sent_to(endpoint)
            .into_iter()
            .find(|m| m.body.to_string().contains(needle))
        {
            return m.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing with {needle:?} reached {endpoint}: {:?}",
            fake.sent()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_verification_returns_the_plaintext_exactly() {
    let w = world().await;
    let query = build_verify_url_query(
        &w.crypto,
        "echo+/=6283938",
        b"abcdefghijklmnop",
        &now(),
        "9527",
    );
    let out = get_verify_url(&w.url, &query).await.unwrap();
    assert_eq!((out.status, out.body.as_str()), (200, "echo+/=6283938"));
    let stale = build_verify_url_query(&w.crypto, "x", b"abcdefghijklmnop", "1400000000", "1");
    assert_eq!(get_verify_url(&w.url, &stale).await.unwrap().status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_command_is_answered_in_the_passive_reply() {
    let w = world().await;
    let out = w.send("zhangsan", "概况", 1001).await;
    assert_eq!(out.status, 200);
    let text = passive_text(&w.crypto, &out.body);
    assert!(
        text.contains("【资源概况】") && text.contains("虚拟机 48"),
        "{text}"
    );
    let audit = w
        .store
        .audit_log(&AuditQuery {
            user: Some("zhangsan".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.channel == "wecom:ops" && a.text == "概况" && a.result == AuditResult::Ok),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_acknowledged_at_once_and_its_result_sent_by_message_send() {
    let w = world().await;
    let post = text_from(&w.crypto, "zhangsan", "开机:web-04", 2001, None);
    let out = push_callback(&w.url, &post).await.unwrap();
    let ack = passive_text(&w.crypto, &out.body);
    assert!(ack.starts_with("已受理 #"), "{ack}");
    let body = delivered(&w.fake, "message/send", "web-04 已开机").await;
    assert_eq!(body["touser"], "zhangsan");
    assert_eq!(body["msgtype"], "text");
    assert_eq!(body["agentid"], AGENT);

    // WeCom's retry of the same message: acknowledged, not run again.
    let again = push_callback(&w.url, &post).await.unwrap();
    assert_eq!((again.status, again.body.as_str()), (200, ""));
    let jobs = w
        .store
        .jobs(&JobQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state, JobState::Succeeded);

    // Still a duplicate after a restart: the ids are in the store.
    let (_stop2, rx) = watch::channel(false);
    let url2 = serve(&w.store, &w.sessions, &w.fake.base_url(), rx).await;
    let after = push_callback(&url2, &post).await.unwrap();
    assert_eq!((after.status, after.body.as_str()), (200, ""));
    assert_eq!(w.jobs().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_are_refused_politely_and_audited() {
    let w = world().await;
    let out = w.send("lisi", "开机:web-04", 3001).await;
    let text = passive_text(&w.crypto, &out.body);
    assert!(text.contains("您(lisi)没有权限执行「开机」"), "{text}");
    let denied = w
        .store
        .audit_log(&AuditQuery {
            result: Some(AuditResult::Denied),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        denied
            .iter()
            .any(|a| a.user == "lisi" && a.channel == "wecom:ops"),
        "{denied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_callbacks_are_refused_and_run_nothing() {
    let w = world().await;
    let good = text_from(&w.crypto, "zhangsan", "开机:web-04", 4001, None);

    let forged = CallbackPost {
        query: good.query.replace(&good.msg_signature, &"0".repeat(40)),
        ..good.clone()
    };
    assert_eq!(push_callback(&w.url, &forged).await.unwrap().status, 400);

    let xml = format!("<xml><ToUserName>{CORP}</ToUserName><FromUserName>zhangsan</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>开机:web-04</Content><MsgId>4002</MsgId><AgentID>{AGENT}</AgentID></xml>");
    let stale = build_callback_post(
        &w.crypto,
        AGENT,
        &xml,
        b"0123456789abcdef",
        "1400000000",
        "1",
    );
    let r = push_callback(&w.url, &stale).await.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);

    let other_corp = WecomCrypto::new(TOKEN, AES_KEY, "wwsomeoneelse0000").unwrap();
    let wrong_corp = text_from(&other_corp, "zhangsan", "开机:web-04", 4003, None);
    assert_eq!(
        push_callback(&w.url, &wrong_corp).await.unwrap().status,
        400
    );

    let not_xml = CallbackPost {
        body: "this is not xml".into(),
        ..good.clone()
    };
    assert_eq!(push_callback(&w.url, &not_xml).await.unwrap().status, 400);

    let huge = CallbackPost {
        body: format!("<xml>{}</xml>", "A".repeat(200_000)),
        ..good.clone()
    };
    assert_eq!(push_callback(&w.url, &huge).await.unwrap().status, 413);

    let unknown = push_callback(&w.url.replace("/wecom/ops/", "/wecom/nope/"), &good)
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);

    let no_query = CallbackPost {
        query: String::new(),
        ..good.clone()
    };
    assert_eq!(push_callback(&w.url, &no_query).await.unwrap().status, 400);

    assert!(w.jobs().await.is_empty(), "nothing ran");
    // And the genuine one still works afterwards.
    let out = push_callback(&w.url, &good).await.unwrap();
    assert!(passive_text(&w.crypto, &out.body).starts_with("已受理"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_chat_results_go_to_the_chat_with_a_mention() {
    let w = world().await;
    let client = opsbot_wecom::WecomClient::new(opsbot_wecom::ClientConfig {
        api_base: w.fake.base_url(),
        ..Default::default()
    })
    .unwrap();
    let app = client.app(opsbot_wecom::AppCredentials::new(CORP, AGENT, SECRET));
    let chat = app
        .appchat_create(&opsbot_wecom::api::NewAppChat {
            name: Some("集群控制".into()),
            owner: Some("zhangsan".into()),
            users: vec!["zhangsan".into(), "lisi".into()],
            chat_id: Some("opsroom".into()),
        })
        .await
        .unwrap();
    let out = push_callback(
        &w.url,
        &text_from(&w.crypto, "zhangsan", "开机:web-04", 5001, Some(&chat)),
    )
    .await
    .unwrap();
    assert_eq!(
        (out.status, out.body.as_str()),
        (200, ""),
        "group answers go by appchat/send"
    );
    let ack = delivered(&w.fake, "appchat/send", "已受理").await;
    assert_eq!(ack["chatid"], "opsroom");
    assert!(
        ack["text"]["content"]
            .as_str()
            .unwrap()
            .starts_with("@zhangsan "),
        "{ack}"
    );
    delivered(&w.fake, "appchat/send", "web-04 已开机").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_permanent_ones_dead_lettered() {
    let w = world().await;
    for _ in 0..3 {
        w.fake.push_fault("message/send", Fault::Status(502));
    }
    let out = w.send("zhangsan", "开机:web-04", 6001).await;
    assert!(passive_text(&w.crypto, &out.body).starts_with("已受理"));
    delivered(&w.fake, "message/send", "web-04 已开机").await;
    // WeCom has it; the worker records that right after the answer, so wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sent = outbox(&w.store, OutboxState::Sent).await;
        if sent
            .iter()
            .any(|i| i.attempts >= 3 && i.body.contains("已开机"))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sent:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 60020: our IP is not trusted. Never retried; the error names the IP to add.
    w.fake
        .set_trusted_ips(Some(vec!["10.0.0.1".parse().unwrap()]));
    w.send("zhangsan", "关机:web-04", 6002).await;
    w.send("zhangsan", "y", 6003).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let dead = outbox(&w.store, OutboxState::Dead).await;
        if !dead.is_empty() {
            break dead;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(dead[0].attempts, 1, "not retried: {dead:?}");
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("127.0.0.1") && error.contains("60020"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_survive_wecom_being_unreachable_and_a_restart() {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, SECRET, AGENT);
    fake.add_users(&["zhangsan"]);
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let crypto = WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap();

    // First life: WeCom's API is unreachable (nothing listens there).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (stop1, rx1) = watch::channel(false);
    let url = serve(&store, &sessions, &closed, rx1).await;
    let out = push_callback(
        &url,
        &text_from(&crypto, "zhangsan", "开机:web-04", 7001, None),
    )
    .await
    .unwrap();
    assert!(passive_text(&crypto, &out.body).starts_with("已受理"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending = outbox(&store, OutboxState::Pending).await;
        if pending
            .iter()
            .any(|i| i.attempts >= 1 && i.body.contains("已开机"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "result never queued and tried: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop1.send(true).unwrap();

    // Second life, WeCom reachable again: the queued result arrives.
    let (_stop2, rx2) = watch::channel(false);
    let _url2 = serve(&store, &sessions, &fake.base_url(), rx2).await;
    delivered(&fake, "message/send", "web-04 已开机").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_apps_and_corps_at_once() {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, SECRET, AGENT);
    fake.add_app("wwsecondcorp00000", "second-secret", 1000003);
    fake.add_users(&["zhangsan"]);
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let second = AppConfig {
        callback: opsbot_channels::Callback::new("dr", "tokenOfTheSecondApp"),
        corp_id: "wwsecondcorp00000".into(),
        agent_id: 1000003,
        secret: "second-secret".into(),
        encoding_aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into(),
        api_base: fake.base_url(),
    };
    let (_stop, rx) = watch::channel(false);
    let url = serve_apps(
        &store,
        &sessions,
        vec![app_config(&fake.base_url()), second],
        rx,
    )
    .await;
    let url_dr = url.replace("/wecom/ops/", "/wecom/dr/");
    let ops = WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap();
    let dr = WecomCrypto::new(
        "tokenOfTheSecondApp",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "wwsecondcorp00000",
    )
    .unwrap();

    let xml = |corp: &str, agent: i64, id: u64| {
        format!("<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[开机:web-04]]></Content><MsgId>{id}</MsgId><AgentID>{agent}</AgentID></xml>", now())
    };
    let to_dr = build_callback_post(
        &dr,
        1000003,
        &xml("wwsecondcorp00000", 1000003, 8001),
        b"0123456789abcdef",
        &now(),
        "77",
    );
    let out = push_callback(&url_dr, &to_dr).await.unwrap();
    assert!(
        passive_text(&dr, &out.body).starts_with("已受理"),
        "{}",
        out.body
    );
    let body = delivered(&fake, "message/send", "web-04 已开机").await;
    assert_eq!(
        body["agentid"], 1000003,
        "the result goes out through the app it came from"
    );

    // One app's message posted to the other's URL fails that app's signature check.
    let to_ops = build_callback_post(
        &ops,
        AGENT,
        &xml(CORP, AGENT, 8002),
        b"0123456789abcdef",
        &now(),
        "78",
    );
    assert_eq!(push_callback(&url_dr, &to_ops).await.unwrap().status, 400);
    assert_eq!(push_callback(&url, &to_ops).await.unwrap().status, 200);
    let audit = store
        .audit_log(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        audit.iter().any(|a| a.channel == "wecom:dr")
            && audit.iter().any(|a| a.channel == "wecom:ops"),
        "{audit:?}"
    );
}

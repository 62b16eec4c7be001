//! The smart-robot channel end to end over real HTTP: encrypted JSON callbacks exactly as
//! WeCom posts them (the vectors of wecom_aibot_vectors.json among them) hit `opsbot
//! serve`'s router; answers come back as encrypted stream replies and their refreshes,
//! and late results reach the fake WeCom's `response_url` through the outbox.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_channels::delivery::RetryPolicy;
use opsbot_channels::wecom_bot::{BotChannel, BotConfig, Settings};
use opsbot_core::{AuditResult, JobState, Policy, Role};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_fakes::{
    aibot_refresh_json, aibot_text_json, build_aibot_post, build_verify_url_query,
    decrypt_aibot_reply, get_verify_url, push_aibot_callback, CallbackPost, FakeWecom,
    RESPONSE_URL_EXPIRED,
};
use opsbot_store::{AuditQuery, JobQuery, OutboxQuery, OutboxState, Store};
use opsbot_wecom::WecomCrypto;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const GROUP: &str = "wrkSFfCgAAxxxxxxxxxxxxxxxxxxxx";
const OPSROOM: &str = "wrOpsRoomChatId0000000000000000";

fn vectors() -> Value {
    // The protocol crate's vectors: one copy in the repository.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../opsbot-wecom/tests/fixtures/channels/wecom_aibot_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn policy() -> Policy {
    let roles = vec![
        Role {
            name: "admin".into(),
            commands: vec!["*".into()],
            scopes: vec!["*".into()],
        },
        Role {
            name: "viewer".into(),
            commands: vec!["概况".into()],
            scopes: vec!["*".into()],
        },
    ];
    let users = ["zhangsan", "lisi", "wangwu"]
        .into_iter()
        .map(|u| (u.to_string(), vec!["admin".to_string()]))
        .collect();
    let chats = BTreeMap::from([(OPSROOM.to_string(), vec!["viewer".to_string()])]);
    Policy::new(roles, users, chats).unwrap()
}

struct World {
    fake: FakeWecom,
    store: Arc<dyn Store>,
    url: String,
    crypto: WecomCrypto,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn settings() -> Settings {
    Settings {
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

async fn world_with(settings: Settings, time_scale: f64, bot_id: Option<&str>) -> World {
    let fake = FakeWecom::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let sim = Arc::new(opsbot_sim::SimProvider::new(
        "sim",
        store.clone(),
        time_scale,
    ));
    let engine = Engine::new(
        store.clone(),
        sessions,
        vec![sim],
        policy(),
        EngineSettings::default(),
    )
    .await
    .unwrap();
    engine.ensure_synced().await.unwrap();
    let bot = BotConfig {
        callback: opsbot_channels::Callback::new("ops", TOKEN),
        encoding_aes_key: AES_KEY.into(),
        bot_id: bot_id.map(str::to_string),
        api_base: fake.base_url(),
    };
    let channel =
        Arc::new(BotChannel::new(&[bot], Arc::new(engine), store.clone(), settings).unwrap());
    let (stop, rx) = watch::channel(false);
    tokio::spawn(channel.delivery(format!("test-{}", next())).run(rx));
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
    World {
        fake,
        store,
        url: format!("http://{addr}/wecom/bot/ops/callback"),
        crypto: WecomCrypto::new(TOKEN, AES_KEY, "").unwrap(),
        _stop: stop,
        _dir: dir,
    }
}

async fn world() -> World {
    world_with(settings(), 0.01, None).await
}

fn next() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::SeqCst)
}

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

impl World {
    /// `plaintext` as WeCom encrypts, signs and posts it; the decrypted reply, if any.
    async fn post(&self, plaintext: &str) -> Option<Value> {
        let post = build_aibot_post(
            &self.crypto,
            plaintext,
            b"0123456789abcdef",
            &now(),
            &next().to_string(),
        );
        let out = push_aibot_callback(&self.url, &post).await.unwrap();
        assert_eq!(out.status, 200, "{}", out.body);
        if out.body.is_empty() {
            return None;
        }
        Some(decrypt_aibot_reply(&self.crypto, &out.body).unwrap())
    }

    /// A user's message: the stream id of the acknowledgement.
    async fn say(&self, user: &str, chat: Option<&str>, text: &str) -> String {
        self.say_with_url(
            user,
            chat,
            text,
            "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=unused",
        )
        .await
    }

    async fn say_with_url(
        &self,
        user: &str,
        chat: Option<&str>,
        text: &str,
        response_url: &str,
    ) -> String {
        let msg = format!("msg-{}", next());
        let ack = self
            .post(&aibot_text_json(&msg, chat, user, text, response_url))
            .await
            .expect("a message is acknowledged with a stream");
        assert_eq!(ack["msgtype"], "stream", "{ack}");
        assert_eq!(
            ack["stream"]["finish"], false,
            "acknowledged at once: {ack}"
        );
        assert_eq!(ack["stream"]["content"], "", "{ack}");
        ack["stream"]["id"].as_str().unwrap().to_string()
    }

    /// One refresh of `stream`, as WeCom polls it.
    async fn refresh(&self, user: &str, chat: Option<&str>, stream: &str) -> Value {
        let reply = self
            .post(&aibot_refresh_json(
                &format!("refresh-{}", next()),
                chat,
                user,
                stream,
            ))
            .await
            .expect("a refresh is answered");
        assert_eq!(reply["stream"]["id"], stream, "{reply}");
        reply["stream"].clone()
    }

    /// Refreshes `stream` until it finishes; its final content.
    async fn finish(&self, user: &str, chat: Option<&str>, stream: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.refresh(user, chat, stream).await;
            if s["finish"] == true {
                return s["content"].as_str().unwrap().to_string();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stream never finished: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn jobs(&self) -> Vec<opsbot_core::JobRecord> {
        self.store
            .jobs(&JobQuery {
                limit: 20,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn outbox(&self, state: OutboxState) -> Vec<opsbot_store::OutboxItem> {
        self.store
            .outbox_list(&OutboxQuery {
                state: Some(state),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// Waits for an outbox item in `state`.
    async fn outbox_until(&self, state: OutboxState) -> opsbot_store::OutboxItem {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(item) = self.outbox(state).await.into_iter().next() {
                return item;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no outbox item became {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until the fake's `response_url` took a reply containing `needle`.
async fn responded(fake: &FakeWecom, needle: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = fake
            .sent_to("aibot/response")
            .into_iter()
            .find(|m| m.body.to_string().contains(needle))
        {
            return m.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing with {needle:?} reached response_url: {:?}",
            fake.sent()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn wide_window() -> Settings {
    // The vectors were made in 2014 and 2023; a channel that accepts their timestamps.
    Settings {
        timestamp_window: Duration::from_secs(20 * 365 * 86_400),
        ..settings()
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_verification_vector_and_fresh_checks() {
    let w = world_with(wide_window(), 0.01, None).await;
    let v = &vectors()["url_verification"];
    let q = &v["query"];
    let query = ["msg_signature", "timestamp", "nonce", "echostr"]
        .map(|k| format!("{k}={}", encode(q[k].as_str().unwrap())))
        .join("&");
    let out = get_verify_url(&w.url, &query).await.unwrap();
    assert_eq!(
        (out.status, out.body.as_str()),
        (200, v["expected_response_body"].as_str().unwrap())
    );

    let w = world().await;
    let fresh = build_verify_url_query(&w.crypto, "echo+/=42", b"abcdefghijklmnop", &now(), "9527");
    let out = get_verify_url(&w.url, &fresh).await.unwrap();
    assert_eq!((out.status, out.body.as_str()), (200, "echo+/=42"));
    // The 2014 vector is a replay for a channel with the normal 5-minute window.
    let stale = get_verify_url(&w.url, &query).await.unwrap();
    assert_eq!(stale.status, 400, "{}", stale.body);
    let forged = fresh.replacen("msg_signature=", "msg_signature=0", 1);
    assert_eq!(get_verify_url(&w.url, &forged).await.unwrap().status, 400);
    let other = get_verify_url(&w.url.replace("/bot/ops/", "/bot/nope/"), &fresh)
        .await
        .unwrap();
    assert_eq!(other.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_command_works_verbatim_after_the_mention() {
    let w = world_with(wide_window(), 0.01, Some("aibAbCdEfGhIjKlMnOpQrStUvWxYz01")).await;
    let v = &vectors()["group_text_at_robot"];
    let post = CallbackPost {
        query: ["msg_signature", "timestamp", "nonce"]
            .map(|k| format!("{k}={}", v["query"][k].as_str().unwrap()))
            .join("&"),
        body: v["body"].as_str().unwrap().to_string(),
        msg_signature: String::new(),
        encrypt: String::new(),
    };
    let out = push_aibot_callback(&w.url, &post).await.unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    let envelope: Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(
        envelope["nonce"], v["query"]["nonce"],
        "the reply carries the callback's nonce"
    );
    let ack = decrypt_aibot_reply(&w.crypto, &out.body).unwrap();
    assert_eq!(
        (
            ack["stream"]["finish"].clone(),
            ack["stream"]["content"].clone()
        ),
        (json!(false), json!(""))
    );
    let stream = ack["stream"]["id"].as_str().unwrap().to_string();

    let prompt = w.finish("zhangsan", Some(GROUP), &stream).await;
    assert!(
        prompt.starts_with("@zhangsan 即将执行: 克隆 工具柜管理系统: 模板 2")
            && prompt.contains("192.168.2.182"),
        "{prompt}"
    );
    // The vector's message again (WeCom's retry): the same stream, nothing new runs.
    let again = decrypt_aibot_reply(
        &w.crypto,
        &push_aibot_callback(&w.url, &post).await.unwrap().body,
    )
    .unwrap();
    assert_eq!(again["stream"]["id"], stream.as_str());
    assert_eq!(
        again["stream"]["finish"], false,
        "acknowledged at once, as always"
    );
    assert_eq!(
        w.finish("zhangsan", Some(GROUP), &stream).await,
        prompt,
        "its refresh is the first delivery's answer"
    );

    let confirm = w.say("zhangsan", Some(GROUP), "@运维机器人 确认").await;
    let done = w.finish("zhangsan", Some(GROUP), &confirm).await;
    assert!(done.starts_with("@zhangsan 已受理 #"), "{done}");
    assert!(
        done.contains("正在克隆磁盘") && done.contains("✅") && done.contains("克隆完成"),
        "{done}"
    );
    let jobs = w.jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state, JobState::Succeeded);
    assert_eq!(jobs[0].chat.as_deref(), Some(GROUP));
    let audit = w
        .store
        .audit_log(&AuditQuery {
            user: Some("zhangsan".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        audit.iter().any(|a| a.channel == "wecom-bot:ops"
            && a.text == "克隆:2,工具柜管理系统,192.168.2.182"
            && a.result == AuditResult::Pending
            && a.chat.as_deref() == Some(GROUP)),
        "the command as the engine saw it: {audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vector_refresh_of_an_unknown_stream_ends_it_plainly() {
    let w = world_with(wide_window(), 0.01, None).await;
    let v = &vectors()["stream_refresh"];
    let post = CallbackPost {
        query: ["msg_signature", "timestamp", "nonce"]
            .map(|k| format!("{k}={}", v["query"][k].as_str().unwrap()))
            .join("&"),
        body: v["body"].as_str().unwrap().to_string(),
        msg_signature: String::new(),
        encrypt: String::new(),
    };
    let out = push_aibot_callback(&w.url, &post).await.unwrap();
    assert_eq!(out.status, 200);
    let reply = decrypt_aibot_reply(&w.crypto, &out.body).unwrap();
    assert_eq!(reply["stream"]["id"], "stream-0001");
    assert_eq!(reply["stream"]["finish"], true);
    assert!(
        reply["stream"]["content"]
            .as_str()
            .unwrap()
            .contains("已失效"),
        "{reply}"
    );
    assert!(w.jobs().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_chats_answer_without_a_mention_and_roles_bind_to_the_group() {
    let w = world().await;
    let s = w.say("zhangsan", None, "概况").await;
    let text = w.finish("zhangsan", None, &s).await;
    assert!(
        text.starts_with("【资源概况】") && text.contains("虚拟机 48"),
        "{text}"
    );

    // Someone with no roles of their own: the group's role applies inside the group only.
    let s = w.say("zhaoliu", Some(OPSROOM), "@运维机器人 概况").await;
    let text = w.finish("zhaoliu", Some(OPSROOM), &s).await;
    assert!(text.starts_with("@zhaoliu 【资源概况】"), "{text}");
    let s = w
        .say("zhaoliu", Some(OPSROOM), "@运维机器人 关机:web-04")
        .await;
    let text = w.finish("zhaoliu", Some(OPSROOM), &s).await;
    assert!(
        text.contains("⛔ 您(zhaoliu)没有权限执行「关机」"),
        "{text}"
    );
    let s = w.say("zhaoliu", None, "概况").await;
    let text = w.finish("zhaoliu", None, &s).await;
    assert!(
        text.contains("⛔ 您(zhaoliu)没有权限执行「概况」"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_engineers_in_one_group_run_at_once_and_each_is_named() {
    let w = world_with(settings(), 0.5, None).await;
    let engineers = [
        ("zhangsan", "app-zhangsan", "192.168.50.11"),
        ("lisi", "app-lisi", "192.168.50.12"),
        ("wangwu", "app-wangwu", "192.168.50.13"),
    ];
    let mut prompts = Vec::new();
    for (user, vm, ip) in engineers {
        prompts.push((
            user,
            w.say(user, Some(GROUP), &format!("@运维机器人 克隆:2,{vm},{ip}"))
                .await,
        ));
    }
    for (user, s) in &prompts {
        let prompt = w.finish(user, Some(GROUP), s).await;
        assert!(prompt.starts_with(&format!("@{user} 即将执行")), "{prompt}");
    }
    // Each confirms their own clone: the sessions are per person within the group.
    let mut confirms = Vec::new();
    for (user, vm, _) in engineers {
        confirms.push((user, vm, w.say(user, Some(GROUP), "@运维机器人 y").await));
    }
    let results = futures::future::join_all(
        confirms
            .iter()
            .map(|(user, _, s)| w.finish(user, Some(GROUP), s)),
    )
    .await;
    for ((user, vm, _), text) in confirms.iter().zip(&results) {
        assert!(text.starts_with(&format!("@{user} 已受理 #")), "{text}");
        assert!(text.contains(vm) && text.contains("✅"), "{user}: {text}");
        for (other, other_vm, _) in &confirms {
            if other != user {
                assert!(
                    !text.contains(other_vm),
                    "{user}'s stream has {other}'s job: {text}"
                );
            }
        }
    }
    let jobs = w.jobs().await;
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let last_start = jobs.iter().map(|j| j.created_at).max().unwrap();
    let first_end = jobs.iter().map(|j| j.updated_at).min().unwrap();
    assert!(
        last_start < first_end,
        "the three jobs overlapped in time: {jobs:?}"
    );
    assert!(
        jobs.iter().all(|j| j.state == JobState::Succeeded),
        "{jobs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_ends_its_stream_and_finishes_through_response_url() {
    let w = world_with(
        Settings {
            stream_window: Duration::from_millis(300),
            ..settings()
        },
        1.0,
        None,
    )
    .await;
    let url = w.fake.mint_response_url();
    let s = w
        .say_with_url(
            "zhangsan",
            Some(GROUP),
            "@运维机器人 克隆:1,长任务机,192.168.9.9",
            &url,
        )
        .await;
    let prompt = w.finish("zhangsan", Some(GROUP), &s).await;
    assert!(prompt.contains("即将执行"), "{prompt}");
    let url = w.fake.mint_response_url();
    let s = w
        .say_with_url("zhangsan", Some(GROUP), "@运维机器人 确认", &url)
        .await;
    let ended = w.finish("zhangsan", Some(GROUP), &s).await;
    assert!(ended.starts_with("@zhangsan 已受理 #"), "{ended}");
    assert!(
        ended.contains("仍在执行") && ended.contains("任务:"),
        "{ended}"
    );
    assert!(!ended.contains("✅"), "ended before the clone: {ended}");
    // Refreshing the ended stream again gives the same end.
    let again = w.refresh("zhangsan", Some(GROUP), &s).await;
    assert_eq!(
        (again["finish"].clone(), again["content"].as_str().unwrap()),
        (json!(true), ended.as_str())
    );

    let body = responded(&w.fake, "克隆完成").await;
    assert_eq!(body["msgtype"], "markdown");
    assert!(
        body["markdown"]["content"]
            .as_str()
            .unwrap()
            .starts_with("@zhangsan ✅"),
        "{body}"
    );
    let sent = w.outbox_until(OutboxState::Sent).await;
    assert_eq!(sent.attempts, 0, "{sent:?}");
    assert_eq!(w.fake.sent_to("aibot/response").len(), 1, "once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_response_url_is_dead_lettered_with_the_reason() {
    let w = world_with(
        Settings {
            stream_window: Duration::from_millis(200),
            ..settings()
        },
        1.0,
        None,
    )
    .await;
    let url = w.fake.mint_response_url();
    let s = w.say_with_url("lisi", None, "开机:web-04", &url).await;
    let ended = w.finish("lisi", None, &s).await;
    assert!(ended.contains("仍在执行"), "{ended}");
    // WeCom's hour passes before the result is in.
    w.fake.advance(Duration::from_secs(3601));
    let dead = w.outbox_until(OutboxState::Dead).await;
    let error = dead.last_error.clone().unwrap_or_default();
    assert!(
        error.contains(&RESPONSE_URL_EXPIRED.to_string()) && error.contains("1 hour"),
        "{error}"
    );
    assert_eq!(dead.attempts, 1, "not retried: {dead:?}");
    assert!(w.fake.sent_to("aibot/response").is_empty());

    // Our own clock says expired too: dead-lettered without calling WeCom.
    let w = world_with(
        Settings {
            stream_window: Duration::from_millis(200),
            response_url_ttl: Duration::from_millis(100),
            ..settings()
        },
        1.0,
        None,
    )
    .await;
    let url = w.fake.mint_response_url();
    let s = w.say_with_url("lisi", None, "开机:web-04", &url).await;
    w.finish("lisi", None, &s).await;
    let dead = w.outbox_until(OutboxState::Dead).await;
    assert!(dead.last_error.unwrap_or_default().contains("expired at"));
    assert_eq!(w.fake.request_count("aibot/response"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_other_message_types() {
    let w = world().await;
    let enter = json!({"msgid": "ev-1", "aibotid": "b", "chattype": "single", "from": {"userid": "zhangsan"},
        "msgtype": "event", "create_time": 1700000000, "event": {"eventtype": "enter_chat"}}).to_string();
    let welcome = w.post(&enter).await.unwrap();
    assert_eq!(welcome["msgtype"], "text");
    assert!(
        welcome["text"]["content"]
            .as_str()
            .unwrap()
            .contains("帮助"),
        "{welcome}"
    );
    assert!(
        w.post(&enter).await.is_none(),
        "a duplicate event gets no reply"
    );
    let card = json!({"msgid": "ev-2", "aibotid": "b", "chattype": "single", "from": {"userid": "zhangsan"},
        "msgtype": "event", "event": {"eventtype": "template_card_event"}}).to_string();
    assert!(w.post(&card).await.is_none());
    let image = json!({"msgid": "img-1", "aibotid": "b", "chattype": "group", "chatid": GROUP,
        "from": {"userid": "lisi"}, "msgtype": "image", "image": {"url": "https://x/y"}})
    .to_string();
    let reply = w.post(&image).await.unwrap();
    assert_eq!(reply["stream"]["finish"], true);
    assert!(
        reply["stream"]["content"]
            .as_str()
            .unwrap()
            .starts_with("@lisi 暂时只支持文字命令"),
        "{reply}"
    );
    let mixed = json!({"msgid": "mix-1", "aibotid": "b", "chattype": "single", "from": {"userid": "zhangsan"},
        "response_url": "https://qyapi.weixin.qq.com/x", "msgtype": "mixed",
        "mixed": {"msg_item": [{"msgtype": "text", "text": {"content": "概况"}}, {"msgtype": "image", "image": {"url": "u"}}]}}).to_string();
    let ack = w.post(&mixed).await.unwrap();
    let text = w
        .finish("zhangsan", None, ack["stream"]["id"].as_str().unwrap())
        .await;
    assert!(text.starts_with("【资源概况】"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_callbacks_are_refused_and_run_nothing() {
    let w = world_with(settings(), 0.01, Some("aibAbCdEfGhIjKlMnOpQrStUvWxYz01")).await;
    let plain = aibot_text_json(
        "bad-1",
        Some(GROUP),
        "zhangsan",
        "@运维机器人 开机:web-04",
        "https://qyapi.weixin.qq.com/x",
    );
    let good = build_aibot_post(&w.crypto, &plain, b"0123456789abcdef", &now(), "1");
    let url = w.url.clone();
    let status = |post: CallbackPost| {
        let url = url.clone();
        async move { push_aibot_callback(&url, &post).await.unwrap() }
    };

    let forged = CallbackPost {
        query: good.query.replace(&good.msg_signature, &"0".repeat(40)),
        ..good.clone()
    };
    assert_eq!(status(forged).await.status, 400);
    let stale = build_aibot_post(&w.crypto, &plain, b"0123456789abcdef", "1400000000", "1");
    let r = status(stale).await;
    assert!(
        r.status == 400 && r.body.contains("timestamp"),
        "{}",
        r.body
    );
    let other_receiver = WecomCrypto::new(TOKEN, AES_KEY, "ww1436e0e65a779aee").unwrap();
    let r = status(build_aibot_post(
        &other_receiver,
        &plain,
        b"0123456789abcdef",
        &now(),
        "2",
    ))
    .await;
    assert!(
        r.status == 400 && r.body.contains("receive id"),
        "{}",
        r.body
    );
    for body in [
        "not json",
        "{}",
        "{\"encrypt\": 5}",
        "<xml><Encrypt>x</Encrypt></xml>",
    ] {
        let r = status(CallbackPost {
            body: body.into(),
            ..good.clone()
        })
        .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let not_json_inside = build_aibot_post(&w.crypto, "hello", b"0123456789abcdef", &now(), "3");
    let r = status(not_json_inside).await;
    assert!(r.status == 400 && r.body.contains("JSON"), "{}", r.body);
    let no_sender = build_aibot_post(&w.crypto, &json!({"msgid": "x", "chattype": "single", "msgtype": "text", "text": {"content": "概况"}, "aibotid": "aibAbCdEfGhIjKlMnOpQrStUvWxYz01"}).to_string(), b"0123456789abcdef", &now(), "4");
    let r = status(no_sender).await;
    assert!(
        r.status == 400 && r.body.contains("from.userid"),
        "{}",
        r.body
    );
    let other_bot = build_aibot_post(
        &w.crypto,
        &plain.replace("aibAbCdEfGhIjKlMnOpQrStUvWxYz01", "aibSomeoneElse"),
        b"0123456789abcdef",
        &now(),
        "5",
    );
    assert_eq!(status(other_bot).await.status, 400);
    let huge = CallbackPost {
        body: format!("{{\"encrypt\": \"{}\"}}", "A".repeat(200_000)),
        ..good.clone()
    };
    assert_eq!(status(huge).await.status, 413);
    let no_query = CallbackPost {
        query: String::new(),
        ..good.clone()
    };
    assert_eq!(status(no_query).await.status, 400);
    let unknown = push_aibot_callback(&w.url.replace("/bot/ops/", "/bot/nope/"), &good)
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);

    assert!(w.jobs().await.is_empty(), "nothing ran");
    assert!(w.outbox(OutboxState::Pending).await.is_empty());
    // The genuine one still works afterwards.
    let out = status(good).await;
    let ack = decrypt_aibot_reply(&w.crypto, &out.body).unwrap();
    let text = w
        .finish(
            "zhangsan",
            Some(GROUP),
            ack["stream"]["id"].as_str().unwrap(),
        )
        .await;
    assert!(text.starts_with("@zhangsan 已受理"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_three_times_at_once_runs_once() {
    let w = world().await;
    let json = aibot_text_json(
        "dup-1",
        Some(GROUP),
        "lisi",
        "@运维机器人 开机:web-04",
        "https://qyapi.weixin.qq.com/x",
    );
    let acks = futures::future::join_all((0..3).map(|_| w.post(&json))).await;
    let ids: Vec<String> = acks
        .iter()
        .map(|a| {
            a.as_ref().unwrap()["stream"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "one stream: {ids:?}");
    let text = w.finish("lisi", Some(GROUP), &ids[0]).await;
    assert!(text.contains("web-04 已开机"), "{text}");
    // Once more, after it finished: the same stream, still not run again.
    let again = w.post(&json).await.unwrap();
    assert_eq!(again["stream"]["id"], ids[0].as_str());
    assert_eq!(w.finish("lisi", Some(GROUP), &ids[0]).await, text);
    assert_eq!(w.jobs().await.len(), 1);
    let audit = w
        .store
        .audit_log(&AuditQuery {
            user: Some("lisi".into()),
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap();
    let runs = audit
        .iter()
        .filter(|a| a.text == "开机:web-04" && a.result == AuditResult::Accepted)
        .count();
    assert_eq!(runs, 1, "{audit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_robots_own_settings_and_format() {
    let w = world().await;
    let plain = aibot_text_json(
        "texts-1",
        Some(GROUP),
        "zhangsan",
        "@运维机器人 概况",
        "https://qyapi.weixin.qq.com/x",
    );
    let post = |p: CallbackPost| {
        let url = w.url.clone();
        async move { push_aibot_callback(&url, &p).await.unwrap() }
    };
    // A wrong signature: the robot's Token, where the robot's settings are.
    let good = build_aibot_post(&w.crypto, &plain, b"0123456789abcdef", &now(), "1");
    let forged = CallbackPost {
        query: good.query.replace(&good.msg_signature, &"0".repeat(40)),
        ..good
    };
    let r = post(forged).await;
    assert!(
        r.status == 400 && r.body.contains("msg_signature") && r.body.contains("智能机器人"),
        "{}",
        r.body
    );
    // Encrypted for a receive id (a WeCom app's CorpID): not a robot's callback.
    let app_crypto = WecomCrypto::new(TOKEN, AES_KEY, "ww1436e0e65a779aee").unwrap();
    let r = post(build_aibot_post(
        &app_crypto,
        &plain,
        b"0123456789abcdef",
        &now(),
        "2",
    ))
    .await;
    assert!(
        r.status == 400
            && r.body.contains("\"ww1436e0e65a779aee\"")
            && r.body.contains("empty receive id")
            && r.body.contains("智能机器人")
            && !r.body.contains("check the CorpID"),
        "{}",
        r.body
    );
    // The decrypted message is JSON, and a refusal says so.
    let no_sender =
        json!({"msgid": "x", "chattype": "single", "msgtype": "text", "text": {"content": "概况"}})
            .to_string();
    let r = post(build_aibot_post(
        &w.crypto,
        &no_sender,
        b"0123456789abcdef",
        &now(),
        "3",
    ))
    .await;
    assert!(
        r.status == 400
            && r.body.contains("message JSON")
            && r.body.contains("from.userid")
            && !r.body.contains("XML"),
        "{}",
        r.body
    );
    let bad_type =
        json!({"msgid": "y", "chattype": 5, "msgtype": "text", "from": {"userid": "zhangsan"}})
            .to_string();
    let r = post(build_aibot_post(
        &w.crypto,
        &bad_type,
        b"0123456789abcdef",
        &now(),
        "4",
    ))
    .await;
    assert!(
        r.status == 400 && r.body.contains("message JSON") && !r.body.contains("XML"),
        "{}",
        r.body
    );
}

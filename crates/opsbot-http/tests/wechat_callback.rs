//! The Official Account channel end to end over real HTTP: callbacks exactly as WeChat
//! posts them (the vectors of mp_vectors.json among them), plain and safe mode, hit
//! `opsbot serve`'s router; answers come back as passive replies, and later results
//! reach the fake WeChat API as customer-service messages within its window.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_channels::delivery::RetryPolicy;
use opsbot_channels::mp::{MpChannel, MpConfig, MpUser, Settings};
use opsbot_core::{AuditResult, JobState, Policy, Role};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_fakes::{
    build_mp_post, build_mp_verify_query, decrypt_mp_reply, get_verify_url, mp_text_xml,
    push_mp_callback, FakeWechat, Fault, MpCallback, MpKeys,
};
use opsbot_store::{AuditQuery, JobQuery, OutboxQuery, OutboxState, Store};
use opsbot_wecom::WecomCrypto;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const APPID: &str = "wx49f0ab532d5d035a";
const SECRET: &str = "mp-app-secret";
const TOKEN: &str = "spamtest";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const GH: &str = "gh_1234567890ab";
const ZHANGSAN: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const STRANGER: &str = "oStrangerNobodyBound0000000";

fn vectors() -> Value {
    // The protocol crate's vectors: one copy in the repository.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../opsbot-wecom/tests/fixtures/channels/mp_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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

struct World {
    fake: FakeWechat,
    store: Arc<dyn Store>,
    url: String,
    /// `Some` in safe mode.
    crypto: Option<WecomCrypto>,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn world_with(safe: bool, settings: Settings) -> World {
    let fake = FakeWechat::start().await.unwrap();
    fake.add_account(APPID, SECRET);
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let sim = Arc::new(opsbot_sim::SimProvider::new("sim", store.clone(), 0.01));
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
    let account = MpConfig {
        callback: opsbot_channels::Callback::new("ops", TOKEN),
        app_id: APPID.into(),
        app_secret: SECRET.into(),
        encoding_aes_key: safe.then(|| AES_KEY.to_string()),
        original_id: Some(GH.into()),
        api_base: fake.base_url(),
        users: vec![MpUser {
            openid: ZHANGSAN.into(),
            user: "zhangsan".into(),
        }],
    };
    let channel =
        Arc::new(MpChannel::new(&[account], Arc::new(engine), store.clone(), settings).unwrap());
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
        url: format!("http://{addr}/wechat/ops/callback"),
        crypto: safe.then(|| WecomCrypto::new(TOKEN, AES_KEY, APPID).unwrap()),
        _stop: stop,
        _dir: dir,
    }
}

fn next() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::SeqCst)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The field `name` of a reply XML.
fn field(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no {name} in {xml}"))
        + open.len();
    let end = start + xml[start..].find(&format!("</{name}>")).unwrap();
    let value = &xml[start..end];
    value
        .strip_prefix("<![CDATA[")
        .and_then(|v| v.strip_suffix("]]>"))
        .unwrap_or(value)
        .to_string()
}

impl World {
    fn keys(&self) -> MpKeys<'_> {
        MpKeys {
            token: TOKEN,
            crypto: self.crypto.as_ref(),
            gh_id: GH,
        }
    }

    /// The callback carrying `xml` from `open_id`, as WeChat signs (and in safe mode
    /// encrypts) it.
    fn callback(&self, open_id: &str, xml: &str) -> MpCallback {
        build_mp_post(
            self.keys(),
            open_id,
            xml,
            b"0123456789abcdef",
            &now().to_string(),
            &next().to_string(),
        )
    }

    /// The user types `text`: WeChat records it (the window opens), then calls us.
    /// Returns the HTTP body.
    async fn say(&self, open_id: &str, text: &str) -> String {
        self.fake.user_wrote(APPID, open_id);
        let xml = mp_text_xml(GH, open_id, text, next(), now());
        let out = push_mp_callback(&self.url, &self.callback(open_id, &xml))
            .await
            .unwrap();
        assert_eq!(out.status, 200, "{}", out.body);
        out.body
    }

    /// The passive reply's text (`None` for `success`).
    fn reply_text(&self, body: &str) -> Option<String> {
        if body == "success" {
            return None;
        }
        let xml = match &self.crypto {
            Some(crypto) => decrypt_mp_reply(crypto, body).unwrap(),
            None => body.to_string(),
        };
        assert_eq!(field(&xml, "MsgType"), "text", "{xml}");
        assert_eq!(field(&xml, "FromUserName"), GH, "{xml}");
        Some(field(&xml, "Content"))
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

    async fn outbox_until(&self, state: OutboxState, n: usize) -> Vec<opsbot_store::OutboxItem> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let items = self
                .store
                .outbox_list(&OutboxQuery {
                    state: Some(state),
                    ..Default::default()
                })
                .await
                .unwrap();
            if items.len() >= n {
                return items;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "fewer than {n} outbox items {state:?}: {items:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a customer-service message containing `needle`.
    async fn sent(&self, needle: &str) -> opsbot_fakes::MpSent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self
                .fake
                .sent()
                .into_iter()
                .find(|m| m.content.contains(needle))
            {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no message with {needle:?}: {:?}",
                self.fake.sent()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn wide_window() -> Settings {
    Settings {
        timestamp_window: Duration::from_secs(20 * 365 * 86_400),
        ..settings()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_verification_returns_echostr_unchanged() {
    let w = world_with(false, wide_window()).await;
    let v = &vectors()["plain_url_verification"];
    let q = &v["query"];
    let query = ["signature", "timestamp", "nonce", "echostr"]
        .map(|k| format!("{k}={}", q[k].as_str().unwrap()))
        .join("&");
    let out = get_verify_url(&w.url, &query).await.unwrap();
    assert_eq!(
        (out.status, out.body.as_str()),
        (200, v["expected_body"].as_str().unwrap())
    );

    // Safe mode too: WeChat does not encrypt echostr.
    let w = world_with(true, settings()).await;
    let fresh = build_mp_verify_query(TOKEN, "7539218812374", &now().to_string(), "42");
    let out = get_verify_url(&w.url, &fresh).await.unwrap();
    assert_eq!((out.status, out.body.as_str()), (200, "7539218812374"));
    assert_eq!(
        get_verify_url(&w.url, &query).await.unwrap().status,
        400,
        "stale"
    );
    let forged = build_mp_verify_query("not-the-token", "1", &now().to_string(), "42");
    assert_eq!(get_verify_url(&w.url, &forged).await.unwrap().status, 400);
    let other = get_verify_url(&w.url.replace("/wechat/ops/", "/wechat/nope/"), &fresh)
        .await
        .unwrap();
    assert_eq!(other.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_safe_mode_vector_runs_the_seed_command_and_is_answered_encrypted() {
    let w = world_with(true, wide_window()).await;
    let v = &vectors()["safe_text_message"];
    let query = [
        "signature",
        "timestamp",
        "nonce",
        "openid",
        "encrypt_type",
        "msg_signature",
    ]
    .map(|k| format!("{k}={}", v["query"][k].as_str().unwrap()))
    .join("&");
    let post = MpCallback {
        query,
        body: v["body"].as_str().unwrap().to_string(),
    };
    w.fake.user_wrote(APPID, ZHANGSAN);
    let out = push_mp_callback(&w.url, &post).await.unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        out.body.contains("<Encrypt>") && out.body.contains("<Nonce><![CDATA[461225306]]></Nonce>"),
        "{}",
        out.body
    );
    let text = w.reply_text(&out.body).unwrap();
    assert!(
        text.starts_with("即将执行: 克隆 工具柜管理系统: 模板 2") && text.contains("192.168.2.182"),
        "{text}"
    );
    let xml = decrypt_mp_reply(w.crypto.as_ref().unwrap(), &out.body).unwrap();
    assert_eq!(field(&xml, "ToUserName"), ZHANGSAN);
    // WeChat's second and third tries: `success`, nothing runs again.
    for _ in 0..2 {
        let again = push_mp_callback(&w.url, &post).await.unwrap();
        assert_eq!((again.status, again.body.as_str()), (200, "success"));
    }
    let confirm = w.say(ZHANGSAN, "确认").await;
    let accepted = w.reply_text(&confirm).unwrap();
    assert!(
        accepted.starts_with("已受理 #") && accepted.contains("客服消息"),
        "{accepted}"
    );
    let result = w.sent("克隆完成").await;
    assert_eq!(result.open_id, ZHANGSAN);
    assert!(result.content.starts_with("✅"), "{result:?}");
    assert!(
        !w.fake
            .sent()
            .iter()
            .any(|m| m.content.contains("正在克隆磁盘")),
        "progress is not sent: it would use up the window: {:?}",
        w.fake.sent()
    );
    let jobs = w.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::Succeeded);
    assert_eq!(jobs[0].user, "zhangsan", "the bound opsbot user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_mode_answers_in_the_passive_reply_and_results_follow() {
    let w = world_with(false, settings()).await;
    let body = w.say(ZHANGSAN, "概况").await;
    assert!(
        body.starts_with("<xml>") && !body.contains("<Encrypt>"),
        "{body}"
    );
    let text = w.reply_text(&body).unwrap();
    assert!(
        text.contains("【资源概况】") && text.contains("虚拟机 48"),
        "{text}"
    );
    let accepted = w.reply_text(&w.say(ZHANGSAN, "开机:web-04").await).unwrap();
    assert!(accepted.starts_with("已受理 #"), "{accepted}");
    w.sent("web-04 已开机").await;
    w.reply_text(&w.say(ZHANGSAN, "关机:web-04").await).unwrap();
    w.reply_text(&w.say(ZHANGSAN, "y").await).unwrap();
    w.sent("已关机").await;
    assert_eq!(w.fake.token_calls(), 1, "the account's token is cached");
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
        audit
            .iter()
            .any(|a| a.channel == "wechat:ops" && a.text == "概况"),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_openids_are_refused_and_audited() {
    let w = world_with(true, settings()).await;
    let text = w.reply_text(&w.say(STRANGER, "开机:web-04").await).unwrap();
    assert!(
        text.contains("尚未绑定") && text.contains(STRANGER),
        "{text}"
    );
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
        denied.iter().any(|a| a.user == format!("openid:{STRANGER}")
            && a.channel == "wechat:ops"
            && a.text == "开机:web-04"),
        "{denied:?}"
    );
    assert!(w.jobs().await.is_empty());
    // Following the account tells them the openid to pass on.
    let follow = format!("<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{STRANGER}]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>", now());
    let out = push_mp_callback(&w.url, &w.callback(STRANGER, &follow))
        .await
        .unwrap();
    let welcome = w.reply_text(&out.body).unwrap();
    assert!(
        welcome.contains("欢迎") && welcome.contains(STRANGER),
        "{welcome}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_window_is_honoured_and_the_user_told_plainly() {
    // Every answer goes by customer-service message (budget 0) and only one is allowed
    // per user message, so 开机 (answer + result) overflows the window.
    let w = world_with(
        false,
        Settings {
            ack_budget: Duration::ZERO,
            window_messages: Some(1),
            ..settings()
        },
    )
    .await;
    assert_eq!(w.say(ZHANGSAN, "开机:web-04").await, "success");
    let dead = w.outbox_until(OutboxState::Dead, 1).await;
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("window closed") && error.contains("not sent to WeChat"),
        "{error}"
    );
    assert_eq!(w.fake.sent().len(), 1, "{:?}", w.fake.sent());
    // Their next message: the first thing they hear is what they missed.
    assert_eq!(w.say(ZHANGSAN, "概况").await, "success");
    let told = w.sent("没能发给您").await;
    assert!(
        told.content.contains("有 1 条结果") && told.content.contains("发送 任务"),
        "{told:?}"
    );
    assert!(told.content.contains("【资源概况】"), "{told:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_closing_the_window_is_dead_lettered_and_reported() {
    let w = world_with(false, settings()).await;
    let accepted = w.reply_text(&w.say(ZHANGSAN, "开机:web-04").await).unwrap();
    assert!(accepted.starts_with("已受理"), "{accepted}");
    w.sent("已开机").await;
    // 48 hours pass at WeChat (its clock): the next result is refused with 45015.
    w.reply_text(&w.say(ZHANGSAN, "关机:web-04").await).unwrap();
    w.fake.advance(Duration::from_secs(49 * 3600));
    let xml = mp_text_xml(GH, ZHANGSAN, "y", next(), now());
    // Sent without `user_wrote`: WeChat's window stays as it was 49 hours ago.
    let out = push_mp_callback(&w.url, &w.callback(ZHANGSAN, &xml))
        .await
        .unwrap();
    assert!(w.reply_text(&out.body).unwrap().starts_with("已受理"));
    let dead = w.outbox_until(OutboxState::Dead, 1).await;
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("45015") && error.contains("48 hours"),
        "{error}"
    );
    let text = w.reply_text(&w.say(ZHANGSAN, "任务").await).unwrap();
    assert!(text.starts_with("⚠ 有 1 条结果没能发给您"), "{text}");
    // 45047 from WeChat is handled the same way.
    w.fake.push_fault(
        "message/custom/send",
        Fault::Json(json!({"errcode": 45047, "errmsg": "out of response count limit"})),
    );
    w.reply_text(&w.say(ZHANGSAN, "开机:web-04").await).unwrap();
    let dead = w.outbox_until(OutboxState::Dead, 2).await;
    assert!(
        dead.iter()
            .any(|d| d.last_error.as_deref().unwrap_or("").contains("45047")),
        "{dead:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_trouble_is_recovered_and_transient_failures_retried() {
    let w = world_with(true, settings()).await;
    w.reply_text(&w.say(ZHANGSAN, "开机:web-04").await).unwrap();
    w.sent("已开机").await;
    w.fake.revoke_all();
    w.fake.push_fault("message/custom/send", Fault::Status(502));
    w.reply_text(&w.say(ZHANGSAN, "关机:web-04").await).unwrap();
    w.reply_text(&w.say(ZHANGSAN, "y").await).unwrap();
    w.sent("已关机").await;
    assert_eq!(
        w.fake.token_calls(),
        2,
        "refetched once after the revocation"
    );
    let sent = w.outbox_until(OutboxState::Sent, 2).await;
    assert!(
        sent.iter().any(|i| i.attempts >= 1),
        "the 502 was retried: {sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_callbacks_are_refused_and_run_nothing() {
    let safe = world_with(true, settings()).await;
    let xml = mp_text_xml(GH, ZHANGSAN, "开机:web-04", 9001, now());
    let good = safe.callback(ZHANGSAN, &xml);
    let post =
        |url: String, cb: MpCallback| async move { push_mp_callback(&url, &cb).await.unwrap() };

    let forged_sig = MpCallback {
        query: good.query.replacen("signature=", "signature=0", 1),
        ..good.clone()
    };
    assert_eq!(post(safe.url.clone(), forged_sig).await.status, 400);
    let forged_msg_sig = MpCallback {
        query: good.query.replace("msg_signature=", "msg_signature=0"),
        ..good.clone()
    };
    assert_eq!(post(safe.url.clone(), forged_msg_sig).await.status, 400);
    let stale = build_mp_post(
        safe.keys(),
        ZHANGSAN,
        &xml,
        b"0123456789abcdef",
        "1400000000",
        "1",
    );
    assert_eq!(post(safe.url.clone(), stale).await.status, 400);
    let plain_to_safe = build_mp_post(
        MpKeys {
            crypto: None,
            ..safe.keys()
        },
        ZHANGSAN,
        &xml,
        b"0123456789abcdef",
        &now().to_string(),
        "2",
    );
    let r = post(safe.url.clone(), plain_to_safe).await;
    assert!(r.status == 400 && r.body.contains("安全模式"), "{}", r.body);
    let wrong_appid = WecomCrypto::new(TOKEN, AES_KEY, "wxsomeoneelse0000").unwrap();
    let r = post(
        safe.url.clone(),
        build_mp_post(
            MpKeys {
                crypto: Some(&wrong_appid),
                ..safe.keys()
            },
            ZHANGSAN,
            &xml,
            b"0123456789abcdef",
            &now().to_string(),
            "3",
        ),
    )
    .await;
    assert!(
        r.status == 400 && r.body.contains("receive id"),
        "{}",
        r.body
    );
    let other_account = mp_text_xml("gh_someoneelse", ZHANGSAN, "开机:web-04", 9002, now());
    assert_eq!(
        post(safe.url.clone(), safe.callback(ZHANGSAN, &other_account))
            .await
            .status,
        400
    );
    let not_xml = MpCallback {
        body: "{\"json\": true}".into(),
        ..good.clone()
    };
    assert_eq!(post(safe.url.clone(), not_xml).await.status, 400);
    let inner_not_xml = safe.callback(ZHANGSAN, "hello");
    assert_eq!(post(safe.url.clone(), inner_not_xml).await.status, 400);
    let huge = MpCallback {
        body: format!("<xml>{}</xml>", "A".repeat(200_000)),
        ..good.clone()
    };
    assert_eq!(post(safe.url.clone(), huge).await.status, 413);
    let no_query = MpCallback {
        query: String::new(),
        ..good.clone()
    };
    assert_eq!(post(safe.url.clone(), no_query).await.status, 400);
    assert_eq!(
        post(
            safe.url.replace("/wechat/ops/", "/wechat/nope/"),
            good.clone()
        )
        .await
        .status,
        404
    );
    assert!(safe.jobs().await.is_empty(), "nothing ran");
    assert!(safe
        .reply_text(&post(safe.url.clone(), good).await.body)
        .unwrap()
        .starts_with("已受理"));

    // Plain mode: an encrypted message is refused, and a signed query carries one body
    // only (WeChat signs the query, not the body).
    let plain = world_with(false, settings()).await;
    let safe_crypto = WecomCrypto::new(TOKEN, AES_KEY, APPID).unwrap();
    let encrypted = build_mp_post(
        MpKeys {
            crypto: Some(&safe_crypto),
            ..plain.keys()
        },
        ZHANGSAN,
        &xml,
        b"0123456789abcdef",
        &now().to_string(),
        "4",
    );
    let r = post(plain.url.clone(), encrypted).await;
    assert!(
        r.status == 400 && r.body.contains("encoding_aes_key"),
        "{}",
        r.body
    );
    let first = plain.callback(ZHANGSAN, &mp_text_xml(GH, ZHANGSAN, "概况", 9101, now()));
    assert!(plain
        .reply_text(&post(plain.url.clone(), first.clone()).await.body)
        .unwrap()
        .contains("【资源概况】"));
    let swapped = MpCallback {
        body: mp_text_xml(GH, ZHANGSAN, "开机:web-04", 9102, now()),
        ..first
    };
    assert_eq!(post(plain.url.clone(), swapped).await.body, "success");
    assert!(
        plain.jobs().await.is_empty(),
        "the swapped body did not run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_check_query_is_good_for_one_request_only() {
    let w = world_with(false, settings()).await;
    let nonce = next().to_string();
    let query = build_mp_verify_query(TOKEN, "7539218812374", &now().to_string(), &nonce);
    let r = reqwest::get(format!("{}?{query}", w.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "7539218812374");
    // The same signed query again, as a URL check and as a message with a body of the
    // replayer's choice (WeChat's signature covers neither echostr nor a body).
    let again = get_verify_url(&w.url, &query).await.unwrap();
    assert!(
        again.status == 400 && again.body.contains("already used"),
        "{}",
        again.body
    );
    w.fake.user_wrote(APPID, ZHANGSAN);
    let replay = MpCallback {
        query: query.clone(),
        body: mp_text_xml(GH, ZHANGSAN, "概况", 9201, now()),
    };
    let out = push_mp_callback(&w.url, &replay).await.unwrap();
    assert_eq!((out.status, out.body.as_str()), (200, "success"));
    let audit = w
        .store
        .audit_log(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(audit.is_empty(), "nothing ran: {audit:?}");
    // A fresh POST is served as ever.
    let reply = w.say(ZHANGSAN, "概况").await;
    assert!(w.reply_text(&reply).unwrap().contains("【资源概况】"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_echostr_as_wechat_sends_it_is_echoed() {
    let w = world_with(false, settings()).await;
    for evil in [
        "<script>alert(1)</script>",
        "<html><body>phish</body></html>",
        "12 34",
        &"9".repeat(65),
    ] {
        // Signed correctly: the signature does not cover echostr.
        let query = build_mp_verify_query(TOKEN, evil, &now().to_string(), &next().to_string());
        let out = get_verify_url(&w.url, &query).await.unwrap();
        assert_eq!(out.status, 400, "{evil}: {}", out.body);
        assert!(!out.body.contains('<'), "{}", out.body);
        assert!(out.body.contains("echostr"), "{}", out.body);
    }
    let query = build_mp_verify_query(TOKEN, "5837397749309458181", &now().to_string(), "1");
    let out = get_verify_url(&w.url, &query).await.unwrap();
    assert_eq!(
        (out.status, out.body.as_str()),
        (200, "5837397749309458181")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_official_accounts_own_parameters_and_console() {
    // Plain mode, a wrong `signature`: WeChat's parameter and console, not WeCom's.
    let w = world_with(false, settings()).await;
    let forged = build_mp_verify_query("not-the-token", "1", &now().to_string(), "42");
    let out = get_verify_url(&w.url, &forged).await.unwrap();
    assert_eq!(out.status, 400);
    assert!(
        out.body
            .contains("signature is not sha1(sort(token, timestamp, nonce))")
            && out.body.contains("公众号")
            && !out.body.contains("msg_signature")
            && !out.body.contains("WeCom"),
        "{}",
        out.body
    );
    let xml = mp_text_xml(GH, ZHANGSAN, "概况", 9301, now());
    let good = w.callback(ZHANGSAN, &xml);
    let forged = MpCallback {
        query: good.query.replace("signature=", "signature=0"),
        ..good
    };
    let out = push_mp_callback(&w.url, &forged).await.unwrap();
    assert!(
        out.status == 400 && out.body.contains("公众号") && !out.body.contains("WeCom"),
        "{}",
        out.body
    );
    // Safe mode: a wrong `msg_signature` and a message for another AppID.
    let safe = world_with(true, settings()).await;
    let good = safe.callback(ZHANGSAN, &mp_text_xml(GH, ZHANGSAN, "概况", 9302, now()));
    let forged = MpCallback {
        query: good.query.replace("msg_signature=", "msg_signature=0"),
        ..good
    };
    let out = push_mp_callback(&safe.url, &forged).await.unwrap();
    assert!(
        out.status == 400
            && out.body.contains("msg_signature")
            && out.body.contains("公众号")
            && !out.body.contains("WeCom"),
        "{}",
        out.body
    );
    let wrong_appid = WecomCrypto::new(TOKEN, AES_KEY, "wxsomeoneelse0000").unwrap();
    let post = build_mp_post(
        MpKeys {
            crypto: Some(&wrong_appid),
            ..safe.keys()
        },
        ZHANGSAN,
        &mp_text_xml(GH, ZHANGSAN, "概况", 9303, now()),
        b"0123456789abcdef",
        &now().to_string(),
        &next().to_string(),
    );
    let out = push_mp_callback(&safe.url, &post).await.unwrap();
    assert!(
        out.status == 400
            && out.body.contains("\"wxsomeoneelse0000\"")
            && out.body.contains("AppID")
            && out.body.contains(APPID)
            && out.body.contains("app_id")
            && !out.body.contains("CorpID"),
        "{}",
        out.body
    );
}

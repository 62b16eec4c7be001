//! The smart robot when things go wrong, over real HTTP and a real SQLite store:
//! - a message is acknowledged only once its stream is in the store: while the store
//!   cannot take the write yet the callback waits, and when it refuses it the callback
//!   answers 503 (WeCom retries) and runs nothing; the retry then runs it once;
//! - the process running a message's job dies (its runtime is dropped, nothing graceful
//!   happens): another instance finds the job stale, marks it interrupted, and the
//!   message's stream, still refreshed by WeCom, ends with `已中断`.
//!
//! The store is disturbed from outside through a second SQLite connection, as another
//! process would: a held write lock, a trigger refusing inserts.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_channels::delivery::RetryPolicy;
use opsbot_channels::wecom_bot::{BotChannel, BotConfig, Settings};
use opsbot_core::{AuditResult, JobId, JobState, Policy, Role};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_fakes::{
    aibot_refresh_json, aibot_text_json, build_aibot_post, decrypt_aibot_reply,
    push_aibot_callback, CallbackPost, FakeWecom,
};
use opsbot_store::{AuditQuery, Store, StreamState};
use opsbot_wecom::{aibot, WecomCrypto};
use sea_orm::sqlx::{self, Connection, SqliteConnection};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const GROUP: &str = "wrkSFfCgAAxxxxxxxxxxxxxxxxxxxx";
const RESPONSE_URL: &str = "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=x";

fn policy() -> Policy {
    let admin = Role {
        name: "admin".into(),
        commands: vec!["*".into()],
        scopes: vec!["*".into()],
    };
    let users = [("lisi".to_string(), vec!["admin".to_string()])].into();
    Policy::new(vec![admin], users, Default::default()).unwrap()
}

fn next() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::SeqCst)
}

/// One opsbot instance: engine, robot channel, its delivery worker and the router on
/// a loopback port, over the SQLite file `db`.
struct Instance {
    engine: Arc<Engine>,
    url: String,
    _stop: watch::Sender<bool>,
}

async fn instance(db: &str, api_base: &str, owner: &str, time_scale: f64) -> Instance {
    let store = opsbot_store::connect(db).await.unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let sim = Arc::new(opsbot_sim::SimProvider::new(
        "sim",
        store.clone(),
        time_scale,
    ));
    let settings = EngineSettings {
        owner: owner.into(),
        stale_after: Duration::from_secs(2),
        ..EngineSettings::default()
    };
    let engine = Arc::new(
        Engine::new(store.clone(), sessions, vec![sim], policy(), settings)
            .await
            .unwrap(),
    );
    engine.ensure_synced().await.unwrap();
    let bot = BotConfig {
        callback: opsbot_channels::Callback::new("ops", TOKEN),
        encoding_aes_key: AES_KEY.into(),
        bot_id: None,
        api_base: api_base.into(),
    };
    let settings = Settings {
        retry: RetryPolicy {
            delays: vec![Duration::from_millis(50)],
            poll: Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        ..Settings::default()
    };
    let channel =
        Arc::new(BotChannel::new(&[bot], engine.clone(), store.clone(), settings).unwrap());
    let (stop, rx) = watch::channel(false);
    tokio::spawn(channel.delivery(owner.to_string()).run(rx));
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
    Instance {
        engine,
        url: format!("http://{addr}/wecom/bot/ops/callback"),
        _stop: stop,
    }
}

fn crypto() -> WecomCrypto {
    WecomCrypto::new(TOKEN, AES_KEY, "").unwrap()
}

fn signed(json: &str) -> CallbackPost {
    let now = chrono::Utc::now().timestamp().to_string();
    build_aibot_post(
        &crypto(),
        json,
        b"0123456789abcdef",
        &now,
        &next().to_string(),
    )
}

/// `lisi`'s group message, signed as WeCom posts it.
fn message(msg_id: &str, text: &str) -> CallbackPost {
    signed(&aibot_text_json(
        msg_id,
        Some(GROUP),
        "lisi",
        &format!("@运维机器人 {text}"),
        RESPONSE_URL,
    ))
}

/// The stream of a refresh, through `url`.
async fn refresh(url: &str, stream: &str) -> Value {
    let json = aibot_refresh_json(&format!("refresh-{}", next()), Some(GROUP), "lisi", stream);
    let out = push_aibot_callback(url, &signed(&json)).await.unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    decrypt_aibot_reply(&crypto(), &out.body).unwrap()["stream"].clone()
}

/// Refreshes until the stream finishes; its content.
async fn finished(url: &str, stream: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let s = refresh(url, stream).await;
        if s["finish"] == true {
            return s["content"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the stream never finished: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second connection to the store's SQLite file, as another process would open it.
async fn side_connection(dir: &std::path::Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}/opsbot.db", dir.display()))
        .await
        .unwrap()
}

async fn accepted_runs(store: &dyn Store, text: &str) -> usize {
    store
        .audit_log(&AuditQuery {
            user: Some("lisi".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .filter(|a| a.text == text && a.result == AuditResult::Accepted)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_acknowledged_only_once_its_stream_is_recorded() {
    let fake = FakeWecom::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/opsbot.db", dir.path().display());
    let bot = instance(&db, &fake.base_url(), "proc-a", 0.01).await;
    let store = opsbot_store::connect(&db).await.unwrap();

    // Another process holds the write lock: the stream cannot be written yet.
    let mut other = side_connection(dir.path()).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let post = message("held-1", "概况");
    let url = bot.url.clone();
    let mut answer = tokio::spawn(async move { push_aibot_callback(&url, &post).await });
    // However long we look, no acknowledgement comes while the stream is not written.
    if let Ok(early) = tokio::time::timeout(Duration::from_millis(1500), &mut answer).await {
        panic!("acknowledged before its stream was recorded: {early:?}");
    }
    let (streams,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM bot_stream")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(streams, 0);
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();

    let out = answer.await.unwrap().unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    let ack = decrypt_aibot_reply(&crypto(), &out.body).unwrap();
    let id = ack["stream"]["id"].as_str().unwrap().to_string();
    assert_eq!(id, aibot::stream_id("held-1"));
    assert!(
        store
            .stream_get("wecom-bot:ops", &id)
            .await
            .unwrap()
            .is_some(),
        "acknowledged, so recorded"
    );
    let text = finished(&bot.url, &id, Duration::from_secs(30)).await;
    assert!(text.starts_with("@lisi 【资源概况】"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_store_cannot_record_is_refused_for_a_retry_that_runs_it_once() {
    let fake = FakeWecom::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/opsbot.db", dir.path().display());
    let bot = instance(&db, &fake.base_url(), "proc-a", 0.01).await;
    let store = opsbot_store::connect(&db).await.unwrap();

    let mut other = side_connection(dir.path()).await;
    sqlx::query(
        "CREATE TRIGGER refuse_streams BEFORE INSERT ON bot_stream \
         BEGIN SELECT RAISE(ABORT, 'injected: the disk is full'); END",
    )
    .execute(&mut other)
    .await
    .unwrap();
    // Several at once (one write for all), and one alone.
    let posts: Vec<CallbackPost> = (0..5)
        .map(|i| message(&format!("refused-{i}"), "开机:web-04"))
        .collect();
    let outs =
        futures::future::join_all(posts.iter().map(|p| push_aibot_callback(&bot.url, p))).await;
    for out in outs {
        let out = out.unwrap();
        assert_eq!(out.status, 503, "WeCom must retry: {}", out.body);
        assert!(!out.body.contains("encrypt"), "no reply: {}", out.body);
    }
    assert!(store
        .stream_get("wecom-bot:ops", &aibot::stream_id("refused-0"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        accepted_runs(store.as_ref(), "开机:web-04").await,
        0,
        "nothing ran"
    );

    // The store recovers; WeCom's retry of the first message runs it, once.
    sqlx::query("DROP TRIGGER refuse_streams")
        .execute(&mut other)
        .await
        .unwrap();
    let again = push_aibot_callback(&bot.url, &posts[0]).await.unwrap();
    assert_eq!(again.status, 200, "{}", again.body);
    let id = aibot::stream_id("refused-0");
    let text = finished(&bot.url, &id, Duration::from_secs(30)).await;
    assert!(text.contains("web-04 已开机"), "{text}");
    let twice = push_aibot_callback(&bot.url, &posts[0]).await.unwrap();
    assert_eq!(twice.status, 200);
    assert_eq!(finished(&bot.url, &id, Duration::from_secs(30)).await, text);
    assert_eq!(accepted_runs(store.as_ref(), "开机:web-04").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_process_died_ends_its_stream_interrupted() {
    let fake = FakeWecom::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/opsbot.db", dir.path().display());
    // Process A: its own runtime, so that it can die with everything in it.
    let (db_a, base) = (db.clone(), fake.base_url());
    let (a, a_url) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // Powering on takes 80 s at this pace: it is running when A dies.
        let a = rt.block_on(instance(&db_a, &base, "proc-a", 100.0));
        let url = a.url.clone();
        std::mem::forget(a); // dies with its runtime, not before
        (rt, url)
    })
    .join()
    .unwrap();
    let post = message("dies-1", "开机:web-04");
    let out = push_aibot_callback(&a_url, &post).await.unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    let id = aibot::stream_id("dies-1");
    let store = opsbot_store::connect(&db).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stream = store
            .stream_get("wecom-bot:ops", &id)
            .await
            .unwrap()
            .unwrap();
        if stream.job_id.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job never started: {stream:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let job = JobId(1);
    assert_eq!(
        store.job(job).await.unwrap().unwrap().state,
        JobState::Running
    );

    // A dies: no graceful stop, no reply, its stream still open.
    a.shutdown_background();

    // B runs on; its sweep finds the job once its heartbeat is stale.
    let b = instance(&db, &fake.base_url(), "proc-b", 0.01).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.job(job).await.unwrap().unwrap().state == JobState::Running {
        assert!(
            Instant::now() < deadline,
            "the dead process's job was never swept"
        );
        b.engine.sweep_stale_jobs().await.unwrap();
        tokio::time::sleep(b.engine.job_sweep_period()).await;
    }
    assert_eq!(
        store.job(job).await.unwrap().unwrap().state,
        JobState::Interrupted
    );

    // WeCom still refreshes the stream (through B): it ends with the notice, once.
    let text = finished(&b.url, &id, Duration::from_secs(30)).await;
    assert!(text.starts_with("@lisi 已受理 #1"), "{text}");
    assert!(text.contains("⚠ #1 已中断"), "{text}");
    assert_eq!(text.matches("已中断").count(), 1, "{text}");
    let stream = store
        .stream_get("wecom-bot:ops", &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stream.state, StreamState::Done);
    assert!(
        fake.sent_to("aibot/response").is_empty(),
        "the stream said it; nothing by response_url"
    );
}

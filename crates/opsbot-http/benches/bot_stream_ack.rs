//! Stream acknowledgement of the smart-robot channel under load: correctly signed and
//! encrypted group messages (`@运维机器人 概况`) over loopback HTTP from 100 concurrent
//! engineers, and the time until each is acknowledged with its empty stream (which is
//! once the stream is written to the store). The engine
//! answers each in the background meanwhile (SQLite, the same store), as in production.
//! Shapes:
//! - burst: all 100 at the same instant; twenty such bursts, each once the engine has
//!   answered the previous one (back to back they would be ~14,000 messages/s, beyond
//!   what the engine answers on two cores, and measure its backlog instead);
//! - paced: every engineer sends one message every 200 ms (500 messages/s in all);
//! - refresh: the streams' refreshes, which read the answer back;
//! - URL verification, which WeCom wants answered within 1 s.
//!
//! The load generator is lean on purpose (keep-alive HTTP/1.1 written straight to TCP):
//! it shares the two cores with the server, and reqwest's own cost would be measured
//! with it. On a shared machine the wall-clock figures depend on what else runs, so each
//! shape also reports this process's CPU time per message (server, engine and load
//! generator together, from /proc/self/stat), which does not.
//!
//! cargo bench -p opsbot-http --bench bot_stream_ack
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_channels::wecom_bot::{BotChannel, BotConfig, Settings};
use opsbot_fakes::{
    aibot_refresh_json, aibot_text_json, build_aibot_post, build_verify_url_query,
    decrypt_aibot_reply, CallbackPost,
};
use opsbot_store::{Store, StreamState};
use opsbot_wecom::{aibot, WecomCrypto};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/http1.rs"]
mod http1;
use http1::{cpu_time, Conn};
#[path = "common/viewer.rs"]
mod viewer;

const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const ENGINEERS: usize = 100;
const ROUNDS: usize = 20;
const GROUPS: [&str; 4] = ["wrGroupA", "wrGroupB", "wrGroupC", "wrGroupD"];

// The allocator the opsbot binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = viewer::viewer_engine(dir.path(), ENGINEERS).await;
    let bot = BotConfig {
        callback: opsbot_channels::Callback::new("ops", TOKEN),
        encoding_aes_key: AES_KEY.into(),
        bot_id: None,
        api_base: "https://qyapi.weixin.qq.com".into(),
    };
    let channel = Arc::new(
        BotChannel::new(&[bot], Arc::new(engine), store.clone(), Settings::default()).unwrap(),
    );
    let router = opsbot_http::router(opsbot_http::AppState {
        store: store.clone(),
        version: "bench",
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
    let crypto = WecomCrypto::new(TOKEN, AES_KEY, "").unwrap();

    // URL verification.
    let mut conn = Conn::open(addr).await;
    let mut latencies = Vec::new();
    let started = Instant::now();
    for i in 0..200 {
        let now = chrono::Utc::now().timestamp().to_string();
        let query = build_verify_url_query(
            &crypto,
            "1616140317555161061",
            b"0123456789abcdef",
            &now,
            &i.to_string(),
        );
        let (took, body) = callback(&mut conn, "GET", &query, "").await;
        assert_eq!(body, "1616140317555161061");
        latencies.push(took);
    }
    report(
        "URL verification (sequential)",
        latencies,
        started.elapsed(),
    );

    // One keep-alive connection per engineer, opened (and used once) before measuring.
    let mut conns = Vec::with_capacity(ENGINEERS);
    for i in 0..ENGINEERS {
        let mut conn = Conn::open(addr).await;
        ack(&mut conn, &message(&crypto, i, &format!("warm-{i}"))).await;
        conns.push(conn);
    }

    // Burst: 100 group messages at the same instant, twenty rounds.
    let mut latencies = Vec::with_capacity(ENGINEERS * ROUNDS);
    let mut streams = Vec::new();
    let started = Instant::now();
    let cpu = cpu_time();
    for round in 0..ROUNDS {
        let tasks: Vec<_> = conns
            .drain(..)
            .enumerate()
            .map(|(i, mut conn)| {
                let post = message(&crypto, i, &format!("burst-{round}-{i}"));
                tokio::spawn(async move {
                    let out = ack(&mut conn, &post).await;
                    (conn, out)
                })
            })
            .collect();
        for t in tasks {
            let (conn, (latency, body)) = t.await.unwrap();
            conns.push(conn);
            latencies.push(latency);
            if round == ROUNDS - 1 {
                streams.push(body);
            }
        }
        let ids: Vec<String> = (0..ENGINEERS)
            .map(|i| aibot::stream_id(&format!("burst-{round}-{i}")))
            .collect();
        answered(store.as_ref(), &ids).await;
    }
    // Every burst was answered before the next: the CPU includes the engine's.
    let burst_cpu = cpu_time() - cpu;
    let elapsed = started.elapsed();
    report(
        "burst: 100 concurrent group messages, ack",
        latencies,
        elapsed,
    );
    per_message_cpu("burst", burst_cpu, ENGINEERS * ROUNDS);

    // Paced: each engineer sends every 200 ms for 5 s.
    let started = Instant::now();
    let cpu = cpu_time();
    let tasks: Vec<_> = conns
        .drain(..)
        .enumerate()
        .map(|(i, mut conn)| {
            let crypto = crypto.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(2000 * i as u64)).await;
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                let mut out = Vec::new();
                for n in 0..25 {
                    tick.tick().await;
                    let post = message(&crypto, i, &format!("paced-{i}-{n}"));
                    out.push(ack(&mut conn, &post).await.0);
                }
                (conn, out)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        let (conn, out) = t.await.unwrap();
        conns.push(conn);
        latencies.extend(out);
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paced_cpu = cpu_time() - cpu;
    report(
        "paced: 100 engineers, one group message each per 200 ms, ack",
        latencies,
        elapsed,
    );
    per_message_cpu("paced", paced_cpu, ENGINEERS * 25);

    // Refreshes of the last burst's streams, all at once.
    let mut latencies = Vec::new();
    let started = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .zip(conns.drain(..))
        .enumerate()
        .map(|(i, (body, mut conn))| {
            let crypto = crypto.clone();
            tokio::spawn(async move {
                let reply = decrypt_aibot_reply(&crypto, &body).unwrap();
                let id = reply["stream"]["id"].as_str().unwrap().to_string();
                let json = aibot_refresh_json(
                    &format!("r-{i}"),
                    Some(GROUPS[i % GROUPS.len()]),
                    &format!("u{i}"),
                    &id,
                );
                ack(&mut conn, &signed(&crypto, &json, i)).await.0
            })
        })
        .collect();
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    report("refresh: 100 concurrent", latencies, started.elapsed());
}

/// Waits until the engine has answered every stream in `ids`.
async fn answered(store: &dyn Store, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in ids {
        loop {
            let done = store
                .stream_get("wecom-bot:ops", id)
                .await
                .unwrap()
                .is_some_and(|s| s.state == StreamState::Done);
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "stream {id} never answered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn message(crypto: &WecomCrypto, engineer: usize, msg_id: &str) -> CallbackPost {
    let json = aibot_text_json(
        msg_id,
        Some(GROUPS[engineer % GROUPS.len()]),
        &format!("u{engineer}"),
        "@运维机器人 概况",
        "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=bench",
    );
    signed(crypto, &json, engineer)
}

fn signed(crypto: &WecomCrypto, json: &str, n: usize) -> CallbackPost {
    let now = chrono::Utc::now().timestamp().to_string();
    build_aibot_post(crypto, json, b"0123456789abcdef", &now, &n.to_string())
}

/// POSTs `post` as WeCom does; the time to the whole answer, and the answer.
async fn ack(conn: &mut Conn, post: &CallbackPost) -> (Duration, String) {
    callback(conn, "POST", &post.query, &post.body).await
}

/// One request to the callback URL; panics unless the answer is 200.
async fn callback(conn: &mut Conn, method: &str, query: &str, body: &str) -> (Duration, String) {
    let target = format!("/wecom/bot/ops/callback?{query}");
    let (took, answer) = conn
        .send(
            method,
            &target,
            "content-type: application/json\r\n",
            body.as_bytes(),
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    (took, String::from_utf8(answer.body).unwrap())
}

fn report(label: &str, latencies: Vec<Duration>, total: Duration) {
    let n = latencies.len();
    let rate = n as f64 / total.as_secs_f64();
    println!(
        "{label}: {n} requests: {}, {rate:.0} requests/s",
        viewer::percentiles(latencies)
    );
}

fn per_message_cpu(label: &str, cpu: Duration, messages: usize) {
    let each = cpu.as_secs_f64() * 1e6 / messages as f64;
    println!(
        "{label}: {:.0} µs CPU per message (server + engine + load generator), so 100 messages \
         need {:.1} ms of CPU: {:.1} ms on 2 idle cores",
        each,
        each * 100.0 / 1000.0,
        each * 100.0 / 2000.0
    );
}

//! Load on the WeCom callback of `opsbot serve`: correctly signed and encrypted
//! callbacks over loopback HTTP from 200 concurrent connections, and the time until each
//! is acknowledged. Two shapes, each for a read command (answered in the passive reply,
//! through the engine and SQLite) and for events (the channel alone):
//! - paced: every connection sends one callback every 200 ms (1,000 callbacks/s in all,
//!   far above what one WeCom corp sends), the latency a user sees;
//! - burst: all 200 at once, ten times over, the saturation throughput (its latency is
//!   mostly queueing behind the other 199 on this 2-core machine, load generator
//!   included).
//!
//! cargo bench -p opsbot-http --bench callback_load
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_channels::wecom::{AppConfig, Settings, WecomChannel};
use opsbot_fakes::{build_callback_post, CallbackPost, FakeWecom};
use opsbot_wecom::WecomCrypto;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/viewer.rs"]
mod viewer;

const CORP: &str = "ww1436e0e65a779aee";
const AGENT: i64 = 1000002;
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CONCURRENCY: usize = 200;
const ROUNDS: usize = 10;

// The allocator the opsbot binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `cargo bench` passes --bench; any other argument list is a test-mode probe.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "s", AGENT);
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = viewer::viewer_engine(dir.path(), CONCURRENCY).await;
    let app = AppConfig {
        callback: opsbot_channels::Callback::new("ops", TOKEN),
        corp_id: CORP.into(),
        agent_id: AGENT,
        secret: "s".into(),
        encoding_aes_key: AES_KEY.into(),
        api_base: fake.base_url(),
    };
    let channel = Arc::new(
        WecomChannel::new(&[app], Arc::new(engine), store.clone(), Settings::default()).unwrap(),
    );
    let router = opsbot_http::router(opsbot_http::AppState {
        store,
        version: "bench",
        channels: opsbot_channels::ChannelRegistry::default().with(channel.clone()),
        alerts: None,
        api: None,
        cmdb: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/wecom/ops/callback",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        opsbot_http::serve(listener, router, std::future::pending())
            .await
            .unwrap()
    });

    let crypto = WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let mut msg_id = 0u64;
    for (label, event) in [
        ("text 概况 (engine + SQLite, passive reply)", false),
        ("event enter_agent (channel only)", true),
    ] {
        // Paced: 200 connections, one callback each every 200 ms, for 5 s.
        let started = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|i| {
                let (client, url, crypto) = (client.clone(), url.clone(), crypto.clone());
                let base = 10_000_000 * (i as u64 + 1) + if event { 5_000_000 } else { 0 };
                tokio::spawn(async move {
                    // Spread the connections over the period instead of lining them up.
                    tokio::time::sleep(Duration::from_micros(1000 * i as u64)).await;
                    let mut tick = tokio::time::interval(Duration::from_millis(200));
                    let mut out = Vec::new();
                    for n in 0..25u64 {
                        tick.tick().await;
                        let p = post(&crypto, &format!("u{i}"), base + n, event);
                        out.push(send(&client, &url, p).await);
                    }
                    out
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await.unwrap());
        }
        report(&format!("paced {label}"), latencies, started.elapsed());

        // Burst: 200 at once, ten rounds.
        let mut latencies = Vec::with_capacity(CONCURRENCY * ROUNDS);
        let started = Instant::now();
        for _ in 0..ROUNDS {
            let tasks: Vec<_> = (0..CONCURRENCY)
                .map(|i| {
                    msg_id += 1;
                    let p = post(
                        &crypto,
                        &format!("u{i}"),
                        msg_id + if event { 1_000_000 } else { 0 },
                        event,
                    );
                    let (client, url) = (client.clone(), url.clone());
                    tokio::spawn(async move { send(&client, &url, p).await })
                })
                .collect();
            for t in tasks {
                latencies.push(t.await.unwrap());
            }
        }
        report(&format!("burst {label}"), latencies, started.elapsed());
    }
}

async fn send(client: &reqwest::Client, url: &str, p: CallbackPost) -> Duration {
    let t = Instant::now();
    let r = client
        .post(format!("{url}?{}", p.query))
        .body(p.body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await.unwrap();
    t.elapsed()
}

fn report(label: &str, latencies: Vec<Duration>, total: Duration) {
    let n = latencies.len();
    let rate = n as f64 / total.as_secs_f64();
    println!(
        "{label}: {n} callbacks, {CONCURRENCY} connections: {}, {rate:.0} callbacks/s",
        viewer::percentiles(latencies)
    );
}

fn post(crypto: &WecomCrypto, user: &str, msg_id: u64, event: bool) -> CallbackPost {
    let now = chrono::Utc::now().timestamp();
    let inner = if event {
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey>".to_string()
    } else {
        format!("<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[概况]]></Content><MsgId>{msg_id}</MsgId>")
    };
    // Events are de-duplicated by sender and time: give each its own second.
    let created = if event {
        now - msg_id as i64 % 100_000
    } else {
        now
    };
    let xml = format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{created}</CreateTime>{inner}<AgentID>{AGENT}</AgentID></xml>"
    );
    build_callback_post(
        crypto,
        AGENT,
        &xml,
        b"0123456789abcdef",
        &now.to_string(),
        &msg_id.to_string(),
    )
}

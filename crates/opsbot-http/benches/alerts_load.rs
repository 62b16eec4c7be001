//! The alert gateway over loopback HTTP, as Alertmanager and friends reach it:
//! - sustained: 64 connections posting generic alerts (one per request) as fast as
//!   they are answered, each answer only after its alert is committed to SQLite;
//! - burst: 1,000 alerts for one route at once (100 requests × 10), then the time
//!   until the fake WeCom has them all and in how many messages (default
//!   group_wait 10 s).
//!
//! cargo bench -p opsbot-http --bench alerts_load
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_alerts::config::AlertsConfig;
use opsbot_alerts::silence::Silences;
use opsbot_alerts::Gateway;
use opsbot_channels::wecom::{AppConfig, Settings, WecomChannel};
use opsbot_core::Policy;
use opsbot_engine::{Engine, EngineSettings};
use opsbot_fakes::FakeWecom;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CORP: &str = "ww1436e0e65a779aee";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CONNECTIONS: usize = 64;
const REQUESTS: usize = 30_000;

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
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "s", 1000002);
    fake.add_users(&["zhangsan"]);
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/alerts.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let policy = Policy::new(Vec::new(), BTreeMap::new(), BTreeMap::new()).unwrap();
    let engine = Engine::new(
        store.clone(),
        sessions,
        Vec::new(),
        policy,
        EngineSettings::default(),
    )
    .await
    .unwrap();
    let app = AppConfig {
        callback: opsbot_channels::Callback::new("ops", "QDG6eK"),
        corp_id: CORP.into(),
        agent_id: 1000002,
        secret: "s".into(),
        encoding_aes_key: AES_KEY.into(),
        api_base: fake.base_url(),
    };
    let channel =
        WecomChannel::new(&[app], Arc::new(engine), store.clone(), Settings::default()).unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let delivery = channel.delivery("bench", &[]).unwrap();
    let wake = delivery.waker();
    tokio::spawn(delivery.run(stop.clone()));
    let config: AlertsConfig = toml::from_str(
        r#"
[sources.generic]
token = "bench-token-123"
[[routes]]
name = "load"
labels = { load = "yes" }
group_wait = "1h"
app = "ops"
users = ["zhangsan"]
[default]
app = "ops"
users = ["zhangsan"]
"#,
    )
    .unwrap();
    let settings = Arc::new(config.compile(&["ops"]).unwrap());
    let (gateway, _task) = Gateway::start(
        settings,
        Arc::new(Silences::new(store.clone())),
        store.clone(),
        store.clone(),
        Some(wake),
        None,
        stop,
    );
    let router = opsbot_http::router(opsbot_http::AppState {
        store,
        version: "bench",
        channels: opsbot_channels::ChannelRegistry::default().with(Arc::new(channel)),
        alerts: Some(gateway),
        api: None,
        cmdb: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts/generic", listener.local_addr().unwrap());
    tokio::spawn(async move {
        opsbot_http::serve(listener, router, std::future::pending())
            .await
            .unwrap()
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();

    // Sustained, one alert per request (a script) and ten (an Alertmanager group).
    for per_request in [1usize, 10] {
        sustained(&client, &url, per_request).await;
    }

    // Burst: 1,000 alerts for the default route, with its default grouping.
    let started = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|r| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let alerts: Vec<String> = (0..10)
                    .map(|i| format!(r#"{{"name":"Burst{r}-{i}","endpoint":"web-{r}","severity":"critical"}}"#))
                    .collect();
                let resp = client
                    .post(&url)
                    .bearer_auth("bench-token-123")
                    .body(format!(r#"{{"alerts":[{}]}}"#, alerts.join(",")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stored = started.elapsed();
    let announced = |fake: &FakeWecom| -> usize {
        fake.sent_to("message/send")
            .iter()
            .filter_map(|m| {
                let text = m.body["text"]["content"].as_str()?.to_string();
                text.split("【告警】")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while announced(&fake) < 1000 {
        assert!(
            Instant::now() < deadline,
            "only {} announced",
            announced(&fake)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "burst: 1000 alerts for one route stored in {:.0} ms; all in WeCom after {:.1} s in {} message(s)",
        stored.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64(),
        fake.sent_to("message/send").len()
    );
}

async fn sustained(client: &reqwest::Client, url: &str, per_request: usize) {
    let requests = REQUESTS / per_request;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let (client, url) = (client.clone(), url.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut refused = 0usize;
                for r in (c..requests).step_by(CONNECTIONS) {
                    let alerts: Vec<String> = (0..per_request)
                        .map(|i| {
                            let n = r * per_request + i + per_request * 1_000_000;
                            format!(r#"{{"name":"Load{n}","endpoint":"host-{}","labels":{{"load":"yes"}}}}"#, n % 300)
                        })
                        .collect();
                    let body = format!(r#"{{"alerts":[{}]}}"#, alerts.join(","));
                    let t0 = Instant::now();
                    loop {
                        let resp = client
                            .post(&url)
                            .bearer_auth("bench-token-123")
                            .body(body.clone())
                            .send()
                            .await
                            .unwrap();
                        match resp.status().as_u16() {
                            200 => break,
                            503 => refused += 1, // overloaded: retry, as Alertmanager does
                            s => panic!("HTTP {s}"),
                        }
                    }
                    latencies.push(t0.elapsed());
                }
                (latencies, refused)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (l, r) = t.await.unwrap();
        latencies.extend(l);
        refused += r;
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let alerts = requests * per_request;
    println!(
        "sustained, {per_request} per request: {alerts} alerts over {CONNECTIONS} connections in {secs:.2} s = {:.0} alerts/s; request p50 {:.2} ms, p99 {:.2} ms; 503 answers (retried): {refused}",
        alerts as f64 / secs,
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
}

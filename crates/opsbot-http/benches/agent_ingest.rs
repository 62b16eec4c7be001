//! Agent reports over loopback HTTP into SQLite with diffing, the whole server path:
//! bearer agent token checked against the store, body parsed and validated, VM link,
//! batched write with field-by-field diff, JSON answer. 1,000 hosts, each with its own
//! agent token; every round each host reports once with one fact changed.
//! - burst: 64 connections sending as fast as they are answered (throughput);
//! - paced: 1,000 reports/s for 5 s (the latency an agent sees at the target rate).
//!
//! cargo bench -p opsbot-http --bench agent_ingest
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_auth::{TokenKind, TokenRequest, Tokens};
use opsbot_cmdb::collect;
use opsbot_cmdb::ingest::Ingestor;
use opsbot_cmdb::source::FsSource;
use opsbot_core::Policy;
use opsbot_engine::{Engine, EngineSettings};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOSTS: usize = 1000;
const CONNECTIONS: usize = 64;

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

fn body(base: &opsbot_cmdb::Report, host: usize, round: usize) -> Vec<u8> {
    let mut r = base.clone();
    r.identity = format!("host-{host:04}");
    r.hostname = r.identity.clone();
    r.os.as_mut().unwrap().kernel = format!("6.1.0-{round}-amd64");
    serde_json::to_vec(&r).unwrap()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/ingest.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let engine = Engine::new(
        store.clone(),
        sessions,
        vec![],
        Policy::new(vec![], BTreeMap::new(), BTreeMap::new()).unwrap(),
        EngineSettings::default(),
    )
    .await
    .unwrap();
    let tokens = Tokens::new(store.clone(), &opsbot_auth::SecretKey::generate());
    let mut host_tokens = Vec::new();
    for _ in 0..HOSTS {
        let t = tokens
            .issue(&TokenRequest {
                kind: TokenKind::Agent,
                subject: String::new(),
                ttl: Duration::from_secs(3600),
                allow_ips: vec![],
                label: String::new(),
            })
            .await
            .unwrap();
        host_tokens.push(t.token);
    }
    let host_tokens = Arc::new(host_tokens);
    let cmdb = Arc::new(opsbot_http::CmdbApi {
        ingestor: Ingestor::start(store.clone(), store.clone(), 256),
        tokens,
        engine: Arc::new(engine),
        max_report_bytes: 1 << 20,
    });
    let router = opsbot_http::router(opsbot_http::AppState {
        store,
        version: "bench",
        channels: Default::default(),
        cmdb: Some(cmdb),
        alerts: None,
        api: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/api/v1/agent/report",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        opsbot_http::serve(listener, router, std::future::pending())
            .await
            .unwrap()
    });
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../opsbot-cmdb/tests/fixtures/server");
    let base = Arc::new(collect::collect(&FsSource::at(root), &[], None));
    println!(
        "report: {} facts, {} bytes",
        base.facts().len(),
        body(&base, 0, 0).len()
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();

    for round in 0..4 {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..CONNECTIONS {
            let (http, url, base, toks) =
                (http.clone(), url.clone(), base.clone(), host_tokens.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                for h in (c..HOSTS).step_by(CONNECTIONS) {
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .bearer_auth(&toks[h])
                        .body(body(&base, h, round))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut lat: Vec<Duration> = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        lat.sort();
        println!(
            "burst round {round} ({}): {HOSTS} reports in {:.0} ms = {:.0} reports/s; p50 {:.1} ms, p99 {:.1} ms",
            if round == 0 { "creates 1,000 assets" } else { "1 change each" },
            secs * 1000.0,
            HOSTS as f64 / secs,
            pct(&lat, 0.5).as_secs_f64() * 1000.0,
            pct(&lat, 0.99).as_secs_f64() * 1000.0
        );
    }

    // Paced: 1,000 reports/s for 5 s, spread over the connections.
    let per_conn = Duration::from_secs_f64(CONNECTIONS as f64 / 1000.0);
    let total = 5000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (http, url, base, toks) =
            (http.clone(), url.clone(), base.clone(), host_tokens.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(per_conn);
            let mut lat = Vec::new();
            for (i, n) in (c..total).step_by(CONNECTIONS).enumerate() {
                tick.tick().await;
                let h = n % HOSTS;
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .bearer_auth(&toks[h])
                    .body(body(&base, h, 10 + i))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "paced 1,000/s: {} reports in {:.2} s = {:.0} reports/s; p50 {:.1} ms, p99 {:.1} ms",
        lat.len(),
        secs,
        lat.len() as f64 / secs,
        pct(&lat, 0.5).as_secs_f64() * 1000.0,
        pct(&lat, 0.99).as_secs_f64() * 1000.0
    );
}

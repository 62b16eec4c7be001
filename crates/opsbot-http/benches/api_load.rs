//! The REST API and web UI under load, with 10,000 VMs in the pool (the synthetic
//! estate), over loopback HTTP, everything real (SQLite store, token checks, rate
//! limiter, policy):
//! - a filtered, paginated VM list from 100 concurrent clients, each with its own
//!   token: closed loop (each client sends its next request when the last returns:
//!   saturation) and paced (each client every 100 ms: 1,000 requests/s, the latency a
//!   user sees); for a user with every scope and for one scoped to a datacenter;
//! - the overview page (纵览): time to the full answer, sequential;
//! - the overview's page weight (HTML + CSS + script).
//!
//! The lists' load generator is lean (keep-alive HTTP/1.1 straight to TCP, one
//! connection per client): it shares the two cores with the server. Each shape also
//! reports the CPU time per request of this process (server and generator together).
//!
//! cargo bench -p opsbot-http --bench api_load
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_auth::{TokenKind, TokenRequest};
use opsbot_core::{Policy, Role};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_http::{ApiContext, AppState, WebConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

// The allocator the opsbot binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/http1.rs"]
mod http1;
use http1::{cpu_time, Conn};

const VMS: usize = 10_000;
const CLIENTS: usize = 100;
const ROUNDS: usize = 30;
const PASSWORD: &str = "bench-password";

/// Filtered, paginated lists a phone or a script would ask for.
const QUERIES: &[&str] = &[
    "/api/v1/vms?power=on&cluster=C1-2&per_page=50&page=2",
    "/api/v1/vms?q=vm-01&per_page=50",
    "/api/v1/vms?ip=10.3.&sort=-memory&per_page=20",
    "/api/v1/vms?datacenter=DC2&power=off&per_page=50",
];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bearer(token: &str) -> String {
    format!("authorization: Bearer {token}\r\n")
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/bench.db", dir.path().display()))
        .await
        .unwrap();
    let started = Instant::now();
    store
        .apply_inventory(
            "big",
            &opsbot_sim::synthetic::inventory("big", VMS),
            "bench",
        )
        .await
        .unwrap();
    eprintln!("pool of {VMS} VMs written in {:?}", started.elapsed());
    let commands: Vec<String> = ["概况", "查", "虚拟机", "主机", "存储", "网络", "任务"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut users: BTreeMap<String, Vec<String>> = (0..CLIENTS)
        .map(|i| (format!("u{i}"), vec!["viewer".to_string()]))
        .collect();
    users.extend((0..CLIENTS).map(|i| (format!("s{i}"), vec!["scoped".to_string()])));
    users.insert("admin".into(), vec!["viewer".into()]);
    let policy = Policy::new(
        vec![
            Role {
                name: "viewer".into(),
                commands: commands.clone(),
                scopes: vec!["*".into()],
            },
            Role {
                name: "scoped".into(),
                commands,
                scopes: vec!["big/DC1/**".into(), "big/DC2/**".into()],
            },
        ],
        users,
        BTreeMap::new(),
    )
    .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let engine = Arc::new(
        Engine::new(
            store.clone(),
            sessions.clone(),
            vec![],
            policy,
            EngineSettings::default(),
        )
        .await
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let web = WebConfig {
        admin_user: Some("admin".into()),
        admin_password_hash: Some(opsbot_http::config::hash_password(PASSWORD).unwrap()),
        rate_limit_per_minute: 1_000_000,
        rate_limit_burst: 100_000,
        ..WebConfig::default()
    };
    let ctx = Arc::new(
        ApiContext::new(
            engine.clone(),
            store.clone(),
            sessions,
            web,
            Some(base.clone()),
            None,
            &opsbot_auth::SecretKey::generate(),
        )
        .await
        .unwrap(),
    );
    let router = opsbot_http::router(AppState {
        store: store.clone(),
        version: "bench",
        channels: Default::default(),
        api: Some(ctx.clone()),
        alerts: None,
        cmdb: None,
    });
    tokio::spawn(async move {
        opsbot_http::serve(listener, router, std::future::pending())
            .await
            .unwrap()
    });
    let started = Instant::now();
    engine.pool().await.unwrap();
    eprintln!("pool view loaded in {:?}", started.elapsed());

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // One client, one request at a time: the server's own time per list (plus loopback).
    let one = ctx
        .tokens
        .issue(&TokenRequest {
            kind: TokenKind::Api,
            subject: "u0".into(),
            ttl: Duration::from_secs(3600),
            allow_ips: vec![],
            label: "bench".into(),
        })
        .await
        .unwrap()
        .token;
    let mut conn = Conn::open(addr).await;
    for q in QUERIES {
        let mut lat = Vec::new();
        let mut bytes = 0;
        for _ in 0..200 {
            let (took, answer) = conn.send("GET", q, &bearer(&one), b"").await;
            assert_eq!(answer.status, 200);
            bytes = answer.body.len();
            lat.push(took);
        }
        lat.sort();
        println!(
            "one client, sequential, {q}: p50 {}, p99 {} ({:.1} KB)",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            bytes as f64 / 1024.0
        );
    }

    for prefix in ["u", "s"] {
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let t = ctx
                .tokens
                .issue(&TokenRequest {
                    kind: TokenKind::Api,
                    subject: format!("{prefix}{i}"),
                    ttl: Duration::from_secs(3600),
                    allow_ips: vec![],
                    label: "bench".into(),
                })
                .await
                .unwrap();
            // Connected and used once before measuring, as a client that keeps its
            // connection is.
            let mut conn = Conn::open(addr).await;
            let (_, answer) = conn.send("GET", QUERIES[0], &bearer(&t.token), b"").await;
            assert_eq!(answer.status, 200);
            clients.push((conn, bearer(&t.token)));
        }
        let who = if prefix == "u" {
            "all scopes"
        } else {
            "scoped to 2 of 4 datacenters"
        };
        for paced in [false, true] {
            let started = Instant::now();
            let cpu = cpu_time();
            let tasks: Vec<_> = clients
                .drain(..)
                .enumerate()
                .map(|(i, (mut conn, auth))| {
                    tokio::spawn(async move {
                        let mut lat = Vec::with_capacity(ROUNDS);
                        // Spread over the 100 ms, each client on its own beat.
                        let mut tick = paced.then(|| {
                            tokio::time::interval_at(
                                tokio::time::Instant::now() + Duration::from_millis(i as u64),
                                Duration::from_millis(100),
                            )
                        });
                        for r in 0..ROUNDS {
                            if let Some(tick) = tick.as_mut() {
                                tick.tick().await;
                            }
                            let q = QUERIES[(i + r) % QUERIES.len()];
                            let (took, answer) = conn.send("GET", q, &auth, b"").await;
                            assert_eq!(answer.status, 200);
                            lat.push(took);
                        }
                        (conn, auth, lat)
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                let (conn, auth, lat) = t.await.unwrap();
                clients.push((conn, auth));
                all.extend(lat);
            }
            let wall = started.elapsed();
            let cpu = cpu_time() - cpu;
            all.sort();
            println!(
                "VM list, {VMS} VMs, {CLIENTS} clients {} ({who}): {} requests, p50 {}, p99 {}, max {}, {:.0} req/s, {:.0} µs CPU per request",
                if paced { "each every 100 ms" } else { "closed loop" },
                all.len(),
                ms(percentile(&all, 0.5)),
                ms(percentile(&all, 0.99)),
                ms(*all.last().unwrap()),
                all.len() as f64 / wall.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / all.len() as f64
            );
        }
    }

    // The overview page as the admin sees it (all 10,000 VMs in scope).
    let login = client.get(format!("{base}/ui/login")).send().await.unwrap();
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ob_login="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = login.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = client
        .post(format!("{base}/ui/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("user", "admin"),
            ("password", PASSWORD),
            ("next", "/ui/"),
        ])
        .send()
        .await
        .unwrap();
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ob_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut lat = Vec::new();
    let mut size = 0;
    for _ in 0..200 {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/ui/"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        size = r.bytes().await.unwrap().len();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "overview page (纵览), {VMS} VMs, sequential: p50 {}, p99 {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    let css = client
        .get(format!("{base}/ui/static/app.css"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let js = client
        .get(format!("{base}/ui/static/app.js"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    println!(
        "overview page weight: HTML {:.1} KB + CSS {:.1} KB + script {:.1} KB = {:.1} KB (uncompressed, nothing else is loaded)",
        size as f64 / 1024.0,
        css as f64 / 1024.0,
        js as f64 / 1024.0,
        (size + css + js) as f64 / 1024.0
    );
}

//! Sustained ingest into SQLite with the gateway's durability (each request answered
//! only after its transaction committed: group commit), without HTTP: many tasks call
//! `Gateway::ingest` at once, as the HTTP handlers do. Three shapes: new alerts one
//! per request, new alerts ten per request, and repeats of known alerts (the
//! de-duplication path, one row update each).
//!
//! cargo bench -p opsbot-alerts --bench ingest
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_alerts::config::AlertsConfig;
use opsbot_alerts::silence::Silences;
use opsbot_alerts::{Gateway, Source};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
group_wait = "1h"
[sources.generic]
token = "bench-token-123"
[[routes]]
name = "db"
labels = { team = "db*" }
robots = ["r"]
[[robots]]
name = "r"
key = "k"
[default]
robots = ["r"]
"#;

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
    let store = opsbot_store::connect(&format!("sqlite://{}/ingest.db", dir.path().display()))
        .await
        .unwrap();
    let config: AlertsConfig = toml::from_str(CONFIG).unwrap();
    let settings = Arc::new(config.compile(&[]).unwrap());
    let silences = Arc::new(Silences::new(store.clone()));
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let (gateway, _task) =
        Gateway::start(settings, silences, store.clone(), store, None, None, stop);
    println!(
        "shape                                   alerts    seconds   alerts/s   p50 ms   p99 ms"
    );
    for (label, per_request, requests, offset) in [
        ("new alerts, 1 per request, 64 tasks", 1, 40_000, 0),
        ("new alerts, 10 per request, 64 tasks", 10, 6_000, 1_000_000),
        ("repeats (dedup), 1 per request, 64 tasks", 1, 40_000, 0),
    ] {
        shape(&gateway, label, per_request, requests, offset).await;
    }
}

async fn shape(
    gateway: &Arc<Gateway>,
    label: &str,
    per_request: usize,
    requests: usize,
    offset: usize,
) {
    const TASKS: usize = 64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for r in (t..requests).step_by(TASKS) {
                    let alerts: Vec<String> = (0..per_request)
                        .map(|i| {
                            let n = offset + r * per_request + i;
                            format!(r#"{{"name":"Alert{n}","endpoint":"host-{}","severity":"warning","labels":{{"team":"{}"}},"summary":"disk {n}% full"}}"#, n % 500, if n.is_multiple_of(2) { "dba" } else { "web" })
                        })
                        .collect();
                    let body = format!(r#"{{"alerts":[{}]}}"#, alerts.join(","));
                    let t0 = Instant::now();
                    loop {
                        match gateway
                            .ingest(Source::Generic, "127.0.0.1", "application/json", "", body.as_bytes())
                            .await
                        {
                            Ok(_) => break,
                            // A full queue is what HTTP answers 503 to; a sender retries.
                            Err(opsbot_alerts::Error::Overloaded(_)) => {
                                tokio::time::sleep(Duration::from_millis(1)).await
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    latencies.push(t0.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let alerts = requests * per_request;
    println!(
        "{label:<40}{alerts:>7}{secs:>10.2}{:>11.0}{:>9.2}{:>9.2}",
        alerts as f64 / secs,
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
}

//! What the channel benchmarks answer with: a SQLite store in a temporary folder and an
//! engine over the synced sim, where users `u0`, `u1`, … may run `概况` everywhere; and
//! how they print latencies.

use opsbot_core::{Policy, Role};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub async fn viewer_engine(dir: &Path, users: usize) -> (Arc<dyn Store>, Engine) {
    let store = opsbot_store::connect(&format!("sqlite://{}/bench.db", dir.display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let users: BTreeMap<String, Vec<String>> = (0..users)
        .map(|i| (format!("u{i}"), vec!["viewer".to_string()]))
        .collect();
    let policy = Policy::new(
        vec![Role {
            name: "viewer".into(),
            commands: vec!["概况".into()],
            scopes: vec!["*".into()],
        }],
        users,
        BTreeMap::new(),
    )
    .unwrap();
    let sim = Arc::new(opsbot_sim::SimProvider::new("sim", store.clone(), 0.0));
    let engine = Engine::new(
        store.clone(),
        sessions,
        vec![sim],
        policy,
        EngineSettings::default(),
    )
    .await
    .unwrap();
    engine.ensure_synced().await.unwrap();
    (store, engine)
}

/// `p50 … ms, p95 … ms, p99 … ms, max … ms` of `latencies`.
pub fn percentiles(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pct(0.50)),
        ms(pct(0.95)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap())
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

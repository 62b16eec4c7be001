//! Server ingest with diffing into SQLite: 1,000 hosts report at once (64 concurrent
//! submitters, as HTTP handlers would), each report changing one fact, through the
//! batching writer. Prints reports/s per round. `cargo bench -p opsbot-cmdb --bench ingest`
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_cmdb::collect;
use opsbot_cmdb::ingest::{Ingestor, Origin};
use opsbot_cmdb::source::FsSource;
use std::sync::Arc;
use std::time::Instant;

const HOSTS: usize = 1000;
const SUBMITTERS: usize = 64;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = opsbot_store::connect(&format!("sqlite://{}", dir.path().join("bench.db").display()))
            .await
            .unwrap();
        let ingestor = Ingestor::start(store.clone(), store.clone(), 256);
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server");
        let base = collect::collect(&FsSource::at(root), &[], None);
        println!("report: {} facts, {} bytes of JSON", base.facts().len(), serde_json::to_vec(&base).unwrap().len());
        for round in 0..6 {
            let base = Arc::new(base.clone());
            let started = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..SUBMITTERS {
                let ingestor = ingestor.clone();
                let base = base.clone();
                tasks.push(tokio::spawn(async move {
                    let mut changes = 0;
                    for h in (w..HOSTS).step_by(SUBMITTERS) {
                        let mut r = (*base).clone();
                        r.identity = format!("host-{h:04}");
                        r.hostname = r.identity.clone();
                        r.os.as_mut().unwrap().kernel = format!("6.1.0-{round}-amd64");
                        let receipt = ingestor
                            .submit(r, Origin::Agent { token_id: format!("t{h}"), subject: String::new() })
                            .await
                            .unwrap();
                        changes += receipt.changes.len();
                    }
                    changes
                }));
            }
            let mut changes = 0;
            for t in tasks {
                changes += t.await.unwrap();
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "round {round} ({}): {HOSTS} reports, {changes} changes recorded, {:.0} ms = {:.0} reports/s",
                if round == 0 { "first reports: create" } else { "one fact changed each" },
                secs * 1000.0,
                HOSTS as f64 / secs
            );
        }
    });
}

//! Read commands answered from a 10,000-VM pool on SQLite: the whole engine path
//! (session, parse, permission, pool version check, reply, audit insert).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use criterion::{criterion_group, criterion_main, Criterion};
use opsbot_core::{Policy, Role};
use opsbot_engine::{Discard, Engine, EngineSettings, Incoming};
use std::collections::BTreeMap;
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = rt.block_on(async {
        let store = opsbot_store::connect(&format!("sqlite://{}/bench.db", dir.path().display()))
            .await
            .unwrap();
        let inv = opsbot_sim::synthetic::inventory("vc1", 10_000);
        store.apply_inventory("vc1", &inv, "bench").await.unwrap();
        let sessions = opsbot_store::connect_sessions("memory", None)
            .await
            .unwrap();
        let policy = Policy::new(
            vec![Role {
                name: "admin".into(),
                commands: vec!["*".into()],
                scopes: vec!["*".into()],
            }],
            BTreeMap::from([("bench".to_string(), vec!["admin".to_string()])]),
            BTreeMap::new(),
        )
        .unwrap();
        Engine::new(store, sessions, vec![], policy, EngineSettings::default())
            .await
            .unwrap()
    });
    let ask = |text: &str| {
        let msg = Incoming {
            channel: "bench".into(),
            user: "bench".into(),
            chat: None,
            text: text.into(),
            assume_yes: false,
        };
        rt.block_on(engine.handle(msg, Arc::new(Discard)))
    };
    // Warm the pool cache once, as a running server would have it.
    assert!(ask("概况").text.contains("虚拟机 10000"));
    assert!(ask("查:vm-05123").text.contains("【vm-05123】"));
    let mut g = c.benchmark_group("engine_10k_vms");
    g.bench_function("概况", |b| b.iter(|| ask("概况")));
    g.bench_function("查:name", |b| b.iter(|| ask("查:vm-05123")));
    g.bench_function("查:ip", |b| b.iter(|| ask("查:10.3.20.5")));
    g.bench_function("查:fuzzy", |b| b.iter(|| ask("查:vm-0512")));
    g.bench_function("虚拟机:page", |b| b.iter(|| ask("虚拟机:37")));
    g.finish();
    let mut g = c.benchmark_group("parser");
    g.bench_function("克隆", |b| {
        b.iter(|| opsbot_engine::parse("克隆：2，工具柜管理系统，192.168.2.182"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

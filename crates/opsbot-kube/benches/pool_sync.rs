//! The Kubernetes pool against the stand-in API server with 5,000 pods in 500
//! Deployments (10 namespaces × 50 Deployments × 10 pods, the fake's `bulk`):
//!
//! - `first_sync`: a new `Kube` connects, starts its watches, and the pool holds all of
//!   it (every namespace, Deployment, pod and node listed, the cluster live);
//! - `watch_update`: an image changed on the server is in the pool (over the watch);
//! - `workloads_render`: 工作负载 answered from that pool (all 500, visible to an
//!   administrator; the reply lists the first 60), through the chat command;
//! - `workloads_render_ns`: 工作负载:bulk-3 (50 Deployments);
//! - `workloads_engine` / `workloads_engine_ns`: the same typed into the engine (session,
//!   parse, permission, the subsystem's answer, audit insert into SQLite), as every chat
//!   surface runs it.
//!
//! `cargo bench -p opsbot-kube --bench pool_sync`. On the 2-core CI machine (release
//! build, other builds running), criterion's estimate:
//!
//! | bench                 | time (low · estimate · high)   |
//! |-----------------------|--------------------------------|
//! | first_sync            | 299 · 304 · 309 ms             |
//! | watch_update          | 5.0 · 6.8 · 7.7 ms             |
//! | workloads_render      | 69.1 · 69.8 · 70.5 µs          |
//! | workloads_render_ns   | 15.0 · 15.1 · 15.2 µs          |
//! | workloads_engine      | 322 · 403 · 476 µs             |
//! | workloads_engine_ns   | 251 · 315 · 392 µs             |
//!
//! (The engine rows on a loaded machine, 2026-12-07, where first_sync read 418 ms and
//! watch_update 8.9 ms.)
//!
//! watch_update counts from the moment the server holds the change; the fake's own
//! `set_image` (its controllers over 5,000 pods) took another 83 ms per call.
#![allow(clippy::unwrap_used)] // bench code: a failed unwrap is a failed run, with its line

use criterion::{criterion_group, criterion_main, Criterion};
use opsbot_core::chat::{Answer, Call, ChatCommands, Requester};
use opsbot_core::Zone;
use opsbot_fakes::kube::FakeKube;
use opsbot_kube::{Config, Kube, KubeCommands, COMMANDS};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAMESPACES: usize = 10;
const DEPLOYMENTS: usize = 50;
const PODS: usize = 10;

struct Admin;

impl Requester for Admin {
    fn user(&self) -> &str {
        "bench"
    }
    fn may_at(&self, _: &str, _: &str) -> bool {
        true
    }
}

fn complete(k: &Kube) -> bool {
    let c = &k.clusters()[0];
    matches!(c.health, opsbot_kube::pool::Health::Live { .. })
        && c.workloads == NAMESPACES * DEPLOYMENTS
        && c.pods == NAMESPACES * DEPLOYMENTS * PODS
}

async fn wait(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

struct Setup {
    fake: FakeKube,
    config: Config,
    store: Arc<dyn opsbot_store::Store>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fake = FakeKube::start().await;
    fake.add_node("node-1", true, "64", "256Gi");
    fake.add_node("node-2", true, "64", "256Gi");
    fake.bulk(NAMESPACES, DEPLOYMENTS, PODS);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&path, "bench", &fake.admin_token());
    let config: Config = toml::from_str(&format!(
        "cluster = \"bench\"\nkubeconfig = \"{}\"\ncontext = \"bench\"",
        path.display()
    ))
    .unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}", dir.path().join("b.db").display()))
        .await
        .unwrap();
    Setup {
        fake,
        config,
        store,
        _dir: dir,
    }
}

async fn connect(s: &Setup) -> Arc<Kube> {
    let kube = Kube::connect(
        &[("k8s".to_string(), s.config.clone())],
        s.store.clone(),
        s.store.clone(),
    )
    .await
    .unwrap();
    Arc::new(kube)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(setup());
    let mut group = c.benchmark_group("pool_sync");
    group.sample_size(10);
    group.bench_function("first_sync", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let kube = connect(&s).await;
                    let started = Instant::now();
                    let watches = kube.start();
                    wait("the first sync", || complete(&kube)).await;
                    total += started.elapsed();
                    drop(watches);
                }
                total
            })
        })
    });

    let kube = rt.block_on(connect(&s));
    let watches = rt.block_on(async {
        let w = kube.start();
        wait("the first sync", || complete(&kube)).await;
        w
    });
    let mut n = 0u64;
    let mut server = Duration::ZERO;
    group.bench_function("watch_update", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let image = format!("registry.local/app-7:{n}");
                    // From the moment the server holds the change (set_image returned:
                    // the fake's own controller work is not opsbot's).
                    let called = Instant::now();
                    s.fake.set_image("bulk-3", "app-7", &image);
                    server += called.elapsed();
                    let started = Instant::now();
                    wait("the update", || {
                        kube.workloads(Some("bulk-3"), &|_| true)
                            .iter()
                            .any(|r| r.workload.name == "app-7" && r.workload.images[0] == image)
                    })
                    .await;
                    total += started.elapsed();
                }
                total
            })
        })
    });
    eprintln!(
        "set_image on the fake took {:?} per call",
        server / n.max(1) as u32
    );
    group.sample_size(50);
    let commands = KubeCommands::new(kube.clone());
    let zone = Zone::parse("UTC").unwrap();
    for (name, args) in [
        ("workloads_render", vec![]),
        ("workloads_render_ns", vec!["bulk-3".to_string()]),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let call = Call {
                        command: &COMMANDS[0],
                        args: &args,
                        caller: &Admin,
                        zone: &zone,
                    };
                    match commands.run(call).await {
                        Answer::Done(text) => text.len(),
                        other => panic!("{other:?}"),
                    }
                })
            })
        });
    }
    let engine = rt.block_on(async {
        let sessions = opsbot_store::connect_sessions("memory", None)
            .await
            .unwrap();
        let admin = opsbot_core::Policy::new(
            vec![opsbot_core::Role {
                name: "admin".into(),
                commands: vec!["*".into()],
                scopes: vec!["*".into()],
            }],
            [("bench".to_string(), vec!["admin".to_string()])].into(),
            Default::default(),
        )
        .unwrap();
        opsbot_engine::Engine::new(
            s.store.clone(),
            sessions,
            vec![],
            admin,
            opsbot_engine::EngineSettings::default(),
        )
        .await
        .unwrap()
        .register(Arc::new(opsbot_kube::KubeSubsystem(kube.clone())))
    });
    for (name, text) in [
        ("workloads_engine", "工作负载"),
        ("workloads_engine_ns", "工作负载:bulk-3"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let msg = opsbot_engine::Incoming {
                        channel: "console".into(),
                        user: "bench".into(),
                        chat: None,
                        text: text.into(),
                        assume_yes: false,
                    };
                    let r = engine.handle(msg, Arc::new(opsbot_engine::Discard)).await;
                    assert_eq!(r.status, opsbot_engine::Status::Ok, "{}", r.text);
                    r.text.len()
                })
            })
        });
    }
    group.finish();
    drop(watches);
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The pool: first sync, watch-driven updates, 410 re-lists, dropped watches,
//! bookmarks, and an unreachable or refusing API server (stale, then recovered).

use crate::harness::{seed, until, Fixture, Who};
use opsbot_kube::pool::{Health, Rollout, WorkloadKind};
use opsbot_kube::Error;

fn health(f: &Fixture) -> Health {
    f.kube.clusters()[0].health.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_fills_the_pool() {
    let f = Fixture::start().await;
    f.live().await;
    f.until("pods are ready", |k| {
        k.workloads(None, &|_| true)
            .iter()
            .all(|r| r.rollout == Rollout::Complete)
    })
    .await;
    let api = f.workload("payments", "api").unwrap();
    assert_eq!(
        (api.desired, api.ready, api.kind),
        (2, 2, WorkloadKind::Deployment)
    );
    assert_eq!(api.images, ["registry.local/api:1.0"]);
    assert_eq!(api.revision.as_deref(), Some("1"));
    let db = f.workload("payments", "db").unwrap();
    assert_eq!((db.kind, db.desired), (WorkloadKind::StatefulSet, 1));
    let pods = f.kube.pods(Some("web"), &|_| true);
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(|p| p.pod.owner == Some((WorkloadKind::Deployment, "web".into()))));
    assert!(pods
        .iter()
        .all(|p| p.pod.node.is_some() && p.pod.phase == "Running"));
    let nodes = f.kube.nodes(&|_| true);
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        (nodes[0].node.cpu.as_str(), nodes[0].node.memory.as_str()),
        ("8", "32Gi")
    );
    let state = &f.kube.clusters()[0];
    assert_eq!(
        (state.provider.as_str(), state.cluster.as_str()),
        ("k8s", "prod")
    );
    assert!(state.namespaces >= 2 && state.workloads == 3 && state.pods == 6 && state.nodes == 2);
    // The REST API's rows serialise with the workload flattened in.
    let json = serde_json::to_value(f.kube.workloads(Some("payments"), &|_| true)).unwrap();
    assert!(json
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "api" && r["cluster"] == "prod"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_keep_the_pool_current_and_ask_for_bookmarks() {
    let f = Fixture::start().await;
    f.live().await;
    f.fake.set_image("web", "web", "registry.local/web:2.0");
    f.until("the new image is in the pool", |_| {
        f.workload("web", "web").is_some_and(|w| {
            w.images == ["registry.local/web:2.0"] && w.revision.as_deref() == Some("2")
        })
    })
    .await;
    f.fake.add_deployment("web", "cache", 1, "redis:7");
    f.until("a new deployment appears", |_| {
        f.workload("web", "cache").is_some()
    })
    .await;
    f.fake.delete_deployment("web", "cache");
    f.until("a deleted one goes", |_| {
        f.workload("web", "cache").is_none()
    })
    .await;
    f.fake.set_node_ready("node-2", false);
    f.until("node-2 is not ready", |k| {
        k.nodes(&|_| true)
            .iter()
            .any(|n| n.node.name == "node-2" && !n.node.ready)
    })
    .await;
    let watches: Vec<_> = f
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.query.contains("watch="))
        .collect();
    assert!(!watches.is_empty());
    assert!(
        watches
            .iter()
            .all(|r| r.query.contains("allowWatchBookmarks=true")
                && r.query.contains("resourceVersion=")),
        "{:?}",
        watches
            .iter()
            .map(|r| format!("{} {}", r.path, r.query))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_watch_resumes_and_410_lists_again() {
    let f = Fixture::start().await;
    // Bookmarks would move the watches' resourceVersion past the compaction below.
    f.fake
        .set_bookmark_interval(std::time::Duration::from_secs(3600));
    f.live().await;
    let lists = |f: &Fixture| {
        f.fake
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/deployments") && !r.query.contains("watch="))
            .count()
    };
    let before = lists(&f);
    // Dropped mid-way: resumed from its resourceVersion, nothing missed, no new list.
    f.fake.drop_watches();
    f.fake.add_deployment("web", "after-drop", 1, "busybox");
    f.until("the change after the drop is seen", |_| {
        f.workload("web", "after-drop").is_some()
    })
    .await;
    assert!(matches!(health(&f), Health::Live { .. }));
    // History compacted past the deployments watch's resourceVersion (a namespace it
    // does not see moves the counter), then dropped: the resumed watch gets 410 and
    // lists again.
    f.fake.add_namespace("moves-the-counter");
    f.fake.compact();
    f.fake.drop_watches();
    f.fake.add_deployment("web", "after-410", 1, "busybox");
    f.until("the change after the 410 is seen", |_| {
        f.workload("web", "after-410").is_some()
    })
    .await;
    until("the deployments were listed again", || lists(&f) > before).await;
    assert!(matches!(health(&f), Health::Live { .. }));
    assert!(f.workload("web", "after-drop").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_marks_stale_keeps_data_and_recovers() {
    let f = Fixture::start().await;
    f.live().await;
    f.fake.set_unreachable(true).await;
    f.until("the cluster is stale", |_| {
        matches!(
            health(&f),
            Health::Stale {
                error: Error::Unreachable(_),
                ..
            }
        )
    })
    .await;
    // The last data is still answered, marked stale.
    let rows = f.kube.workloads(Some("payments"), &|_| true);
    assert!(rows.iter().any(|r| r.workload.name == "api" && r.stale));
    let text = f.run(&Who::admin(), "工作负载").await;
    assert!(
        text.text().contains("数据可能已过时") && text.text().contains("API 不可达"),
        "{text:?}"
    );
    assert!(text.text().contains("api 2/2 就绪"), "{text:?}");
    // An operation while it is down says so.
    let out = f.run(&Who::admin(), "扩容:payments/api,3").await;
    assert!(out.text().contains("无法连接"), "{out:?}");
    // Back: live again by itself, with what changed meanwhile.
    f.fake.add_deployment("web", "while-down", 1, "busybox");
    f.fake.set_unreachable(false).await;
    f.until("the cluster is live again", |_| {
        matches!(health(&f), Health::Live { .. })
    })
    .await;
    f.until("the change made while down is seen", |_| {
        f.workload("web", "while-down").is_some()
    })
    .await;
    assert!(f.kube.workloads(None, &|_| true).iter().all(|r| !r.stale));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_reported_as_such() {
    let f = Fixture::with(
        |fake| {
            seed(fake);
            fake.add_token("ops-token-1", &["payments", "web"], true);
        },
        "namespaces = [\"payments\", \"web\"]",
        Some("ops-token-1"),
    )
    .await;
    f.live().await;
    f.fake.revoke_token("ops-token-1");
    f.fake.drop_watches();
    f.until("the cluster is stale for the token", |_| {
        matches!(
            health(&f),
            Health::Stale {
                error: Error::Unauthorized(_),
                ..
            }
        )
    })
    .await;
    let out = f.run(&Who::admin(), "事件:web").await;
    assert!(
        out.text().contains("401") && out.text().contains("令牌"),
        "{out:?}"
    );
    let out = f.run(&Who::admin(), "工作负载").await;
    assert!(out.text().contains("令牌被拒绝 (401)"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_limited_token_gets_403_where_it_may_not_go() {
    let f = Fixture::with(
        |fake| {
            seed(fake);
            fake.add_token("pay-token-1", &["payments"], false);
        },
        "namespaces = [\"payments\", \"web\"]",
        Some("pay-token-1"),
    )
    .await;
    f.until("payments is synced", |_| {
        f.workload("payments", "api").is_some()
    })
    .await;
    f.until("the cluster is stale for web", |_| {
        matches!(
            health(&f),
            Health::Stale {
                error: Error::Forbidden(_),
                ..
            }
        )
    })
    .await;
    assert!(f.workload("web", "web").is_none());
    let out = f.run(&Who::admin(), "事件:web").await;
    assert!(
        out.text().contains("集群拒绝: 没有权限") && out.text().contains("请检查 Role"),
        "{out:?}"
    );
    let out = f.run(&Who::admin(), "工作负载").await;
    assert!(out.text().contains("没有权限 (403)"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_role_without_nodes_stays_live_and_nodes_say_why() {
    let f = Fixture::with(
        |fake| {
            seed(fake);
            fake.add_token("pay-token-2", &["payments"], false);
        },
        "namespaces = [\"payments\"]",
        Some("pay-token-2"),
    )
    .await;
    f.live().await;
    f.until("payments is synced", |_| {
        f.workload("payments", "api").is_some()
    })
    .await;
    let out = f.run(&Who::admin(), "节点").await;
    assert!(
        out.text().contains("不允许 opsbot 读取节点 (403)"),
        "{out:?}"
    );
    assert!(matches!(health(&f), Health::Live { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_url_token_file_and_ca_file() {
    let fake = opsbot_fakes::kube::FakeKube::start_tls().await;
    seed(&fake);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, fake.ca_pem().unwrap()).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{}\n", fake.admin_token())).unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let section = |ca_line: &str| -> opsbot_kube::Config {
        toml::from_str(&format!(
            "url = \"{}\"\ntoken_file = \"{}\"\n{ca_line}",
            fake.url(),
            token.display()
        ))
        .unwrap()
    };
    use opsbot_core::ProviderSection;
    let config = section(&format!("ca_file = \"{}\"", ca.display()));
    assert_eq!(config.validate(), Ok(()));
    let kube = opsbot_kube::Kube::connect(&[("k8s".into(), config)], store.clone(), store.clone())
        .await
        .unwrap();
    let _watches = kube.start();
    until("the TLS cluster is live", || {
        matches!(kube.clusters()[0].health, Health::Live { .. })
            && kube.workloads(None, &|_| true).len() == 3
    })
    .await;
    let config = section("insecure = false");
    assert_eq!(config.validate().unwrap_err().key, "ca_file");
}

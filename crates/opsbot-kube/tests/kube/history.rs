//! The change history: workload and node changes land in the store's change log, with
//! who made them; a first start records nothing; what changed while opsbot was down
//! is recorded on the next start's first list; pods are not recorded.

use crate::harness::{Fixture, Who};
use opsbot_core::Change;
use opsbot_store::ChangeQuery;
use std::time::Duration;

async fn changes(f: &Fixture) -> Vec<Change> {
    f.store.changes(&ChangeQuery::default()).await.unwrap()
}

/// Waits until a change matching `want` is in the store.
async fn recorded(f: &Fixture, what: &str, want: impl Fn(&Change) -> bool) -> Change {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(c) = changes(f).await.into_iter().find(|c| want(c)) {
            return c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recorded: {what}: {:#?}",
            changes(f).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the recorder stored its baseline of the cluster.
async fn baseline_saved(f: &Fixture) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while f.store.get_state("kube/k8s/prod").await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "no baseline saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_recorded_with_who_made_them() {
    let f = Fixture::start().await;
    f.live().await;
    // The first start records no "created" for what was already there.
    baseline_saved(&f).await;
    assert!(changes(&f).await.is_empty(), "{:#?}", changes(&f).await);

    let out = f.run(&Who::admin(), "扩容:payments/api,3").await;
    assert!(out.text().starts_with("✅"), "{out:?}");
    let c = recorded(&f, "the scale", |c| c.field == "replicas").await;
    assert_eq!(
        (
            c.provider.as_str(),
            c.object_kind.as_str(),
            c.object_id.as_str(),
            c.object_name.as_str()
        ),
        ("k8s", "k8s-deployment", "prod/payments/api", "api")
    );
    assert_eq!(
        (c.old_value.as_deref(), c.new_value.as_deref()),
        (Some("2"), Some("3"))
    );
    assert_eq!(c.source, "chat:alice");

    f.fake.set_image("web", "web", "registry.local/web:2.0");
    let c = recorded(&f, "the image", |c| c.field == "image").await;
    assert_eq!(c.new_value.as_deref(), Some("registry.local/web:2.0"));
    assert_eq!(c.source, "watch");
    recorded(&f, "the revision", |c| {
        c.field == "revision" && c.new_value.as_deref() == Some("2")
    })
    .await;
    f.fake.set_node_ready("node-1", false);
    let c = recorded(&f, "the node", |c| c.object_kind == "k8s-node").await;
    assert_eq!(
        (
            c.object_id.as_str(),
            c.field.as_str(),
            c.new_value.as_deref()
        ),
        ("prod/node-1", "ready", Some("false"))
    );
    f.fake.add_deployment("web", "cache", 1, "redis:7");
    recorded(&f, "a new deployment", |c| {
        c.field == "created" && c.object_id == "prod/web/cache"
    })
    .await;
    f.fake.delete_deployment("web", "cache");
    recorded(&f, "a removed deployment", |c| {
        c.field == "removed" && c.object_id == "prod/web/cache"
    })
    .await;
    f.fake.add_namespace("batch");
    recorded(&f, "a new namespace", |c| {
        c.object_kind == "k8s-namespace" && c.object_id == "prod/batch"
    })
    .await;
    assert!(changes(&f)
        .await
        .iter()
        .all(|c| !c.object_kind.contains("pod")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_changed_while_down_is_recorded_on_the_next_start() {
    let mut f = Fixture::start().await;
    f.live().await;
    baseline_saved(&f).await;
    f.watches = None;
    f.fake
        .set_image("payments", "api", "registry.local/api:1.1");
    f.fake.delete_deployment("web", "web");
    f.restart().await;
    f.live().await;
    let c = recorded(&f, "the image changed while down", |c| c.field == "image").await;
    assert_eq!(
        (
            c.object_id.as_str(),
            c.old_value.as_deref(),
            c.new_value.as_deref(),
            c.source.as_str()
        ),
        (
            "prod/payments/api",
            Some("registry.local/api:1.0"),
            Some("registry.local/api:1.1"),
            "watch"
        )
    );
    recorded(&f, "the deletion while down", |c| {
        c.field == "removed" && c.object_id == "prod/web/web"
    })
    .await;
}

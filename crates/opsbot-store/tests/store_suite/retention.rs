//! Processed message ids are kept only while a retry or replay can still come: pruned
//! by age, periodically, by the one instance holding the pruning lease.

use super::harness::Ctx;
use chrono::{Duration as Age, SubsecRound, Utc};
use opsbot_store::retention::{prune_processed_periodically, PRUNE_PROCESSED_LEASE};
use std::time::{Duration, Instant};

pub async fn processed_ids_are_pruned_by_age(ctx: Ctx) {
    let s = &ctx.store;
    assert!(s.mark_processed("wecom:ops", "old-1").await.unwrap());
    assert!(s.mark_processed("wechat:mp", "old-2").await.unwrap());
    // At the store's precision: what is recorded from now on is not before it.
    let between = Utc::now().trunc_subsecs(6);
    assert!(s.mark_processed("wecom:ops", "new").await.unwrap());

    assert_eq!(s.prune_processed(between - Age::hours(1)).await.unwrap(), 0);
    assert_eq!(s.prune_processed(between).await.unwrap(), 2);
    // A pruned id is new again; a kept one is still a duplicate.
    assert!(s.mark_processed("wecom:ops", "old-1").await.unwrap());
    assert!(!s.mark_processed("wecom:ops", "new").await.unwrap());

    // More than one chunk goes in one call.
    for i in 0..2100 {
        s.mark_processed("bulk", &i.to_string()).await.unwrap();
    }
    let removed = s
        .prune_processed(Utc::now() + Age::seconds(1))
        .await
        .unwrap();
    assert_eq!(removed, 2100 + 2);
}

pub async fn processed_ids_are_pruned_periodically_under_a_lease(ctx: Ctx) {
    let s = ctx.store.clone();
    assert!(s.mark_processed("wecom:ops", "m-1").await.unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(prune_processed_periodically(
        s.clone(),
        "instance-a".into(),
        Duration::ZERO,
        Duration::from_millis(50),
        stopped,
    ));
    // Pruned: the id counts as new again (and is recorded again, to be pruned again).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.mark_processed("wecom:ops", "m-1").await.unwrap() {
        assert!(Instant::now() < deadline, "never pruned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One instance prunes: the lease is taken while the task runs...
    assert!(s
        .lease_take(PRUNE_PROCESSED_LEASE, "instance-b", Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    stop.send(true).unwrap();
    task.await.unwrap();
    // ...and handed back when it stops.
    assert!(s
        .lease_take(PRUNE_PROCESSED_LEASE, "instance-b", Duration::from_secs(60))
        .await
        .unwrap()
        .is_some());
}

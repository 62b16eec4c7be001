//! Lease cases: one holder at a time, renewal by the holder, takeover after expiry or
//! release, exactly one winner among racers on two store instances, fencing tokens that
//! move only when the lease changes hands, and pool writes fenced by a lease.

use super::fixtures::{inventory, sorted, vm};
use super::harness::Ctx;
use opsbot_store::Lease;
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

/// Takes `name` for `owner`, waiting (with a deadline) for an expired holder to be
/// passed by.
async fn take_when_free(ctx: &Ctx, name: &str, owner: &str) -> Lease {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = ctx.store.lease_take(name, owner, HOUR).await.unwrap() {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "an expired lease was never taken over"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn lease_has_one_holder_until_it_expires(ctx: Ctx) {
    let s = &ctx.store;
    let taken = |r: Option<Lease>| r.is_some();
    assert!(taken(s.lease_take("sync:vc1", "a", HOUR).await.unwrap()));
    assert!(!taken(s.lease_take("sync:vc1", "b", HOUR).await.unwrap()));
    assert!(
        taken(s.lease_take("sync:vc1", "a", HOUR).await.unwrap()),
        "renewed"
    );
    assert!(
        taken(s.lease_take("sync:vc2", "b", HOUR).await.unwrap()),
        "leases are by name"
    );

    // b's release of a's lease changes nothing; a's own release frees it.
    s.lease_release("sync:vc1", "b").await.unwrap();
    assert!(!taken(s.lease_take("sync:vc1", "b", HOUR).await.unwrap()));
    s.lease_release("sync:vc1", "a").await.unwrap();
    assert!(taken(s.lease_take("sync:vc1", "b", HOUR).await.unwrap()));

    // An expired lease goes to whoever asks next.
    assert!(taken(
        s.lease_take("collect", "a", Duration::ZERO).await.unwrap()
    ));
    take_when_free(&ctx, "collect", "b").await;
    assert!(!taken(s.lease_take("collect", "a", HOUR).await.unwrap()));
}

pub async fn lease_race_has_one_winner(ctx: Ctx) {
    let other = opsbot_store::connect(&ctx.url).await.unwrap();
    let stores = [ctx.store.clone(), other];
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = Arc::clone(&stores[i % 2]);
        tasks.push(tokio::spawn(async move {
            s.lease_take("sync:race", &format!("owner-{i}"), HOUR)
                .await
                .unwrap()
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        won.extend(t.await.unwrap());
    }
    assert_eq!(won.len(), 1, "{won:?}");
    // The winner's token is the lease's: checking it holds.
    assert!(ctx.store.lease_check(&won[0]).await.unwrap());
}

pub async fn lease_tokens_move_only_when_it_changes_hands(ctx: Ctx) {
    let s = &ctx.store;
    let first = s
        .lease_take("deploy:shop", "a", HOUR)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.name.as_str(), first.owner.as_str()),
        ("deploy:shop", "a")
    );
    assert!(s.lease_check(&first).await.unwrap());
    let renewed = s
        .lease_take("deploy:shop", "a", HOUR)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed, first, "a renewal keeps the token");

    // Released and taken by b: a new token; a's check fails, b's holds.
    s.lease_release("deploy:shop", "a").await.unwrap();
    assert!(!s.lease_check(&first).await.unwrap(), "released");
    let b = s
        .lease_take("deploy:shop", "b", HOUR)
        .await
        .unwrap()
        .unwrap();
    assert!(b.token > first.token, "{b:?} after {first:?}");
    assert!(s.lease_check(&b).await.unwrap());
    assert!(!s.lease_check(&first).await.unwrap());

    // A released lease taken again by its former holder is a new holding too.
    s.lease_release("deploy:shop", "b").await.unwrap();
    let b2 = s
        .lease_take("deploy:shop", "b", HOUR)
        .await
        .unwrap()
        .unwrap();
    assert!(b2.token > b.token);
    assert!(!s.lease_check(&b).await.unwrap(), "the old holding is gone");

    // Expired and taken over: a new token, and the expired holding no longer checks.
    let c = s
        .lease_take("sync:vc9", "c", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let d = take_when_free(&ctx, "sync:vc9", "d").await;
    assert!(d.token > c.token);
    assert!(!s.lease_check(&c).await.unwrap());
    // An expired holding that nobody took does not check either.
    let e = s
        .lease_take("sync:vc8", "e", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.lease_check(&e).await.unwrap() {
        assert!(Instant::now() < deadline, "a zero-ttl lease never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn pool_writes_fenced_by_a_lost_lease_change_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let lease = "schedule:sync:vc1";
    let old = s.lease_take(lease, "frozen", HOUR).await.unwrap().unwrap();
    let v1 = inventory("vc1");
    let report = s
        .apply_inventory_fenced("vc1", &v1, "sync:schedule", &old)
        .await
        .unwrap()
        .expect("the holder writes");
    assert_eq!(report.added, 10);

    // The lease changes hands (the holder was frozen past it, another took it).
    s.lease_release(lease, "frozen").await.unwrap();
    let new = s.lease_take(lease, "awake", HOUR).await.unwrap().unwrap();
    let version = s.pool_version().await.unwrap();
    let changes = s
        .changes(&opsbot_store::ChangeQuery::default())
        .await
        .unwrap()
        .len();

    // The frozen holder's older view is refused, whole or as a delta.
    let mut stale = v1.clone();
    stale.vms.retain(|v| v.id != "vm-2");
    assert_eq!(
        s.apply_inventory_fenced("vc1", &stale, "sync:schedule", &old)
            .await
            .unwrap(),
        None
    );
    let renamed = vm("vc1", "vm-1", "stale-name");
    assert_eq!(
        s.apply_vm_delta_fenced("vc1", &[renamed], &["vm-2".into()], "sync:schedule", &old)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.pool_version().await.unwrap(), version, "nothing written");
    assert_eq!(
        s.changes(&opsbot_store::ChangeQuery::default())
            .await
            .unwrap()
            .len(),
        changes,
        "no change recorded"
    );
    assert_eq!(s.load_pool().await.unwrap().inventory, sorted(v1.clone()));

    // The new holder's write goes through, and an unfenced one (a manual 同步) too.
    let mut v2 = v1.clone();
    v2.vms[0].cpu = 8;
    let report = s
        .apply_inventory_fenced("vc1", &v2, "sync:schedule", &new)
        .await
        .unwrap()
        .expect("the new holder writes");
    assert_eq!(report.updated, 1);
    let delta = s
        .apply_vm_delta_fenced("vc1", &[], &["vm-2".into()], "sync:schedule", &new)
        .await
        .unwrap()
        .expect("the new holder writes a delta");
    assert_eq!(delta.removed, 1);
    let manual = s.apply_inventory("vc1", &v2, "sync:manual").await.unwrap();
    assert_eq!(manual.added, 1, "vm-2 back");

    // A lease that merely ran out, taken by nobody since, still fences its holder's
    // write in: no one else can have written under it.
    let quick = s
        .lease_take("schedule:sync:vc2", "slow", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.lease_check(&quick).await.unwrap() {
        assert!(Instant::now() < deadline, "a zero-ttl lease never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(s
        .apply_inventory_fenced("vc2", &inventory("vc2"), "sync:schedule", &quick)
        .await
        .unwrap()
        .is_some());
}

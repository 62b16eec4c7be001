//! Lease cases: one holder at a time, renewal by the holder, takeover after expiry or
//! release, and exactly one winner among racers on two store instances.

use super::harness::Ctx;
use std::sync::Arc;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

pub async fn lease_has_one_holder_until_it_expires(ctx: Ctx) {
    let s = ctx.store;
    assert!(s.lease_take("sync:vc1", "a", HOUR).await.unwrap());
    assert!(!s.lease_take("sync:vc1", "b", HOUR).await.unwrap());
    assert!(
        s.lease_take("sync:vc1", "a", HOUR).await.unwrap(),
        "renewed"
    );
    assert!(
        s.lease_take("sync:vc2", "b", HOUR).await.unwrap(),
        "leases are by name"
    );

    // b's release of a's lease changes nothing; a's own release frees it.
    s.lease_release("sync:vc1", "b").await.unwrap();
    assert!(!s.lease_take("sync:vc1", "b", HOUR).await.unwrap());
    s.lease_release("sync:vc1", "a").await.unwrap();
    assert!(s.lease_take("sync:vc1", "b", HOUR).await.unwrap());

    // An expired lease goes to whoever asks next.
    assert!(s.lease_take("collect", "a", Duration::ZERO).await.unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !s.lease_take("collect", "b", HOUR).await.unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "an expired lease was never taken over"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!s.lease_take("collect", "a", HOUR).await.unwrap());
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
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

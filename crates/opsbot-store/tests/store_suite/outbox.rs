//! Outbox cases: queueing, claiming under a lease (across tasks and store instances),
//! retries, dead letters, depth, large bodies and durability across a reopen.

use super::harness::Ctx;
use chrono::{DateTime, SubsecRound, Utc};
use opsbot_store::{connect, NewOutbox, OutboxItem, OutboxQuery, OutboxState, SeaStore, Store};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Long enough that no claim in a test expires by accident, however slow the machine.
const LONG: Duration = Duration::from_secs(600);
/// How long a test waits for something that should happen soon before failing.
const PATIENCE: Duration = Duration::from_secs(30);

fn msg(channel: &str, body: &str) -> NewOutbox {
    NewOutbox {
        channel: channel.into(),
        target: r#"{"touser":"zhangsan"}"#.into(),
        body: body.into(),
    }
}

fn ids(items: &[OutboxItem]) -> Vec<i64> {
    items.iter().map(|i| i.id).collect()
}

async fn list(store: &dyn Store, state: Option<OutboxState>) -> Vec<OutboxItem> {
    store
        .outbox_list(&OutboxQuery {
            state,
            ..OutboxQuery::default()
        })
        .await
        .unwrap()
}

async fn one(store: &dyn Store, id: i64) -> OutboxItem {
    list(store, None)
        .await
        .into_iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("outbox item {id} is missing"))
}

pub async fn outbox_push_claim_sent(ctx: Ctx) {
    let s = &*ctx.store;
    let a = s.outbox_push(&msg("wecom:ops", "第一条")).await.unwrap();
    let b = s.outbox_push(&msg("wecom:ops", "第二条")).await.unwrap();
    let c = s.outbox_push(&msg("wecom:ops", "第三条")).await.unwrap();
    assert!(a < b && b < c);

    let claimed = s.outbox_claim("wecom:", "proc-a", LONG, 2).await.unwrap();
    assert_eq!(ids(&claimed), [a, b], "oldest first, up to the limit");
    let first = &claimed[0];
    assert_eq!(
        (
            first.channel.as_str(),
            first.target.as_str(),
            first.body.as_str()
        ),
        ("wecom:ops", r#"{"touser":"zhangsan"}"#, "第一条")
    );
    assert_eq!(
        (first.state, first.attempts, &first.last_error),
        (OutboxState::Pending, 0, &None)
    );
    assert!(first.next_attempt_at <= Utc::now());

    s.outbox_sent(a).await.unwrap();
    let sent = list(s, Some(OutboxState::Sent)).await;
    assert_eq!(ids(&sent), [a]);
    assert_eq!(sent[0].state, OutboxState::Sent);

    // The same owner does not get its own live claims again: only the third is free.
    let rest = s.outbox_claim("wecom:", "proc-a", LONG, 10).await.unwrap();
    assert_eq!(ids(&rest), [c]);
    assert!(s
        .outbox_claim("", "proc-b", LONG, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .outbox_claim("wecom:", "proc-b", LONG, 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(ids(&list(s, None).await), [c, b, a], "newest first");
}

pub async fn outbox_claim_matches_due_items_by_channel_prefix(ctx: Ctx) {
    let s = &*ctx.store;
    let ops = s.outbox_push(&msg("wecom:ops", "1")).await.unwrap();
    let robot = s.outbox_push(&msg("robot:alerts", "2")).await.unwrap();
    let dev = s.outbox_push(&msg("wecom:dev", "3")).await.unwrap();
    let percent = s.outbox_push(&msg("wecom%x", "4")).await.unwrap();
    let underscore = s.outbox_push(&msg("we_om:y", "5")).await.unwrap();
    let upper = s.outbox_push(&msg("WECOM:ops", "6")).await.unwrap();
    let later = s.outbox_push(&msg("wecom:later", "7")).await.unwrap();
    let in_an_hour = Utc::now() + chrono::Duration::hours(1);
    s.outbox_retry(later, in_an_hour, "not yet").await.unwrap();

    // As LIKE patterns these would match every wecom… channel; they must not.
    let claim = |prefix: &'static str| s.outbox_claim(prefix, "proc-a", LONG, 10);
    assert_eq!(ids(&claim("wecom%").await.unwrap()), [percent]);
    assert_eq!(ids(&claim("we_om").await.unwrap()), [underscore]);
    assert!(claim("wecom_").await.unwrap().is_empty());

    let listed = s
        .outbox_list(&OutboxQuery {
            channel_prefix: Some("wecom:".into()),
            ..OutboxQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&listed), [later, dev, ops]);

    // Not `later` (due in an hour), nor `WECOM:ops` (prefixes are case-sensitive).
    assert_eq!(ids(&claim("wecom:").await.unwrap()), [ops, dev]);
    assert_eq!(ids(&claim("robot:").await.unwrap()), [robot]);
    assert_eq!(ids(&claim("WECOM:").await.unwrap()), [upper]);
    assert!(claim("").await.unwrap().is_empty());

    // Once due, `later` is claimable.
    s.outbox_retry(later, Utc::now() - chrono::Duration::seconds(1), "now")
        .await
        .unwrap();
    assert_eq!(ids(&claim("wecom:").await.unwrap()), [later]);
}

pub async fn outbox_lease_excludes_others_until_it_expires(ctx: Ctx) {
    let s = &*ctx.store;
    let held = s.outbox_push(&msg("robot:ops", "held")).await.unwrap();
    assert_eq!(
        ids(&s.outbox_claim("robot:", "proc-a", LONG, 10).await.unwrap()),
        [held]
    );
    // Another owner, through this store or another instance (another process).
    let other = connect(&ctx.url).await.unwrap();
    assert!(s
        .outbox_claim("robot:", "proc-b", LONG, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(other
        .outbox_claim("robot:", "proc-c", LONG, 10)
        .await
        .unwrap()
        .is_empty());

    // proc-a "crashes" holding a short lease: once it runs out, proc-b gets the item.
    let short = s.outbox_push(&msg("robot:ops", "short")).await.unwrap();
    let lease = Duration::from_millis(200);
    assert_eq!(
        ids(&s.outbox_claim("robot:", "proc-a", lease, 10).await.unwrap()),
        [short]
    );
    let deadline = Instant::now() + PATIENCE;
    let reclaimed = loop {
        let got = other
            .outbox_claim("robot:", "proc-b", LONG, 10)
            .await
            .unwrap();
        if !got.is_empty() {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "an expired lease was not claimable within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ids(&reclaimed), [short], "the long lease still holds");
    // proc-b's own lease is long: nobody else gets it now.
    assert!(s
        .outbox_claim("robot:", "proc-c", LONG, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn outbox_concurrent_claimers_never_share(ctx: Ctx) {
    const ITEMS: usize = 60;
    let mut pushed = BTreeSet::new();
    for i in 0..ITEMS {
        let id = ctx
            .store
            .outbox_push(&msg("wecom:ops", &format!("消息 {i}")))
            .await
            .unwrap();
        pushed.insert(id);
    }
    // 8 tasks on this store and 2 on a second instance (like a second process).
    let second = connect(&ctx.url).await.unwrap();
    let claimers: Vec<_> = (0..10)
        .map(|n| {
            let store = if n < 8 {
                ctx.store.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move {
                let owner = format!("claimer-{n}");
                let deadline = Instant::now() + PATIENCE * 2;
                let mut got = Vec::new();
                loop {
                    let batch = store.outbox_claim("wecom:", &owner, LONG, 3).await.unwrap();
                    for item in &batch {
                        got.push(item.id);
                        store.outbox_sent(item.id).await.unwrap();
                    }
                    // An empty batch may only mean others hold the rest: stop once
                    // everything is delivered.
                    if batch.is_empty() {
                        if store.outbox_depth().await.unwrap() == 0 {
                            return got;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    assert!(Instant::now() < deadline, "claimers did not finish");
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "an item was claimed twice: {all:?}"
    );
    assert_eq!(distinct, pushed);
    assert_eq!(
        list(&*ctx.store, Some(OutboxState::Sent)).await.len(),
        ITEMS
    );
}

pub async fn outbox_retry_counts_and_delays(ctx: Ctx) {
    let s = &*ctx.store;
    let id = s.outbox_push(&msg("wecom:ops", "重试")).await.unwrap();
    let before = one(s, id).await;
    assert_eq!(
        ids(&s.outbox_claim("wecom:", "proc-a", LONG, 1).await.unwrap()),
        [id]
    );

    let at: DateTime<Utc> = Utc::now() + chrono::Duration::minutes(5);
    s.outbox_retry(id, at, "HTTP 503 服务不可用").await.unwrap();
    let item = one(s, id).await;
    assert_eq!(item.state, OutboxState::Pending);
    assert_eq!(item.attempts, 1);
    assert_eq!(item.last_error.as_deref(), Some("HTTP 503 服务不可用"));
    assert_eq!(item.next_attempt_at, at.trunc_subsecs(3));
    assert!(item.updated_at >= before.updated_at);
    assert_eq!(item.created_at, before.created_at);
    assert!(
        s.outbox_claim("wecom:", "proc-b", LONG, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due for five minutes"
    );

    // Due again (and the retry released proc-a's claim): another owner gets it.
    s.outbox_retry(id, Utc::now() - chrono::Duration::seconds(1), "timeout")
        .await
        .unwrap();
    let again = s.outbox_claim("wecom:", "proc-b", LONG, 10).await.unwrap();
    assert_eq!(ids(&again), [id]);
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (2, Some("timeout"))
    );
}

pub async fn outbox_dead_letters_listed_never_claimed(ctx: Ctx) {
    let s = &*ctx.store;
    let bad = s.outbox_push(&msg("robot:ops", "坏消息")).await.unwrap();
    let good = s.outbox_push(&msg("robot:ops", "好消息")).await.unwrap();
    assert_eq!(
        ids(&s.outbox_claim("robot:", "proc-a", LONG, 1).await.unwrap()),
        [bad]
    );
    s.outbox_dead(bad, "errcode 40003: invalid user")
        .await
        .unwrap();

    let dead = list(s, Some(OutboxState::Dead)).await;
    assert_eq!(ids(&dead), [bad]);
    assert_eq!(
        (dead[0].attempts, dead[0].last_error.as_deref()),
        (1, Some("errcode 40003: invalid user"))
    );
    assert_eq!(ids(&list(s, Some(OutboxState::Pending)).await), [good]);

    // Even an overdue retry does not bring a dead item back.
    s.outbox_retry(bad, Utc::now() - chrono::Duration::hours(1), "late report")
        .await
        .unwrap();
    assert_eq!(one(s, bad).await.state, OutboxState::Dead);
    assert_eq!(
        ids(&s.outbox_claim("", "proc-b", LONG, 10).await.unwrap()),
        [good]
    );
    assert!(s
        .outbox_claim("", "proc-c", LONG, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn outbox_depth_counts_pending(ctx: Ctx) {
    let s = &*ctx.store;
    assert_eq!(s.outbox_depth().await.unwrap(), 0);
    let mut pushed = Vec::new();
    for i in 0..4 {
        pushed.push(
            s.outbox_push(&msg("wecom:ops", &i.to_string()))
                .await
                .unwrap(),
        );
    }
    assert_eq!(s.outbox_depth().await.unwrap(), 4);
    s.outbox_claim("wecom:", "proc-a", LONG, 4).await.unwrap();
    assert_eq!(
        s.outbox_depth().await.unwrap(),
        4,
        "claimed items are still pending"
    );
    s.outbox_sent(pushed[0]).await.unwrap();
    s.outbox_dead(pushed[1], "gone").await.unwrap();
    s.outbox_retry(pushed[2], Utc::now(), "again")
        .await
        .unwrap();
    assert_eq!(s.outbox_depth().await.unwrap(), 2);
}

pub async fn outbox_large_body_round_trips(ctx: Ctx) {
    let s = &*ctx.store;
    // 300 KB with 4-byte characters: beyond MySQL's 64 KiB TEXT, needs utf8mb4.
    let line = "告警😀 VM web01 down; ";
    let body = format!(
        "{{\"text\":\"{}\"}}",
        line.repeat(300 * 1024 / line.len() + 1)
    );
    assert!(body.len() >= 300 * 1024);
    let id = s.outbox_push(&msg("wecom:ops", &body)).await.unwrap();
    let claimed = s.outbox_claim("wecom:", "proc-a", LONG, 1).await.unwrap();
    assert_eq!(ids(&claimed), [id]);
    assert!(claimed[0].body == body, "the claimed body differs");
    assert!(one(s, id).await.body == body, "the listed body differs");
}

pub async fn outbox_survives_reopen(ctx: Ctx) {
    let first = SeaStore::open(&ctx.url).await.unwrap();
    let held = first
        .outbox_push(&msg("wecom:ops", "已领取"))
        .await
        .unwrap();
    let free = first.outbox_push(&msg("wecom:ops", "待发")).await.unwrap();
    let retried = first.outbox_push(&msg("robot:ops", "重试")).await.unwrap();
    let sent = first.outbox_push(&msg("robot:ops", "已发")).await.unwrap();
    let dead = first.outbox_push(&msg("robot:ops", "死信")).await.unwrap();
    let at = Utc::now() + chrono::Duration::hours(1);
    first.outbox_retry(retried, at, "503").await.unwrap();
    first.outbox_sent(sent).await.unwrap();
    first.outbox_dead(dead, "400").await.unwrap();
    let claimed = first
        .outbox_claim("wecom:", "proc-a", LONG, 1)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), [held]);
    let before = list(&first, None).await;
    first.close().await;

    let reopened = connect(&ctx.url).await.unwrap();
    assert_eq!(list(&*reopened, None).await, before);
    assert_eq!(reopened.outbox_depth().await.unwrap(), 3);
    // The crashed process's claim still holds; the unclaimed item is there to take.
    let taken = reopened.outbox_claim("", "proc-b", LONG, 10).await.unwrap();
    assert_eq!(ids(&taken), [free]);
}

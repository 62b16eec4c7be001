//! Outbox cases: queueing, claiming under a lease (across tasks and store instances),
//! retries, dead letters, depth, large bodies and durability across a reopen.

use super::harness::Ctx;
use chrono::{DateTime, SubsecRound, Utc};
use opsbot_core::{JobId, JobState};
use opsbot_store::{
    connect, InterruptFilter, NewJob, NewOutbox, OutboxClaim, OutboxItem, OutboxQuery, OutboxState,
    OutboxStore, SeaStore, Store,
};
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

/// The claim `owner` holds on item `id` (claimed through `claim`).
async fn take(store: &dyn Store, prefix: &str, owner: &str, id: i64) -> OutboxClaim {
    let claimed = store.outbox_claim(prefix, owner, LONG, 100).await.unwrap();
    let item = claimed
        .into_iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("{owner} could not claim item {id}"));
    item.claim.expect("a claimed item carries its claim")
}

/// Marks `id` sent through whatever claim it is under now (the test stands in for its
/// holder).
async fn sent(store: &dyn Store, id: i64) {
    let claim = one(store, id).await.claim.expect("the item is claimed");
    assert!(store.outbox_sent(id, &claim).await.unwrap());
}

/// The item's current claim, or a new one (claiming only its own channel).
async fn claim_of(store: &dyn Store, id: i64) -> OutboxClaim {
    let item = one(store, id).await;
    match item.claim {
        Some(c) => c,
        None => take(store, &item.channel, "tester", id).await,
    }
}

async fn retry(store: &dyn Store, id: i64, at: DateTime<Utc>, error: &str) -> bool {
    let claim = claim_of(store, id).await;
    store.outbox_retry(id, &claim, at, error).await.unwrap()
}

async fn dead(store: &dyn Store, id: i64, error: &str) {
    let claim = claim_of(store, id).await;
    assert!(store.outbox_dead(id, &claim, error).await.unwrap());
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

    let claim = first.claim.clone().expect("claimed");
    assert_eq!(claim.owner, "proc-a");
    assert!(claim.until > Utc::now());
    assert_ne!(claim.token, claimed[1].claim.as_ref().unwrap().token);
    assert!(s.outbox_sent(a, &claim).await.unwrap());
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
    assert!(retry(s, later, in_an_hour, "not yet").await);

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
                        let claim = item.claim.as_ref().unwrap();
                        assert!(store.outbox_sent(item.id, claim).await.unwrap());
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
    assert!(retry(s, id, at, "HTTP 503 服务不可用").await);
    let item = one(s, id).await;
    assert_eq!(item.state, OutboxState::Pending);
    assert_eq!(item.attempts, 1);
    assert_eq!(item.last_error.as_deref(), Some("HTTP 503 服务不可用"));
    assert_eq!(item.next_attempt_at, at.trunc_subsecs(3));
    assert!(item.updated_at >= before.updated_at);
    assert_eq!(item.created_at, before.created_at);
    assert_eq!(item.claim, None, "the retry released the claim");
    assert!(
        s.outbox_claim("wecom:", "proc-b", LONG, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due for five minutes"
    );

    // Due at once (and the retry released the claim): another owner gets it, and the
    // attempts add up.
    let due = s.outbox_push(&msg("robot:ops", "重试")).await.unwrap();
    assert!(retry(s, due, Utc::now() - chrono::Duration::seconds(1), "503").await);
    let again = s.outbox_claim("robot:", "proc-b", LONG, 10).await.unwrap();
    assert_eq!(ids(&again), [due]);
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (1, Some("503"))
    );
    assert!(retry(s, due, Utc::now() - chrono::Duration::seconds(1), "timeout").await);
    let third = s.outbox_claim("robot:", "proc-c", LONG, 10).await.unwrap();
    assert_eq!(ids(&third), [due]);
    assert_eq!(
        (third[0].attempts, third[0].last_error.as_deref()),
        (2, Some("timeout"))
    );
}

/// A worker whose lease ran out (frozen, or slow to report) and whose item another
/// worker claimed since can neither mark it sent nor reschedule nor bury it; nor can an
/// older claim of the same owner.
pub async fn outbox_marks_need_the_claim_that_holds_the_item(ctx: Ctx) {
    let s = &*ctx.store;
    let id = s.outbox_push(&msg("wecom:ops", "只发一次")).await.unwrap();
    let short = Duration::from_millis(200);
    let claimed = s.outbox_claim("wecom:", "proc-a", short, 10).await.unwrap();
    assert_eq!(ids(&claimed), [id]);
    let frozen = claimed[0].claim.clone().unwrap();

    // proc-a's lease runs out; proc-b claims the item (through another instance).
    let other = connect(&ctx.url).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let live = loop {
        let got = other
            .outbox_claim("wecom:", "proc-b", short, 10)
            .await
            .unwrap();
        if let Some(item) = got.into_iter().next() {
            break item.claim.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the expired lease was never free"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(live.owner, "proc-b");

    // proc-a wakes up: nothing it reports counts.
    assert!(!s.outbox_sent(id, &frozen).await.unwrap());
    let soon = Utc::now() + chrono::Duration::hours(1);
    assert!(!s.outbox_retry(id, &frozen, soon, "timeout").await.unwrap());
    assert!(!s.outbox_dead(id, &frozen, "gone").await.unwrap());
    let item = one(s, id).await;
    assert_eq!(
        (item.state, item.attempts, item.claim.as_ref()),
        (OutboxState::Pending, 0, Some(&live))
    );
    // Nor does a claim naming the right owner with another token.
    let forged = OutboxClaim {
        token: live.token + 1,
        ..live.clone()
    };
    assert!(!s.outbox_sent(id, &forged).await.unwrap());

    // proc-b's lease runs out too, and proc-b claims the item again: a new token, and
    // its own earlier claim is as dead as proc-a's.
    let deadline = Instant::now() + PATIENCE;
    let renewed = loop {
        let got = s.outbox_claim("wecom:", "proc-b", LONG, 10).await.unwrap();
        if let Some(item) = got.into_iter().next() {
            break item.claim.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the expired lease was never free"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(renewed.owner, "proc-b");
    assert_ne!(renewed.token, live.token);
    assert!(!s.outbox_sent(id, &live).await.unwrap());
    assert_eq!(one(s, id).await.state, OutboxState::Pending);

    // The holder's report counts, once.
    assert!(s.outbox_sent(id, &renewed).await.unwrap());
    assert_eq!(one(s, id).await.state, OutboxState::Sent);
    assert!(!s.outbox_sent(id, &renewed).await.unwrap());
    assert!(!s.outbox_retry(id, &renewed, soon, "late").await.unwrap());
    assert_eq!(one(s, id).await.state, OutboxState::Sent);
}

fn job(owner: &str) -> NewJob {
    NewJob {
        owner: owner.into(),
        user: "zhangsan".into(),
        channel: "wecom:ops".into(),
        chat: None,
        command: "克隆".into(),
        text: "克隆:1,a,10.0.0.1".into(),
        message: "已受理".into(),
        target: None,
    }
}

/// Items held for a job wait, unclaimable and not counted, until the job is interrupted
/// (then they go like any other) or ends otherwise (then they are dropped).
pub async fn outbox_held_items_wait_for_their_job(ctx: Ctx) {
    let s = &*ctx.store;
    let crashed = s.create_job(&job("proc-dead")).await.unwrap();
    let succeeds = s.create_job(&job("proc-live")).await.unwrap();
    let fails = s.create_job(&job("proc-live")).await.unwrap();
    s.outbox_hold(
        crashed,
        &[msg("wecom:ops", "⚠ 已中断 1/2"), msg("wecom:ops", "2/2")],
    )
    .await
    .unwrap();
    s.outbox_hold(succeeds, &[msg("wecom:ops", "⚠ 已中断")])
        .await
        .unwrap();
    s.outbox_hold(fails, &[msg("wechat:mp", "⚠ 已中断")])
        .await
        .unwrap();
    let held = list(s, Some(OutboxState::Held)).await;
    assert_eq!(held.len(), 4);
    assert!(held
        .iter()
        .all(|i| i.hold_job.is_some() && i.claim.is_none()));
    assert_eq!(
        s.outbox_depth().await.unwrap(),
        0,
        "held items are not pending"
    );
    assert!(s.outbox_claim("", "w", LONG, 10).await.unwrap().is_empty());

    // The crashed process's job is interrupted (by whichever instance): its items go.
    let swept = s
        .interrupt_jobs(&InterruptFilter::Owner("proc-dead".into()), "已中断")
        .await
        .unwrap();
    assert_eq!(swept, [crashed]);
    let released = s.outbox_claim("", "w", LONG, 10).await.unwrap();
    let bodies: Vec<&str> = released.iter().map(|i| i.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["⚠ 已中断 1/2", "2/2"],
        "in order, only the crashed job's"
    );
    assert!(released
        .iter()
        .all(|i| i.state == OutboxState::Pending && i.attempts == 0));
    for item in &released {
        assert!(s
            .outbox_sent(item.id, item.claim.as_ref().unwrap())
            .await
            .unwrap());
    }

    // A job that ends well drops its items; one whose drop was missed is swept up by the
    // next drop.
    s.update_job(succeeds, JobState::Succeeded, 100, "ok")
        .await
        .unwrap();
    assert_eq!(s.outbox_drop_held(succeeds).await.unwrap(), 1);
    s.update_job(fails, JobState::Failed, 0, "no")
        .await
        .unwrap();
    assert_eq!(s.outbox_drop_held(JobId(0)).await.unwrap(), 1);
    assert!(list(s, Some(OutboxState::Held)).await.is_empty());
    // Interrupting them now (they are final) releases nothing.
    s.interrupt_jobs(&InterruptFilter::Owner("proc-live".into()), "已中断")
        .await
        .unwrap();
    assert!(s.outbox_claim("", "w", LONG, 10).await.unwrap().is_empty());
    assert_eq!(list(s, Some(OutboxState::Sent)).await.len(), 2);
}

pub async fn outbox_dead_letters_listed_never_claimed(ctx: Ctx) {
    let s = &*ctx.store;
    let bad = s.outbox_push(&msg("robot:ops", "坏消息")).await.unwrap();
    let good = s.outbox_push(&msg("robot:ops", "好消息")).await.unwrap();
    assert_eq!(
        ids(&s.outbox_claim("robot:", "proc-a", LONG, 1).await.unwrap()),
        [bad]
    );
    dead(s, bad, "errcode 40003: invalid user").await;

    let dead = list(s, Some(OutboxState::Dead)).await;
    assert_eq!(ids(&dead), [bad]);
    assert_eq!(
        (dead[0].attempts, dead[0].last_error.as_deref()),
        (1, Some("errcode 40003: invalid user"))
    );
    assert_eq!(ids(&list(s, Some(OutboxState::Pending)).await), [good]);

    // Even an overdue retry does not bring a dead item back.
    let stale = OutboxClaim {
        owner: "proc-a".into(),
        token: 0,
        until: Utc::now(),
    };
    assert!(!s
        .outbox_retry(
            bad,
            &stale,
            Utc::now() - chrono::Duration::hours(1),
            "late report"
        )
        .await
        .unwrap());
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
    sent(s, pushed[0]).await;
    dead(s, pushed[1], "gone").await;
    assert!(retry(s, pushed[2], Utc::now(), "again").await);
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
    let robots = first
        .outbox_claim("robot:", "proc-z", LONG, 10)
        .await
        .unwrap();
    assert_eq!(ids(&robots), [retried, sent, dead]);
    let claim = |i: usize| robots[i].claim.clone().unwrap();
    let at = Utc::now() + chrono::Duration::hours(1);
    assert!(first
        .outbox_retry(retried, &claim(0), at, "503")
        .await
        .unwrap());
    assert!(first.outbox_sent(sent, &claim(1)).await.unwrap());
    assert!(first.outbox_dead(dead, &claim(2), "400").await.unwrap());
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

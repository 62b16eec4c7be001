//! Alert group schedules, what lets several instances send each group once: the due
//! time ingest writes (the earliest ask, not within the interval of the last message),
//! claims under a lease, fencing of a claim that was taken over, adoption of groups an
//! earlier version left without a schedule, and no notice lost to a racing flush.

use super::alerts::{alert, notice, payload, stored};
use super::harness::Ctx;
use chrono::{DateTime, Utc};
use opsbot_store::alerts::*;
use opsbot_store::{NewOutbox, OutboxQuery};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

fn waiting(route: &str, key: &str, wait: u64, interval: u64) -> NewNotice {
    NewNotice {
        group_wait: Duration::from_secs(wait),
        group_interval: Duration::from_secs(interval),
        ..notice(route, key)
    }
}

fn firing(fp: &str, n: NewNotice) -> IngestPayload {
    let mut a = alert(fp, FIRING);
    a.notices = vec![n];
    payload("{}", vec![a])
}

fn item(body: &str) -> NewOutbox {
    NewOutbox {
        channel: "wecom:ops".into(),
        target: "{}".into(),
        body: body.into(),
    }
}

async fn schedule(ctx: &Ctx, key: &str) -> GroupSchedule {
    ctx.store
        .alert_group_schedule("ops", key)
        .await
        .unwrap()
        .expect("the group has a schedule")
}

/// `t` is `at` plus `secs`, give or take the time the test took around `at`.
fn about(t: Option<DateTime<Utc>>, from: DateTime<Utc>, to: DateTime<Utc>, secs: i64) {
    let t = t.expect("due");
    let span = chrono::Duration::seconds(secs);
    let slack = chrono::Duration::milliseconds(1);
    assert!(
        t >= from + span - slack && t <= to + span + slack,
        "{t} not within {from}..{to} + {secs} s"
    );
}

/// A flush or deferral under a claim that was taken over changes nothing; the current
/// holder's flush queues the group once and closes it.
pub async fn alert_group_flush_needs_the_current_claim(ctx: Ctx) {
    let store = &ctx.store;
    stored(
        store
            .alerts_ingest(&[firing("a", notice("ops", "g"))])
            .await
            .unwrap(),
    );
    let lease = Duration::from_millis(300);
    let a = store.alert_groups_claim("A", lease, 10).await.unwrap();
    assert_eq!(a.len(), 1);
    let a = &a[0];
    assert_eq!((a.route.as_str(), a.group_key.as_str()), ("ops", "g"));
    // A freezes past its lease; B claims the group once the lease is over.
    let deadline = Instant::now() + Duration::from_secs(10);
    let b = loop {
        let got = store.alert_groups_claim("B", LONG, 10).await.unwrap();
        if let Some(b) = got.into_iter().next() {
            break b;
        }
        assert!(Instant::now() < deadline, "the lease never ran out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(b.token != a.token && b.owner == "B");
    assert!(
        Utc::now() >= a.until,
        "not claimed again before the lease ended"
    );
    assert!(
        store
            .alert_groups_claim("C", LONG, 10)
            .await
            .unwrap()
            .is_empty(),
        "B's claim holds"
    );

    // A wakes up and tries to finish: refused, nothing queued, nothing closed.
    let notices = store.alert_notices("ops", "g").await.unwrap();
    let done: Vec<i64> = notices.iter().map(|n| n.id).collect();
    assert_eq!(
        store
            .alert_notices_flush(a, &done, &[item("from A")], LONG)
            .await
            .unwrap(),
        GroupFlush::Fenced
    );
    assert!(!store
        .alert_group_defer(a, Utc::now() + chrono::Duration::hours(1))
        .await
        .unwrap());
    // The same owner with another token is no more the holder than anyone else.
    let forged = GroupClaim {
        owner: "B".into(),
        token: b.token.wrapping_add(1),
        ..b.clone()
    };
    assert_eq!(
        store
            .alert_notices_flush(&forged, &done, &[item("forged")], LONG)
            .await
            .unwrap(),
        GroupFlush::Fenced
    );
    assert_eq!(store.alert_notices("ops", "g").await.unwrap().len(), 1);
    assert!(store
        .outbox_list(&OutboxQuery::default())
        .await
        .unwrap()
        .is_empty());

    let before = Utc::now();
    let flushed = store
        .alert_notices_flush(&b, &done, &[item("from B")], LONG)
        .await
        .unwrap();
    assert!(
        matches!(&flushed, GroupFlush::Queued { outbox, next_due: None } if outbox.len() == 1),
        "{flushed:?}"
    );
    let bodies: Vec<String> = store
        .outbox_list(&OutboxQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.body)
        .collect();
    assert_eq!(bodies, ["from B"]);
    assert!(store.alert_notices("ops", "g").await.unwrap().is_empty());
    let s = schedule(&ctx, "g").await;
    assert_eq!((s.due, s.claimed_by, s.claim_until), (None, None, None));
    assert!(s.last_flush.unwrap() >= before - chrono::Duration::milliseconds(1));
    // Flushed and released: B's claim is spent too.
    assert_eq!(
        store
            .alert_notices_flush(&b, &[], &[item("again")], LONG)
            .await
            .unwrap(),
        GroupFlush::Fenced
    );
}

/// Due times: the first notice sets it, a later ask never delays it, an earlier one
/// (another instance's shorter wait) brings it forward; after a message the group is
/// not due again before its interval; notices that arrive during a flush keep the group
/// due; an earlier version's open group is adopted; closed schedules are pruned.
pub async fn alert_group_due_is_the_earliest_ask(ctx: Ctx) {
    let store = &ctx.store;
    let t0 = Utc::now();
    stored(
        store
            .alerts_ingest(&[firing("a", waiting("ops", "g", 60, 3600))])
            .await
            .unwrap(),
    );
    let t1 = Utc::now();
    about(schedule(&ctx, "g").await.due, t0, t1, 60);
    let first = schedule(&ctx, "g").await.due;
    stored(
        store
            .alerts_ingest(&[firing("b", waiting("ops", "g", 120, 3600))])
            .await
            .unwrap(),
    );
    assert_eq!(
        schedule(&ctx, "g").await.due,
        first,
        "the first notice wins"
    );
    let t2 = Utc::now();
    stored(
        store
            .alerts_ingest(&[firing("c", waiting("ops", "g", 10, 3600))])
            .await
            .unwrap(),
    );
    let t3 = Utc::now();
    about(schedule(&ctx, "g").await.due, t2, t3, 10);
    assert!(store
        .alert_groups_claim("A", LONG, 10)
        .await
        .unwrap()
        .is_empty());

    // An open group the store has no schedule for would be adopted at once; this one
    // has a schedule, and the adoption's earlier due time wins.
    let oldest = Utc::now() - chrono::Duration::hours(2);
    store
        .alert_groups_schedule(&[PendingGroup {
            group: waiting("ops", "g", 0, 3600),
            oldest,
        }])
        .await
        .unwrap();
    let claims = store.alert_groups_claim("A", LONG, 10).await.unwrap();
    assert_eq!(claims.len(), 1);
    let notices = store.alert_notices("ops", "g").await.unwrap();
    assert_eq!(notices.len(), 3);
    // Another alert of the group is stored while A renders the message.
    stored(
        store
            .alerts_ingest(&[firing("d", waiting("ops", "g", 0, 3600))])
            .await
            .unwrap(),
    );
    let done: Vec<i64> = notices.iter().map(|n| n.id).collect();
    let t4 = Utc::now();
    let flushed = store
        .alert_notices_flush(
            &claims[0],
            &done,
            &[item("a b c")],
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let t5 = Utc::now();
    let GroupFlush::Queued { next_due, .. } = flushed else {
        panic!("{flushed:?}");
    };
    about(next_due, t4, t5, 3600);
    let s = schedule(&ctx, "g").await;
    assert_eq!(s.due, next_due, "d waits for the group's interval");
    assert_eq!(store.alert_notices("ops", "g").await.unwrap().len(), 1);
    assert!(store
        .alert_groups_claim("A", LONG, 10)
        .await
        .unwrap()
        .is_empty());

    // A closed group: a new notice is due after its wait, or the interval since the
    // last message if that ends later.
    stored(
        store
            .alerts_ingest(&[firing("x", notice("ops", "h"))])
            .await
            .unwrap(),
    );
    let claims = store.alert_groups_claim("A", LONG, 10).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].group_key, "h");
    let done: Vec<i64> = store
        .alert_notices("ops", "h")
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    let flushed = store
        .alert_notices_flush(&claims[0], &done, &[item("x")], Duration::from_secs(600))
        .await
        .unwrap();
    assert!(matches!(flushed, GroupFlush::Queued { next_due: None, .. }));
    let sent = schedule(&ctx, "h").await.last_flush.unwrap();
    assert_eq!(schedule(&ctx, "h").await.due, None);
    stored(
        store
            .alerts_ingest(&[firing("y", waiting("ops", "h", 5, 600))])
            .await
            .unwrap(),
    );
    assert_eq!(
        schedule(&ctx, "h").await.due,
        Some(sent + chrono::Duration::seconds(600)),
        "not within the interval of the last message"
    );

    // Pruning forgets closed schedules only.
    stored(
        store
            .alerts_ingest(&[firing("z", notice("ops", "p"))])
            .await
            .unwrap(),
    );
    let claims = store.alert_groups_claim("A", LONG, 10).await.unwrap();
    assert_eq!(claims.len(), 1);
    let done: Vec<i64> = store
        .alert_notices("ops", "p")
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    store
        .alert_notices_flush(&claims[0], &done, &[item("z")], LONG)
        .await
        .unwrap();
    let later = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.alert_group_schedules_prune(later).await.unwrap(), 1);
    assert!(store
        .alert_group_schedule("ops", "p")
        .await
        .unwrap()
        .is_none());
    assert!(schedule(&ctx, "g").await.due.is_some());
    assert!(schedule(&ctx, "h").await.due.is_some());
}

/// Claimers racing (two connections) never hold one group together, and together they
/// take every due group.
pub async fn alert_group_concurrent_claimers_never_share(ctx: Ctx) {
    let groups = 24;
    let batch: Vec<IngestPayload> = (0..groups)
        .map(|i| firing(&format!("fp-{i}"), notice("ops", &format!("g{i}"))))
        .collect();
    stored(ctx.store.alerts_ingest(&batch).await.unwrap());
    let other = opsbot_store::connect(&ctx.url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = if i % 2 == 0 {
            ctx.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .alert_groups_claim(&format!("claimer-{i}"), LONG, 3)
                    .await
                    .unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| c.group_key));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a group claimed twice: {all:?}");
    assert_eq!(all.len(), groups);
}

/// Alerts stored one by one while another task keeps claiming and flushing their group:
/// every alert is in exactly one message, none is left behind.
pub async fn alert_groups_lose_no_notice_to_a_racing_flush(ctx: Ctx) {
    let alerts = 40;
    let writer = {
        let store = ctx.store.clone();
        tokio::spawn(async move {
            for i in 0..alerts {
                stored(
                    store
                        .alerts_ingest(&[firing(&format!("fp-{i}"), notice("ops", "g"))])
                        .await
                        .unwrap(),
                );
            }
        })
    };
    let other = opsbot_store::connect(&ctx.url).await.unwrap();
    let mut sent: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let idle = writer.is_finished();
        for claim in other.alert_groups_claim("flusher", LONG, 10).await.unwrap() {
            let notices = other
                .alert_notices(&claim.route, &claim.group_key)
                .await
                .unwrap();
            let fps: Vec<String> = notices
                .iter()
                .map(|n| n.alert.fingerprint.clone())
                .collect();
            let done: Vec<i64> = notices.iter().map(|n| n.id).collect();
            let items: Vec<NewOutbox> = if fps.is_empty() {
                Vec::new()
            } else {
                vec![item(&fps.join(","))]
            };
            let flushed = other
                .alert_notices_flush(&claim, &done, &items, Duration::ZERO)
                .await
                .unwrap();
            assert!(matches!(flushed, GroupFlush::Queued { .. }), "{flushed:?}");
            sent.extend(fps);
        }
        if idle && ctx.store.alert_notice_groups().await.unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "notices left behind");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    writer.await.unwrap();
    let distinct: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len(), "an alert sent twice: {sent:?}");
    assert_eq!(sent.len(), alerts);
    let s = schedule(&ctx, "g").await;
    assert_eq!((s.due, s.claimed_by), (None, None), "closed at the end");
}

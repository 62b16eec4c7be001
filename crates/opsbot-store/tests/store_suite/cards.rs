//! Interactive cards and remediation admission: cards put once and replaced by
//! compare-and-set, the send's code taken once, one winner per action slot among
//! concurrent claimers (on one store object and on two, like two instances), the
//! hourly limit and cool-down of remediation held under concurrent admission, pruning,
//! and bad keys refused.

use super::harness::Ctx;
use chrono::{DateTime, Duration as Age, SubsecRound, Utc};
use opsbot_store::retention::{prune_cards_periodically, PRUNE_CARDS_LEASE};
use opsbot_store::{connect, Admission, ClaimResult, NewCard, RemediationRun, Store};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

const TEN_MINUTES: Duration = Duration::from_secs(600);
/// How long a test waits for something that should happen soon before failing.
const PATIENCE: Duration = Duration::from_secs(30);

/// Now, at the millisecond precision the store keeps card and run times in.
fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

fn card(task_id: &str, expires_at: DateTime<Utc>) -> NewCard {
    NewCard {
        task_id: task_id.into(),
        channel: "wecom:ops".into(),
        target: r#"{"touser":"zhangsan|lisi"}"#.into(),
        card: r#"{"title":"[P1] HighCPU web-01","buttons":[{"slot":"ack","text":"确认"}]}"#.into(),
        expires_at,
    }
}

fn run(rule: &str, target: &str, at: DateTime<Utc>) -> RemediationRun {
    RemediationRun {
        rule: rule.into(),
        target: target.into(),
        alert: Some(42),
        at,
    }
}

pub async fn cards_are_put_once_and_read_back(ctx: Ctx) {
    let s = &ctx.store;
    let expires = now_ms() + Age::hours(24);
    assert_eq!(s.card_get("al42-5f3a9c0d").await.unwrap(), None);
    s.card_put(&card("al42-5f3a9c0d", expires)).await.unwrap();
    let got = s.card_get("al42-5f3a9c0d").await.unwrap().unwrap();
    assert_eq!(got.task_id, "al42-5f3a9c0d");
    assert_eq!(got.channel, "wecom:ops");
    assert_eq!(got.target, r#"{"touser":"zhangsan|lisi"}"#);
    assert!(got.card.contains("确认"), "{}", got.card);
    assert_eq!(got.version, 1);
    assert_eq!((got.response_code.as_deref(), got.code_at), (None, None));
    assert_eq!(got.expires_at, expires);

    // A retried send puts it again: the row keeps its version, code and claims.
    s.card_set_code("al42-5f3a9c0d", "RC-1", now_ms())
        .await
        .unwrap();
    assert!(s.card_replace("al42-5f3a9c0d", 1, "{}").await.unwrap());
    s.action_claim("al42-5f3a9c0d", "ack", "lisi", Utc::now())
        .await
        .unwrap();
    let mut again = card("al42-5f3a9c0d", expires + Age::hours(1));
    again.card = r#"{"title":"other"}"#.into();
    s.card_put(&again).await.unwrap();
    let kept = s.card_get("al42-5f3a9c0d").await.unwrap().unwrap();
    assert_eq!(kept.version, 2);
    assert_eq!(kept.card, "{}");
    assert_eq!(kept.response_code.as_deref(), Some("RC-1"));
    assert_eq!(kept.expires_at, expires);
    assert_eq!(s.action_claims("al42-5f3a9c0d").await.unwrap().len(), 1);

    // The longest task_id WeCom accepts fits, and so does a large card.
    let longest = "t".repeat(128);
    let mut big = card(&longest, expires);
    big.card = format!("{{\"text\":\"{}\"}}", "卡".repeat(40_000));
    s.card_put(&big).await.unwrap();
    assert_eq!(s.card_get(&longest).await.unwrap().unwrap().card, big.card);
}

pub async fn cards_code_is_taken_once(ctx: Ctx) {
    let s = &ctx.store;
    s.card_put(&card("c1", now_ms() + Age::hours(1)))
        .await
        .unwrap();
    let issued = now_ms() - Age::minutes(5);
    assert_eq!(s.card_take_code("c1", issued).await.unwrap(), None);
    s.card_set_code("c1", "RC-old", issued).await.unwrap();
    // A new code replaces the old one.
    s.card_set_code("c1", "RC-send", issued).await.unwrap();
    let got = s.card_get("c1").await.unwrap().unwrap();
    assert_eq!(got.response_code.as_deref(), Some("RC-send"));
    assert_eq!(got.code_at, Some(issued));
    assert_eq!(
        s.card_take_code("c1", issued).await.unwrap().as_deref(),
        Some("RC-send"),
        "a code issued exactly at `issued_after` counts"
    );
    assert_eq!(
        s.card_take_code("c1", issued).await.unwrap(),
        None,
        "used once"
    );
    let got = s.card_get("c1").await.unwrap().unwrap();
    assert_eq!((got.response_code, got.code_at), (None, None));

    // Too old: issued before `issued_after`, not handed out (and not spent).
    s.card_set_code("c1", "RC-stale", issued).await.unwrap();
    assert_eq!(
        s.card_take_code("c1", issued + Age::milliseconds(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.card_take_code("c1", issued).await.unwrap().as_deref(),
        Some("RC-stale")
    );

    // No card, no code; setting one on an unknown card does nothing.
    s.card_set_code("nope", "RC-x", issued).await.unwrap();
    assert_eq!(s.card_take_code("nope", issued).await.unwrap(), None);
    assert_eq!(s.card_get("nope").await.unwrap(), None);

    // Racing takers on two store objects: exactly one gets the code.
    s.card_set_code("c1", "RC-race", now_ms()).await.unwrap();
    let second = connect(&ctx.url).await.unwrap();
    let start = Arc::new(Barrier::new(8));
    let takers: Vec<_> = (0..8)
        .map(|n| {
            let store = if n % 2 == 0 {
                ctx.store.clone()
            } else {
                second.clone()
            };
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store.card_take_code("c1", issued).await.unwrap()
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in takers {
        got.extend(t.await.unwrap());
    }
    assert_eq!(got, vec!["RC-race".to_string()]);
}

pub async fn cards_are_replaced_by_compare_and_set(ctx: Ctx) {
    let s = &ctx.store;
    s.card_put(&card("c1", now_ms() + Age::hours(1)))
        .await
        .unwrap();
    assert!(s.card_replace("c1", 1, r#"{"v":2}"#).await.unwrap());
    // A writer that read version 1 lost: it re-reads and retries.
    assert!(!s.card_replace("c1", 1, r#"{"v":"lost"}"#).await.unwrap());
    let now = s.card_get("c1").await.unwrap().unwrap();
    assert_eq!((now.version, now.card.as_str()), (2, r#"{"v":2}"#));
    assert!(s
        .card_replace("c1", now.version, r#"{"v":3}"#)
        .await
        .unwrap());
    let now = s.card_get("c1").await.unwrap().unwrap();
    assert_eq!((now.version, now.card.as_str()), (3, r#"{"v":3}"#));
    assert!(!s.card_replace("unknown", 1, "{}").await.unwrap());

    // Concurrent replacers of one version: one wins.
    let second = connect(&ctx.url).await.unwrap();
    let start = Arc::new(Barrier::new(8));
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let store = if n % 2 == 0 {
                ctx.store.clone()
            } else {
                second.clone()
            };
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store
                    .card_replace("c1", 3, &format!("{{\"by\":{n}}}"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for w in writers {
        won += usize::from(w.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(s.card_get("c1").await.unwrap().unwrap().version, 4);
}

/// `n` claimers of one slot, started together, spread over `stores`: exactly one wins
/// and every loser is shown that winner.
async fn race_for_slot(stores: &[Arc<dyn Store>], task_id: &str, slot: &str) {
    const CLAIMERS: usize = 8;
    let start = Arc::new(Barrier::new(CLAIMERS));
    let claimers: Vec<_> = (0..CLAIMERS)
        .map(|n| {
            let store = stores[n % stores.len()].clone();
            let start = start.clone();
            let (task_id, slot) = (task_id.to_string(), slot.to_string());
            tokio::spawn(async move {
                let user = format!("user-{n}");
                start.wait().await;
                let got = store
                    .action_claim(&task_id, &slot, &user, Utc::now())
                    .await
                    .unwrap();
                (user, got)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut seen = Vec::new();
    for c in claimers {
        match c.await.unwrap() {
            (user, ClaimResult::Won) => winners.push(user),
            (_, ClaimResult::Taken(claim)) => seen.push(claim),
        }
    }
    assert_eq!(winners.len(), 1, "winners of {slot}: {winners:?}");
    assert_eq!(seen.len(), CLAIMERS - 1);
    let claims = stores[0].action_claims(task_id).await.unwrap();
    let stored = claims.iter().find(|c| c.slot == slot).unwrap();
    assert_eq!(stored.user, winners[0]);
    for loser_saw in &seen {
        assert_eq!(loser_saw, stored, "a loser sees the winner's claim");
    }
}

pub async fn cards_one_claimer_wins_each_slot(ctx: Ctx) {
    let s = &ctx.store;
    s.card_put(&card("c1", now_ms() + Age::hours(1)))
        .await
        .unwrap();
    // Tasks on one store object, then on two (like two instances).
    race_for_slot(std::slice::from_ref(&ctx.store), "c1", "ack").await;
    let second = connect(&ctx.url).await.unwrap();
    race_for_slot(&[ctx.store.clone(), second], "c1", "silence-1h").await;

    // The loser of a slot sees what the winner did once it is recorded.
    let at = Utc::now().trunc_subsecs(6);
    assert_eq!(
        s.action_claim("c1", "scale", "zhangsan", at).await.unwrap(),
        ClaimResult::Won
    );
    s.action_done("c1", "scale", "已由 zhangsan 执行 #42", Some(42))
        .await
        .unwrap();
    let ClaimResult::Taken(winner) = s
        .action_claim("c1", "scale", "lisi", Utc::now())
        .await
        .unwrap()
    else {
        panic!("the slot is taken");
    };
    assert_eq!(winner.task_id, "c1");
    assert_eq!(winner.user, "zhangsan");
    assert_eq!(winner.at, at);
    assert_eq!(winner.outcome.as_deref(), Some("已由 zhangsan 执行 #42"));
    assert_eq!(winner.job, Some(42));
    let slots: BTreeSet<String> = s
        .action_claims("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.slot)
        .collect();
    assert_eq!(
        slots,
        BTreeSet::from(["ack".into(), "silence-1h".into(), "scale".into()])
    );
    // Slots are per card.
    assert_eq!(
        s.action_claim("c2", "scale", "lisi", Utc::now())
            .await
            .unwrap(),
        ClaimResult::Won
    );
}

pub async fn cards_release_only_own_claim_without_outcome(ctx: Ctx) {
    let s = &ctx.store;
    s.card_put(&card("c1", now_ms() + Age::hours(1)))
        .await
        .unwrap();
    assert_eq!(
        s.action_claim("c1", "run", "zhangsan", Utc::now())
            .await
            .unwrap(),
        ClaimResult::Won
    );
    assert!(
        !s.action_release("c1", "run", "lisi").await.unwrap(),
        "not lisi's"
    );
    assert!(!s.action_release("c1", "other", "zhangsan").await.unwrap());
    assert!(s.action_release("c1", "run", "zhangsan").await.unwrap());
    assert!(
        !s.action_release("c1", "run", "zhangsan").await.unwrap(),
        "once"
    );
    assert!(s.action_claims("c1").await.unwrap().is_empty());

    // Free again: the next click wins it; once it did something, it stays.
    assert_eq!(
        s.action_claim("c1", "run", "lisi", Utc::now())
            .await
            .unwrap(),
        ClaimResult::Won
    );
    s.action_done("c1", "run", "已由 lisi 执行 #7", Some(7))
        .await
        .unwrap();
    assert!(!s.action_release("c1", "run", "lisi").await.unwrap());
    let claims = s.action_claims("c1").await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].user, "lisi");
    assert_eq!(claims[0].job, Some(7));
}

pub async fn remediation_admission_keeps_the_limit_and_cool_down(ctx: Ctx) {
    let s = &ctx.store;
    let t0 = now_ms() - Age::hours(2);
    let at = |minutes: i64| t0 + Age::minutes(minutes);
    let admit = |rule: &'static str, target: &'static str, at: DateTime<Utc>, max: u32| {
        let s = s.clone();
        async move {
            s.remediation_admit(&run(rule, target, at), max, TEN_MINUTES)
                .await
                .unwrap()
        }
    };
    let Admission::Admitted(first) = admit("restart", "systemctl restart a", at(0), 3).await else {
        panic!("the first run is admitted");
    };
    // The same command within the cool-down waits; another command of the rule runs.
    assert_eq!(
        admit("restart", "systemctl restart a", at(1), 3).await,
        Admission::CoolingDown { last: at(0) }
    );
    assert!(matches!(
        admit("restart", "systemctl restart b", at(1), 3).await,
        Admission::Admitted(_)
    ));
    assert!(matches!(
        admit("restart", "systemctl restart c", at(2), 3).await,
        Admission::Admitted(_)
    ));
    // Three in the hour: the limit, checked before the cool-down.
    assert_eq!(
        admit("restart", "systemctl restart d", at(3), 3).await,
        Admission::OverLimit { runs_last_hour: 3 }
    );
    assert_eq!(
        admit("restart", "systemctl restart a", at(5), 3).await,
        Admission::OverLimit { runs_last_hour: 3 }
    );
    // Other rules have limits of their own.
    assert!(matches!(
        admit("scale", "scale web +2", at(3), 3).await,
        Admission::Admitted(_)
    ));
    // Half a minute past an hour after the second run, only the third is in the hour.
    assert!(matches!(
        admit(
            "restart",
            "systemctl restart d",
            at(61) + Age::seconds(30),
            3
        )
        .await,
        Admission::Admitted(_)
    ));
    // Past the cool-down (and with 1 run in its hour) the first command runs again.
    assert!(matches!(
        admit("restart", "systemctl restart a", at(62), 3).await,
        Admission::Admitted(_)
    ));
    // A run another instance stamped later still counts as recent.
    assert_eq!(
        admit("restart", "systemctl restart a", at(50), 10).await,
        Admission::CoolingDown { last: at(62) }
    );
    // No cool-down: the same command again at once; no runs allowed: none.
    for _ in 0..2 {
        assert!(matches!(
            s.remediation_admit(&run("zero", "x", at(0)), 10, Duration::ZERO)
                .await
                .unwrap(),
            Admission::Admitted(_)
        ));
    }
    assert_eq!(
        admit("never", "x", at(0), 0).await,
        Admission::OverLimit { runs_last_hour: 0 }
    );

    // Outcomes, and the runs of a rule since a time, newest first.
    s.remediation_done(first, "job #7", Some(7)).await.unwrap();
    let runs = s.remediation_runs("restart", at(0)).await.unwrap();
    let targets: Vec<&str> = runs.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "systemctl restart a",
            "systemctl restart d",
            "systemctl restart c",
            "systemctl restart b",
            "systemctl restart a"
        ]
    );
    let oldest = runs.last().unwrap();
    assert_eq!(
        (oldest.id, oldest.at, oldest.alert),
        (first, at(0), Some(42))
    );
    assert_eq!(
        (oldest.outcome.as_deref(), oldest.job),
        (Some("job #7"), Some(7))
    );
    assert_eq!((runs[0].outcome.as_deref(), runs[0].job), (None, None));
    assert_eq!(
        s.remediation_runs("restart", at(1) + Age::milliseconds(1))
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(s.remediation_runs("unknown", t0).await.unwrap().is_empty());
}

/// `n` admissions of `rule`, started together on two store objects.
async fn admit_together(
    stores: &[Arc<dyn Store>; 2],
    rule: &str,
    target: impl Fn(usize) -> String,
    max_per_hour: u32,
) -> Vec<Admission> {
    const ADMITTERS: usize = 8;
    let at = now_ms();
    let start = Arc::new(Barrier::new(ADMITTERS));
    let tasks: Vec<_> = (0..ADMITTERS)
        .map(|n| {
            let store = stores[n % 2].clone();
            let start = start.clone();
            let r = run(rule, &target(n), at);
            tokio::spawn(async move {
                start.wait().await;
                store
                    .remediation_admit(&r, max_per_hour, TEN_MINUTES)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

pub async fn remediation_concurrent_admissions_never_exceed_the_limit(ctx: Ctx) {
    let second = connect(&ctx.url).await.unwrap();
    let stores = [ctx.store.clone(), second];
    // Eight commands of one rule at once, three an hour: exactly three run.
    let out = admit_together(&stores, "restart", |n| format!("restart svc-{n}"), 3).await;
    let admitted = out
        .iter()
        .filter(|a| matches!(a, Admission::Admitted(_)))
        .count();
    assert_eq!(admitted, 3, "{out:?}");
    assert!(
        out.iter().all(|a| matches!(
            a,
            Admission::Admitted(_) | Admission::OverLimit { runs_last_hour: 3 }
        )),
        "{out:?}"
    );
    let since = now_ms() - Age::hours(1);
    assert_eq!(
        ctx.store
            .remediation_runs("restart", since)
            .await
            .unwrap()
            .len(),
        3
    );
    // Eight of the same command at once, within the limit: the cool-down lets one run.
    let out = admit_together(&stores, "clean", |_| "rm -rf /tmp/cache".into(), 100).await;
    let admitted = out
        .iter()
        .filter(|a| matches!(a, Admission::Admitted(_)))
        .count();
    assert_eq!(admitted, 1, "{out:?}");
    assert!(
        out.iter()
            .all(|a| matches!(a, Admission::Admitted(_) | Admission::CoolingDown { .. })),
        "{out:?}"
    );
}

pub async fn cards_and_remediation_runs_are_pruned(ctx: Ctx) {
    let s = &ctx.store;
    let now = now_ms();
    s.card_put(&card("old", now - Age::days(2))).await.unwrap();
    s.card_put(&card("recent", now - Age::hours(1)))
        .await
        .unwrap();
    s.card_put(&card("live", now + Age::hours(1)))
        .await
        .unwrap();
    for task_id in ["old", "recent", "live", "ghost"] {
        s.action_claim(task_id, "ack", "lisi", Utc::now())
            .await
            .unwrap();
    }
    assert_eq!(s.cards_prune(now - Age::days(3)).await.unwrap(), 0);
    assert_eq!(s.cards_prune(now - Age::days(1)).await.unwrap(), 1);
    assert_eq!(s.card_get("old").await.unwrap(), None);
    assert!(s.action_claims("old").await.unwrap().is_empty());
    assert!(
        s.action_claims("ghost").await.unwrap().is_empty(),
        "a claim without a card goes too"
    );
    for kept in ["recent", "live"] {
        assert!(s.card_get(kept).await.unwrap().is_some());
        assert_eq!(s.action_claims(kept).await.unwrap().len(), 1);
    }
    // More than one chunk goes in one call.
    for i in 0..1001 {
        s.card_put(&card(&format!("bulk-{i}"), now - Age::hours(2)))
            .await
            .unwrap();
    }
    assert_eq!(s.cards_prune(now).await.unwrap(), 1001 + 1);
    assert!(s.card_get("live").await.unwrap().is_some());

    let old = run("restart", "a", now - Age::days(8));
    let new = run("restart", "b", now - Age::days(1));
    for r in [&old, &new] {
        s.remediation_admit(r, 3, TEN_MINUTES).await.unwrap();
    }
    assert_eq!(s.remediation_prune(now - Age::days(7)).await.unwrap(), 1);
    let left = s
        .remediation_runs("restart", now - Age::days(30))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].target, "b");
}

pub async fn cards_are_pruned_periodically_under_a_lease(ctx: Ctx) {
    let s = ctx.store.clone();
    let now = now_ms();
    s.card_put(&card("expired", now - Age::days(2)))
        .await
        .unwrap();
    s.card_put(&card("kept", now - Age::hours(23)))
        .await
        .unwrap();
    s.remediation_admit(&run("r", "old", now - Age::days(8)), 3, TEN_MINUTES)
        .await
        .unwrap();
    s.remediation_admit(&run("r", "new", now - Age::days(6)), 3, TEN_MINUTES)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(prune_cards_periodically(
        s.clone(),
        "instance-a".into(),
        Duration::from_millis(50),
        stopped,
    ));
    let deadline = Instant::now() + PATIENCE;
    while s.card_get("expired").await.unwrap().is_some()
        || s.remediation_runs("r", now - Age::days(30))
            .await
            .unwrap()
            .len()
            != 1
    {
        assert!(Instant::now() < deadline, "never pruned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        s.card_get("kept").await.unwrap().is_some(),
        "kept a day past expiry"
    );
    // One instance prunes: the lease is taken while the task runs...
    assert!(s
        .lease_take(PRUNE_CARDS_LEASE, "instance-b", Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    stop.send(true).unwrap();
    task.await.unwrap();
    // ...and handed back when it stops.
    assert!(s
        .lease_take(PRUNE_CARDS_LEASE, "instance-b", Duration::from_secs(60))
        .await
        .unwrap()
        .is_some());
}

pub async fn cards_bad_keys_are_refused(ctx: Ctx) {
    let s = &ctx.store;
    let expires = now_ms() + Age::hours(1);
    let too_long = "t".repeat(129);
    for task_id in ["", too_long.as_str()] {
        let err = s.card_put(&card(task_id, expires)).await.unwrap_err();
        assert!(err.is_rejected(), "{err:?}");
        assert!(err.to_string().contains("task_id"), "{err}");
        let err = s.card_get(task_id).await.unwrap_err();
        assert!(err.is_rejected(), "{err:?}");
        let err = s
            .action_claim(task_id, "ack", "lisi", Utc::now())
            .await
            .unwrap_err();
        assert!(err.is_rejected(), "{err:?}");
    }
    // 43 Chinese characters are 129 bytes: WeCom's limit counts bytes.
    let err = s
        .card_put(&card(&"卡".repeat(43), expires))
        .await
        .unwrap_err();
    assert!(err.is_rejected(), "{err:?}");
    let long_slot = "s".repeat(65);
    for slot in ["", long_slot.as_str()] {
        let err = s
            .action_claim("c1", slot, "lisi", Utc::now())
            .await
            .unwrap_err();
        assert!(err.is_rejected(), "{err:?}");
        assert!(err.to_string().contains("slot"), "{err}");
        let err = s.action_release("c1", slot, "lisi").await.unwrap_err();
        assert!(err.is_rejected(), "{err:?}");
    }
    assert_eq!(
        s.action_claim("c1", &"s".repeat(64), "lisi", Utc::now())
            .await
            .unwrap(),
        ClaimResult::Won
    );
    let err = s
        .remediation_admit(&run("", "x", now_ms()), 3, TEN_MINUTES)
        .await
        .unwrap_err();
    assert!(err.is_rejected(), "{err:?}");
    assert!(s.action_claims("c1").await.unwrap().len() == 1);
}

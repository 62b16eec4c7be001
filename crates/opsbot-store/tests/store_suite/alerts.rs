//! Alert cases: de-duplication by fingerprint and what counts as news, raw payloads
//! kept verbatim, acknowledgement once, grouping state flushed into the outbox in one
//! transaction, silences by end time.

use super::harness::Ctx;
use chrono::{Duration, SubsecRound, Utc};
use opsbot_store::alerts::*;
use opsbot_store::{NewOutbox, OutboxQuery, OutboxState};
use std::collections::BTreeMap;
use std::time::Duration as Span;

const ZERO: Span = Span::ZERO;

pub fn alert(fp: &str, status: &str) -> AlertUpsert {
    AlertUpsert {
        fingerprint: fp.into(),
        source: "alertmanager".into(),
        status: status.into(),
        severity: "critical".into(),
        name: "HighCPU".into(),
        summary: "CPU 使用率 97%".into(),
        endpoint: "web-01".into(),
        metric: "cpu.idle".into(),
        labels: BTreeMap::from([("team".to_string(), "运维".to_string())]),
        annotations: BTreeMap::from([("summary".to_string(), "CPU > 90%".to_string())]),
        recipients: vec!["zhangsan".into()],
        parse_error: None,
        starts_at: Utc::now().trunc_subsecs(0),
        ends_at: None,
        notices: vec![notice("ops", "{}")],
    }
}

/// A notice for `route`'s group `group_key`, due at once, no interval.
pub fn notice(route: &str, group_key: &str) -> NewNotice {
    NewNotice {
        route: route.into(),
        group_key: group_key.into(),
        group_wait: std::time::Duration::ZERO,
        group_interval: std::time::Duration::ZERO,
    }
}

pub fn payload(body: &str, alerts: Vec<AlertUpsert>) -> IngestPayload {
    IngestPayload {
        payload: NewAlertPayload {
            source: "alertmanager".into(),
            peer: "127.0.0.1".into(),
            content_type: "application/json".into(),
            body: body.into(),
        },
        alerts,
    }
}

/// Every payload's result, each expected to be stored.
pub fn stored(out: Vec<opsbot_store::Result<IngestedPayload>>) -> Vec<IngestedPayload> {
    out.into_iter()
        .map(|p| p.expect("payload stored"))
        .collect()
}

pub async fn alerts_dedup_by_fingerprint_and_detect_news(ctx: Ctx) {
    let store = ctx.store;
    let news = |out: &[IngestedPayload]| -> Vec<bool> {
        out.iter()
            .flat_map(|p| p.alerts.iter().map(|a| a.news))
            .collect()
    };
    // One batch: a new firing alert, the same again, and a first report already resolved.
    let out = stored(
        store
            .alerts_ingest(&[
                payload("{\"告警\":1}", vec![alert("a", FIRING)]),
                payload("{}", vec![alert("a", FIRING), alert("b", RESOLVED)]),
            ])
            .await
            .unwrap(),
    );
    assert_eq!(news(&out), [true, false, false]);
    assert_eq!(out[0].alerts[0].notices.len(), 1);
    assert!(out[1].alerts[0].notices.is_empty(), "no news, no notice");
    let id = out[0].alerts[0].id;
    assert_eq!(out[1].alerts[0].id, id, "same fingerprint, same row");
    let raw = store
        .alert_payload(out[0].payload_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.body, "{\"告警\":1}");
    assert_eq!(raw.source, "alertmanager");

    let a = store.alert_get(id).await.unwrap().unwrap();
    assert_eq!((a.occurrences, a.status.as_str()), (2, FIRING));
    assert_eq!(a.summary, "CPU 使用率 97%");
    assert_eq!(a.labels["team"], "运维");
    assert_eq!(a.recipients, ["zhangsan"]);
    assert_eq!(a.payload_id, out[1].payload_id, "latest payload");

    assert!(
        matches!(store.alert_ack(id, "lisi").await.unwrap(), AckOutcome::Acked(r) if r.ack_by.as_deref() == Some("lisi"))
    );
    assert!(
        matches!(store.alert_ack(id, "wangwu").await.unwrap(), AckOutcome::AlreadyAcked(r) if r.ack_by.as_deref() == Some("lisi"))
    );
    assert_eq!(
        store.alert_ack(999_999, "x").await.unwrap(),
        AckOutcome::Missing
    );

    // Resolving is news; resolving again is not; firing again is, and clears the ack.
    let mut resolved = alert("a", RESOLVED);
    resolved.ends_at = Some(Utc::now().trunc_subsecs(0));
    let out = stored(
        store
            .alerts_ingest(&[payload("r", vec![resolved.clone(), resolved])])
            .await
            .unwrap(),
    );
    assert_eq!(news(&out), [true, false]);
    let a = store.alert_get(id).await.unwrap().unwrap();
    assert_eq!(a.status, RESOLVED);
    assert!(a.ends_at.is_some());
    assert_eq!(a.ack_by.as_deref(), Some("lisi"), "ack kept while resolved");
    assert_eq!(store.alerts_count(FIRING).await.unwrap(), 0);
    assert_eq!(store.alerts_count(RESOLVED).await.unwrap(), 2);

    let out = stored(
        store
            .alerts_ingest(&[payload("f", vec![alert("a", FIRING)])])
            .await
            .unwrap(),
    );
    assert_eq!(news(&out), [true]);
    let a = store.alert_get(id).await.unwrap().unwrap();
    assert!(a.ack_by.is_none() && a.ack_at.is_none(), "new episode");
    assert_eq!(a.occurrences, 5);

    let firing = store
        .alerts_list(&AlertQuery {
            status: Some(FIRING.into()),
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].id, id);
    let all = store.alerts_list(&AlertQuery::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].id > all[1].id, "newest first");
}

pub async fn alert_groups_flush_into_the_outbox_once(ctx: Ctx) {
    let store = ctx.store;
    let mut other = alert("c", FIRING);
    other.notices = vec![notice("ops", "{}"), notice("dba", "db-01")];
    stored(
        store
            .alerts_ingest(&[payload(
                "x",
                vec![alert("a", FIRING), alert("b", FIRING), other],
            )])
            .await
            .unwrap(),
    );
    let groups = store.alert_notice_groups().await.unwrap();
    let mut keys: Vec<(String, String, u64)> = groups
        .iter()
        .map(|g| (g.route.clone(), g.group_key.clone(), g.count))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            ("dba".to_string(), "db-01".to_string(), 1),
            ("ops".to_string(), "{}".to_string(), 3)
        ]
    );
    let notices = store.alert_notices("ops", "{}").await.unwrap();
    assert_eq!(notices.len(), 3);
    assert!(notices.iter().all(|n| n.status == FIRING));
    assert_eq!(notices[0].alert.fingerprint, "a");

    let done: Vec<i64> = notices.iter().map(|n| n.id).collect();
    let item = |part: &str| NewOutbox {
        channel: "wecom:ops".into(),
        target: "{}".into(),
        body: part.into(),
    };
    let claims = store
        .alert_groups_claim("a", std::time::Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claims.len(), 2, "both groups are due at once");
    let ops = claims.iter().find(|c| c.route == "ops").unwrap();
    let flushed = store
        .alert_notices_flush(ops, &done, &[item("1/2"), item("2/2")], ZERO)
        .await
        .unwrap();
    assert!(
        matches!(&flushed, GroupFlush::Queued { outbox, next_due: None } if outbox.len() == 2),
        "{flushed:?}"
    );
    // The claim went with the flush: the same claim cannot queue the group again.
    assert_eq!(
        store
            .alert_notices_flush(ops, &done, &[item("again")], ZERO)
            .await
            .unwrap(),
        GroupFlush::Fenced
    );
    assert!(store.alert_notices("ops", "{}").await.unwrap().is_empty());
    let groups = store.alert_notice_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].route, "dba");
    let queued = store
        .outbox_list(&OutboxQuery {
            state: Some(OutboxState::Pending),
            ..OutboxQuery::default()
        })
        .await
        .unwrap();
    let bodies: Vec<&str> = queued.iter().map(|i| i.body.as_str()).collect();
    assert_eq!(bodies, ["2/2", "1/2"]);
}

pub async fn silences_last_until_their_end(ctx: Ctx) {
    let store = ctx.store;
    let now = Utc::now().trunc_subsecs(0);
    let long = store
        .silence_insert(&NewSilence {
            matcher: "web-*".into(),
            created_by: "张三".into(),
            ends_at: now + Duration::hours(2),
        })
        .await
        .unwrap();
    store
        .silence_insert(&NewSilence {
            matcher: "db-*".into(),
            created_by: "lisi".into(),
            ends_at: now + Duration::minutes(1),
        })
        .await
        .unwrap();
    assert_eq!(store.silences_active(now).await.unwrap().len(), 2);
    let later = store
        .silences_active(now + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].id, long);
    assert_eq!(later[0].created_by, "张三");
    assert_eq!(later[0].ends_at, now + Duration::hours(2));
}

pub async fn alert_ingest_of_thousands_in_one_batch(ctx: Ctx) {
    let store = ctx.store;
    let batch: Vec<IngestPayload> = (0..1500)
        .map(|i| payload("{}", vec![alert(&format!("fp-{i}"), FIRING)]))
        .collect();
    let out = stored(store.alerts_ingest(&batch).await.unwrap());
    assert_eq!(out.len(), 1500);
    assert!(out.iter().all(|p| p.alerts[0].news));
    assert_eq!(store.alerts_count(FIRING).await.unwrap(), 1500);
    let groups = store.alert_notice_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].count, 1500);
}

/// Status changes are recorded as they are stored: counting an alert's resolutions
/// since a time tells a flapping alert; repeats are no change; pruning goes by age.
pub async fn alert_resolutions_count_flaps_and_are_pruned(ctx: Ctx) {
    let store = ctx.store;
    let before = Utc::now() - Duration::seconds(5);
    let mut id = 0;
    // Fires, resolves, fires, resolves, fires: five changes, two resolutions.
    for status in [FIRING, FIRING, RESOLVED, RESOLVED, FIRING, RESOLVED, FIRING] {
        let out = stored(
            store
                .alerts_ingest(&[payload("{}", vec![alert("flap", status)])])
                .await
                .unwrap(),
        );
        id = out[0].alerts[0].id;
    }
    assert_eq!(store.alert_resolutions(id, before).await.unwrap(), 2);
    let later = Utc::now() + Duration::seconds(5);
    assert_eq!(store.alert_resolutions(id, later).await.unwrap(), 0);
    // Another alert's changes are its own; a first report already resolved is none.
    let out = stored(
        store
            .alerts_ingest(&[payload(
                "{}",
                vec![alert("steady", FIRING), alert("late", RESOLVED)],
            )])
            .await
            .unwrap(),
    );
    assert_eq!(
        store
            .alert_resolutions(out[0].alerts[0].id, before)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.alert_transitions_prune(before).await.unwrap(), 0);
    assert_eq!(store.alert_transitions_prune(later).await.unwrap(), 6);
    assert_eq!(store.alert_resolutions(id, before).await.unwrap(), 0);
}

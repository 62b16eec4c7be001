//! Message ids and audit rows written by many callers at once are group-committed
//! (several per transaction), with the semantics of single writes: each id is new for
//! exactly one caller (also against another process), every audit row gets its own id
//! and reads back as written, and a row the database refuses fails alone.

use super::harness::{Ctx, Kind};
use chrono::{SubsecRound, Utc};
use opsbot_core::{AuditEntry, AuditResult};
use opsbot_store::{connect, AuditQuery};
use std::collections::HashMap;

fn entry(user: &str, text: String) -> AuditEntry {
    AuditEntry {
        id: 0,
        at: Utc::now().trunc_subsecs(3),
        user: user.into(),
        channel: "wecom:ops".into(),
        chat: None,
        text,
        command: Some("概况".into()),
        result: AuditResult::Ok,
        message: "资源池概况".into(),
        duration_ms: 1,
        job_id: None,
    }
}

pub async fn concurrent_ids_and_audit_rows_keep_single_write_semantics(ctx: Ctx) {
    let s = ctx.store.clone();
    // Seen before by another process: a retry after a crash.
    let other = connect(&ctx.url).await.unwrap();
    assert!(other.mark_processed("wecom:ops", "seen").await.unwrap());

    // 60 ids, each sent twice (a retry racing its original), plus the old one, plus
    // 60 audit rows, all at once: they share transactions.
    let mut marks = Vec::new();
    for i in 0..120 {
        let (s, id) = (s.clone(), format!("m{}", i % 60));
        marks.push(tokio::spawn(async move {
            (
                id.clone(),
                s.mark_processed("wecom:ops", &id).await.unwrap(),
            )
        }));
    }
    let seen = {
        let s = s.clone();
        tokio::spawn(async move { s.mark_processed("wecom:ops", "seen").await.unwrap() })
    };
    let audits: Vec<_> = (0..60)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let e = entry("zhangsan", format!("概况 {i}"));
                let id = s.append_audit(&e).await.unwrap();
                (id, e)
            })
        })
        .collect();

    let mut wins: HashMap<String, usize> = HashMap::new();
    for t in marks {
        let (id, fresh) = t.await.unwrap();
        *wins.entry(id).or_default() += usize::from(fresh);
    }
    assert_eq!(wins.len(), 60);
    assert!(wins.values().all(|&n| n == 1), "{wins:?}");
    assert!(!seen.await.unwrap(), "an id another process recorded");
    assert!(!other.mark_processed("wecom:ops", "m7").await.unwrap());

    let mut written = HashMap::new();
    for t in audits {
        let (id, mut e) = t.await.unwrap();
        e.id = id;
        assert!(written.insert(id, e).is_none(), "audit id {id} given twice");
    }
    let log = s.audit_log(&AuditQuery::default()).await.unwrap();
    assert_eq!(log.len(), 60);
    for e in log {
        assert_eq!(written.get(&e.id), Some(&e));
    }
}

pub async fn a_refused_audit_row_fails_alone_in_its_batch(ctx: Ctx) {
    // SQLite keeps a user name of any length; PostgreSQL and MySQL refuse it.
    let refuses = ctx.kind != Kind::Sqlite;
    let s = ctx.store.clone();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let user = if i == 17 {
                    "x".repeat(1000)
                } else {
                    format!("u{i}")
                };
                let audit = s.append_audit(&entry(&user, format!("t{i}"))).await;
                let mark = s.mark_processed("wecom:ops", &format!("r{i}")).await;
                (i, audit, mark)
            })
        })
        .collect();
    for t in tasks {
        let (i, audit, mark) = t.await.unwrap();
        assert!(mark.unwrap(), "id r{i}");
        match (i, refuses) {
            (17, true) => assert!(audit.unwrap_err().is_rejected()),
            _ => assert!(audit.unwrap() > 0, "row {i}"),
        }
    }
    let log = s.audit_log(&AuditQuery::default()).await.unwrap();
    assert_eq!(log.len(), if refuses { 39 } else { 40 });
}

//! SQLite writers wait their turn. One process's writes queue behind each other, and a
//! write transaction takes the file's write lock before it reads, so a writer of
//! another process (a CLI run beside `opsbot serve`) makes it wait for the busy
//! timeout instead of failing with `database is locked` (`SQLITE_BUSY`, or
//! `SQLITE_BUSY_SNAPSHOT` for a read snapshot that went stale before its write).

use super::alerts::{alert, payload};
use super::fixtures::inventory;
use chrono::Utc;
use opsbot_core::{AuditEntry, AuditResult};
use opsbot_store::alerts::FIRING;
use opsbot_store::{connect, NewJob, NewOutbox, NewStream, Store};
use sea_orm::sqlx::{self, Connection as _, Executor as _};
use std::sync::Arc;
use std::time::Duration;

async fn sqlite_store() -> (tempfile::TempDir, String, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/opsbot.db", dir.path().display());
    let store = connect(&url).await.unwrap();
    (dir, url, store)
}

fn audit(text: &str) -> AuditEntry {
    AuditEntry {
        id: 0,
        at: Utc::now(),
        user: "zhangsan".into(),
        channel: "wecom".into(),
        chat: None,
        text: text.into(),
        command: Some("概况".into()),
        result: AuditResult::Ok,
        message: String::new(),
        duration_ms: 1,
        job_id: None,
    }
}

/// One round of every kind of write the server does at once: a read-then-write
/// transaction (alerts, outbox claim, job sweep) and single statements (callback ids,
/// audit, streams, jobs, outbox).
async fn writes(store: &Arc<dyn Store>, who: &str, round: usize) -> Vec<String> {
    let mut errors = Vec::new();
    let mut note = |what: &str, r: opsbot_store::Result<()>| {
        if let Err(e) = r {
            errors.push(format!("{who} round {round} {what}: {e}"));
        }
    };
    let shared = format!("{who}-shared");
    let own = format!("{who}-{round}");
    note(
        "alerts",
        store
            .alerts_ingest(&[payload(
                "{}",
                vec![alert(&shared, FIRING), alert(&own, FIRING)],
            )])
            .await
            .and_then(|mut out| out.remove(0))
            .map(drop),
    );
    note(
        "callback id",
        store
            .mark_processed("wecom:ops", &format!("{who}-{round}"))
            .await
            .map(drop),
    );
    note("audit", store.append_audit(&audit(&own)).await.map(drop));
    note(
        "stream",
        store
            .stream_open(&NewStream {
                channel: "wecom-bot:ops".into(),
                stream_id: own.clone(),
                msg_id: own.clone(),
                asker: "zhangsan".into(),
                chat: None,
                response_url: None,
            })
            .await
            .map(drop),
    );
    note(
        "outbox push",
        store
            .outbox_push(&NewOutbox {
                channel: "wecom:ops".into(),
                target: "zhangsan".into(),
                body: own.clone(),
            })
            .await
            .map(drop),
    );
    note(
        "outbox claim",
        store
            .outbox_claim("wecom:", who, Duration::from_secs(30), 5)
            .await
            .map(drop),
    );
    note(
        "job",
        store
            .create_job(&NewJob {
                owner: who.into(),
                user: "zhangsan".into(),
                channel: "wecom".into(),
                chat: None,
                command: "开机".into(),
                text: own.clone(),
                message: String::new(),
                target: None,
            })
            .await
            .map(drop),
    );
    note(
        "job sweep",
        store
            .interrupt_jobs(
                &opsbot_store::InterruptFilter::Owner(format!("{who}-gone")),
                "x",
            )
            .await
            .map(drop),
    );
    errors
}

/// Two store handles on one file (two processes' worth), each with several tasks
/// writing at once: every write commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_two_stores_all_commit() {
    let (_dir, url, first) = sqlite_store().await;
    let second = connect(&url).await.unwrap();
    let mut tasks = Vec::new();
    for (s, store) in [first.clone(), second].into_iter().enumerate() {
        for t in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let who = format!("s{s}t{t}");
                let mut errors = Vec::new();
                for round in 0..12 {
                    errors.extend(writes(&store, &who, round).await);
                }
                errors
            }));
        }
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    assert!(
        errors.is_empty(),
        "{} failed writes:\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert_eq!(
        first.alerts_count(FIRING).await.unwrap(),
        12 * (12 + 1),
        "every alert of every round is stored"
    );
}

/// Another process holds the write lock (as `BEGIN IMMEDIATE` does): every kind of
/// write waits for it and then commits, none fails at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_for_a_writer_of_another_process() {
    let (dir, _url, store) = sqlite_store().await;
    // Something to read first in the transactions below.
    store
        .apply_inventory("sim", &inventory("sim"), "sync")
        .await
        .unwrap();
    writes(&store, "warm", 0).await;

    let file = dir.path().join("opsbot.db");
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    other.execute("BEGIN IMMEDIATE").await.unwrap();
    other
        .execute("INSERT INTO provider_state (key, value, updated_at) VALUES ('other', 'x', '2026-01-01T00:00:00Z')")
        .await
        .unwrap();

    let writer = store.clone();
    let mut work = tokio::spawn(async move {
        let mut errors = writes(&writer, "w", 1).await;
        let mut inv = inventory("sim");
        inv.vms[0].cpu += 1;
        if let Err(e) = writer.apply_inventory("sim", &inv, "sync").await {
            errors.push(format!("sync: {e}"));
        }
        errors
    });
    // Released after a second, or as soon as the writes gave up (the failure this
    // test is about): a write that waits is still waiting then.
    let early = tokio::select! {
        r = &mut work => Some(r.unwrap()),
        _ = tokio::time::sleep(Duration::from_secs(1)) => None,
    };
    other.execute("COMMIT").await.unwrap();
    let errors = match early {
        Some(errors) => errors,
        None => work.await.unwrap(),
    };
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// A group commit on SQLite is one multi-statement command outside sea-orm's
/// transactions, so it must clean up after itself: a batch the database refuses midway
/// (here a trigger refuses one audit row) is rolled back whole, its ops are written
/// again one by one (only the refused row fails), and no transaction is left open on
/// a pooled connection (another process can take the write lock afterwards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_group_commit_rolls_back_and_leaves_the_file_writable() {
    let (_dir, url, store) = sqlite_store().await;
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    other
        .execute(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON audit_log WHEN NEW.text = 'refuse me' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .await
        .unwrap();
    // Hold the write lock while the writes queue up, so they meet in one batch.
    other.execute("BEGIN IMMEDIATE").await.unwrap();
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (store, started) = (store.clone(), started.clone());
            tokio::spawn(async move {
                let text = if i == 23 {
                    "refuse me".to_string()
                } else {
                    format!("概况 {i}")
                };
                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let audit = store.append_audit(&audit(&text)).await;
                let mark = store.mark_processed("wecom", &format!("g{i}")).await;
                (i, audit, mark)
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while started.load(std::sync::atomic::Ordering::SeqCst) < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writers did not start"
        );
        tokio::task::yield_now().await;
    }
    other.execute("COMMIT").await.unwrap();
    for t in tasks {
        let (i, audit, mark) = t.await.unwrap();
        assert!(mark.unwrap(), "id g{i} is new");
        match i {
            23 => assert!(audit.is_err(), "the refused row"),
            _ => assert!(audit.unwrap() > 0, "row {i}"),
        }
    }
    let log = store
        .audit_log(&opsbot_store::AuditQuery::default())
        .await
        .unwrap();
    assert_eq!(log.len(), 39);
    assert!(log.iter().all(|e| e.text != "refuse me"));
    // Nothing left holding the file: another connection can write now (a connection
    // the failed batch used is closed on the pool's side, so allow it a moment).
    other.execute("PRAGMA busy_timeout = 0").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while other.execute("BEGIN IMMEDIATE").await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "a failed batch left the write lock held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    other.execute("ROLLBACK").await.unwrap();
    // And the store goes on group-committing.
    assert!(store.mark_processed("wecom", "after").await.unwrap());
    assert!(store.append_audit(&audit("after")).await.unwrap() > 0);
}

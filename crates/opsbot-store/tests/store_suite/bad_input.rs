//! Bad input never breaks others: text the database cannot store is cleaned the same
//! way on every backend (PostgreSQL refuses NUL), a payload the database refuses fails
//! alone while the rest of its batch is stored, and errors name no database.

use super::alerts::{alert, payload, stored};
use super::harness::{Ctx, Kind};
use chrono::Utc;
use opsbot_core::{AuditEntry, AuditResult};
use opsbot_store::alerts::FIRING;
use opsbot_store::{
    AuditQuery, NewOutbox, NewStream, OutboxQuery, PoolStore, SeaStore, StreamOpened,
};
use sea_orm::sqlx::{self, Connection as _, Executor as _};
use std::collections::BTreeMap;

const NUL: char = '\0';
const CLEANED: char = '\u{FFFD}';

pub async fn text_with_nul_is_stored_cleaned_on_every_backend(ctx: Ctx) {
    let s = &ctx.store;
    // An alert: columns cleaned, JSON columns keep it (escaped as \u0000).
    let mut poison = alert("poison", FIRING);
    poison.name = format!("poison{NUL}");
    poison.summary = format!("a{NUL}b");
    poison.labels = BTreeMap::from([("k".to_string(), format!("v{NUL}"))]);
    let out = stored(
        s.alerts_ingest(&[payload(
            &format!("{{\"name\":\"poison{NUL}\"}}"),
            vec![poison],
        )])
        .await
        .unwrap(),
    );
    let a = s.alert_get(out[0].alerts[0].id).await.unwrap().unwrap();
    assert_eq!(a.name, format!("poison{CLEANED}"));
    assert_eq!(a.summary, format!("a{CLEANED}b"));
    assert_eq!(a.labels["k"], format!("v{NUL}"));
    let body = s
        .alert_payload(out[0].payload_id)
        .await
        .unwrap()
        .unwrap()
        .body;
    assert_eq!(body, format!("{{\"name\":\"poison{CLEANED}\"}}"));

    // A robot stream, found again by the same (uncleaned) message id.
    let stream = |id: &str| NewStream {
        channel: "wecom-bot:ops".into(),
        stream_id: id.into(),
        msg_id: format!("msg{NUL}1"),
        asker: format!("zhang{NUL}san"),
        chat: None,
        response_url: None,
    };
    assert!(matches!(
        s.stream_open(&stream("s1")).await.unwrap(),
        StreamOpened::New(_)
    ));
    assert!(s
        .stream_fill("wecom-bot:ops", "s1", &format!("概况{NUL}"), None, false)
        .await
        .unwrap());
    let StreamOpened::Existing(again) = s.stream_open(&stream("s2")).await.unwrap() else {
        panic!("a retry of the message finds its stream");
    };
    assert_eq!(again.stream_id, "s1");
    assert_eq!(again.content, format!("概况{CLEANED}"));
    assert_eq!(again.asker, format!("zhang{CLEANED}san"));

    // Callback ids, audit, outbox, provider state.
    assert!(s
        .mark_processed("wecom:ops", &format!("id{NUL}"))
        .await
        .unwrap());
    assert!(!s
        .mark_processed("wecom:ops", &format!("id{NUL}"))
        .await
        .unwrap());
    s.append_audit(&AuditEntry {
        id: 0,
        at: Utc::now(),
        user: "zhangsan".into(),
        channel: "wecom".into(),
        chat: None,
        text: format!("概况{NUL}"),
        command: None,
        result: AuditResult::Invalid,
        message: String::new(),
        duration_ms: 0,
        job_id: None,
    })
    .await
    .unwrap();
    let log = s.audit_log(&AuditQuery::default()).await.unwrap();
    assert_eq!(log[0].text, format!("概况{CLEANED}"));
    s.outbox_push(&NewOutbox {
        channel: "wecom:ops".into(),
        target: "zhangsan".into(),
        body: format!("hi{NUL}"),
    })
    .await
    .unwrap();
    let queued = s.outbox_list(&OutboxQuery::default()).await.unwrap();
    assert_eq!(queued[0].body, format!("hi{CLEANED}"));
    s.put_state(&format!("k{NUL}"), &format!("v{NUL}"))
        .await
        .unwrap();
    assert_eq!(
        s.get_state(&format!("k{NUL}")).await.unwrap(),
        Some(format!("v{CLEANED}"))
    );
}

/// Runs `sql` on the test database itself (not through the store).
async fn exec(ctx: &Ctx, sql: &str) {
    match ctx.kind {
        Kind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&ctx.url).await.unwrap();
            c.execute(sql).await.unwrap();
            c.close().await.unwrap();
        }
        Kind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&ctx.url).await.unwrap();
            c.execute(sql).await.unwrap();
            c.close().await.unwrap();
        }
        Kind::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(&ctx.url).await.unwrap();
            c.execute(sql).await.unwrap();
            c.close().await.unwrap();
        }
    }
}

/// Makes the database itself refuse any alert named `poison` (a trigger): a payload
/// that fails for a reason the store cannot foresee.
async fn refuse_poison(ctx: &Ctx) {
    match ctx.kind {
        Kind::Sqlite => {
            exec(ctx, "CREATE TRIGGER refuse_poison BEFORE INSERT ON alert WHEN NEW.name = 'poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END").await
        }
        Kind::Postgres => {
            exec(ctx, "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN IF NEW.name = 'poison' THEN RAISE EXCEPTION 'poison refused' USING ERRCODE = '23514'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql").await;
            exec(ctx, "CREATE TRIGGER refuse_poison BEFORE INSERT ON alert FOR EACH ROW EXECUTE FUNCTION refuse_poison()").await
        }
        Kind::Mysql => {
            exec(ctx, "CREATE TRIGGER refuse_poison BEFORE INSERT ON alert FOR EACH ROW BEGIN IF NEW.name = 'poison' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poison refused'; END IF; END").await
        }
    }
}

pub async fn a_refused_payload_does_not_take_its_batch_down(ctx: Ctx) {
    refuse_poison(&ctx).await;
    let s = &ctx.store;
    let mut poison = alert("p", FIRING);
    poison.name = "poison".into();
    let batch = vec![
        payload("{}", vec![alert("good-1", FIRING)]),
        payload(
            "{\"name\":\"poison\"}",
            vec![alert("good-2", FIRING), poison.clone()],
        ),
        payload("{}", vec![alert("good-3", FIRING)]),
    ];
    let out = s.alerts_ingest(&batch).await.unwrap();
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    let err = out[1].as_ref().unwrap_err();
    assert!(err.is_rejected(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("refused the data while storing alerts")
            && msg.contains("rule of the database"),
        "{msg}"
    );
    // The refused payload left nothing behind, not even its good alert.
    assert_eq!(s.alerts_count(FIRING).await.unwrap(), 2);
    let groups = s.alert_notice_groups().await.unwrap();
    assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), 2);

    // Alone, it is refused the same way; after it, the store works on.
    let out = s
        .alerts_ingest(&[payload("{}", vec![poison])])
        .await
        .unwrap();
    assert!(out[0].as_ref().is_err_and(|e| e.is_rejected()), "{out:?}");
    stored(
        s.alerts_ingest(&[payload("{}", vec![alert("good-4", FIRING)])])
            .await
            .unwrap(),
    );
    assert_eq!(s.alerts_count(FIRING).await.unwrap(), 3);
}

/// The text of an outage error reaches alert senders and chat: it names the backend
/// and what failed, never the URL, host or database.
pub async fn outage_errors_name_no_database(ctx: Ctx) {
    let store = SeaStore::open(&ctx.url).await.unwrap();
    let other = store.clone();
    store.close().await; // the pool is shared: `other` has no connections left
    let err = other.pool_version().await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let msg = err.to_string();
    let database = ctx
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    assert!(
        msg.starts_with(other.backend())
            && !msg.contains("://")
            && !msg.contains("127.0.0.1")
            && !msg.contains(database),
        "{msg}"
    );
}

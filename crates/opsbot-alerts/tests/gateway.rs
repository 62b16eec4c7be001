//! The gateway on a real SQLite store, without WeCom: what reaches the outbox for
//! new, repeated, resolved and silenced alerts, acknowledgement notices, and the dead
//! letters the desk lists.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_alerts::config::AlertsConfig;
use opsbot_alerts::silence::Silences;
use opsbot_alerts::{Gateway, Source};
use opsbot_core::{Acked, AlertDesk};
use opsbot_store::{OutboxItem, OutboxQuery, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
group_wait = "0s"
group_interval = "0s"
timezone = "+08:00"
[sources.generic]
token = "generic-token"
[[robots]]
name = "dba"
key = "robot-key"
[[routes]]
name = "db"
labels = { team = "dba" }
robots = ["dba"]
send_resolved = false
[default]
app = "ops"
users = ["oncall"]
alert_recipients = true
"#;

struct World {
    store: Arc<dyn Store>,
    gateway: Arc<Gateway>,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/a.db", dir.path().display()))
        .await
        .unwrap();
    let config: AlertsConfig = toml::from_str(CONFIG).unwrap();
    let settings = Arc::new(config.compile(&["ops"]).unwrap());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let silences = Arc::new(Silences::new(store.clone()));
    let (gateway, _task) = Gateway::start(
        settings,
        silences,
        store.clone(),
        store.clone(),
        None,
        None,
        rx,
    );
    World {
        store,
        gateway,
        _stop: stop,
        _dir: dir,
    }
}

async fn post(w: &World, body: &str) -> opsbot_alerts::Ingested {
    w.gateway
        .ingest(
            Source::Generic,
            "127.0.0.1",
            "application/json",
            "",
            body.as_bytes(),
        )
        .await
        .unwrap()
}

async fn outbox(w: &World) -> Vec<OutboxItem> {
    let mut items = w.store.outbox_list(&OutboxQuery::default()).await.unwrap();
    items.reverse();
    items
}

/// Waits until the outbox holds `n` items (the notifier runs in its own task).
async fn outbox_of(w: &World, n: usize) -> Vec<OutboxItem> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items = outbox(w).await;
        if items.len() >= n {
            assert_eq!(items.len(), n, "{items:#?}");
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "outbox has {} of {n}: {items:#?}",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn no_open_groups(w: &World) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !w.store.alert_notice_groups().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "groups stay open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn news_repeats_resolutions_silences_and_acks() {
    let w = world().await;
    // A firing alert for the DBA robot, and one for the default route naming a person.
    let db = post(
        &w,
        r#"{"name":"DiskFull","endpoint":"db-01","labels":{"team":"dba"}}"#,
    )
    .await;
    assert_eq!(db.news, 1);
    let web = post(
        &w,
        r#"{"name":"HighLoad","endpoint":"web-01","to":["zhangsan"]}"#,
    )
    .await;
    let items = outbox_of(&w, 2).await;
    let robot = items
        .iter()
        .find(|i| i.channel == "wecom:robot/dba")
        .unwrap();
    assert_eq!(robot.target, r#"{"to":"robot"}"#);
    assert!(
        robot.body.contains("markdown") && robot.body.contains("DiskFull"),
        "{}",
        robot.body
    );
    let app = items.iter().find(|i| i.channel == "wecom:ops").unwrap();
    assert!(
        app.target.contains(r#""users":["oncall","zhangsan"]"#),
        "{}",
        app.target
    );
    assert!(app.body.contains(r#""type":"text""#) && app.body.contains("HighLoad @web-01"));

    // A repeat is not news; the DBA route does not want resolutions.
    assert_eq!(
        post(
            &w,
            r#"{"name":"HighLoad","endpoint":"web-01","to":["zhangsan"]}"#
        )
        .await
        .news,
        0
    );
    let resolved = post(
        &w,
        r#"{"name":"DiskFull","endpoint":"db-01","labels":{"team":"dba"},"status":"resolved"}"#,
    )
    .await;
    assert_eq!(resolved.news, 1);
    no_open_groups(&w).await;
    assert_eq!(outbox(&w).await.len(), 2);

    // Silenced from chat: stored and listed, not announced.
    let desk = w.gateway.desk();
    let reply = desk.silence("web-*", 60, "lisi").await.unwrap();
    assert_eq!(reply.covered, 1, "{reply:?}");
    let quiet = post(&w, r#"{"name":"DiskSlow","endpoint":"web-02"}"#).await;
    assert_eq!(quiet.news, 1);
    no_open_groups(&w).await;
    assert_eq!(outbox(&w).await.len(), 2);
    let page = desk.firing(0, 10).await.unwrap();
    assert_eq!(page.total, 2);
    let lines: Vec<String> = page
        .rows
        .iter()
        .map(opsbot_engine::render::desk::firing)
        .collect();
    assert!(
        lines[0].starts_with(&format!("#{} 🔵 DiskSlow @web-02", quiet.alerts[0])),
        "{:?}",
        lines
    );
    assert!(desk.silence("a=[", 10, "x").await.is_err());

    // Acknowledged: the route hears who; a second ack says who was first.
    let id = web.alerts[0].to_string();
    let reply = desk.ack(&id, "zhangsan").await.unwrap();
    assert!(
        matches!(&reply, Acked::Now { told, .. } if told.contains(&"default".to_string())),
        "{reply:?}"
    );
    let items = outbox(&w).await;
    assert_eq!(items.len(), 3);
    assert!(
        items[2].body.contains(&format!(
            "✅ 告警 #{id} HighLoad @web-01 已由 zhangsan 确认"
        )),
        "{}",
        items[2].body
    );
    assert!(matches!(
        desk.ack(&format!("#{id}"), "lisi").await.unwrap(),
        Acked::Already { by: Some(by), at: Some(_), .. } if by == "zhangsan"
    ));
    assert!(desk.ack("999", "lisi").await.is_err());
    assert!(desk.ack("abc", "lisi").await.is_err());
    assert_eq!(desk.firing_count().await.unwrap(), 2);

    // A message WeCom refused for good is listed with its reason (the test stands in
    // for the delivery worker that claimed it).
    let claimed = w
        .store
        .outbox_claim(&items[0].channel, "test-worker", Duration::from_secs(60), 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, items[0].id);
    assert!(w
        .store
        .outbox_dead(
            items[0].id,
            claimed[0].claim.as_ref().unwrap(),
            "message/send: every recipient is invalid (errcode 81013: user invalid)",
        )
        .await
        .unwrap());
    let dead = desk.dead_letters(10).await.unwrap();
    assert_eq!(dead.total, 1);
    let lines: Vec<String> = dead
        .rows
        .iter()
        .map(opsbot_engine::render::desk::dead_letter)
        .collect();
    assert!(lines[0].contains("81013"), "{:?}", lines);
    let api = opsbot_alerts::query::dead_letters(w.store.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(api.len(), 1);
    let (alert, raw) = opsbot_alerts::query::alert(w.store.as_ref(), web.alerts[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alert.ack_by.as_deref(), Some("zhangsan"));
    assert!(raw.unwrap().body.contains("HighLoad"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_unparsed_alerts() {
    let w = world().await;
    let peer = "127.0.0.1".parse().unwrap();
    assert_eq!(
        w.gateway
            .authorize("generic", peer, Some("generic-token"))
            .unwrap(),
        Source::Generic
    );
    assert_eq!(
        w.gateway
            .authorize("generic", peer, Some("wrong"))
            .unwrap_err()
            .status(),
        401
    );
    assert_eq!(
        w.gateway
            .authorize("generic", peer, None)
            .unwrap_err()
            .status(),
        401
    );
    assert_eq!(
        w.gateway
            .authorize("zabbix", peer, Some("generic-token"))
            .unwrap_err()
            .status(),
        404
    );
    assert_eq!(
        w.gateway
            .authorize("nagios", peer, None)
            .unwrap_err()
            .status(),
        404
    );
    let e = w
        .gateway
        .ingest(Source::Generic, "127.0.0.1", "", "", b"{\"alerts\":[{}]}")
        .await
        .unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(
        w.store
            .alerts_list(&Default::default())
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );
}

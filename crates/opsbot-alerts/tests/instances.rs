//! Several instances' gateways on one store (each its own connection, as separate
//! processes would have): alerts of one group received by different instances go out
//! as one message per window, and a group claimed by an instance that died before
//! sending it is sent by another after the claim's lease, once. On a SQLite file, and
//! on PostgreSQL / MySQL when `OPSBOT_TEST_POSTGRES_URL` / `OPSBOT_TEST_MYSQL_URL` are
//! set (a fresh database each, made and dropped with `psql` / `mysql`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use chrono::Utc;
use opsbot_alerts::config::AlertsConfig;
use opsbot_alerts::silence::Silences;
use opsbot_alerts::{Gateway, Source};
use opsbot_store::alerts::GroupFlush;
use opsbot_store::{OutboxItem, OutboxQuery, Store};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Long enough for a test to post a handful of alerts within it, even on a busy machine.
const GROUP_WAIT: Duration = Duration::from_millis(800);

fn config(wait: Duration) -> String {
    let ms = wait.as_millis();
    format!(
        r#"
group_wait = "{ms}ms"
group_interval = "{ms}ms"
[sources.generic]
token = "generic-token"
[[robots]]
name = "ops"
key = "robot-key"
[default]
robots = ["ops"]
"#
    )
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

/// A database several instances open, gone at the end.
struct Database {
    url: String,
    drop: Option<(Kind, String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Database {
    /// `None` (the test skips) when the backend's server is not configured or reachable.
    fn create(kind: Kind) -> Option<Database> {
        static N: AtomicU32 = AtomicU32::new(0);
        let (var, fix) = match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                return Some(Database {
                    url: format!("sqlite://{}/opsbot.db", dir.path().display()),
                    drop: None,
                    _dir: Some(dir),
                });
            }
            Kind::Postgres => ("OPSBOT_TEST_POSTGRES_URL", opsbot_testkit::fix::POSTGRES),
            Kind::Mysql => ("OPSBOT_TEST_MYSQL_URL", opsbot_testkit::fix::MARIADB),
        };
        let Ok(admin) = std::env::var(var) else {
            return opsbot_testkit::skip(format!("{var} is not set"), fix);
        };
        let name = format!(
            "opsbot_instances_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = admin_sql(kind, &admin, &format!("CREATE DATABASE {name}")) {
            return opsbot_testkit::skip(
                format!(
                    "cannot create a database at {}: {e}",
                    opsbot_testkit::redact_url(&admin)
                ),
                fix,
            );
        }
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Some(Database {
            url: format!("{base}/{name}"),
            drop: Some((kind, admin.clone(), name)),
            _dir: None,
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((kind, admin, name)) = self.drop.take() {
            let force = if matches!(kind, Kind::Postgres) {
                " WITH (FORCE)"
            } else {
                ""
            };
            if let Err(e) = admin_sql(
                kind,
                &admin,
                &format!("DROP DATABASE IF EXISTS {name}{force}"),
            ) {
                eprintln!("could not drop test database {name}: {e}");
            }
        }
    }
}

/// Runs `sql` through the backend's command-line client on the admin URL.
fn admin_sql(kind: Kind, admin: &str, sql: &str) -> Result<(), String> {
    let out = match kind {
        Kind::Postgres => Command::new("psql").args([admin, "-q", "-c", sql]).output(),
        Kind::Mysql => {
            // mysql://user[:password]@host[:port]/db
            let rest = admin.split("://").nth(1).unwrap_or_default();
            let (auth, host) = rest.split_once('@').unwrap_or(("root", rest));
            let host = host.split('/').next().unwrap_or("127.0.0.1");
            let (host, port) = host.split_once(':').unwrap_or((host, "3306"));
            let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
            let mut cmd = Command::new("mysql");
            cmd.args(["-h", host, "-P", port, "-u", user, "-e", sql]);
            if !password.is_empty() {
                cmd.env("MYSQL_PWD", password);
            }
            cmd.output()
        }
        Kind::Sqlite => return Ok(()),
    }
    .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// One instance: its own connection to the store, gateway and notifier.
struct Instance {
    store: Arc<dyn Store>,
    gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    notifier: JoinHandle<()>,
}

async fn instance(db: &Database, wait: Duration) -> Instance {
    let store = opsbot_store::connect(&db.url).await.unwrap();
    let config: AlertsConfig = toml::from_str(&config(wait)).unwrap();
    let mut settings = config.compile(&[]).unwrap();
    settings.group_poll = Duration::from_millis(50);
    settings.group_lease = Duration::from_secs(5);
    let (stop, rx) = watch::channel(false);
    let silences = Arc::new(Silences::new(store.clone()));
    let (gateway, notifier) = Gateway::start(
        Arc::new(settings),
        silences,
        store.clone(),
        store.clone(),
        None,
        None,
        rx,
    );
    Instance {
        store,
        gateway,
        stop,
        notifier,
    }
}

async fn post(i: &Instance, name: &str) {
    let body = format!(r#"{{"name":"{name}","endpoint":"web-01"}}"#);
    let out = i
        .gateway
        .ingest(
            Source::Generic,
            "127.0.0.1",
            "application/json",
            "",
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(out.news, 1);
}

async fn outbox(store: &Arc<dyn Store>) -> Vec<OutboxItem> {
    let mut items = store.outbox_list(&OutboxQuery::default()).await.unwrap();
    items.reverse();
    items
}

/// Waits until the outbox holds at least `n` items and no group is open (every
/// message the alerts so far will make is queued), then returns the outbox.
async fn settled(store: &Arc<dyn Store>, n: usize) -> Vec<OutboxItem> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items = outbox(store).await;
        if items.len() >= n && store.alert_notice_groups().await.unwrap().is_empty() {
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

/// Which of `names` a message lists.
fn listed<'a>(item: &OutboxItem, names: &[&'a str]) -> Vec<&'a str> {
    names
        .iter()
        .copied()
        .filter(|n| item.body.contains(n))
        .collect()
}

async fn one_message_per_window(kind: Kind) {
    let Some(db) = Database::create(kind) else {
        return;
    };
    let a = instance(&db, GROUP_WAIT).await;
    let b = instance(&db, GROUP_WAIT).await;
    let windows = [
        ["Load-w1-a", "Load-w1-b", "Load-w1-c", "Load-w1-d"],
        ["Load-w2-a", "Load-w2-b", "Load-w2-c", "Load-w2-d"],
    ];
    for (w, names) in windows.iter().enumerate() {
        let first = Utc::now();
        // Alternately to each instance, as a load balancer would.
        for (i, name) in names.iter().enumerate() {
            post(if i % 2 == 0 { &a } else { &b }, name).await;
        }
        let posting = (Utc::now() - first).to_std().unwrap_or_default();
        assert!(
            posting < GROUP_WAIT,
            "posting took {posting:?}, longer than the group's wait: the machine is too busy for this test"
        );
        let items = settled(&a.store, w + 1).await;
        assert_eq!(items.len(), w + 1, "one message per window: {items:#?}");
        let item = &items[w];
        assert_eq!(
            listed(item, names),
            names,
            "the message lists every alert of its window: {}",
            item.body
        );
        let wait = chrono::Duration::from_std(GROUP_WAIT).unwrap();
        assert!(
            item.created_at >= first + wait - chrono::Duration::milliseconds(1),
            "sent {} before the group's wait from {first} ended",
            item.created_at
        );
    }
    let all: Vec<&str> = windows.iter().flatten().copied().collect();
    let items = outbox(&b.store).await;
    assert_eq!(items.len(), 2);
    assert_eq!(listed(&items[0], &all), windows[0]);
    assert_eq!(listed(&items[1], &all), windows[1]);
    for i in [a, b] {
        i.stop.send(true).unwrap();
        i.notifier.await.unwrap();
    }
}

async fn dead_claimer_is_taken_over(kind: Kind) {
    let Some(db) = Database::create(kind) else {
        return;
    };
    // Instance A receives the alert; its notifier claims the group and dies before
    // sending it (here: the notifier is stopped, and the claim made in its name).
    let mut a = instance(&db, Duration::ZERO).await;
    a.stop.send(true).unwrap();
    (&mut a.notifier).await.unwrap();
    post(&a, "DiskFull").await;
    let lease = Duration::from_millis(700);
    let claims = a
        .store
        .alert_groups_claim("instance-a", lease, 10)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1, "the group is due at once");
    let claim = &claims[0];

    // Instance B comes up: it sends the group once A's claim has run out.
    let b = instance(&db, Duration::ZERO).await;
    let items = settled(&b.store, 1).await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert!(items[0].body.contains("DiskFull"), "{}", items[0].body);
    assert!(
        items[0].created_at >= claim.until,
        "sent at {} while A's claim held until {}",
        items[0].created_at,
        claim.until
    );
    // A wakes up and finishes what it started: fenced off, nothing queued twice.
    let notices: Vec<i64> = Vec::new();
    let late = a
        .store
        .alert_notices_flush(claim, &notices, &[], Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(late, GroupFlush::Fenced);
    assert_eq!(outbox(&a.store).await.len(), 1);
    b.stop.send(true).unwrap();
    b.notifier.await.unwrap();
}

macro_rules! backends {
    ($($case:ident),*) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::Kind::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::Kind::Postgres).await })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::Kind::Mysql).await })*
        }
    };
}

backends!(one_message_per_window, dead_claimer_is_taken_over);

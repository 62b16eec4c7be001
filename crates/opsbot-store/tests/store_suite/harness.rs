//! Test databases: a temp SQLite file, or a fresh database created on the local
//! PostgreSQL / MariaDB server for each test and dropped afterwards, so tests run in
//! parallel without seeing each other's rows.

use opsbot_store::{connect, Store};
use sea_orm::sqlx::{self, Connection as _, Executor as _};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

/// What a test case gets: the store, and the URL to open it again.
#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub url: String,
    pub kind: Kind,
}

pub struct TestDb {
    pub ctx: Ctx,
    _cleanup: DropDatabase,
    _dir: Option<tempfile::TempDir>,
}

/// Drops the named test database (kind, admin URL, name) when dropped.
struct DropDatabase(Option<(Kind, String, String)>);

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Skips the test visibly (returns `None`), or fails it under
/// `OPSBOT_TEST_REQUIRE_SERVICES=1`: the database server of `kind` is not there.
fn unavailable<T>(kind: Kind, admin: &str, why: impl std::fmt::Display) -> Option<T> {
    use opsbot_testkit::fix;
    let (server, fix) = match kind {
        Kind::Postgres => ("PostgreSQL", fix::POSTGRES),
        _ => ("MariaDB/MySQL", fix::MARIADB),
    };
    let admin = opsbot_testkit::redact_url(admin);
    opsbot_testkit::skip(format!("no {server} at {admin} ({why})"), fix)
}

pub fn admin_url(kind: Kind) -> String {
    match kind {
        Kind::Sqlite => String::new(),
        Kind::Postgres => env_or(
            "OPSBOT_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ),
        Kind::Mysql => env_or("OPSBOT_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
    }
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{db}{query}")
}

fn unique_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "opsbot_t_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn admin_exec(kind: Kind, admin: &str, sql: &str) -> Result<(), String> {
    let run = async {
        match kind {
            Kind::Postgres => {
                let mut c = sqlx::PgConnection::connect(admin).await?;
                c.execute(sql).await?;
                c.close().await
            }
            Kind::Mysql => {
                let mut c = sqlx::MySqlConnection::connect(admin).await?;
                c.execute(sql).await?;
                c.close().await
            }
            Kind::Sqlite => Ok(()),
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

impl TestDb {
    /// A fresh, migrated store of `kind`, or `None` when its server is absent (skip).
    pub async fn open(kind: Kind) -> Option<TestDb> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                // A subdirectory that does not exist yet: connect must create it.
                let url = format!("sqlite://{}/data/opsbot.db", dir.path().display());
                let store = connect(&url).await.expect("open sqlite");
                Some(TestDb {
                    ctx: Ctx { store, url, kind },
                    _cleanup: DropDatabase(None),
                    _dir: Some(dir),
                })
            }
            Kind::Postgres | Kind::Mysql => {
                let admin = admin_url(kind);
                let name = unique_name();
                let create = match kind {
                    Kind::Mysql => {
                        format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                    }
                    _ => format!("CREATE DATABASE {name}"),
                };
                if let Err(e) = admin_exec(kind, &admin, &create).await {
                    return unavailable(kind, &admin, e);
                }
                let url = with_database(&admin, &name);
                // The drop guard exists before connecting, so a failing migration
                // still removes the database.
                let guard = DropDatabase(Some((kind, admin, name)));
                let store = connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("connect {url}: {e}"));
                Some(TestDb {
                    ctx: Ctx { store, url, kind },
                    _cleanup: guard,
                    _dir: None,
                })
            }
        }
    }
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let Some((kind, admin, name)) = self.0.take() else {
            return;
        };
        let sql = match kind {
            // FORCE: the store's pool may still hold idle connections.
            Kind::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS {name}"),
        };
        // Drop runs inside the test's runtime, which cannot be blocked on; use a
        // thread with its own small runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            if let Err(e) = rt.block_on(admin_exec(kind, &admin, &sql)) {
                eprintln!("could not drop test database {name}: {e}");
            }
        })
        .join();
    }
}

#[test]
fn database_name_is_replaced() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("mysql://root@h/test?ssl-mode=disabled", "x"),
        "mysql://root@h/x?ssl-mode=disabled"
    );
    assert_eq!(with_database("mysql://root@h", "x"), "mysql://root@h/x");
}

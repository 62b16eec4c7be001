//! Opening a database: one sqlx pool per backend, tuned for how opsbot uses it, then
//! the migrations. Failures become `StoreError`s that name the backend and the
//! (redacted) URL.

use super::errors::Db;
use super::migration::Migrator;
use crate::url::Target;
use crate::{Result, StoreError};
use sea_orm::sqlx::{
    self,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    ConnectOptions as _, Connection as _, Executor as _,
};
use sea_orm::{DatabaseConnection, SqlxMySqlConnector, SqlxPostgresConnector, SqlxSqliteConnector};
use sea_orm_migration::MigratorTrait;
use std::str::FromStr;
use std::time::Duration;

/// How long to wait for a server before calling it unavailable: short, so a CLI run
/// against a down database fails fast instead of hanging.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the database lets a transaction sit idle before it ends the session (and
/// so the transaction's locks). opsbot's transactions take milliseconds between
/// statements; one idle for this long belongs to an instance that froze or hung with it
/// open, and every other instance would wait on its row locks until then (for a job's
/// row: the sweep that should interrupt that instance's jobs).
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(30);

/// How long a SQLite writer waits for another process's write to finish, and a
/// query for a free connection.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the database at `target` and brings its schema up to date.
pub(crate) async fn open(target: &Target, db: &Db) -> Result<DatabaseConnection> {
    let conn = match target {
        Target::SqliteFile(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable {
                    backend: "sqlite".into(),
                    message: format!("cannot create directory {}: {e}", dir.display()),
                })?;
            }
            let opts = sqlite_options().filename(path).create_if_missing(true);
            // A few connections let readers proceed while one writer holds the lock.
            // Writers take a connection only once it is their turn (see `Conn`), so a
            // queue of writers never occupies the pool and never starves readers.
            // Another process creating the same new file may hold it while it switches
            // the file to WAL; that refusal does not wait out the busy timeout.
            let pool = after_races(is_locked, || {
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(SQLITE_BUSY_TIMEOUT)
                    // A file connection does not go stale as a server's does; pinging
                    // it on every acquire is one more hand-off to its worker thread,
                    // which the callback path pays several times per message.
                    .test_before_acquire(false)
                    .connect_with(opts.clone())
            })
            .await
            .map_err(|e| db.at_connect(e, "opening the database"))?;
            SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
        }
        Target::SqliteMemory => {
            // One connection that never expires: the database lives only as long as it.
            let opts = sqlite_options().in_memory(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .test_before_acquire(false)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(opts)
                .await
                .map_err(|e| db.at_connect(e, "opening the database"))?;
            SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
        }
        Target::Postgres(url) => {
            let opts = PgConnectOptions::from_str(url).map_err(|e| db.bad_url(e))?;
            let opts = opts.disable_statement_logging().options([(
                "idle_in_transaction_session_timeout",
                format!("{}s", IDLE_IN_TRANSACTION.as_secs()),
            )]);
            probe(opts.clone(), db).await?;
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_lazy_with(opts);
            SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
        }
        Target::MySql(url) => {
            let opts = MySqlConnectOptions::from_str(url).map_err(|e| db.bad_url(e))?;
            // utf8mb4 so 4-byte characters (emoji, rare CJK) survive the connection.
            let opts = opts
                .charset("utf8mb4")
                .collation("utf8mb4_bin")
                .disable_statement_logging();
            probe(opts.clone(), db).await?;
            let pool = MySqlPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(CONNECT_TIMEOUT)
                .after_connect(|c, _| {
                    Box::pin(async move {
                        // MariaDB has it; MySQL does not, and refuses the name: fine.
                        let _ = c
                            .execute(
                                format!(
                                    "SET SESSION idle_transaction_timeout = {}",
                                    IDLE_IN_TRANSACTION.as_secs()
                                )
                                .as_str(),
                            )
                            .await;
                        Ok(())
                    })
                })
                .connect_lazy_with(opts);
            SqlxMySqlConnector::from_sqlx_mysql_pool(pool)
        }
    };
    migrate(&conn, db).await?;
    Ok(conn)
}

/// How often an opener that lost a race to another process opening the same new
/// database looks again, and how long it waits before each look (growing).
const RACE_RETRIES: u32 = 8;
const RACE_RETRY_STEP: Duration = Duration::from_millis(100);

/// Runs `attempt` until it succeeds, fails for another reason than `raced` names, or
/// has lost the race `RACE_RETRIES` times. Several processes may open a new database at
/// once (`opsbot serve` beside a CLI command, instances behind a load balancer): the
/// loser waits for the winner, then finds its work done.
async fn after_races<T, E, F, Fut>(raced: fn(&str) -> bool, mut attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut lost = 0;
    loop {
        match attempt().await {
            Err(e) if lost < RACE_RETRIES && raced(&e.to_string()) => {
                lost += 1;
                tracing::debug!(error = %e, lost, "raced another process opening the database; looking again");
                tokio::time::sleep(RACE_RETRY_STEP * lost).await;
            }
            done => return done,
        }
    }
}

/// Brings the schema up to date. Of processes migrating a new database at once, the
/// loser runs into the winner's half-made table or index ("already exists", a
/// duplicate migration row); run again, the migrator finds the winner's migrations
/// recorded and skips them.
///
/// A store a newer opsbot already migrated (during a rolling upgrade, instances on the
/// previous binary restart beside upgraded ones) is used as it is: migrations only add,
/// so the previous schema's tables and columns are all there, where sea-orm's migrator
/// would refuse to start on migrations it does not know.
async fn migrate(conn: &DatabaseConnection, db: &Db) -> Result<()> {
    if let Some(newer) = migrated_by_a_newer_binary(conn).await {
        tracing::warn!(
            ?newer,
            "the store was migrated by a newer opsbot; running on it with this version's part of the schema (upgrade this instance too)"
        );
        return Ok(());
    }
    after_races(lost_a_race, || Migrator::up(conn, None))
        .await
        .map_err(|e| match db.map(e, "migrating the schema") {
            StoreError::Query { message, .. } => {
                StoreError::Migration(format!("{} ({}): {message}", db.backend, db.target))
            }
            other => other,
        })
}

/// The migrations applied to the store that this binary does not know, when every one
/// it knows is applied too; `None` otherwise (a new or older store, or none readable:
/// the migrator then decides).
async fn migrated_by_a_newer_binary(conn: &DatabaseConnection) -> Option<Vec<String>> {
    use sea_orm::EntityTrait;
    use sea_orm_migration::seaql_migrations;
    let applied: std::collections::HashSet<String> = seaql_migrations::Entity::find()
        .all(conn)
        .await
        .ok()?
        .into_iter()
        .map(|m| m.version)
        .collect();
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    if !known.iter().all(|k| applied.contains(k)) {
        return None;
    }
    let mut newer: Vec<String> = applied.into_iter().filter(|a| !known.contains(a)).collect();
    newer.sort();
    (!newer.is_empty()).then_some(newer)
}

/// SQLite's refusal while another connection holds the file (`SQLITE_BUSY`).
fn is_locked(error: &str) -> bool {
    error.contains("database is locked")
}

/// What another process's concurrent migration looks like: SQLite's and PostgreSQL's
/// "already exists" (table, index), SQLite's "duplicate column name" (an added column),
/// MySQL's "Duplicate …" (table, key name, column, entry), PostgreSQL's "duplicate key"
/// and SQLite's "UNIQUE constraint failed" on the migrations table (both openers ran a
/// migration whose statements all tolerate the other's; the second to record it lost).
fn lost_a_race(error: &str) -> bool {
    let error = error.to_lowercase();
    error.contains("already exists")
        || error.contains("duplicate")
        || error.contains("unique constraint failed: seaql_migrations")
}

fn sqlite_options() -> SqliteConnectOptions {
    // WAL lets readers and one writer work at once, and several short-lived CLI
    // processes share the file; the busy timeout makes a writer wait its turn.
    SqliteConnectOptions::new()
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .disable_statement_logging()
}

/// Makes one connection attempt so a down server is reported with the driver's own
/// reason (connection refused, unknown host, bad password) instead of the pool's
/// generic timeout, and quickly.
async fn probe<C>(opts: C, db: &Db) -> Result<()>
where
    C: sqlx::ConnectOptions,
    C::Connection: Sized,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(db.at_connect(e, "connecting")),
        Err(_) => Err(StoreError::Unavailable {
            backend: db.backend.into(),
            message: format!(
                "{} did not answer within {} s",
                db.target,
                CONNECT_TIMEOUT.as_secs()
            ),
        }),
    }
}

//! The one connection every store function goes through. It does two things for every
//! table at once, so no write path can forget them:
//!
//! - **On SQLite, writers wait their turn.** SQLite has one writer per file. A
//!   transaction that reads first and writes later (`BEGIN` is deferred) cannot wait
//!   for the write lock: when another connection writes meanwhile, its upgrade fails
//!   at once with `database is locked` (`SQLITE_BUSY`, or `SQLITE_BUSY_SNAPSHOT` when
//!   its snapshot went stale), whatever the busy timeout. And writers that do wait
//!   poll in the busy handler, unfairly, so under load one can starve for the whole
//!   timeout. So: every write (a statement that is not a `SELECT`, or a transaction
//!   from [`Conn::begin`]) first takes this process's writer gate, a FIFO queue, and
//!   a transaction's first statement is a write that takes the file's write lock
//!   before anything is read (what `BEGIN IMMEDIATE` does; sea-orm always issues a
//!   plain `BEGIN`). Another process's writer (a CLI beside `opsbot serve`) is then
//!   waited for with the busy timeout instead of failing. Reads never touch the gate:
//!   in WAL mode they run beside the writer.
//! - **Text the database cannot store is cleaned.** PostgreSQL refuses a NUL
//!   character in text (MySQL and SQLite keep it), so one message or alert with
//!   `\u0000` would fail every write it is part of. Every bound string is stored with
//!   NUL replaced by U+FFFD on every backend, so all three keep the same text and
//!   lookups of such a value find what was stored.

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sea_orm::sqlx::ConnectOptions as _;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement, TransactionTrait, Value,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard};

/// How long a write waits for the writes queued before it in this process. Far longer
/// than any of opsbot's transactions; reached only if the database hangs.
const TURN_TIMEOUT: Duration = Duration::from_secs(30);

/// A write that matches no row: as a transaction's first statement it takes SQLite's
/// write lock (`RESERVED`) through the busy handler, as `BEGIN IMMEDIATE` would.
/// `provider_state` exists from the first migration on.
const TAKE_WRITE_LOCK: &str = "UPDATE provider_state SET key = key WHERE 0";

/// What stands in for a NUL character in stored text.
const NUL_REPLACEMENT: &str = "\u{FFFD}";

/// The store's connection pool with the writer gate (SQLite) and text cleaning.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pool: DatabaseConnection,
    /// `Some` on SQLite: one writer at a time, in arrival order.
    gate: Option<Arc<Mutex<()>>>,
    /// `Some` on a SQLite file: connections of their own for the two paths every chat
    /// message takes (see [`Own`]).
    own: Option<Arc<Own>>,
}

impl Conn {
    pub(crate) fn new(pool: DatabaseConnection) -> Conn {
        let sqlite = pool.get_database_backend() == DbBackend::Sqlite;
        let gate = sqlite.then(Arc::default);
        // An in-memory database lives in the pool's one connection: nothing of its own.
        let own = if sqlite {
            let p = pool.get_sqlite_connection_pool();
            (p.options().get_max_connections() > 1).then(|| {
                Arc::new(Own {
                    pool: p.clone(),
                    options: p.connect_options(),
                    writer: Mutex::new(None),
                    reader: Mutex::new(None),
                })
            })
        } else {
            None
        };
        Conn { pool, gate, own }
    }

    /// The SQLite file's own writer connection (the group commit's), `None` elsewhere.
    pub(crate) async fn own_writer(&self) -> Option<Result<OwnConn<'_>, DbErr>> {
        let own = self.own.as_ref()?;
        Some(OwnConn::take(own, own.writer.lock().await).await)
    }

    /// The SQLite file's own reader connection (the pool version check's).
    pub(crate) async fn own_reader(&self) -> Option<Result<OwnConn<'_>, DbErr>> {
        let own = self.own.as_ref()?;
        Some(OwnConn::take(own, own.reader.lock().await).await)
    }

    /// Starts a write transaction. On SQLite it holds the writer gate until it ends and
    /// has taken the file's write lock before it returns.
    pub(crate) async fn begin(&self) -> Result<WriteTx, DbErr> {
        let turn = self.write_turn().await?;
        let tx = self.pool.begin().await?;
        if turn.is_some() {
            tx.execute_unprepared(TAKE_WRITE_LOCK).await?;
        }
        Ok(WriteTx { tx, _turn: turn })
    }

    /// The SQLite pool underneath, for a path that talks to sqlx directly (see
    /// `group/sqlite.rs`); `None` on the other backends.
    pub(crate) fn sqlite_pool(&self) -> Option<&sea_orm::sqlx::SqlitePool> {
        match self.pool.get_database_backend() {
            DbBackend::Sqlite => Some(self.pool.get_sqlite_connection_pool()),
            _ => None,
        }
    }

    /// This process's writer turn (SQLite; `None` elsewhere), for a write that does not
    /// go through [`Conn::begin`]. Held until dropped.
    pub(crate) async fn write_turn(&self) -> Result<Option<OwnedMutexGuard<()>>, DbErr> {
        match &self.gate {
            Some(gate) => Ok(Some(wait_turn(gate.clone()).await?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn close(self) {
        if let Some(own) = &self.own {
            own.writer.lock().await.take();
            own.reader.lock().await.take();
        }
        let _ = self.pool.close().await;
    }

    /// The writer's turn for `sql`, if it writes and this is SQLite.
    async fn turn_for(&self, sql: &str) -> Result<Option<OwnedMutexGuard<()>>, DbErr> {
        if is_read(sql) {
            return Ok(None);
        }
        self.write_turn().await
    }
}

/// Connections outside the pool, opened on first use and kept. sqlx runs a SQLite
/// connection on a thread of its own and pings it on that thread whenever it goes back
/// to the pool; the group commit and the pool version check run for every chat
/// message, so they keep a connection each instead of paying a hand-off to another
/// thread for every use. Each is used by one caller at a time.
pub(crate) struct Own {
    /// Closed with the store: then these are closed too and not opened again.
    pool: sea_orm::sqlx::SqlitePool,
    options: Arc<SqliteConnectOptions>,
    writer: Mutex<Option<SqliteConnection>>,
    reader: Mutex<Option<SqliteConnection>>,
}

impl std::fmt::Debug for Own {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Own").finish_non_exhaustive()
    }
}

/// One of [`Own`]'s connections, held until dropped.
pub(crate) struct OwnConn<'a> {
    slot: MutexGuard<'a, Option<SqliteConnection>>,
}

impl<'a> OwnConn<'a> {
    async fn take(
        own: &Own,
        mut slot: MutexGuard<'a, Option<SqliteConnection>>,
    ) -> Result<OwnConn<'a>, DbErr> {
        if own.pool.is_closed() {
            slot.take();
            return Err(DbErr::Conn(RuntimeErr::SqlxError(
                sea_orm::sqlx::Error::PoolClosed,
            )));
        }
        if slot.is_none() {
            let c = own
                .options
                .connect()
                .await
                .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(e)))?;
            *slot = Some(c);
        }
        Ok(OwnConn { slot })
    }

    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        self.slot
            .as_mut()
            .expect("an own connection is there once taken")
    }

    /// After an error: the connection is closed, and the next use opens another, so
    /// whatever state the error left it in goes with it.
    pub(crate) fn discard(mut self) {
        self.slot.take();
    }
}

async fn wait_turn(gate: Arc<Mutex<()>>) -> Result<OwnedMutexGuard<()>, DbErr> {
    tokio::time::timeout(TURN_TIMEOUT, gate.lock_owned())
        .await
        .map_err(|_| {
            DbErr::Conn(RuntimeErr::Internal(format!(
                "other writes of this process held the database for {} s",
                TURN_TIMEOUT.as_secs()
            )))
        })
}

/// A statement that only reads (sea-orm's selects and counts start with `SELECT`).
/// Anything else counts as a write, which is the safe side.
fn is_read(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or("");
    head.eq_ignore_ascii_case("SELECT")
}

/// `stmt` with every NUL in its bound text replaced.
fn clean(mut stmt: Statement) -> Statement {
    if let Some(values) = stmt.values.as_mut() {
        clean_values(values);
    }
    stmt
}

/// Every NUL in bound text replaced, as [`Conn`] stores it.
pub(crate) fn clean_values(values: &mut sea_orm::sea_query::Values) {
    for value in values.0.iter_mut() {
        match value {
            Value::String(Some(s)) if s.contains('\0') => {
                **s = s.replace('\0', NUL_REPLACEMENT);
            }
            Value::Char(Some(c)) if *c == '\0' => *c = '\u{FFFD}',
            _ => {}
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Conn {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let stmt = clean(stmt);
        let _turn = self.turn_for(&stmt.sql).await?;
        self.pool.execute(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let _turn = self.turn_for(sql).await?;
        self.pool.execute_unprepared(sql).await
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let stmt = clean(stmt);
        let _turn = self.turn_for(&stmt.sql).await?;
        self.pool.query_one(stmt).await
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let stmt = clean(stmt);
        let _turn = self.turn_for(&stmt.sql).await?;
        self.pool.query_all(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.pool.support_returning()
    }
}

/// A write transaction from [`Conn::begin`]. Dropped without `commit`, it rolls back.
pub(crate) struct WriteTx {
    tx: DatabaseTransaction,
    /// Released after the transaction ends (declared after `tx`, so also on drop).
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        let WriteTx { tx, _turn } = self;
        tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        let WriteTx { tx, _turn } = self;
        tx.rollback().await
    }

    /// A savepoint inside this transaction (already holding the writer's turn), so one
    /// failing statement (a lost insert race) can be undone without the rest.
    pub(crate) async fn savepoint(&self) -> Result<DatabaseTransaction, DbErr> {
        self.tx.begin().await
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTx {
    fn get_database_backend(&self) -> DbBackend {
        self.tx.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.tx.execute(clean(stmt)).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.tx.execute_unprepared(sql).await
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.tx.query_one(clean(stmt)).await
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.tx.query_all(clean(stmt)).await
    }

    fn support_returning(&self) -> bool {
        self.tx.support_returning()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::{redact, Target};
    use sea_orm::sqlx::{self, Connection as _, Executor as _};

    async fn sqlite(dir: &std::path::Path) -> (Conn, String) {
        let url = format!("sqlite://{}/t.db", dir.display());
        let target = Target::parse(&url).unwrap();
        let db = super::super::errors::Db {
            backend: target.backend(),
            target: redact(&url),
        };
        let pool = super::super::connect::open(&target, &db).await.unwrap();
        (Conn::new(pool), url)
    }

    /// Whether another connection can take the write lock right now.
    async fn lock_free(url: &str) -> bool {
        let mut other = sqlx::SqliteConnection::connect(url).await.unwrap();
        other.execute("PRAGMA busy_timeout = 0").await.unwrap();
        let free = other.execute("BEGIN IMMEDIATE").await.is_ok();
        if free {
            other.execute("ROLLBACK").await.unwrap();
        }
        free
    }

    /// The no-op write really takes the lock: between `begin` and `commit` no other
    /// connection can start writing, so nothing it does can make ours fail later.
    #[tokio::test]
    async fn a_sqlite_write_transaction_holds_the_write_lock_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, url) = sqlite(dir.path()).await;
        assert!(lock_free(&url).await);
        let tx = conn.begin().await.unwrap();
        assert!(!lock_free(&url).await, "begin took the write lock");
        tx.commit().await.unwrap();
        assert!(lock_free(&url).await, "commit released it");
        let tx = conn.begin().await.unwrap();
        drop(tx);
        // The rollback of a dropped transaction runs on the connection's worker.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !lock_free(&url).await {
            assert!(
                std::time::Instant::now() < deadline,
                "a dropped transaction keeps the lock"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// One writer at a time in the process; readers pass while a writer holds its turn.
    #[tokio::test]
    async fn writes_queue_behind_a_transaction_and_reads_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _url) = sqlite(dir.path()).await;
        let tx = conn.begin().await.unwrap();
        let read = conn.query_all(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT key FROM provider_state",
        ));
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("a read passes a held turn")
            .unwrap();
        let writer = conn.clone();
        let mut write = tokio::spawn(async move {
            writer
                .execute_unprepared(
                    "INSERT INTO provider_state (key, value, updated_at) VALUES ('k', 'v', '2026-01-01T00:00:00Z')",
                )
                .await
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut write)
                .await
                .is_err(),
            "the write waits for the transaction's turn"
        );
        tx.commit().await.unwrap();
        write.await.unwrap().unwrap();
    }

    #[test]
    fn reads_are_told_from_writes() {
        assert!(is_read("SELECT 1"));
        assert!(is_read("  select \"id\" FROM x"));
        assert!(!is_read("INSERT INTO x VALUES (1)"));
        assert!(!is_read("UPDATE x SET a = 1"));
        assert!(!is_read("WITH t AS (SELECT 1) DELETE FROM x"));
        assert!(!is_read(""));
    }

    #[test]
    fn nul_in_bound_text_is_replaced() {
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO t VALUES ($1, $2, $3)",
            [
                Value::from("poison\0name"),
                Value::from("clean"),
                Value::from(7i64),
            ],
        );
        let values = clean(stmt).values.unwrap().0;
        assert_eq!(values[0], Value::from("poison\u{FFFD}name"));
        assert_eq!(values[1], Value::from("clean"));
        assert_eq!(values[2], Value::from(7i64));
    }
}

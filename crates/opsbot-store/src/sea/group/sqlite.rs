//! A group commit on SQLite as ONE command to the connection's worker thread.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands it each
//! statement: a transaction through sea-orm is six hand-offs (acquire's BEGIN, the
//! write lock, the ids, the audit rows, COMMIT, the ping on release), each a wake-up of
//! one thread by another. Under load those wake-ups, not SQL, were most of what a
//! callback cost. Here the whole batch — `BEGIN IMMEDIATE`, the ids, the audit rows,
//! `COMMIT` — is one multi-statement query (sqlx-sqlite runs the statements in order
//! and binds the `?` parameters across them), bound exactly as sea-orm binds.
//!
//! Outside sea-orm's transaction, so this path cleans up itself: on any error it rolls
//! back on the same connection, and a file's connection is closed as well (whatever
//! state it was left in goes with it). The caller then writes the batch op by op, as
//! after any failed group commit.

use super::{fresh_of, mark_insert};
use crate::sea::audit;
use crate::sea::conn::{clean_values, Conn};
use crate::sea::errors::{Db, During};
use crate::Result;
use opsbot_core::AuditEntry;
use sea_orm::sea_query::{SqliteQueryBuilder, Values};
use sea_orm::sqlx::sqlite::{SqliteConnection, SqliteRow};
use sea_orm::sqlx::{self, Row as _};
use sea_orm::{DbErr, RuntimeErr};
use sea_query_binder::SqlxValues;
use std::collections::HashSet;

/// Records `marks` and appends `entries` in one transaction: the marks that are new,
/// and the entries' ids in their order.
pub(super) async fn write<'a>(
    conn: &Conn,
    db: &Db,
    marks: &[(&'a str, &'a str)],
    entries: &[&AuditEntry],
) -> Result<(HashSet<(&'a str, &'a str)>, Vec<i64>)> {
    const DOING: &str = "committing a group commit";
    let pool = conn
        .sqlite_pool()
        .expect("the SQLite group commit runs on SQLite");
    let (sql, values) = batch(marks, entries);
    // This process's writes queue here as everywhere else (see `conn.rs`); another
    // process's writer is waited for by BEGIN IMMEDIATE with the busy timeout.
    let _turn = conn.write_turn().await.during(db, DOING)?;
    let rows = match conn.own_writer().await {
        Some(own) => {
            let mut own = own.during(db, DOING)?;
            match run(own.conn(), &sql, values).await {
                Ok(rows) => rows,
                Err(e) => {
                    own.discard();
                    return Err(sqlx_err(e)).during(db, DOING);
                }
            }
        }
        // An in-memory database: its one pooled connection, which is kept after an
        // error (rolled back) because closing it would drop the database with it.
        None => {
            let mut c = pool.acquire().await.map_err(sqlx_err).during(db, DOING)?;
            run(&mut c, &sql, values)
                .await
                .map_err(sqlx_err)
                .during(db, DOING)?
        }
    };
    // The ids' rows name two columns, the audit rows' one.
    let mut taken = Vec::with_capacity(marks.len());
    let mut ids = Vec::with_capacity(entries.len());
    for row in rows {
        if row.len() == 1 {
            ids.push(
                row.try_get::<i64, _>(0)
                    .map_err(sqlx_err)
                    .during(db, DOING)?,
            );
        } else {
            let channel: String = row.try_get("channel").map_err(sqlx_err).during(db, DOING)?;
            let msg_id: String = row.try_get("msg_id").map_err(sqlx_err).during(db, DOING)?;
            taken.push((channel, msg_id));
        }
    }
    let ids = audit::in_entry_order(db, ids, entries.len())?;
    Ok((fresh_of(marks, taken), ids))
}

/// Runs the batch on `c`; after an error, rolls back whatever it began (the caller then
/// gives up the connection as well).
async fn run(
    c: &mut SqliteConnection,
    sql: &str,
    values: Values,
) -> std::result::Result<Vec<SqliteRow>, sqlx::Error> {
    let result = sqlx::query_with(sql, SqlxValues(values))
        .fetch_all(&mut *c)
        .await;
    if result.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *c).await;
    }
    result
}

/// The batch's SQL and its parameters, in statement order.
fn batch(marks: &[(&str, &str)], entries: &[&AuditEntry]) -> (String, Values) {
    let mut sql = String::from("BEGIN IMMEDIATE;");
    let mut values = Values(Vec::new());
    let mut add = |(text, bound): (String, Values)| {
        sql.push_str(&text);
        sql.push(';');
        values.0.extend(bound.0);
    };
    if !marks.is_empty() {
        add(mark_insert(marks).build(SqliteQueryBuilder));
    }
    if !entries.is_empty() {
        add(audit::insert_many(entries).build(SqliteQueryBuilder));
    }
    sql.push_str("COMMIT");
    clean_values(&mut values);
    (sql, values)
}

fn sqlx_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e))
}

//! Turning database errors into `StoreError`s: connection trouble becomes
//! `Unavailable` (worth retrying), data the database refuses `Rejected` (retrying the
//! same data cannot help), everything else a `Query` error naming what the store was
//! doing.
//!
//! These errors travel far: into 503 bodies for alert senders and into chat replies.
//! So once the store is open their text names the backend, the action and a cause
//! from a fixed vocabulary, never the URL, host or database name nor the driver's
//! own text (which can name them); that detail is logged here, where it arises.
//! Only `connect` (an operator starting opsbot) shows the redacted URL.

use crate::StoreError;
use sea_orm::{sqlx, ConnAcquireErr, DbErr, RuntimeErr, SqlErr};

/// Which database a store talks to, for error messages (the URL is redacted).
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pub backend: &'static str,
    pub target: String,
}

impl Db {
    pub(crate) fn map(&self, err: DbErr, action: &str) -> StoreError {
        if let Some(cause) = outage(&err) {
            return self.unavailable(cause, action, &err);
        }
        if is_conflict(&err) {
            // The database chose this transaction as a deadlock's victim and rolled it
            // back whole: running it again is the documented answer, as for an outage.
            return self.unavailable(
                "a concurrent transaction conflicted with this one (deadlock); try again".into(),
                action,
                &err,
            );
        }
        if let Some(refusal) = sqlx_error(&err).and_then(refusal) {
            tracing::warn!(
                backend = self.backend,
                action,
                error = %err,
                "the database refused the data"
            );
            return StoreError::Rejected {
                backend: self.backend.into(),
                action: action.into(),
                message: refusal,
            };
        }
        StoreError::Query {
            backend: self.backend.into(),
            action: action.into(),
            message: err.to_string(),
        }
    }

    /// An error while opening the store: for the operator starting opsbot, so it names
    /// the (redacted) URL.
    pub(crate) fn at_connect(&self, err: sqlx::Error, action: &str) -> StoreError {
        match connection_problem(&err) {
            Some(_) => StoreError::Unavailable {
                backend: self.backend.into(),
                message: format!("{}: {err} (while {action})", self.target),
            },
            None => StoreError::Query {
                backend: self.backend.into(),
                action: format!("{action} to {}", self.target),
                message: err.to_string(),
            },
        }
    }

    pub(crate) fn bad_url(&self, err: sqlx::Error) -> StoreError {
        StoreError::BadUrl {
            url: self.target.clone(),
            problem: err.to_string(),
        }
    }

    /// Input refused before it reaches the database (an empty or oversized key): like
    /// data the database refuses, the same input fails again.
    pub(crate) fn refuse(&self, action: &str, message: impl Into<String>) -> StoreError {
        StoreError::Rejected {
            backend: self.backend.into(),
            action: action.into(),
            message: message.into(),
        }
    }

    pub(crate) fn corrupt(&self, what: &str, message: impl ToString) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            message: message.to_string(),
        }
    }

    fn unavailable(&self, cause: String, action: &str, detail: &DbErr) -> StoreError {
        tracing::warn!(
            backend = self.backend,
            database = %self.target,
            action,
            error = %detail,
            "the store is unavailable"
        );
        StoreError::Unavailable {
            backend: self.backend.into(),
            message: format!("{cause} (while {action})"),
        }
    }
}

/// True for a unique-key violation, which some callers expect (de-duplication).
pub(crate) fn is_duplicate(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// True for a deadlock victim or a serialization failure (SQLSTATE 40001 on MySQL and
/// PostgreSQL, 40P01 on PostgreSQL): the transaction was rolled back and may be retried.
pub(crate) fn is_conflict(err: &DbErr) -> bool {
    match sqlx_error(err) {
        Some(sqlx::Error::Database(e)) => {
            matches!(e.code().as_deref(), Some("40001" | "40P01" | "1213"))
        }
        _ => false,
    }
}

fn sqlx_error(err: &DbErr) -> Option<&sqlx::Error> {
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

/// Why the database could not be used, when that is the problem.
fn outage(err: &DbErr) -> Option<String> {
    match err {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => {
            Some("no connection free within the pool's wait".into())
        }
        DbErr::ConnectionAcquire(_) => Some("connection closed".into()),
        // Our own words (the SQLite writer gate) or sea-orm's: no driver text.
        DbErr::Conn(RuntimeErr::Internal(message)) => Some(message.clone()),
        DbErr::Conn(RuntimeErr::SqlxError(e)) => {
            Some(connection_problem(e).unwrap_or("connection failed").into())
        }
        _ => sqlx_error(err)
            .and_then(connection_problem)
            .map(str::to_string),
    }
}

/// A connection-level failure (worth retrying later), in words that name nothing.
fn connection_problem(err: &sqlx::Error) -> Option<&'static str> {
    use std::io::ErrorKind;
    match err {
        sqlx::Error::Io(io) => Some(match io.kind() {
            ErrorKind::ConnectionRefused => "connection refused",
            ErrorKind::TimedOut => "connection timed out",
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
            | ErrorKind::NotConnected => "connection lost",
            _ => "connection failed",
        }),
        sqlx::Error::Tls(_) => Some("TLS connection failed"),
        sqlx::Error::PoolTimedOut => Some("no connection within the pool's wait"),
        sqlx::Error::PoolClosed => Some("the connection pool is closed"),
        sqlx::Error::WorkerCrashed => Some("the database worker stopped"),
        // SQLite busy/locked past the busy timeout: another process holds the write
        // lock; like an unreachable server, retrying later may succeed.
        sqlx::Error::Database(e)
            if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                && matches!(e.code().as_deref(), Some("5" | "6" | "517")) =>
        {
            Some("database is locked by another writer")
        }
        _ => None,
    }
}

/// What is wrong with data the database refused, for whoever sent it; `None` when the
/// error is not about the data (or is a duplicate key, which callers handle).
fn refusal(err: &sqlx::Error) -> Option<String> {
    const TEXT: &str = "it holds text the database cannot store";
    const TOO_LONG: &str = "a value is longer than the database column allows";
    const TIME: &str = "a date or time is outside the range the database can store";
    const NUMBER: &str = "a number is outside the range the database can store";
    const MISSING: &str = "a required value is missing";
    const RULE: &str = "a rule of the database (a constraint or trigger) refused it";
    const DATA: &str = "the database cannot store one of its values";
    let sqlx::Error::Database(e) = err else {
        return None;
    };
    let code = e.code().map(|c| c.into_owned()).unwrap_or_default();
    if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        let extended: i32 = code.parse().ok()?;
        let why = match (extended & 0xff, extended) {
            // UNIQUE and PRIMARY KEY: duplicates.
            (19, 2067 | 1555) => return None,
            (19, 1299) => MISSING,
            (19, _) => RULE,
            (18, _) => TOO_LONG,
            (20, _) => DATA,
            _ => return None,
        };
        return Some(format!("{why} (SQLite code {extended})"));
    }
    if let Some(m) = e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        let why = match m.number() {
            1062 => return None,
            1406 | 1265 => TOO_LONG,
            1366 | 1300 => TEXT,
            1292 => TIME,
            1264 | 1690 => NUMBER,
            1048 | 1364 => MISSING,
            1644 | 3819 | 1451 | 1452 => RULE,
            _ if code.starts_with("22") => DATA,
            _ if code.starts_with("23") => RULE,
            _ => return None,
        };
        return Some(format!("{why} (MySQL error {})", m.number()));
    }
    let why = match code.as_str() {
        "23505" => return None,
        "22001" => TOO_LONG,
        "22021" | "22P05" => TEXT,
        "22007" | "22008" => TIME,
        "22003" => NUMBER,
        "23502" => MISSING,
        c if c.starts_with("23") => RULE,
        c if c.starts_with("22") => DATA,
        _ => return None,
    };
    Some(format!("{why} (SQLSTATE {code})"))
}

/// `.during(db, "loading the pool")` on a sea-orm result names what failed.
pub(crate) trait During<T> {
    fn during(self, db: &Db, action: &str) -> crate::Result<T>;
}

impl<T> During<T> for Result<T, DbErr> {
    fn during(self, db: &Db, action: &str) -> crate::Result<T> {
        self.map_err(|e| db.map(e, action))
    }
}

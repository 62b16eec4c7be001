//! Turning database errors into `StoreError`s: connection trouble becomes
//! `Unavailable` (worth retrying), everything else a `Query` error naming what the
//! store was doing.

use crate::StoreError;
use sea_orm::{sqlx, DbErr, RuntimeErr, SqlErr};

/// Which database a store talks to, for error messages (the URL is redacted).
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pub backend: &'static str,
    pub target: String,
}

impl Db {
    pub(crate) fn map(&self, err: DbErr, action: &str) -> StoreError {
        match &err {
            DbErr::ConnectionAcquire(_) => self.unavailable(&err.to_string(), action),
            DbErr::Conn(RuntimeErr::SqlxError(e))
            | DbErr::Exec(RuntimeErr::SqlxError(e))
            | DbErr::Query(RuntimeErr::SqlxError(e))
                if is_connection_error(e) =>
            {
                self.unavailable(&e.to_string(), action)
            }
            DbErr::Conn(_) => self.unavailable(&err.to_string(), action),
            _ => StoreError::Query {
                backend: self.backend.into(),
                action: action.into(),
                message: err.to_string(),
            },
        }
    }

    pub(crate) fn sqlx(&self, err: sqlx::Error, action: &str) -> StoreError {
        if is_connection_error(&err) {
            self.unavailable(&err.to_string(), action)
        } else {
            StoreError::Query {
                backend: self.backend.into(),
                action: format!("{action} to {}", self.target),
                message: err.to_string(),
            }
        }
    }

    pub(crate) fn bad_url(&self, err: sqlx::Error) -> StoreError {
        StoreError::BadUrl {
            url: self.target.clone(),
            problem: err.to_string(),
        }
    }

    pub(crate) fn corrupt(&self, what: &str, message: impl ToString) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            message: message.to_string(),
        }
    }

    fn unavailable(&self, cause: &str, action: &str) -> StoreError {
        StoreError::Unavailable {
            backend: self.backend.into(),
            message: format!("{}: {cause} (while {action})", self.target),
        }
    }
}

/// True for a unique-key violation, which some callers expect (de-duplication).
pub(crate) fn is_duplicate(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn is_connection_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLite busy/locked past the busy timeout: another process holds the write
        // lock; like an unreachable server, retrying later may succeed.
        sqlx::Error::Database(e) => {
            e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                && matches!(e.code().as_deref(), Some("5" | "6" | "517"))
        }
        _ => false,
    }
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

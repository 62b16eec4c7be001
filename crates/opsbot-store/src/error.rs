//! The store's error type. Messages name the backend and what failed, never
//! credentials; errors that can reach alert senders and chat users (everything but
//! `BadUrl` and `Migration`, which only `connect` gives) name no URL, host or
//! database either: the store logs that detail where the error arises.

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database or Redis cannot be reached; the operation may succeed later.
    #[error("{backend} unavailable: {message}")]
    Unavailable { backend: String, message: String },
    /// The database refused the data itself (text it cannot store, a value out of
    /// range, a constraint): retrying the same data will fail again.
    #[error("{backend} refused the data while {action}: {message}")]
    Rejected {
        backend: String,
        action: String,
        message: String,
    },
    /// A query failed for another reason.
    #[error("{backend} error while {action}: {message}")]
    Query {
        backend: String,
        action: String,
        message: String,
    },
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("invalid store URL {url}: {problem}")]
    BadUrl { url: String, problem: String },
    /// Stored data could not be decoded.
    #[error("corrupt {what} in the store: {message}")]
    Corrupt { what: String, message: String },
}

impl StoreError {
    /// True when retrying later may succeed (the backend was unreachable).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// True when the data itself was refused (see [`StoreError::Rejected`]).
    pub fn is_rejected(&self) -> bool {
        matches!(self, StoreError::Rejected { .. })
    }
}

//! The store's error type. Messages name the backend and what failed, never credentials.

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database or Redis cannot be reached; the operation may succeed later.
    #[error("{backend} unavailable: {message}")]
    Unavailable { backend: String, message: String },
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
}

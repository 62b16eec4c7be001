//! The CMDB's errors: each says what was wrong and, where it helps, what to do.

use opsbot_store::StoreError;

pub type Result<T, E = CmdbError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum CmdbError {
    /// A report that does not follow the schema (the client's fault, HTTP 400).
    #[error("invalid report: {0}")]
    InvalidReport(String),
    /// A report whose identity the token may not speak for (HTTP 403).
    #[error("{0}")]
    WrongHost(String),
    /// The agent's state directory (identity file, spool) cannot be used.
    #[error("agent state {path}: {message}")]
    State { path: String, message: String },
    /// A configuration value that cannot work.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ingest writer has stopped (the server is shutting down).
    #[error("the report writer has stopped")]
    WriterGone,
}

impl CmdbError {
    pub(crate) fn state(path: &std::path::Path, e: impl std::fmt::Display) -> CmdbError {
        CmdbError::State {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

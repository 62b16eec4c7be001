//! What can go wrong talking to salt-api, in words an operator can act on.

/// A failed salt-api call. Per-minion problems are not errors here: they are in the
/// per-minion results ([`crate::MinionReturn::NoAnswer`], `Err(text)` of `run_all`).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SaltError {
    /// Connecting or TLS failed: salt-api is down, the URL is wrong, the CA does not match.
    #[error("salt-api unreachable: {0}")]
    Unreachable(String),
    /// 401 after a fresh login: eauth refused the user, or the token expired twice.
    #[error("salt-api refused the login: {0}")]
    Auth(String),
    /// 504 from salt-api, or the client's own deadline passed.
    #[error("salt-api timed out: {0}")]
    Timeout(String),
    /// A body that is not what salt-api answers.
    #[error("salt-api answered something unexpected: {0}")]
    Malformed(String),
    /// Any other HTTP error status.
    #[error("salt-api answered HTTP {status}: {text}")]
    Api { status: u16, text: String },
    /// The configuration cannot make a client (bad URL, unreadable CA file or password file).
    #[error("salt-api configuration: {0}")]
    Config(String),
}

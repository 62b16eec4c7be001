use opsbot_store::StoreError;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is not valid")]
    Forged,
    #[error("this is not an {expected} token")]
    WrongKind { expected: &'static str },
    #[error("the token has expired")]
    Expired,
    #[error("the token is not known to this server")]
    Unknown,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token may not be used from {0}")]
    AddressNotAllowed(IpAddr),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    /// True when the client is at fault (401/403), false when the server is (500/503).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, AuthError::Store(_) | AuthError::BadRequest(_))
    }

    /// What a client may be told: enough to fix its request, nothing about the server.
    pub fn public(&self) -> String {
        match self {
            AuthError::Store(_) => "authentication is unavailable".into(),
            other => other.to_string(),
        }
    }
}

//! The gateway's error type. Every variant says what to fix; HTTP maps them to
//! statuses (`status()`), chat to a reply.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/alerts/<name>` for a source that does not exist or is not configured.
    #[error("unknown alert source {0:?}: configure [alerts.sources.{0}] (openfalcon, alertmanager, zabbix or generic)")]
    UnknownSource(String),
    /// The request did not carry the source's token, or came from outside its allow-list.
    #[error("{0}")]
    Unauthorized(String),
    /// The payload is not what the source sends (malformed JSON, missing fields).
    #[error("{0}")]
    BadPayload(String),
    /// The store refused this request's alerts themselves (a value it cannot keep):
    /// sending them again unchanged fails again (HTTP 400). Other requests are stored.
    #[error("alerts not stored: {0}; fix the payload, resending it unchanged fails again")]
    Rejected(String),
    /// The ingest queue is full: the sender should retry (HTTP 503).
    #[error("alert gateway overloaded: {0} requests are waiting to be stored; retry shortly")]
    Overloaded(usize),
    /// The store is down: nothing was accepted (HTTP 503).
    #[error("alerts could not be stored: {0}")]
    Store(String),
    /// The gateway is shutting down.
    #[error("alert gateway is stopping")]
    Stopping,
}

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::UnknownSource(_) => 404,
            Error::Unauthorized(_) => 401,
            Error::BadPayload(_) | Error::Rejected(_) => 400,
            Error::Overloaded(_) | Error::Store(_) | Error::Stopping => 503,
        }
    }

    /// A short machine-readable code for JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownSource(_) => "unknown_source",
            Error::Unauthorized(_) => "unauthorized",
            Error::BadPayload(_) => "bad_payload",
            Error::Rejected(_) => "unstorable",
            Error::Overloaded(_) => "overloaded",
            Error::Store(_) => "store_unavailable",
            Error::Stopping => "stopping",
        }
    }
}

impl From<opsbot_store::StoreError> for Error {
    fn from(e: opsbot_store::StoreError) -> Self {
        Error::from(&e)
    }
}

impl From<&opsbot_store::StoreError> for Error {
    fn from(e: &opsbot_store::StoreError) -> Self {
        if e.is_rejected() {
            Error::Rejected(e.to_string())
        } else {
            Error::Store(e.to_string())
        }
    }
}

//! The channels' errors: a channel that cannot be built from its configuration, and a
//! callback refused (the HTTP layer maps it to a status).

/// A configured app, robot or account that cannot be used as given.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("wecom app {app}: {problem}")]
    BadApp { app: String, problem: String },
    #[error("wecom robot {bot}: {problem}")]
    BadBot { bot: String, problem: String },
    #[error("wechat account {account}: {problem}")]
    BadAccount { account: String, problem: String },
}

/// Why a callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("unknown WeCom app {0:?}")]
    UnknownApp(String),
    #[error("unknown WeCom robot {0:?}")]
    UnknownBot(String),
    #[error("unknown WeChat account {0:?}")]
    UnknownAccount(String),
    #[error("{0}")]
    BadRequest(String),
    /// The store is down: the platform should retry later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

impl CallbackError {
    pub fn status(&self) -> u16 {
        match self {
            CallbackError::UnknownApp(_)
            | CallbackError::UnknownBot(_)
            | CallbackError::UnknownAccount(_) => 404,
            CallbackError::BadRequest(_) => 400,
            CallbackError::Unavailable(_) => 503,
        }
    }
}

pub(crate) fn bad(e: impl std::fmt::Display) -> CallbackError {
    CallbackError::BadRequest(e.to_string())
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> CallbackError {
    CallbackError::Unavailable(e.to_string())
}

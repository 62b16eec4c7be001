//! What can go wrong talking to a cluster, classified the way a user acts on it: the
//! API server unreachable, the token refused (401), RBAC refusing (403), an object
//! missing, a conflicting writer (409), a value the server rejects (422).

use kube::core::Status;

/// One failed call to a cluster's API, or a problem with its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No answer: connection refused, DNS, TLS, a timeout.
    #[error("API server unreachable: {0}")]
    Unreachable(String),
    /// 401: the token expired or was revoked.
    #[error("token refused (401): {0}")]
    Unauthorized(String),
    /// 403: RBAC said no; the message names the verb, resource and namespace.
    #[error("forbidden (403): {0}")]
    Forbidden(String),
    /// 404.
    #[error("not found (404): {0}")]
    NotFound(String),
    /// 409: another writer changed the object since it was read.
    #[error("conflict (409): {0}")]
    Conflict(String),
    /// 422 and other 4xx: the server rejects the request as written.
    #[error("rejected ({code}): {message}")]
    Rejected { code: u16, message: String },
    /// 5xx, an undecodable answer, anything else.
    #[error("API error: {0}")]
    Other(String),
    /// The cluster's connection could not be set up (kubeconfig, CA, token file).
    #[error("cluster configuration: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure that says nothing about the cluster's health (the request's own
    /// fault) does not make the pool stale.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Error::Unreachable(_) | Error::Unauthorized(_) | Error::Forbidden(_) | Error::Other(_)
        )
    }

    pub(crate) fn from_status(s: &Status) -> Error {
        let message = if s.message.is_empty() {
            s.reason.clone()
        } else {
            s.message.clone()
        };
        match s.code {
            401 => Error::Unauthorized(message),
            403 => Error::Forbidden(message),
            404 => Error::NotFound(message),
            409 => Error::Conflict(message),
            400..=499 => Error::Rejected {
                code: s.code,
                message,
            },
            _ => Error::Other(message),
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Error {
        match e {
            kube::Error::Api(s) => Error::from_status(&s),
            kube::Error::HyperError(e) => Error::Unreachable(e.to_string()),
            kube::Error::Service(e) => Error::Unreachable(source_chain(e.as_ref())),
            other => Error::Other(other.to_string()),
        }
    }
}

impl From<kube::runtime::watcher::Error> for Error {
    fn from(e: kube::runtime::watcher::Error) -> Error {
        use kube::runtime::watcher::Error as W;
        match e {
            W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => e.into(),
            W::WatchError(s) => Error::from_status(&s),
            W::NoResourceVersion => Error::Other(e.to_string()),
        }
    }
}

/// An error with its causes (`connection refused` sits a few sources down).
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        cur = s.source();
    }
    text
}

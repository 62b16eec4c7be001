//! One lazily connected Redis connection with a call timeout, shared by what the store
//! keeps in Redis (sessions, rate windows). Connected on first use and rebuilt after a
//! failure, so Redis may be down at startup or restart at any time: calls made
//! meanwhile fail quickly with `Unavailable` and later ones work again.

use crate::url::redact;
use crate::{Result, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError};
use std::future::Future;
use std::time::Duration;
use tokio::sync::Mutex;

/// Longest a call may take, connecting included: a chat reply or an API request should
/// not hang on a dead Redis.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_millis(1500);

pub(crate) struct RedisLink {
    client: redis::Client,
    /// The URL without its password, for logs.
    url: String,
    conn: Mutex<Option<ConnectionManager>>,
}

impl RedisLink {
    /// Parses `url` (`redis://host:port/db`); does not connect.
    pub(crate) fn open(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| StoreError::BadUrl {
            url: redact(url),
            problem: e.to_string(),
        })?;
        Ok(RedisLink {
            client,
            url: redact(url),
            conn: Mutex::new(None),
        })
    }

    /// The URL without its password.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    async fn connection(&self) -> std::result::Result<ConnectionManager, RedisError> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CALL_TIMEOUT)
            .set_response_timeout(CALL_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(200);
        let conn = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs one command with the call timeout; on a connection failure drops the
    /// connection so the next call starts a fresh one.
    pub(crate) async fn call<T, F, Fut>(&self, action: &str, run: F) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = std::result::Result<T, RedisError>>,
    {
        let attempt = async {
            let conn = self.connection().await?;
            run(conn).await
        };
        let failure = match tokio::time::timeout(CALL_TIMEOUT, attempt).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if is_reply_error(&e) => {
                return Err(StoreError::Query {
                    backend: "redis".into(),
                    action: action.into(),
                    message: e.to_string(),
                })
            }
            Ok(Err(e)) => {
                // The detail (which can name the host) goes to the log, not to the
                // chat reply this error becomes.
                tracing::warn!(redis = %self.url, action, error = %e, "redis unavailable");
                outage(&e)
            }
            Err(_) => format!("no answer within {} ms", CALL_TIMEOUT.as_millis()),
        };
        *self.conn.lock().await = None;
        Err(StoreError::Unavailable {
            backend: "redis".into(),
            message: format!("{failure} (while {action})"),
        })
    }
}

/// Why Redis could not be used, in words that name no host.
fn outage(e: &RedisError) -> String {
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_connection_dropped() {
        "connection lost".into()
    } else {
        "connection failed".into()
    }
}

/// Redis answered, but with an error about the command: retrying will not help.
fn is_reply_error(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ResponseError | ErrorKind::TypeError | ErrorKind::ExtensionError
    )
}

//! Sessions in Redis, shared by every opsbot process. Connected lazily and rebuilt
//! after a failure, so Redis may be down at startup or restart at any time: calls
//! made meanwhile fail quickly with `Unavailable` and later ones work again.

use crate::url::redact;
use crate::{Result, SessionStore, StoreError};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ErrorKind, RedisError};
use std::future::Future;
use std::time::Duration;
use tokio::sync::Mutex;

/// Longest a session call may take, connecting included: a chat reply should not
/// hang on a dead Redis.
const CALL_TIMEOUT: Duration = Duration::from_millis(1500);

/// Default prefix of every key opsbot writes.
pub const DEFAULT_PREFIX: &str = "opsbot:session:";

pub struct RedisSessions {
    client: redis::Client,
    url: String,
    prefix: String,
    conn: Mutex<Option<ConnectionManager>>,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisSessions {
    /// Parses `url` (`redis://host:port/db`); does not connect.
    pub fn new(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| StoreError::BadUrl {
            url: redact(url),
            problem: e.to_string(),
        })?;
        Ok(RedisSessions {
            client,
            url: redact(url),
            prefix: DEFAULT_PREFIX.to_string(),
            conn: Mutex::new(None),
        })
    }

    /// Uses `prefix` instead of `opsbot:session:` (tests, several bots on one Redis).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
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
    async fn call<T, F, Fut>(&self, action: &str, run: F) -> Result<T>
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

#[async_trait]
impl SessionStore for RedisSessions {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        let key = self.key(key);
        self.call("reading a session", |mut c| async move {
            c.get::<_, Option<String>>(key).await
        })
        .await
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let key = self.key(key);
        // Redis expiry is in whole seconds; round up so a session never ends early.
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let value = value.to_string();
        self.call("writing a session", |mut c| async move {
            c.set_ex::<_, _, ()>(key, value, secs.max(1)).await
        })
        .await
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let key = self.key(key);
        self.call("removing a session", |mut c| async move {
            c.del::<_, ()>(key).await
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

//! Sessions in Redis, shared by every opsbot process, over one `RedisLink` (lazy
//! connection, call timeout, `Unavailable` while Redis is down).

use crate::redis_link::RedisLink;
use crate::{Result, SessionStore};
use async_trait::async_trait;
use redis::AsyncCommands;
use std::time::Duration;

/// Default prefix of every key opsbot writes.
pub const DEFAULT_PREFIX: &str = "opsbot:session:";

pub struct RedisSessions {
    link: RedisLink,
    prefix: String,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("url", &self.link.url())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisSessions {
    /// Parses `url` (`redis://host:port/db`); does not connect.
    pub fn new(url: &str) -> Result<Self> {
        Ok(RedisSessions {
            link: RedisLink::open(url)?,
            prefix: DEFAULT_PREFIX.to_string(),
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
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        let key = self.key(key);
        self.link
            .call("reading a session", |mut c| async move {
                c.get::<_, Option<String>>(key).await
            })
            .await
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let key = self.key(key);
        // Redis expiry is in whole seconds; round up so a session never ends early.
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let value = value.to_string();
        self.link
            .call("writing a session", |mut c| async move {
                c.set_ex::<_, _, ()>(key, value, secs.max(1)).await
            })
            .await
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let key = self.key(key);
        self.link
            .call("removing a session", |mut c| async move {
                c.del::<_, ()>(key).await
            })
            .await
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

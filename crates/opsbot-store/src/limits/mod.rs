//! Rate windows in Redis ([`opsbot_core::RateWindows`]), shared by every opsbot
//! instance on the same Redis, so limits hold for all of them together.
//!
//! A key's window is a sorted set of hits (member: an id unique to the call, score: the
//! Redis server's time in ms) and its penalty a plain key that expires with it. One Lua
//! script per call trims, counts and adds for all of the call's keys, so a grant is
//! atomic across instances and covers every key or none. Keys are `opsbot:rl:w:<key>`
//! and `opsbot:rl:p:<key>`; both expire on their own.

use crate::redis_link::RedisLink;
use crate::{Result, StoreError};
use async_trait::async_trait;
use opsbot_core::{RateError, RateWindows};
use redis::Script;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default prefix of every rate-limit key.
pub const DEFAULT_PREFIX: &str = "opsbot:rl:";

pub struct RedisWindows {
    link: RedisLink,
    prefix: String,
    acquire: Script,
    penalize: Script,
    /// Makes each call's members unique among all instances' calls.
    instance: String,
    calls: AtomicU64,
}

impl std::fmt::Debug for RedisWindows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWindows")
            .field("url", &self.link.url())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisWindows {
    /// Parses `url` (`redis://host:port/db`); does not connect, so a Redis that is down
    /// now fails only the calls made while it is down.
    pub fn new(url: &str) -> Result<Self> {
        Ok(RedisWindows {
            link: RedisLink::open(url)?,
            prefix: DEFAULT_PREFIX.to_string(),
            acquire: Script::new(include_str!("acquire.lua")),
            penalize: Script::new(include_str!("penalize.lua")),
            instance: format!("{:016x}", rand_u64()),
            calls: AtomicU64::new(0),
        })
    }

    /// Uses `prefix` instead of `opsbot:rl:` (tests, several bots on one Redis).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    fn window_key(&self, key: &str) -> String {
        format!("{}w:{key}", self.prefix)
    }

    fn penalty_key(&self, key: &str) -> String {
        format!("{}p:{key}", self.prefix)
    }
}

/// A random number without a dependency on `rand` here: the hasher's keys are random
/// per process.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Whole milliseconds, at least one (Redis refuses a PX of 0).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn rate_error(e: StoreError) -> RateError {
    match e {
        StoreError::Unavailable { message, .. } => RateError::Unavailable(message),
        other => RateError::Refused(other.to_string()),
    }
}

#[async_trait]
impl RateWindows for RedisWindows {
    async fn try_acquire(
        &self,
        keys: &[String],
        limit: u32,
        window: Duration,
    ) -> std::result::Result<Duration, RateError> {
        if keys.is_empty() {
            return Ok(Duration::ZERO);
        }
        let member = format!(
            "{}-{}",
            self.instance,
            self.calls.fetch_add(1, Ordering::Relaxed)
        );
        let mut invocation = self.acquire.prepare_invoke();
        for key in keys {
            invocation.key(self.window_key(key));
            invocation.key(self.penalty_key(key));
        }
        invocation.arg(limit.max(1)).arg(millis(window)).arg(member);
        let wait: u64 = self
            .link
            .call("counting a rate limit", |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await
            .map_err(rate_error)?;
        Ok(Duration::from_millis(wait))
    }

    async fn penalize(&self, key: &str, duration: Duration) -> std::result::Result<(), RateError> {
        let mut invocation = self.penalize.prepare_invoke();
        invocation.key(self.penalty_key(key)).arg(millis(duration));
        self.link
            .call("recording a rate-limit penalty", |mut c| async move {
                invocation.invoke_async::<()>(&mut c).await
            })
            .await
            .map_err(rate_error)
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

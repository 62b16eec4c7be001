//! Session stores: short-lived conversation state with a TTL, in memory or in Redis.

mod memory;
mod redis;

pub use self::memory::MemorySessions;
pub use self::redis::RedisSessions;

use crate::{Result, SessionStore, StoreError};
use std::sync::Arc;

/// Builds the session store named by `backend` (`memory` or `redis`). Redis needs
/// `url`; it is connected on first use, so a Redis that is down now does not fail
/// startup, only the calls made while it is down.
pub async fn connect_sessions(backend: &str, url: Option<&str>) -> Result<Arc<dyn SessionStore>> {
    match backend {
        "memory" => Ok(Arc::new(MemorySessions::new())),
        "redis" => {
            let url = url.ok_or_else(|| StoreError::BadUrl {
                url: String::new(),
                problem: "the redis session backend needs a URL such as redis://127.0.0.1:6379/0"
                    .into(),
            })?;
            Ok(Arc::new(RedisSessions::new(url)?))
        }
        other => Err(StoreError::BadUrl {
            url: other.to_string(),
            problem: "unknown session backend; use memory or redis".into(),
        }),
    }
}

//! One cached access token, shared by WeCom apps and WeChat Official Accounts: fetched
//! when missing or near expiry by a single caller while the others wait (single flight),
//! and dropped when the platform rejects it (40001/40014/42001 on a business API), after
//! which the call is retried exactly once with a fresh token. Both platforms' token
//! endpoints answer alike (`access_token`, `expires_in`), read here once.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::http::Reply;

/// Refresh this long before the stated expiry, so a token never dies mid-request.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Used when the answer omits expires_in; both platforms' documented lifetime.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(7200);

/// A token as fetched, with when (on the client's clock) and for how long.
pub(crate) struct CachedToken {
    pub(crate) token: String,
    pub(crate) fetched_at: Duration,
    pub(crate) expires_in: Duration,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &"<redacted>")
            .field("fetched_at", &self.fetched_at)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl CachedToken {
    /// The token in a token endpoint's answer, fetched at `now`.
    pub(crate) fn from_answer(
        api: &'static str,
        service: &'static str,
        body: &Map<String, Value>,
        now: Duration,
    ) -> Result<Self> {
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::InvalidResponse {
                api,
                service,
                reason: "no access_token in the answer".into(),
            })?
            .to_owned();
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .filter(|&secs| secs > 0)
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        Ok(CachedToken {
            token,
            fetched_at: now,
            expires_in,
        })
    }

    pub(crate) fn is_fresh(&self, now: Duration) -> bool {
        // Real tokens live 7200 s; halving only matters for the short TTLs of tests.
        let usable_for = if self.expires_in > REFRESH_MARGIN * 2 {
            self.expires_in - REFRESH_MARGIN
        } else {
            self.expires_in / 2
        };
        now < self.fetched_at + usable_for
    }
}

/// The cache. The async mutex is held across the fetch, which is what makes the
/// refresh single-flight.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    cached: tokio::sync::Mutex<Option<CachedToken>>,
}

impl TokenCache {
    /// A usable token: the cached one while fresh at `now`, else the result of `fetch`.
    pub(crate) async fn get<F, Fut>(&self, now: Duration, fetch: F) -> Result<String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedToken>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.is_fresh(now)) {
            return Ok(token.token.clone());
        }
        let fresh = fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Runs `call` with a usable token (from `token`); when the platform rejects that
    /// token, drops it, gets another and runs `call` once more. A second rejection is
    /// [`Error::AccessTokenRejected`]; any other answer is returned for the caller to judge.
    pub(crate) async fn call_with<T, TFut, C, CFut>(
        &self,
        service: &'static str,
        api: &'static str,
        token: T,
        call: C,
    ) -> Result<Reply>
    where
        T: Fn() -> TFut,
        TFut: Future<Output = Result<String>>,
        C: Fn(String) -> CFut,
        CFut: Future<Output = Result<Reply>>,
    {
        let first = token().await?;
        let reply = call(first.clone()).await?;
        if !is_token_error(reply.errcode) {
            return Ok(reply);
        }
        tracing::info!(
            api,
            service,
            errcode = reply.errcode,
            "the access token was rejected; refreshing it and retrying once"
        );
        self.invalidate(&first).await;
        let retry = call(token().await?).await?;
        if is_token_error(retry.errcode) {
            return Err(Error::AccessTokenRejected {
                api,
                errcode: retry.errcode,
                errmsg: retry.errmsg,
            });
        }
        Ok(retry)
    }

    /// Drop the cached token only if it is the one that was rejected: another caller may
    /// already have replaced it, and dropping that would cost a second fetch.
    pub(crate) async fn invalidate(&self, rejected: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.token == rejected) {
            *cached = None;
        }
    }

    /// Forget whatever is cached.
    pub(crate) async fn clear(&self) {
        *self.cached.lock().await = None;
    }
}

/// Whether a business API's errcode says the access token was refused (invalid,
/// expired, not the latest); on both platforms 40001 means the token there.
pub(crate) fn is_token_error(errcode: i64) -> bool {
    matches!(errcode, 40001 | 40014 | 42001)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness() {
        let token = CachedToken {
            token: "t".into(),
            fetched_at: Duration::from_secs(100),
            expires_in: Duration::from_secs(7200),
        };
        assert!(token.is_fresh(Duration::from_secs(100 + 6899)));
        assert!(!token.is_fresh(Duration::from_secs(100 + 6900)));
        assert!(!format!("{token:?}").contains("\"t\""));
    }

    #[tokio::test]
    async fn single_flight_and_targeted_invalidation() {
        let cache = TokenCache::default();
        let fetch = |t: &'static str| {
            move || async move {
                Ok(CachedToken {
                    token: t.into(),
                    fetched_at: Duration::ZERO,
                    expires_in: DEFAULT_LIFETIME,
                })
            }
        };
        assert_eq!(cache.get(Duration::ZERO, fetch("a")).await.unwrap(), "a");
        assert_eq!(cache.get(Duration::ZERO, fetch("b")).await.unwrap(), "a");
        cache.invalidate("other").await;
        assert_eq!(cache.get(Duration::ZERO, fetch("b")).await.unwrap(), "a");
        cache.invalidate("a").await;
        assert_eq!(cache.get(Duration::ZERO, fetch("b")).await.unwrap(), "b");
    }
}

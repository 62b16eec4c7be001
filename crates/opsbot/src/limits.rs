//! Where the rate limits that must hold across instances are counted: the WeCom sending
//! limits, the alert notifier's pacing, the REST API's per-caller budget and the login
//! attempts. With Redis sessions (`[sessions] backend = "redis"`, the setting every
//! multi-instance deployment needs anyway) they go to the same Redis; otherwise each
//! process counts its own, which is right for one instance.

use crate::config::Config;
use anyhow::{anyhow, Result};
use opsbot_core::RateWindows;
use std::sync::Arc;

/// The shared windows, or `None` when each process keeps its own limits.
pub fn shared(config: &Config) -> Result<Option<Arc<dyn RateWindows>>> {
    if config.sessions.backend != "redis" {
        return Ok(None);
    }
    let Some(url) = config.sessions.url.as_deref() else {
        return Err(anyhow!(
            "config: key sessions.url: is required when sessions.backend = \"redis\" (rate limits share it)"
        ));
    };
    // The store's error names the URL without its password.
    let windows = opsbot_store::RedisWindows::new(url)
        .map_err(|e| anyhow!("config: key sessions.url: shared rate limits: {e}"))?;
    tracing::info!("rate limits shared by every instance through the sessions' Redis");
    Ok(Some(Arc::new(windows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_session_backend() {
        let mut config = Config::default();
        assert!(shared(&config).expect("memory").is_none());
        config.sessions.backend = "redis".into();
        config.sessions.url = Some("redis://:s3cret@127.0.0.1:6379/0".into());
        let windows = shared(&config).expect("redis").expect("shared");
        assert_eq!(windows.backend(), "redis");
        assert!(!format!("{windows:?}").contains("s3cret"));
        config.sessions.url = Some("redis://:s3cret@[bad/0".into());
        let e = shared(&config).expect_err("bad url").to_string();
        assert!(e.contains("sessions.url") && !e.contains("s3cret"), "{e}");
    }
}

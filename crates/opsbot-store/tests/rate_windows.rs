//! `RedisWindows`, the rate windows every instance shares: two handles on one Redis
//! (two instances) count in the same windows. Skips without `OPSBOT_TEST_REDIS_URL`
//! (fails instead under `OPSBOT_TEST_REQUIRE_SERVICES=1`); each test uses its own key
//! prefix.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_core::{RateError, RateWindows};
use opsbot_store::RedisWindows;
use redis::AsyncCommands;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "opsbot:test:rl:{}:{nanos}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Two independent handles (each its own connection) on one Redis and one prefix, and
/// a plain connection to look at the keys; `None` when the test is skipped.
async fn two_instances() -> Option<(
    RedisWindows,
    RedisWindows,
    redis::aio::MultiplexedConnection,
    String,
)> {
    let Ok(url) = std::env::var("OPSBOT_TEST_REDIS_URL") else {
        return opsbot_testkit::skip(
            "OPSBOT_TEST_REDIS_URL is not set",
            opsbot_testkit::fix::REDIS,
        );
    };
    let prefix = unique_prefix();
    let a = RedisWindows::new(&url).unwrap().with_prefix(&prefix);
    let b = RedisWindows::new(&url).unwrap().with_prefix(&prefix);
    if let Err(e) = a.try_acquire(&["probe".into()], 1, MINUTE).await {
        let url = opsbot_testkit::redact_url(&url);
        return opsbot_testkit::skip(
            format!("no Redis at {url} ({e})"),
            opsbot_testkit::fix::REDIS,
        );
    }
    let raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    Some((a, b, raw, prefix))
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_together_grant_exactly_the_limit() {
    let Some((a, b, _, _)) = two_instances().await else {
        return;
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    // 40 concurrent attempts, half through each instance, at a limit of 7.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let w = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            w.try_acquire(&keys(&["wecom:member:u1"]), 7, MINUTE)
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        let wait = t.await.unwrap();
        if wait.is_zero() {
            granted += 1;
        } else {
            assert!(wait <= MINUTE, "{wait:?}");
        }
    }
    assert_eq!(granted, 7);
    // Another key has its own window.
    assert!(b
        .try_acquire(&keys(&["wecom:member:u2"]), 7, MINUTE)
        .await
        .unwrap()
        .is_zero());
}

#[tokio::test]
async fn acquire_all_grants_every_key_or_none() {
    let Some((a, b, _, _)) = two_instances().await else {
        return;
    };
    assert!(a
        .try_acquire(&keys(&["x"]), 1, MINUTE)
        .await
        .unwrap()
        .is_zero());
    // y is free but x is spent: nothing is counted, y stays free.
    let wait = b.try_acquire(&keys(&["y", "x"]), 1, MINUTE).await.unwrap();
    assert!(!wait.is_zero() && wait <= MINUTE, "{wait:?}");
    assert!(b
        .try_acquire(&keys(&["y", "z"]), 1, MINUTE)
        .await
        .unwrap()
        .is_zero());
    // Now both y and z are spent, for either instance.
    assert!(!a
        .try_acquire(&keys(&["z"]), 1, MINUTE)
        .await
        .unwrap()
        .is_zero());
    assert!(!a
        .try_acquire(&keys(&["y"]), 1, MINUTE)
        .await
        .unwrap()
        .is_zero());
}

#[tokio::test]
async fn a_penalty_blocks_both_instances_and_a_shorter_one_does_not_shorten_it() {
    let Some((a, b, _, _)) = two_instances().await else {
        return;
    };
    a.penalize("robot", MINUTE).await.unwrap();
    a.penalize("robot", Duration::from_secs(1)).await.unwrap();
    for w in [&a, &b] {
        let wait = w.try_acquire(&keys(&["robot"]), 20, MINUTE).await.unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= MINUTE, "{wait:?}");
    }
    // A penalty on one key holds back a call naming it among others, counting none.
    assert!(!b
        .try_acquire(&keys(&["free", "robot"]), 20, MINUTE)
        .await
        .unwrap()
        .is_zero());
    assert!(b
        .try_acquire(&keys(&["free"]), 1, MINUTE)
        .await
        .unwrap()
        .is_zero());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_slide_and_their_keys_expire() {
    let Some((a, b, mut raw, prefix)) = two_instances().await else {
        return;
    };
    let window = Duration::from_millis(300);
    assert!(a
        .try_acquire(&keys(&["k"]), 2, window)
        .await
        .unwrap()
        .is_zero());
    assert!(b
        .try_acquire(&keys(&["k"]), 2, window)
        .await
        .unwrap()
        .is_zero());
    let wait = a.try_acquire(&keys(&["k"]), 2, window).await.unwrap();
    assert!(!wait.is_zero() && wait <= window, "{wait:?}");
    a.penalize("k", window).await.unwrap();
    let (w, p) = (format!("{prefix}w:k"), format!("{prefix}p:k"));
    for key in [&w, &p] {
        let ttl: i64 = raw.pttl(key).await.unwrap();
        assert!(ttl > 0 && ttl <= window.as_millis() as i64, "{key}: {ttl}");
    }
    // Redis drops both keys on its own once the window has passed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left: i64 = raw.exists(&[&w, &p]).await.unwrap();
        if left == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "keys still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(b
        .try_acquire(&keys(&["k"]), 2, window)
        .await
        .unwrap()
        .is_zero());
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_not_a_grant() {
    // Nothing listens on port 1.
    let w = RedisWindows::new("redis://127.0.0.1:1/0").unwrap();
    let e = w.try_acquire(&keys(&["k"]), 1, MINUTE).await.unwrap_err();
    assert!(matches!(e, RateError::Unavailable(_)), "{e:?}");
    assert!(matches!(
        w.penalize("k", MINUTE).await,
        Err(RateError::Unavailable(_))
    ));
}

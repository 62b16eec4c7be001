//! One suite of `SessionStore` tests run against memory and Redis
//! (`OPSBOT_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/15`, a unique key prefix
//! per test), plus a Redis outage-and-recovery test on a private `redis-server`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_store::{MemorySessions, RedisSessions, SessionStore, StoreError};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Memory,
    Redis,
}

fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "opsbot:test:{}:{nanos}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn open(kind: Kind) -> Option<Arc<dyn SessionStore>> {
    match kind {
        Kind::Memory => Some(Arc::new(MemorySessions::new())),
        Kind::Redis => {
            let url = std::env::var("OPSBOT_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into());
            let store = RedisSessions::new(&url)
                .unwrap()
                .with_prefix(&unique_prefix());
            // Probe: a down Redis skips (or fails under REQUIRE), not a false failure.
            if let Err(e) = store.get("probe").await {
                let url = opsbot_testkit::redact_url(&url);
                return opsbot_testkit::skip(
                    format!("no Redis at {url} ({e})"),
                    opsbot_testkit::fix::REDIS,
                );
            }
            Some(Arc::new(store))
        }
    }
}

async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(Arc<dyn SessionStore>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(store) = open(kind).await {
        case(store).await;
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $case() { super::run(super::Kind::Memory, super::cases::$case).await })*
        }
        mod redis {
            $(#[tokio::test]
            async fn $case() { super::run(super::Kind::Redis, super::cases::$case).await })*
        }
    };
}

suite!(
    get_put_remove,
    overwrite_replaces_value_and_ttl,
    ttl_expires
);

mod cases {
    use super::*;

    pub async fn get_put_remove(s: Arc<dyn SessionStore>) {
        assert_eq!(s.get("u1").await.unwrap(), None);
        s.put("u1", r#"{"menu":"克隆"}"#, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            s.get("u1").await.unwrap().as_deref(),
            Some(r#"{"menu":"克隆"}"#)
        );
        assert_eq!(s.get("u2").await.unwrap(), None);
        s.remove("u1").await.unwrap();
        assert_eq!(s.get("u1").await.unwrap(), None);
        // Removing what is not there is fine.
        s.remove("u1").await.unwrap();
    }

    pub async fn overwrite_replaces_value_and_ttl(s: Arc<dyn SessionStore>) {
        s.put("k", "one", Duration::from_secs(1)).await.unwrap();
        s.put("k", "two", Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.get("k").await.unwrap().as_deref(), Some("two"));
        // The longer TTL of the overwrite applies: still there after the first expires.
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert_eq!(s.get("k").await.unwrap().as_deref(), Some("two"));
    }

    pub async fn ttl_expires(s: Arc<dyn SessionStore>) {
        s.put("short", "v", Duration::from_secs(1)).await.unwrap();
        s.put("long", "v", Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.get("short").await.unwrap().as_deref(), Some("v"));
        // Poll until it is gone, with a generous deadline (no timing assertion).
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.get("short").await.unwrap().is_some() {
            assert!(
                Instant::now() < deadline,
                "a 1 s session still there after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(s.get("long").await.unwrap().as_deref(), Some("v"));
    }
}

#[tokio::test]
async fn unknown_backend_is_an_error() {
    let err = opsbot_store::connect_sessions("memcached", None)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("memory or redis"), "{err}");
    let err = opsbot_store::connect_sessions("redis", None)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("redis://"), "{err}");
    let memory = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    assert_eq!(memory.backend(), "memory");
}

// ---- Redis outage and recovery ----------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private redis-server, killed when dropped.
struct RedisServer {
    child: Child,
}

impl RedisServer {
    fn start(port: u16) -> std::io::Result<RedisServer> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        Ok(RedisServer { child })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Retries `put` until it succeeds or the deadline passes (the server is starting).
async fn wait_until_working(s: &RedisSessions, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match s.put("k", "v", Duration::from_secs(60)).await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("redis did not work {what}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_then_recovers() {
    if opsbot_testkit::program("redis-server", opsbot_testkit::fix::REDIS_SERVER).is_none() {
        return;
    }
    let port = free_port();
    let server = RedisServer::start(port).expect("start redis-server");
    // Constructing the store never needs Redis up.
    let s = RedisSessions::new(&format!("redis://127.0.0.1:{port}/0"))
        .unwrap()
        .with_prefix(&unique_prefix());
    wait_until_working(&s, "after start").await;
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("v"));

    server.stop().await;
    // The first call after the kill may still be in flight; within a few calls every
    // one must fail fast and clearly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match s.get("k").await {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(_) => panic!("redis still answering 10 s after being killed"),
        }
    };
    assert!(
        matches!(&err, StoreError::Unavailable { backend, .. } if backend == "redis"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with("redis unavailable"), "{msg}");
    // The message reaches chat users: no host or port (the log has them).
    assert!(
        !msg.contains("127.0.0.1") && !msg.contains(&port.to_string()) && !msg.contains("://"),
        "{msg}"
    );
    let started = Instant::now();
    let again = s.put("k", "v", Duration::from_secs(60)).await.unwrap_err();
    assert!(again.is_unavailable(), "{again}");
    // Not a timing assertion on speed, only that a call does not hang indefinitely.
    assert!(started.elapsed() < Duration::from_secs(10));

    let server = RedisServer::start(port).expect("restart redis-server");
    wait_until_working(&s, "after restart").await;
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("v"));
    s.remove("k").await.unwrap();
    assert_eq!(s.get("k").await.unwrap(), None);
    server.stop().await;
}

#[tokio::test]
async fn redis_down_at_construction_is_not_an_error() {
    let port = free_port();
    let s = opsbot_store::connect_sessions("redis", Some(&format!("redis://127.0.0.1:{port}/0")))
        .await
        .unwrap();
    assert_eq!(s.backend(), "redis");
    let err = s.get("x").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

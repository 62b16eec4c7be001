//! Redis and the database going away while opsbot runs: each command gets a clear
//! reply, commands that need no session keep working, and all recovers when the service
//! is back. The outage is real: a TCP proxy in front of the real server is cut.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_engine::{EngineSettings, Status};
use opsbot_testkit::{fix, redact_url, skip};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Forwards 127.0.0.1:port to `target` until cut; a cut drops every open connection
/// and refuses new ones, as a crashed server or a broken network would.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (c, k) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                k.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            port,
            cut,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Sends `text` until the reply satisfies `ok`, or fails after 30 s.
async fn until(
    h: &Harness,
    text: &str,
    what: &str,
    ok: impl Fn(&opsbot_engine::Response) -> bool,
) -> opsbot_engine::Response {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = h.say(ADMIN, text).await;
        if ok(&r) {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: last reply {:?} {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_gives_a_clear_reply_and_recovers() {
    let redis = std::env::var("OPSBOT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into());
    let target = redis
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    if let Err(e) = TcpStream::connect(&target).await {
        skip::<()>(
            format!("no Redis at {} ({e})", redact_url(&redis)),
            fix::REDIS,
        );
        return;
    }
    let proxy = Proxy::start(target).await;
    let db = redis.rsplit('/').next().unwrap_or("15");
    let sessions = opsbot_store::connect_sessions(
        "redis",
        Some(&format!("redis://127.0.0.1:{}/{db}", proxy.port)),
    )
    .await
    .unwrap();
    let h = harness_with(admin_policy(), EngineSettings::default(), Some(sessions)).await;
    let user = format!("outage-{}", std::process::id());
    let r = h
        .engine
        .handle(msg(&user, "概况"), Arc::new(opsbot_engine::Discard))
        .await;
    assert_eq!(
        r.status,
        Status::Denied,
        "sanity: unbound users are refused: {}",
        r.text
    );

    let r = h.say(ADMIN, "菜单").await;
    assert!(r.text.contains("【运维菜单】"), "{}", r.text);

    proxy.cut();
    let r = until(&h, "菜单", "menu refused while Redis is down", |r| {
        r.status == Status::Failed
    })
    .await;
    assert!(
        r.text.contains("会话存储不可用") && r.text.contains("redis unavailable"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "概况").await;
    assert_eq!(
        r.status,
        Status::Ok,
        "commands without sessions still work: {}",
        r.text
    );
    let r = h.say(ADMIN, "关机:web-01").await;
    assert_eq!(
        r.status,
        Status::Failed,
        "a confirmation cannot be kept: {}",
        r.text
    );
    assert!(
        r.text.contains("会话未能保存") || r.text.contains("会话存储不可用"),
        "{}",
        r.text
    );

    proxy.restore();
    let r = until(&h, "菜单", "menu back after Redis returns", |r| {
        r.status == Status::Ok
    })
    .await;
    assert!(r.text.contains("【运维菜单】"), "{}", r.text);
    let r = h.say(ADMIN, "退出").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_gives_a_clear_reply_and_recovers() {
    let admin = std::env::var("OPSBOT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let target = admin
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_string();
    if let Err(e) = TcpStream::connect(&target).await {
        skip::<()>(
            format!("no PostgreSQL at {} ({e})", redact_url(&admin)),
            fix::POSTGRES,
        );
        return;
    }
    if opsbot_testkit::program("psql", fix::PSQL).is_none() {
        return;
    }
    let db = format!("opsbot_outage_{}", std::process::id());
    let psql = |sql: &str| {
        std::process::Command::new("psql")
            .args([admin.as_str(), "-q", "-c", sql])
            .output()
    };
    let created = psql(&format!("CREATE DATABASE {db}")).expect("run psql");
    if !created.status.success() {
        let why = String::from_utf8_lossy(&created.stderr);
        let missing = format!("no usable PostgreSQL at {} ({why})", redact_url(&admin));
        skip::<()>(missing, fix::POSTGRES);
        return;
    }
    let proxy = Proxy::start(target).await;
    let user = admin
        .split("://")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .unwrap_or("postgres");
    let url = format!("postgres://{user}@127.0.0.1:{}/{db}", proxy.port);
    let store = opsbot_store::connect(&url).await.unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let engine = engine_on(&store, &sessions, admin_policy(), EngineSettings::default()).await;
    let h = Harness {
        engine,
        store,
        sessions,
        dir: tempfile::tempdir().unwrap(),
    };
    assert_eq!(h.say(ADMIN, "概况").await.status, Status::Ok);

    proxy.cut();
    let r = until(
        &h,
        "概况",
        "overview refused while the database is down",
        |r| r.status == Status::Failed,
    )
    .await;
    assert!(
        r.text.contains("存储暂不可用") && r.text.contains("postgres unavailable"),
        "{}",
        r.text
    );
    // A chat reply names no URL, host, port or database (the log has them).
    assert!(
        !r.text.contains("://")
            && !r.text.contains("127.0.0.1")
            && !r.text.contains(&proxy.port.to_string())
            && !r.text.contains(&db),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "开机:web-04").await;
    assert_eq!(
        r.status,
        Status::Failed,
        "nothing runs unrecorded: {}",
        r.text
    );

    proxy.restore();
    let r = until(
        &h,
        "概况",
        "overview back after the database returns",
        |r| r.status == Status::Ok,
    )
    .await;
    assert!(r.text.contains("虚拟机 48"), "{}", r.text);
    let (_, _, state) = h.run(ADMIN, "开机:web-04").await;
    assert_eq!(state, Some(opsbot_core::JobState::Succeeded));

    drop(h);
    drop(proxy);
    let _ = psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}

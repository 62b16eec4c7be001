//! Rate limits shared by several instances through Redis (`opsbot_store::RedisWindows`):
//! the WeCom sending limit of two API clients (two instances) against the stand-in
//! WeCom, and the REST API's per-caller budget across two routers. Skips without
//! `OPSBOT_TEST_REDIS_URL` (fails instead under `OPSBOT_TEST_REQUIRE_SERVICES=1`); each
//! test uses its own key prefix.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::World;
use opsbot_core::RateWindows;
use opsbot_fakes::FakeWecom;
use opsbot_store::RedisWindows;
use opsbot_wecom::api::Recipients;
use opsbot_wecom::{AppCredentials, ClientConfig, Error, WecomClient};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CORP: &str = "wwsharedlimits";
const AGENT: i64 = 1000007;

fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "opsbot:test:shared:{}:{nanos}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Two handles on one Redis under one fresh prefix, as two instances hold them.
async fn shared_windows() -> Option<[Arc<dyn RateWindows>; 2]> {
    let Ok(url) = std::env::var("OPSBOT_TEST_REDIS_URL") else {
        return opsbot_testkit::skip(
            "OPSBOT_TEST_REDIS_URL is not set",
            opsbot_testkit::fix::REDIS,
        );
    };
    let prefix = unique_prefix();
    let a = RedisWindows::new(&url).unwrap().with_prefix(&prefix);
    let b = RedisWindows::new(&url).unwrap().with_prefix(&prefix);
    if let Err(e) = a
        .try_acquire(&["probe".into()], 1, Duration::from_secs(1))
        .await
    {
        let url = opsbot_testkit::redact_url(&url);
        return opsbot_testkit::skip(
            format!("no Redis at {url} ({e})"),
            opsbot_testkit::fix::REDIS,
        );
    }
    Some([Arc::new(a), Arc::new(b)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_redis_never_exceed_a_members_limit_together() {
    let Some(windows) = shared_windows().await else {
        return;
    };
    // The stand-in's clock stands still: its minute never ends, so every message past
    // WeCom's 30 for the member would be dropped there.
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "app-secret", AGENT);
    fake.add_users(&["zhangsan"]);
    let apps: Vec<_> = windows
        .iter()
        .map(|w| {
            WecomClient::new(ClientConfig {
                api_base: fake.base_url(),
                limit_windows: Some(w.clone()),
                // Refuse at once instead of waiting the minute out.
                limit_wait: Some(Duration::ZERO),
                ..ClientConfig::default()
            })
            .unwrap()
            .app(AppCredentials::new(CORP, AGENT, "app-secret"))
        })
        .collect();
    // 20 sends through each instance, all at once.
    let mut sends = Vec::new();
    for i in 0..40 {
        let app = apps[i % 2].clone();
        sends.push(tokio::spawn(async move {
            app.send_text(&Recipients::users(["ZhangSan"]), &format!("message {i}"))
                .await
        }));
    }
    let (mut sent, mut held) = (0, 0);
    for send in sends {
        match send.await.unwrap() {
            Ok(_) => sent += 1,
            Err(Error::Throttled { wait, .. }) => {
                assert!(wait > Duration::ZERO && wait <= Duration::from_secs(61));
                held += 1;
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((sent, held), (30, 10));
    let deliveries = fake.deliveries();
    assert_eq!(deliveries.len(), 30);
    assert!(fake.dropped().is_empty(), "{:?}", fake.dropped());
    // The held-back ones are retryable, after the wait they name.
    let e = apps[0]
        .send_text(&Recipients::users(["zhangsan"]), "one more")
        .await
        .unwrap_err();
    assert!(e.is_retryable() && e.retry_after().is_some(), "{e}");
}

/// An instance of the REST API on `w`'s store and key, with a budget of 3 requests per
/// caller (refilled one per minute), counted in `windows`.
async fn instance(w: &World, windows: Arc<dyn RateWindows>) -> String {
    let config = opsbot_http::WebConfig {
        wecom_app: None,
        rate_limit_per_minute: 1,
        rate_limit_burst: 3,
        ..w.ctx.config.clone()
    };
    let mut ctx = opsbot_http::ApiContext::new(
        w.ctx.engine.clone(),
        w.store.clone(),
        w.ctx.sessions.clone(),
        config,
        w.ctx.public_url.clone(),
        None,
        &w.key,
    )
    .await
    .unwrap();
    ctx.share_limits(windows);
    let router = opsbot_http::router(opsbot_http::AppState {
        store: w.store.clone(),
        version: "test",
        channels: Default::default(),
        api: Some(Arc::new(ctx)),
        alerts: None,
        cmdb: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        opsbot_http::serve(listener, router, std::future::pending())
            .await
            .unwrap()
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_budget_is_spent_across_instances() {
    let Some([one, two]) = shared_windows().await else {
        return;
    };
    let w = World::start().await;
    let bases = [instance(&w, one).await, instance(&w, two).await];
    let token = w.token("admin").await;
    let other = w.token("zhangsan").await;
    let get = |base: &str, token: &str| {
        w.http
            .get(format!("{base}/api/v1/datacenters"))
            .bearer_auth(token)
            .send()
    };
    // Three requests between the two instances spend the budget of three.
    for base in [&bases[0], &bases[1], &bases[0]] {
        let r = get(base, &token).await.unwrap();
        assert_eq!(r.status(), 200, "{base}");
    }
    for base in &bases {
        let r = get(base, &token).await.unwrap();
        assert_eq!(r.status(), 429, "{base}");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=180).contains(&retry), "{retry}");
    }
    // Another caller has a budget of its own.
    let r = get(&bases[1], &other).await.unwrap();
    assert_eq!(r.status(), 200);
}

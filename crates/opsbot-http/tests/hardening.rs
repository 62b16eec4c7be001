//! What an anonymous or abusive client can do to the server over real HTTP, and what it
//! no longer can: grow `/metrics` with made-up methods and paths, fill the audit log
//! with refused calls, exhaust connections with idle or slow ones, run web actions past
//! the per-user budget, frame the web UI, replay an OAuth state, and guess passwords
//! unaudited.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::{cookie_pair, location, set_cookie, Options, World, ADMIN_PASSWORD};
use opsbot_core::{AuditEntry, AuditResult};
use opsbot_store::{AuditQuery, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn audit(store: &Arc<dyn Store>) -> Vec<AuditEntry> {
    store
        .audit_log(&AuditQuery {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
}

fn value_of<'a>(html: &'a str, name: &str) -> &'a str {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .split('"')
        .next()
        .unwrap()
}

/// A logged-in admin browser: its session cookie and the session's CSRF token.
async fn admin_browser(w: &World) -> (String, String) {
    let r = w.http.get(w.url("/ui/login")).send().await.unwrap();
    let login_cookie = cookie_pair(&set_cookie(&r, "ob_login").unwrap());
    let html = r.text().await.unwrap();
    let r = w
        .http
        .post(w.url("/ui/login"))
        .header("cookie", &login_cookie)
        .form(&[
            ("csrf", value_of(&html, "csrf")),
            ("user", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "/ui/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let session = cookie_pair(&set_cookie(&r, "ob_session").unwrap());
    let html = w
        .http
        .get(w.url("/ui/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = value_of(&html, "csrf").to_string();
    (session, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_add_no_metric_series() {
    let w = World::start().await;
    let marker = format!("Zq{}", rand::random::<u32>());
    for i in 0..200 {
        let method = reqwest::Method::from_bytes(format!("{marker}M{i}").as_bytes()).unwrap();
        let r = w
            .http
            .request(method, w.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
        let r = w
            .http
            .get(w.url(&format!("/{marker}/p{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let text = w
        .http
        .get(w.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains(&marker),
        "a client-chosen method or path became a label:\n{}",
        text.lines()
            .filter(|l| l.contains(&marker))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        text.contains("method=\"other\"") && text.contains("route=\"/healthz\""),
        "unknown methods are counted as one label"
    );
    assert!(
        text.contains("route=\"unmatched\""),
        "unmatched paths are counted as one label"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_refusals_cannot_fill_the_audit_log() {
    let w = World::start().await;
    let before = audit(&w.store).await.len();
    let long = "A".repeat(60_000);
    let path = format!("/api/v1/vms/sim/{long}/actions");
    let n = 300;
    for _ in 0..n {
        let r = w
            .http
            .post(w.url(&path))
            .header("user-agent", "B".repeat(8_000))
            .json(&serde_json::json!({"action": "power_off"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let rows = audit(&w.store).await;
    let new: Vec<&AuditEntry> = rows[..rows.len() - before].iter().collect();
    assert_eq!(new.len(), 1, "one row for the first refusal: {new:?}");
    let first = new[0];
    assert_eq!(first.user, "(unauthenticated 127.0.0.1)");
    assert_eq!(first.result, AuditResult::Denied);
    assert!(
        first.text.starts_with("POST /api/v1/vms/sim/AAAA"),
        "{first:?}"
    );
    assert!(
        first.text.chars().count() < 300,
        "the path is capped: {} chars",
        first.text.chars().count()
    );
    // The minute closes: one more row counts the rest.
    w.ctx.refusals.flush().await;
    let rows = audit(&w.store).await;
    let new: Vec<&AuditEntry> = rows[..rows.len() - before].iter().collect();
    assert_eq!(new.len(), 2, "{new:?}");
    let summary = new[0];
    assert!(
        summary
            .message
            .contains(&format!("{} more refused calls", n - 1)),
        "{summary:?}"
    );
    let stored: usize = new
        .iter()
        .map(|e| e.text.len() + e.message.len() + e.user.len())
        .sum();
    assert!(
        stored < 2_000,
        "{n} refused calls of 60 kB each stored {stored} bytes"
    );
    // A new minute: its first refusal is written at once again.
    let r = w.http.post(w.url("/api/v1/sync")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(audit(&w.store).await.len(), before + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_a_known_user_are_audited_one_by_one() {
    let w = World::start().await;
    let (session, _csrf) = admin_browser(&w).await;
    let before = audit(&w.store).await.len();
    for _ in 0..3 {
        let r = w
            .http
            .post(w.url("/api/v1/sync"))
            .header("cookie", &session)
            .header("x-csrf-token", "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let rows = audit(&w.store).await;
    let new = &rows[..rows.len() - before];
    assert_eq!(new.len(), 3, "{new:?}");
    for e in new {
        assert_eq!(e.user, "admin", "{e:?}");
        assert_eq!(e.text, "POST /api/v1/sync");
        assert!(e.message.contains("X-CSRF-Token"), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_actions_spend_the_users_rate_budget() {
    let w = World::with(Options {
        rate_limit_per_minute: 1,
        rate_limit_burst: 3,
        ..Options::default()
    })
    .await;
    let (session, csrf) = admin_browser(&w).await;
    let vm = w.vm("datacenter=DC0&power=on").await;
    let act = w.url(&format!("/ui/vms/sim/{}/act", vm["id"].as_str().unwrap()));
    let mut statuses = Vec::new();
    let mut refused_page = String::new();
    for _ in 0..6 {
        let r = w
            .http
            .post(&act)
            .header("cookie", &session)
            .form(&[("csrf", csrf.as_str()), ("action", "reboot")])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            refused_page = r.text().await.unwrap();
        }
    }
    assert_eq!(statuses, [303, 303, 303, 429, 429, 429], "{statuses:?}");
    assert!(
        refused_page.contains("操作过于频繁") && refused_page.contains("秒后再试"),
        "{refused_page}"
    );
    let jobs = w
        .store
        .jobs(&opsbot_store::JobQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), 3, "only the actions within the budget ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_refuse_framing_and_answers_refuse_sniffing() {
    let w = World::start().await;
    let (session, _) = admin_browser(&w).await;
    for path in ["/ui/login", "/ui/", "/ui/vms", "/api/v1/docs"] {
        let r = w
            .http
            .get(w.url(path))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
    for path in ["/api/v1/vms", "/api/v1/openapi.json", "/healthz", "/nope"] {
        let r = w.http.get(w.url(path)).send().await.unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}

/// Off to WeCom: the state in the authorize URL and the browser's state cookie.
async fn oauth_start(w: &World, base: &str) -> (String, String) {
    let r = w
        .http
        .get(format!("{base}/ui/auth/wecom?next=/ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let authorize = location(&r);
    let state = authorize
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    (state, cookie_pair(&set_cookie(&r, "ob_oauth").unwrap()))
}

async fn oauth_back(w: &World, base: &str, state: &str, cookie: &str) -> reqwest::Response {
    let code = w.fake.mint_code("zhangsan");
    w.http
        .get(format!(
            "{base}/ui/auth/wecom/callback?code={code}&state={state}"
        ))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// A second opsbot instance on the same store and session store.
async fn second_instance(w: &World) -> String {
    let config = opsbot_http::WebConfig {
        wecom_app: None,
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
    ctx.oauth = w.ctx.oauth.clone();
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
async fn an_oauth_state_signs_in_once_on_any_instance() {
    let w = World::start().await;
    let other = second_instance(&w).await;
    let (state, cookie) = oauth_start(&w, &w.base).await;
    let r = oauth_back(&w, &w.base, &state, &cookie).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert!(set_cookie(&r, "ob_session").is_some());
    // The same state and cookie with a fresh code, here and on the other instance.
    for base in [&w.base, &other] {
        let r = oauth_back(&w, base, &state, &cookie).await;
        assert_eq!(r.status(), 400, "{base}");
        assert!(set_cookie(&r, "ob_session").is_none(), "{base}");
        let html = r.text().await.unwrap();
        assert!(html.contains("已经用过"), "{html}");
    }
    // A state started on one instance and first used on the other works once.
    let (state, cookie) = oauth_start(&w, &w.base).await;
    assert_eq!(oauth_back(&w, &other, &state, &cookie).await.status(), 303);
    assert_eq!(oauth_back(&w, &w.base, &state, &cookie).await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_refused_by_the_rate_limit_are_audited() {
    let w = World::start().await;
    let r = w.http.get(w.url("/ui/login")).send().await.unwrap();
    let cookie = cookie_pair(&set_cookie(&r, "ob_login").unwrap());
    let html = r.text().await.unwrap();
    let csrf = value_of(&html, "csrf").to_string();
    // Ten attempts a minute per address; argon2 in a debug build is slow enough for the
    // budget to refill a little meanwhile, so go on until refused, then a few more.
    let mut statuses: Vec<u16> = Vec::new();
    while statuses.iter().filter(|s| **s == 429).count() < 4 {
        assert!(statuses.len() < 60, "never limited: {statuses:?}");
        let r = w
            .http
            .post(w.url("/ui/login"))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("user", "admin"),
                ("password", "guess"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let limited = statuses.iter().filter(|s| **s == 429).count() as u64;
    w.ctx.refusals.flush().await;
    let rows = audit(&w.store).await;
    let refused: Vec<&AuditEntry> = rows
        .iter()
        .filter(|e| e.message.contains("too many attempts"))
        .collect();
    assert!(!refused.is_empty(), "{rows:?}");
    assert!(refused
        .iter()
        .all(|e| e.user == "(unauthenticated 127.0.0.1)"
            && e.channel == "web"
            && e.result == AuditResult::Denied));
    // The first at once, the rest counted in one row.
    let counted: u64 = 1 + refused
        .iter()
        .filter_map(|e| e.message.split(" more refused").next()?.parse::<u64>().ok())
        .sum::<u64>();
    assert_eq!(counted, limited, "{refused:?}");
}

/// A server with only the health endpoints, within `limits`.
async fn bare_server(limits: opsbot_http::ServeLimits) -> std::net::SocketAddr {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let router = opsbot_http::router(opsbot_http::AppState {
        store,
        version: "test",
        channels: Default::default(),
        alerts: None,
        api: None,
        cmdb: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _dir = dir;
        opsbot_http::serve_with(listener, router, limits, std::future::pending())
            .await
            .unwrap()
    });
    addr
}

/// Reads until the server closes the connection (or resets it); panics at the deadline.
async fn closed_by_server(mut s: TcpStream, deadline: tokio::time::Instant) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open; read so far: {got:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_and_healthz_still_answers() {
    let addr = bare_server(opsbot_http::ServeLimits {
        max_connections: 32,
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
    })
    .await;
    // A crowd of idle connections (three times the limit) and slow-loris heads.
    let mut idle = Vec::new();
    for _ in 0..96 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut loris = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            .await
            .unwrap();
        loris.push(s);
    }
    // A body announced and never sent.
    let mut slow_body = TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(
            b"POST /wecom/ops/callback HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<xml>",
        )
        .await
        .unwrap();
    // /healthz answers all the same.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // And every one of them is closed by the server.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for s in idle {
        assert!(closed_by_server(s, deadline).await.is_empty());
    }
    for s in loris {
        let got = closed_by_server(s, deadline).await;
        assert!(
            !String::from_utf8_lossy(&got).contains("200 OK"),
            "an unfinished head is never served"
        );
    }
    let answer = closed_by_server(slow_body, deadline).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    // Still serving, on a new connection: the server has by now closed the idle keep-alive
    // connection the client pooled for the first check, and reusing it would be reset.
    drop(client);
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

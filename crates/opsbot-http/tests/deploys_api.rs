//! The deploy REST API on a real server (SQLite store, the engine with the deploy
//! subsystem registered): projects, release orders and their hosts, scoped like chat
//! (out of scope reads as absent); approve / reject through the engine, permission
//! checked (403), state checked (409), input checked (422) and audited; logs as
//! server-sent events, in order, resumable with `Last-Event-ID`. Orders are created in
//! the store: no SSH hosts are needed.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

#[path = "deploys/world.rs"]
mod world;

use opsbot_store::deploy::{LogOf, OrderPatch};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use world::World;

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p[key].to_string().trim_matches('"').to_string())
        .collect()
}

#[tokio::test]
async fn projects_are_scoped_and_hide_repository_credentials() {
    let w = World::start().await;
    let dev = w.token("zhangsan").await;
    let other = w.token("wangwu").await;
    let (s, list) = w.get(&dev, "/api/v1/projects").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(names(&list, "name"), ["shop"]);
    assert!(!list.to_string().contains("hunter2"), "{list}");
    assert_eq!(list[0]["repo_url"], "https://***@git.example.com/shop.git");
    let (s, list) = w.get(&other, "/api/v1/projects").await;
    assert_eq!(s, 200);
    assert_eq!(names(&list, "name"), ["other"]);
    // Out of scope reads exactly as absent.
    let (s, e) = w.get(&dev, "/api/v1/projects/other").await;
    assert_eq!(s, 404, "{e}");
    let (s2, e2) = w.get(&dev, "/api/v1/projects/nosuch").await;
    assert_eq!(s2, 404);
    assert_eq!(e["error"], e2["error"]);
    let (s, p) = w.get(&dev, "/api/v1/projects/shop").await;
    assert_eq!((s, p["approval_required"].clone()), (200, json!(true)));
}

#[tokio::test]
async fn creating_projects_is_for_administrators() {
    let w = World::start().await;
    let dev = w.token("zhangsan").await;
    let admin = w.token("admin").await;
    let body = json!({
        "name": "blog",
        "repo": {"kind": "git", "url": "https://git.example.com/blog.git"},
        "hosts": ["127.0.0.1"],
        "deploy_root": "/srv/blog",
    });
    let (s, e) = w.post(&dev, "/api/v1/projects", body.clone()).await;
    assert_eq!(s, 403, "{e}");
    let (s, p) = w.post(&admin, "/api/v1/projects", body).await;
    assert_eq!(s, 200, "{p}");
    let (s, list) = w.get(&admin, "/api/v1/projects").await;
    assert_eq!(s, 200);
    assert!(names(&list, "name").contains(&"blog".to_string()), "{list}");
    // A configured project is not replaced through the API; unknown keys are refused.
    let (s, e) = w
        .post(
            &admin,
            "/api/v1/projects",
            json!({"name": "shop", "repo": {"kind": "git", "url": "https://x/y.git"}, "deploy_root": "/srv/x"}),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = w
        .post(
            &admin,
            "/api/v1/projects",
            json!({"name": "x", "rm": "-rf"}),
        )
        .await;
    assert_eq!(s, 422, "{e}");
}

#[tokio::test]
async fn orders_are_listed_and_read_within_scope() {
    let w = World::start().await;
    let shop = w.order("shop", "待审批").await;
    let other = w.order("other", "待审批").await;
    let dev = w.token("zhangsan").await;
    let (s, page) = w.get(&dev, "/api/v1/releases").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(names(&page["items"], "id"), [shop.to_string()]);
    let (s, page) = w
        .get(
            &dev,
            "/api/v1/releases?state=%E5%BE%85%E5%AE%A1%E6%89%B9&project=shop",
        )
        .await;
    assert_eq!((s, page["items"].as_array().unwrap().len()), (200, 1));
    let (s, e) = w.get(&dev, &format!("/api/v1/releases/{other}")).await;
    assert_eq!(s, 404, "{e}");
    let (s, r) = w.get(&dev, &format!("/api/v1/releases/{shop}")).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["order"]["state"], "待审批");
    assert_eq!(names(&r["hosts"], "host"), ["web-01", "web-02"]);
    assert_eq!(r["hosts"][1]["batch"], 1);
    assert_eq!(r["order"]["actions"], json!(["approve", "reject", "abort"]));
    // Bad input: a state that is none, an id that is not one, a missing order.
    let (s, _) = w.get(&dev, "/api/v1/releases?state=bogus").await;
    assert_eq!(s, 400);
    let (s, _) = w.get(&dev, "/api/v1/releases/abc").await;
    assert_eq!(s, 400);
    let (s, _) = w.get(&dev, "/api/v1/releases/999999").await;
    assert_eq!(s, 404);
}

async fn audit_has(w: &World, user: &str, command: &str) -> bool {
    let admin = w.token("admin").await;
    let (s, page) = w.get(&admin, "/api/v1/audit?per_page=100").await;
    assert_eq!(s, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["user"] == user && e["text"].as_str().unwrap_or("").starts_with(command))
}

#[tokio::test]
async fn approving_goes_through_the_engine_with_its_permissions_and_audit() {
    let w = World::start().await;
    let id = w.order("shop", "待审批").await;
    let path = format!("/api/v1/releases/{id}/approve");
    // Sees the order, may not approve it.
    let (s, e) = w.post(&w.token("zhaoliu").await, &path, json!({})).await;
    assert_eq!(s, 403, "{e}");
    // No 批准 anywhere: the engine refuses, and audits it.
    let (s, e) = w.post(&w.token("zhangsan").await, &path, json!({})).await;
    assert_eq!(s, 403, "{e}");
    assert!(audit_has(&w, "zhangsan", "批准").await);
    // Another team's approver does not see it at all.
    let (s, e) = w.post(&w.token("wangwu").await, &path, json!({})).await;
    assert_eq!(s, 404, "{e}");
    let lead = w.token("lisi").await;
    let (s, e) = w
        .post(&lead, &format!("/api/v1/releases/{id}/explode"), json!({}))
        .await;
    assert_eq!(s, 404, "{e}");
    let (s, r) = w.post(&lead, &path, json!({})).await;
    assert!(s == 200 || s == 202, "{s} {r}");
    assert!(r["message"].as_str().unwrap().contains("批准"), "{r}");
    if s == 202 {
        assert_eq!(r["status_url"], format!("/api/v1/jobs/{}", r["job"]));
    }
    let o = w.store.order_get(id).await.unwrap().unwrap();
    assert_ne!(o.state, "待审批");
    assert_eq!(o.approver.as_deref(), Some("lisi"));
    assert!(audit_has(&w, "lisi", "批准").await);
    // Twice is a conflict with the order's state.
    let (s, e) = w.post(&lead, &path, json!({})).await;
    assert_eq!(s, 409, "{e}");
}

#[tokio::test]
async fn rejecting_needs_a_clean_reason() {
    let w = World::start().await;
    let id = w.order("shop", "待审批").await;
    let lead = w.token("lisi").await;
    let path = format!("/api/v1/releases/{id}/reject");
    let (s, e) = w.post(&lead, &path, json!({})).await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = w
        .post(&lead, &path, json!({"reason": "bad\u{0}byte"}))
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = w
        .post(&lead, &path, json!({"reason": "x".repeat(600)}))
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = w.post(&lead, &path, json!({"reason": 5})).await;
    assert_eq!(s, 422, "{e}");
    // Bodies beyond the API's limit are refused before they are read.
    let (s, e) = w
        .post(&lead, &path, json!({"reason": "x".repeat(40_000)}))
        .await;
    assert_eq!(s, 413, "{e}");
    let (s, r) = w.post(&lead, &path, json!({"reason": "窗口外发布"})).await;
    assert_eq!(s, 200, "{r}");
    let o = w.store.order_get(id).await.unwrap().unwrap();
    assert_eq!(o.state, "已驳回");
    assert_eq!(o.reason.as_deref(), Some("窗口外发布"));
    assert!(audit_has(&w, "lisi", "驳回").await);
}

/// One server-sent event: (event, id, data).
type Sse = (String, String, String);

/// Reads events from `r` until `stop` says so or the stream ends (deadline 20 s).
async fn read_events(mut r: reqwest::Response, stop: impl Fn(&[Sse]) -> bool) -> Vec<Sse> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = String::new();
    let mut out: Vec<Sse> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "stream too slow: {out:?}");
        let chunk = tokio::time::timeout(left, r.chunk())
            .await
            .unwrap()
            .unwrap();
        let Some(chunk) = chunk else { return out };
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut ev, mut id, mut data) =
                (String::from("message"), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    ev = v.trim().into();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().into();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !data.is_empty() {
                out.push((ev, id, data));
            }
        }
        if stop(&out) {
            return out;
        }
    }
}

async fn open_logs(w: &World, token: &str, id: i64, last: Option<&str>) -> reqwest::Response {
    let mut req = w
        .http
        .get(w.url(&format!("/api/v1/releases/{id}/logs")))
        .bearer_auth(token);
    if let Some(l) = last {
        req = req.header("Last-Event-ID", l);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    r
}

#[tokio::test]
async fn logs_stream_in_order_end_with_the_order_and_resume() {
    let w = World::start().await;
    let id = w.order("shop", "待审批").await;
    let store = w.store.clone();
    let mut seqs = Vec::new();
    for (host, text) in [
        ("web-01", "upload"),
        ("web-02", "unpack\nline two"),
        ("", "done"),
    ] {
        seqs.push(
            store
                .log_append(LogOf::Order(id, Some(host)), text)
                .await
                .unwrap(),
        );
    }
    let dev = w.token("zhangsan").await;
    // Live: the three lines, then one appended while the stream is open.
    let r = open_logs(&w, &dev, id, None).await;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .log_append(LogOf::Order(id, Some("web-01")), "switch")
                .await
                .unwrap()
        })
    };
    let events = read_events(r, |e| e.len() >= 4).await;
    let late = writer.await.unwrap();
    let texts: Vec<String> = events
        .iter()
        .map(|(_, _, d)| {
            serde_json::from_str::<Value>(d).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts, ["upload", "unpack\nline two", "done", "switch"]);
    let ids: Vec<i64> = events.iter().map(|(_, i, _)| i.parse().unwrap()).collect();
    assert_eq!(ids, [seqs[0], seqs[1], seqs[2], late]);
    assert!(events.iter().all(|(e, _, _)| e == "log"));
    // The order ends: a stream resumed after the first line sends the rest, then `end`.
    assert!(store
        .order_transition(
            id,
            &["待审批"],
            "已终止",
            &OrderPatch {
                finished: true,
                ..OrderPatch::default()
            }
        )
        .await
        .unwrap());
    let r = open_logs(&w, &dev, id, Some(&seqs[0].to_string())).await;
    let events = read_events(r, |_| false).await;
    let ids: Vec<&str> = events.iter().map(|(_, i, _)| i.as_str()).collect();
    assert_eq!(
        ids,
        [
            seqs[1].to_string(),
            seqs[2].to_string(),
            late.to_string(),
            String::new()
        ]
    );
    assert_eq!(events.last().unwrap().0, "end");
    // One host only.
    let r = w
        .http
        .get(w.url(&format!("/api/v1/releases/{id}/logs?host=web-02")))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap();
    let events = read_events(r, |_| false).await;
    assert_eq!(events.len(), 2, "{events:?}");
    // Out of scope, a bad Last-Event-ID.
    let (s, _) = w
        .get(
            &w.token("wangwu").await,
            &format!("/api/v1/releases/{id}/logs"),
        )
        .await;
    assert_eq!(s, 404);
    let r = w
        .http
        .get(w.url(&format!("/api/v1/releases/{id}/logs")))
        .bearer_auth(&dev)
        .header("Last-Event-ID", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_build_log_streams_until_the_build_ends() {
    use opsbot_store::deploy::{BuildEnd, NewBuild};
    let w = World::start().await;
    let id = w
        .store
        .build_create(
            &NewBuild {
                project: "shop".into(),
                reference: "main".into(),
                user: "zhangsan".into(),
            },
            "test-instance",
        )
        .await
        .unwrap();
    w.store
        .log_append(LogOf::Build(id), "$ make")
        .await
        .unwrap();
    let dev = w.token("zhangsan").await;
    let (s, b) = w.get(&dev, &format!("/api/v1/builds/{id}")).await;
    assert_eq!((s, b["state"].clone()), (200, json!("running")), "{b}");
    let (s, page) = w.get(&dev, "/api/v1/builds?project=shop").await;
    assert_eq!((s, page["items"].as_array().unwrap().len()), (200, 1));
    let (s, page) = w.get(&w.token("wangwu").await, "/api/v1/builds").await;
    assert_eq!((s, page["items"].as_array().unwrap().len()), (200, 0));
    let r = w
        .http
        .get(w.url(&format!("/api/v1/builds/{id}/log")))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap();
    let store = w.store.clone();
    let finisher = tokio::spawn(async move {
        store.log_append(LogOf::Build(id), "ok").await.unwrap();
        store
            .build_finish(
                id,
                &BuildEnd {
                    state: "failed".into(),
                    revision: String::new(),
                    artefact: None,
                    artefact_size: None,
                    changelog: String::new(),
                    error: Some("make: *** failed".into()),
                },
            )
            .await
            .unwrap();
    });
    let events = read_events(r, |_| false).await;
    finisher.await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(kinds, ["log", "log", "end"], "{events:?}");
}

#[tokio::test]
async fn a_release_of_a_project_without_builds_is_refused_and_a_build_starts_a_job() {
    let w = World::start().await;
    let dev = w.token("zhangsan").await;
    let (s, e) = w
        .post(&dev, "/api/v1/releases", json!({"project": "shop"}))
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(e["message"].as_str().unwrap().contains("构建"), "{e}");
    let (s, e) = w
        .post(&dev, "/api/v1/releases", json!({"project": "other"}))
        .await;
    assert_eq!(s, 404, "{e}");
    let (s, e) = w
        .post(
            &dev,
            "/api/v1/builds",
            json!({"project": "shop", "ref": "-rf"}),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    // The repository does not exist: the build is accepted as a job, then fails.
    let (s, acc) = w
        .post(
            &dev,
            "/api/v1/builds",
            json!({"project": "shop", "ref": "main"}),
        )
        .await;
    assert_eq!(s, 202, "{acc}");
    assert!(acc["status_url"]
        .as_str()
        .unwrap()
        .starts_with("/api/v1/jobs/"));
    let (s, e) = w
        .post(
            &w.token("zhaoliu").await,
            "/api/v1/projects/shop/rollback",
            json!({}),
        )
        .await;
    assert_eq!(s, 403, "{e}");
    // Nothing released yet, no such version, a project out of sight.
    let (s, e) = w
        .post(&dev, "/api/v1/projects/shop/rollback", json!({}))
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = w
        .post(
            &dev,
            "/api/v1/projects/shop/rollback",
            json!({"version": 5}),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = w
        .post(&dev, "/api/v1/projects/other/rollback", json!({}))
        .await;
    assert_eq!(s, 404, "{e}");
}

/// `name=value` of the Set-Cookie header naming `name`.
fn cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn csrf_in(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// The local administrator's session cookie.
async fn web_login(w: &World) -> String {
    let r = w.http.get(w.url("/ui/login")).send().await.unwrap();
    let login = cookie(&r, "ob_login");
    let csrf = csrf_in(&r.text().await.unwrap());
    let r = w
        .http
        .post(w.url("/ui/login"))
        .header("cookie", &login)
        .form(&[
            ("csrf", csrf.as_str()),
            ("user", "admin"),
            ("password", world::ADMIN_PASSWORD),
            ("next", "/ui/releases"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    cookie(&r, "ob_session")
}

#[tokio::test]
async fn the_release_pages_show_hosts_and_act_with_csrf() {
    let w = World::start().await;
    let id = w.order("shop", "待审批").await;
    w.store
        .log_append(LogOf::Order(id, Some("web-01")), "<script>x</script>")
        .await
        .unwrap();
    let session = web_login(&w).await;
    let page = |path: String| {
        let r = w.http.get(w.url(&path)).header("cookie", &session).send();
        async move {
            let r = r.await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, html) = page("/ui/projects".into()).await;
    assert_eq!(s, 200);
    assert!(html.contains("shop") && html.contains("other") && html.contains("构建"));
    assert!(!html.contains("hunter2"));
    let (s, html) = page("/ui/releases".into()).await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!("/ui/releases/{id}")) && html.contains("待审批"));
    let (s, html) = page(format!("/ui/releases/{id}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("web-01") && html.contains("web-02"), "{html}");
    assert!(html.contains("act-approve") && html.contains("dlg-abort"));
    assert!(
        !html.contains("act-pause"),
        "not while waiting for approval"
    );
    assert!(html.contains("&lt;script&gt;x") && !html.contains("<script>x"));
    assert!(html.contains(&format!("data-log=\"/api/v1/releases/{id}/logs\"")));
    let csrf = csrf_in(&html);
    let post = |action: &str, csrf: &str| {
        w.http
            .post(w.url(&format!("/ui/releases/{id}/{action}")))
            .header("cookie", &session)
            .form(&[("csrf", csrf), ("reason", "")])
            .send()
    };
    // A form without this session's CSRF value does nothing.
    let r = post("approve", "forged").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        w.store.order_get(id).await.unwrap().unwrap().state,
        "待审批"
    );
    // 驳回 needs a reason.
    let r = post("reject", &csrf).await.unwrap();
    assert_eq!(r.status(), 422);
    let r = post("approve", &csrf).await.unwrap();
    let status = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("已由 admin 批准"), "{html}");
    assert_ne!(
        w.store.order_get(id).await.unwrap().unwrap().state,
        "待审批"
    );
    let (s, _) = page("/ui/releases/999999".into()).await;
    assert_eq!(s, 404);
}

/// An order not approved within `[deploy] approval_expiry` cannot be approved or
/// rejected any more: the first try marks it 已过期 and says to ask again.
#[tokio::test]
async fn an_expired_order_is_neither_approved_nor_rejected() {
    let w = World::start().await;
    // Its approval window ended a minute ago.
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    let expired = w
        .store
        .order_create(&opsbot_store::deploy::NewOrder {
            project: "shop".into(),
            kind: "release".into(),
            build: None,
            version: None,
            state: "待审批".into(),
            user: "zhangsan".into(),
            channel: "api".into(),
            chat: None,
            batches: 1,
            plan: String::new(),
            expires_at: Some(past),
            hosts: vec![opsbot_store::deploy::NewHostRun {
                host: "web-01".into(),
                address: "127.0.0.1".into(),
                batch: 0,
            }],
        })
        .await
        .unwrap();
    let lead = w.token("lisi").await;
    let (s, e) = w
        .post(
            &lead,
            &format!("/api/v1/releases/{expired}/approve"),
            json!({}),
        )
        .await;
    assert!(s == 409 || s == 422, "{s} {e}");
    assert!(
        e["message"].as_str().unwrap_or("").contains("已过期"),
        "{e}"
    );
    let o = w.store.order_get(expired).await.unwrap().unwrap();
    assert_eq!((o.state.as_str(), o.approver), ("已过期", None));
    let (s, e) = w
        .post(
            &lead,
            &format!("/api/v1/releases/{expired}/reject"),
            json!({"reason": "迟了"}),
        )
        .await;
    assert!(s == 409 || s == 422, "{s} {e}");
    assert!(
        e["message"].as_str().unwrap_or("").contains("已过期"),
        "{e}"
    );
}

//! The permission matrix over every surface: for a user with every command but in DC0
//! only (zhaoliu, `commands = ["*"]`, scope `sim/DC0/**`) and for the administrator,
//! chat, the REST API, the web pages and actions, the audit log, jobs and every count
//! show exactly the visible set; an object outside the caller's scopes answers exactly
//! as one that does not exist.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::{cookie_pair, location, set_cookie, World};
use opsbot_engine::{Incoming, Response, Status};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

const WECOM_UA: &str = "Mozilla/5.0 (iPhone) wxwork/4.1.20 MicroMessenger/7.0.1";
const SCOPED: &str = "zhaoliu";
const ADMIN: &str = "admin";

/// A web session for `member` through WeCom's login-free OAuth (the fake WeCom).
async fn web_session(w: &World, member: &str) -> String {
    w.fake.set_oauth_member(Some(member));
    let mut url = w.url("/ui/login?next=/ui/");
    let mut cookies: Vec<String> = Vec::new();
    for _ in 0..6 {
        let r = w
            .http
            .get(&url)
            .header("user-agent", WECOM_UA)
            .header("cookie", cookies.join("; "))
            .send()
            .await
            .unwrap();
        if let Some(c) = set_cookie(&r, "ob_oauth") {
            cookies.push(cookie_pair(&c));
        }
        if let Some(c) = set_cookie(&r, "ob_session") {
            return cookie_pair(&c);
        }
        assert!(r.status().is_redirection(), "{url}: {}", r.status());
        let next = location(&r);
        url = if next.starts_with("http") {
            next.split('#').next().unwrap().to_string()
        } else {
            w.url(&next)
        };
    }
    panic!("no session for {member}");
}

async fn page(w: &World, session: &str, path: &str) -> (u16, String) {
    let r = w
        .http
        .get(w.url(path))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("a csrf field")
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

async fn web_act(w: &World, session: &str, csrf: &str, id: &str, action: &str) -> (u16, String) {
    let r = w
        .http
        .post(w.url(&format!("/ui/vms/sim/{id}/act")))
        .header("cookie", session)
        .form(&[("csrf", csrf), ("action", action)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn chat(w: &World, user: &str, text: &str) -> Response {
    w.ctx
        .engine
        .handle(
            Incoming {
                channel: "console".into(),
                user: user.into(),
                chat: None,
                text: text.into(),
                assume_yes: true,
            },
            Arc::new(opsbot_engine::Discard),
        )
        .await
}

/// Every item of a paged API list, as `user` sees it.
async fn all(w: &World, token: &str, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (s, page) = w.get(token, &format!("{path}{sep}per_page=500")).await;
    assert_eq!(s, 200, "{path}: {page}");
    assert_eq!(page["has_more"], false, "{path}");
    page["items"].as_array().unwrap().clone()
}

/// The same answer, once the two ids are taken out.
fn same_modulo(a: &str, id_a: &str, b: &str, id_b: &str) {
    assert_eq!(a.replace(id_a, "ID"), b.replace(id_b, "ID"));
}

#[tokio::test]
async fn every_surface_shows_exactly_the_visible_set() {
    let w = World::start().await;
    let admin = w.token(ADMIN).await;
    let scoped = w.token(SCOPED).await;
    // The truth, from the administrator's view: DC0's share of each kind.
    for (path, field) in [
        ("/api/v1/vms", "datacenter"),
        ("/api/v1/hosts", "datacenter"),
        ("/api/v1/datastores", "datacenter"),
        ("/api/v1/networks", "datacenter"),
        ("/api/v1/clusters", "datacenter"),
        ("/api/v1/datacenters", "name"),
    ] {
        let everything = all(&w, &admin, path).await;
        let dc0: Vec<Value> = everything
            .iter()
            .filter(|v| v[field] == "DC0")
            .cloned()
            .collect();
        assert!(dc0.len() < everything.len(), "{path}: DC1 has some too");
        let seen = all(&w, &scoped, path).await;
        let id = |v: &Value| format!("{}/{}", v["provider"], v["id"]);
        assert_eq!(
            seen.iter().map(id).collect::<BTreeSet<_>>(),
            dc0.iter().map(id).collect::<BTreeSet<_>>(),
            "{path}: exactly DC0's"
        );
    }
    // Templates (all four in DC0) and the one-object reads.
    assert_eq!(all(&w, &scoped, "/api/v1/templates").await.len(), 4);

    // Chat: lists and the overview count DC0 only; the administrator sees both.
    for (user, vms, hosts, stores, dcs) in [(SCOPED, 44, 6, 4, 1), (ADMIN, 48, 8, 5, 2)] {
        let r = chat(&w, user, "虚拟机").await;
        assert!(
            r.text.contains(&format!("共 {vms} 个")),
            "{user}: {}",
            r.text
        );
        let r = chat(&w, user, "主机").await;
        assert!(
            r.text.contains(&format!("共 {hosts} 个")),
            "{user}: {}",
            r.text
        );
        let r = chat(&w, user, "存储").await;
        assert!(
            r.text.contains(&format!("共 {stores} 个")),
            "{user}: {}",
            r.text
        );
        let r = chat(&w, user, "数据中心").await;
        assert!(
            r.text.contains(&format!("共 {dcs} 个")),
            "{user}: {}",
            r.text
        );
        let r = chat(&w, user, "概况").await;
        assert!(
            r.text.contains(&format!("数据中心 {dcs} ·"))
                && r.text.contains(&format!("虚拟机 {vms}:"))
                && r.text.contains(&format!("存储 {stores} 个")),
            "{user}: {}",
            r.text
        );
    }

    // The web pages.
    let session = web_session(&w, SCOPED).await;
    let (s, html) = page(&w, &session, "/ui/").await;
    assert_eq!(s, 200);
    for stat in [
        "<b>1</b><span>数据中心</span>",
        "<b>2</b><span>集群</span>",
        "<b>6/6</b><span>主机在线</span>",
        "<b>44</b><span>虚拟机</span>",
        "<b>5</b><span>端口组</span>",
    ] {
        assert!(html.contains(stat), "overview shows {stat}: {html}");
    }
    for (path, marker) in [
        ("/ui/", "纵览"),
        ("/ui/vms", "共 44 台"),
        ("/ui/hosts", "esxi-"),
        ("/ui/datastores", "ds-prod-01"),
        ("/ui/networks", "VLAN"),
    ] {
        let (s, html) = page(&w, &session, path).await;
        assert_eq!(s, 200, "{path}");
        assert!(html.contains(marker), "{path} shows {marker}");
        for dr in ["esxi-dr", "ds-dr-01", "Cluster-DR", "dr-web", "DC1"] {
            assert!(!html.contains(dr), "{path} shows {dr}");
        }
    }
    let admin_session = web_session(&w, ADMIN).await;
    let (_, html) = page(&w, &admin_session, "/ui/").await;
    assert!(
        html.contains("<b>48</b><span>虚拟机</span>") && html.contains("ds-dr-01"),
        "the administrator's overview has everything"
    );
}

#[tokio::test]
async fn out_of_scope_reads_like_missing_on_every_surface() {
    let w = World::start().await;
    let admin = w.token(ADMIN).await;
    let scoped = w.token(SCOPED).await;
    let dr = w.vm("datacenter=DC1&power=on").await;
    let dr_id = dr["id"].as_str().unwrap().to_string();
    let dr_name = dr["name"].as_str().unwrap().to_string();
    let none = "vm-999999";

    // REST: reads and actions.
    for (a, b) in [
        (
            format!("/api/v1/vms/sim/{dr_id}"),
            format!("/api/v1/vms/sim/{none}"),
        ),
        (
            format!("/api/v1/hosts/sim/{}", "host-esxi-dr-01.dc1.local"),
            "/api/v1/hosts/sim/host-nope".to_string(),
        ),
    ] {
        let (sa, ba) = w.get(&scoped, &a).await;
        let (sb, bb) = w.get(&scoped, &b).await;
        assert_eq!((sa, sb), (404, 404), "{a}: {ba}");
        assert_eq!(ba["error"], bb["error"]);
    }
    for action in ["power_off", "reboot", "ping"] {
        let body = json!({ "action": action });
        let (sa, ba) = w
            .post(
                &scoped,
                &format!("/api/v1/vms/sim/{dr_id}/actions"),
                body.clone(),
            )
            .await;
        let (sb, bb) = w
            .post(&scoped, &format!("/api/v1/vms/sim/{none}/actions"), body)
            .await;
        assert_eq!((sa, sb), (404, 404), "{action}: {ba}");
        same_modulo(
            ba["message"].as_str().unwrap(),
            &dr_id,
            bb["message"].as_str().unwrap(),
            none,
        );
    }

    // Web: the VM page and the action form.
    let session = web_session(&w, SCOPED).await;
    let (_, html) = page(&w, &session, "/ui/").await;
    let csrf = csrf_of(&html);
    let (sa, a) = page(&w, &session, &format!("/ui/vms/sim/{dr_id}")).await;
    let (sb, b) = page(&w, &session, &format!("/ui/vms/sim/{none}")).await;
    assert_eq!((sa, sb), (404, 404));
    same_modulo(&a, &dr_id, &b, none);
    for action in ["power_off", "power_on", "ping"] {
        let (sa, a) = web_act(&w, &session, &csrf, &dr_id, action).await;
        let (sb, b) = web_act(&w, &session, &csrf, none, action).await;
        assert_eq!((sa, sb), (404, 404), "{action}: {a}");
        same_modulo(&a, &dr_id, &b, none);
        assert!(!a.contains(&dr_name) && !a.contains("DC1"), "{a}");
    }

    // Chat: by name.
    let r = chat(&w, SCOPED, &format!("关机:{dr_name}")).await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(r.text.starts_with("找不到虚拟机"), "{}", r.text);

    // Jobs and the audit log: an administrator's job on a DC1 VM.
    let (s, acc) = w
        .post(
            &admin,
            &format!("/api/v1/vms/sim/{dr_id}/actions"),
            json!({"action": "ping"}),
        )
        .await;
    assert_eq!(s, 202, "{acc}");
    let job = acc["job"].as_i64().unwrap();
    w.wait_job(&admin, job).await;
    let (sa, ba) = w.get(&scoped, &format!("/api/v1/jobs/{job}")).await;
    let (sb, bb) = w.get(&scoped, "/api/v1/jobs/999999").await;
    assert_eq!((sa, sb), (404, 404), "{ba}");
    same_modulo(
        ba["message"].as_str().unwrap(),
        &job.to_string(),
        bb["message"].as_str().unwrap(),
        "999999",
    );
    let (sa, a) = page(&w, &session, &format!("/ui/jobs/{job}")).await;
    let (sb, b) = page(&w, &session, "/ui/jobs/999999").await;
    assert_eq!((sa, sb), (404, 404));
    // The page is the same but for the number (which is short: compare the message).
    let note = |html: &str| html.split("<p class=\"note\">").nth(1).unwrap().to_string();
    same_modulo(&note(&a), &format!("#{job} "), &note(&b), "#999999 ");
    let r = chat(&w, SCOPED, &format!("任务:{job}")).await;
    let n = chat(&w, SCOPED, "任务:999999").await;
    same_modulo(&r.text, &job.to_string(), &n.text, "999999");

    let jobs = all(&w, &scoped, "/api/v1/jobs").await;
    assert!(jobs.iter().all(|j| j["user"] == SCOPED), "{jobs:?}");
    let (s, _) = w.get(&scoped, "/api/v1/jobs?user=admin").await;
    assert_eq!(s, 403);
    let entries = all(&w, &scoped, "/api/v1/audit").await;
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["user"] == SCOPED), "{entries:?}");
    let (s, _) = w.get(&scoped, "/api/v1/audit?user=admin").await;
    assert_eq!(s, 403);
    let (_, html) = page(&w, &session, "/ui/audit").await;
    assert!(
        !html.contains("· admin ·") && html.contains("仅显示您自己的记录"),
        "{html}"
    );
    // The administrator still sees everyone's.
    let entries = all(&w, &admin, "/api/v1/audit").await;
    assert!(entries.iter().any(|e| e["user"] == SCOPED));
    let (s, _) = w.get(&admin, &format!("/api/v1/jobs/{job}")).await;
    assert_eq!(s, 200);
}

//! The web UI's logins over real HTTP: WeCom's OAuth2 login-free flow against the fake
//! WeCom (authorize redirect, single-use codes, state bound to the browser), the local
//! admin login with CSRF, logout, forged cookies, and escaping of what users type.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::{cookie_pair, location, set_cookie, Options, World, ADMIN_PASSWORD};
use serde_json::Value;

const WECOM_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh";

/// Follows the flow as the WeCom client does, up to the callback URL WeCom sends the
/// browser to. Returns (callback URL, the state cookie).
async fn to_callback(w: &World, member: &str) -> (String, String) {
    w.fake.set_oauth_member(Some(member));
    let r = w
        .http
        .get(w.url("/ui/"))
        .header("user-agent", WECOM_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/login?next=/ui/");
    let r = w
        .http
        .get(w.url(&location(&r)))
        .header("user-agent", WECOM_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "inside WeCom the login page goes straight to OAuth"
    );
    let r = w
        .http
        .get(w.url(&location(&r)))
        .header("user-agent", WECOM_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let authorize = location(&r);
    let state_cookie = set_cookie(&r, "ob_oauth").expect("the state is bound to the browser");
    assert!(
        state_cookie.contains("HttpOnly") && state_cookie.contains("SameSite=Lax"),
        "{state_cookie}"
    );
    // What WeCom needs, as PROTOCOLS.md §2.5 says.
    assert!(
        authorize.starts_with(&w.fake.authorize_url()),
        "{authorize}"
    );
    for part in [
        format!("appid={}", common::CORP),
        "response_type=code".to_string(),
        "scope=snsapi_base".to_string(),
        format!("agentid={}", common::AGENT),
        format!(
            "redirect_uri={}",
            opsbot_http_encode(&w.url("/ui/auth/wecom/callback"))
        ),
    ] {
        assert!(authorize.contains(&part), "{part} in {authorize}");
    }
    assert!(authorize.ends_with("#wechat_redirect"), "{authorize}");
    // The WeCom client opens it (the fragment stays in the browser).
    let url = authorize.split('#').next().unwrap();
    let r = w.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    (location(&r), cookie_pair(&state_cookie))
}

fn opsbot_http_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn wecom_oauth_logs_a_member_in_without_a_password() {
    let w = World::start().await;
    let (callback, state) = to_callback(&w, "zhangsan").await;
    assert!(
        callback.starts_with(&w.url("/ui/auth/wecom/callback?code=")),
        "{callback}"
    );
    let r = w
        .http
        .get(&callback)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/");
    let session = set_cookie(&r, "ob_session").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains("Secure"), "plain http here: {session}");
    let cookie = cookie_pair(&session);
    let page = w
        .http
        .get(w.url("/ui/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("纵览") && html.contains("zhangsan"), "{html}");
    // The same roles as chat: zhangsan sees DC0's VMs only.
    let vms = w
        .http
        .get(w.url("/ui/vms?cluster=Cluster-DR"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(vms.text().await.unwrap().contains("没有匹配的虚拟机"));
    // The login is audited.
    let (_, audit) = w
        .get(&w.token("admin").await, "/api/v1/audit?user=zhangsan")
        .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == "登录(wecom)" && e["result"] == "ok"),
        "{audit}"
    );
    // The session also reads the API (GET), but a POST needs the CSRF header.
    let r = w
        .http
        .get(w.url("/api/v1/vms?per_page=1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let vm: Value = w.vm("datacenter=DC0&power=on").await;
    let act = w.url(&format!(
        "/api/v1/vms/sim/{}/actions?dry_run=true",
        vm["id"].as_str().unwrap()
    ));
    let r = w
        .http
        .post(&act)
        .header("cookie", &cookie)
        .json(&serde_json::json!({"action": "power_off"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF header");
    let page = w
        .http
        .get(w.url("/ui/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = w
        .http
        .post(&act)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"action": "power_off"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_replayed_code_or_a_forged_state_is_refused() {
    let w = World::start().await;
    let (callback, state) = to_callback(&w, "zhangsan").await;
    let r = w
        .http
        .get(&callback)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The same callback again: the state is used up, and a new login is offered.
    let r = w
        .http
        .get(&callback)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("已经用过") && html.contains("重新登录"),
        "{html}"
    );
    // The used code with a fresh state: WeCom says 40029; so do we.
    let used_code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let (fresh, fresh_state) = to_callback(&w, "zhangsan").await;
    let fresh_code = fresh
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let r = w
        .http
        .get(fresh.replace(&fresh_code, &used_code))
        .header("cookie", &fresh_state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("登录码无效") && html.contains("重新登录"),
        "{html}"
    );
    // A callback without this browser's state cookie, or with another state.
    let (callback, state) = to_callback(&w, "zhangsan").await;
    let r = w.http.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("登录状态不匹配"));
    let tampered = callback.replace("state=", "state=00");
    let r = w
        .http
        .get(&tampered)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let forged_cookie = format!("{}x", state);
    let r = w
        .http
        .get(&callback)
        .header("cookie", &forged_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // No session came out of any of it.
    assert!(set_cookie(&r, "ob_session").is_none());
}

#[tokio::test]
async fn a_member_without_a_role_is_not_let_in() {
    let w = World::start().await;
    let (callback, state) = to_callback(&w, "wangwu").await;
    let r = w
        .http
        .get(&callback)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "ob_session").is_none());
    assert!(r.text().await.unwrap().contains("wangwu"));
}

#[tokio::test]
async fn the_fake_wecom_enforces_the_trusted_domain_and_the_client() {
    let w = World::start().await;
    let (corp, agent) = (common::CORP, common::AGENT);
    let open = |redirect: String| {
        let url = format!(
            "{}?appid={corp}&redirect_uri={}&response_type=code&scope=snsapi_base&state=abc&agentid={agent}",
            w.fake.authorize_url(),
            opsbot_http_encode(&redirect)
        );
        w.http.get(url).send()
    };
    w.fake.set_oauth_member(Some("zhangsan"));
    let r = open("https://evil.example.com/ui/auth/wecom/callback".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("redirect_uri参数错误"));
    w.fake.set_oauth_member(None);
    let r = open(w.url("/ui/auth/wecom/callback")).await.unwrap();
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("请在企业微信客户端打开链接"));
}

/// The login form: its CSRF value and the cookie it is bound to.
async fn login_form(w: &World) -> (String, String) {
    let r = w
        .http
        .get(w.url("/ui/login?next=/ui/hosts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = cookie_pair(&set_cookie(&r, "ob_login").unwrap());
    let html = r.text().await.unwrap();
    assert!(
        html.contains("企业微信登录") && html.contains("password"),
        "both ways to log in"
    );
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    (csrf, cookie)
}

async fn post_login(
    w: &World,
    cookie: &str,
    csrf: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    w.http
        .post(w.url("/ui/login"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf),
            ("user", user),
            ("password", password),
            ("next", "/ui/hosts"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn local_admin_login_csrf_and_logout() {
    let w = World::start().await;
    let (csrf, cookie) = login_form(&w).await;
    // Wrong password, wrong user, no CSRF, a CSRF for another form.
    assert_eq!(
        post_login(&w, &cookie, &csrf, "admin", "guess")
            .await
            .status(),
        401
    );
    assert_eq!(
        post_login(&w, &cookie, &csrf, "root", ADMIN_PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        post_login(&w, "", &csrf, "admin", ADMIN_PASSWORD)
            .await
            .status(),
        403
    );
    let (_, other_cookie) = login_form(&w).await;
    assert_eq!(
        post_login(&w, &other_cookie, &csrf, "admin", ADMIN_PASSWORD)
            .await
            .status(),
        403
    );
    // Right.
    let r = post_login(&w, &cookie, &csrf, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/hosts");
    let session = cookie_pair(&set_cookie(&r, "ob_session").unwrap());
    let page = w
        .http
        .get(w.url("/ui/hosts"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("esxi-"), "hosts are listed");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    // Logout needs the session's CSRF token, then the session is gone for good.
    let r = w
        .http
        .post(w.url("/ui/logout"))
        .header("cookie", &session)
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = w
        .http
        .post(w.url("/ui/logout"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "ob_session").unwrap().contains("Max-Age=0"));
    let r = w
        .http
        .get(w.url("/ui/hosts"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the old cookie no longer works");
    assert!(location(&r).starts_with("/ui/login"));
    // Failed and good logins are in the audit log.
    let (_, audit) = w
        .get(&w.token("admin").await, "/api/v1/audit?user=admin")
        .await;
    let results: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["text"] == "登录(local)")
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert!(
        results.contains(&"ok") && results.contains(&"denied"),
        "{results:?}"
    );
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == "退出登录"),
        "{audit}"
    );
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let w = World::with(Options {
        public_url: Some("https://ops.example.com".into()),
        ..Options::default()
    })
    .await;
    let (csrf, cookie) = login_form(&w).await;
    let r = post_login(&w, &cookie, &csrf, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 303);
    let session = set_cookie(&r, "ob_session").unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
}

#[tokio::test]
async fn forged_sessions_are_sent_to_log_in() {
    let w = World::start().await;
    for cookie in [
        "ob_session=forged",
        "ob_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "ob_session=<script>",
    ] {
        let r = w
            .http
            .get(w.url("/ui/vms"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{cookie}");
        assert_eq!(location(&r), "/ui/login?next=/ui/vms");
        let r = w
            .http
            .get(w.url("/api/v1/vms"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{cookie}");
    }
    // An open redirect through `next` is not possible.
    let (csrf, cookie) = login_form(&w).await;
    let r = w
        .http
        .post(w.url("/ui/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("user", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "//evil.example.com/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/ui/");
}

async fn admin_session(w: &World) -> String {
    let (csrf, cookie) = login_form(w).await;
    let r = post_login(w, &cookie, &csrf, "admin", ADMIN_PASSWORD).await;
    cookie_pair(&set_cookie(&r, "ob_session").unwrap())
}

#[tokio::test]
async fn what_users_type_is_shown_escaped_never_run() {
    let w = World::start().await;
    let session = admin_session(&w).await;
    for (q, raw, escaped) in [
        (
            "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "<script>alert(1)</script>",
            "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;",
        ),
        (
            "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
            "\"><img src=x onerror=alert(1)>",
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;",
        ),
        ("%27%20OR%201%3D1%20--", "' OR 1=1 --", "&#x27; OR 1=1 --"),
    ] {
        let r = w
            .http
            .get(w.url(&format!("/ui/vms?q={q}")))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(!html.contains(raw), "{raw} is not in the page as markup");
        assert!(html.contains(escaped), "{escaped} shown as text");
        assert!(html.contains("没有匹配的虚拟机"), "and it matched nothing");
    }
}

#[tokio::test]
async fn every_page_renders_for_an_admin() {
    let w = World::start().await;
    let session = admin_session(&w).await;
    let vm = w.vm("power=on").await;
    let detail = format!("/ui/vms/sim/{}", vm["id"].as_str().unwrap());
    for (path, marker) in [
        ("/ui/", "最近变更"),
        ("/ui/vms", "共 48 台"),
        (detail.as_str(), "确认强制关机"),
        ("/ui/hosts", "esxi-"),
        ("/ui/datastores", "剩余"),
        ("/ui/networks", "VLAN"),
        ("/ui/audit", "审计日志"),
        ("/ui/changes", "新增"),
    ] {
        let r = w
            .http
            .get(w.url(path))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains(marker), "{path} shows {marker}");
    }
    let css = w
        .http
        .get(w.url("/ui/static/app.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
}

// ---- The web UI as a console (issue 15) ----

/// A signed-in WeCom member's session cookie, through the OAuth flow.
async fn member_session(w: &World, member: &str) -> String {
    let (callback, state) = to_callback(w, member).await;
    let r = w
        .http
        .get(&callback)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    cookie_pair(&set_cookie(&r, "ob_session").unwrap())
}

/// A page as the session sees it, coming from `referer` (a page of ours) if given.
async fn page_from(w: &World, session: &str, path: &str, referer: Option<&str>) -> (u16, String) {
    let mut r = w.http.get(w.url(path)).header("cookie", session);
    if let Some(from) = referer {
        r = r.header("referer", w.url(from));
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn page(w: &World, session: &str, path: &str) -> (u16, String) {
    page_from(w, session, path, None).await
}

fn csrf_in(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("a csrf field")
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// The back link of a message page to `path` (a value the template escapes).
fn back_to(path: &str) -> String {
    format!("href=\"{}\">‹ 返回上一页", path.replace('/', "&#x2f;"))
}

/// "共 N 台" on a VM list page.
fn listed(html: &str) -> u64 {
    html.split("共 ")
        .nth(1)
        .and_then(|s| s.split(" 台").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {html}"))
}

/// The VM names a list page shows, in order.
fn names_in(html: &str) -> Vec<String> {
    html.split("</span>\n    <b>")
        .skip(1)
        .map(|s| s.split("</b>").next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn overview_hosts_and_datastores_open_the_vm_lists_they_summarise() {
    let w = World::start().await;
    let session = admin_session(&w).await;
    let admin = w.token("admin").await;
    let pool = w.ctx.engine.pool().await.unwrap();
    let (_, overview) = page(&w, &session, "/ui/").await;
    for link in [
        "href=\"/ui/vms?power=on\"",
        "href=\"/ui/vms?power=off\"",
        "href=\"/ui/vms?host=",
        "href=\"/ui/vms?datastore=",
        "href=\"/ui/vms\"",
    ] {
        assert!(overview.contains(link), "纵览 links {link}");
    }
    // A warning opens the VMs it puts at risk: the sim's unreachable DR host.
    let down = pool
        .inventory
        .hosts
        .iter()
        .find(|h| h.connection_state != "connected")
        .expect("the sim has a host down");
    assert!(
        overview.contains(&format!(
            "<a class=\"warn\" href=\"&#x2f;ui&#x2f;vms?host={}\">⚠ 主机 {} 无响应 ›</a>",
            down.name, down.name
        )),
        "{overview}"
    );
    let (_, html) = page(&w, &session, &format!("/ui/vms?host={}", down.name)).await;
    let on_down = pool
        .inventory
        .vms
        .iter()
        .filter(|v| !v.template && v.host == down.name)
        .count() as u64;
    assert_eq!(listed(&html), on_down);
    let (_, hosts) = page(&w, &session, "/ui/hosts").await;
    assert!(hosts.contains("href=\"/ui/vms?host="), "{hosts}");
    let (_, stores) = page(&w, &session, "/ui/datastores").await;
    assert!(stores.contains("href=\"/ui/vms?datastore="), "{stores}");

    // Each list has exactly the VMs it summarises, as the API (or the pool) counts them.
    let vms = || pool.inventory.vms.iter().filter(|v| !v.template);
    let off = vms()
        .filter(|v| v.power == opsbot_core::PowerState::PoweredOff)
        .count() as u64;
    let (_, api_off) = w.get(&admin, "/api/v1/vms?power=off").await;
    assert_eq!(api_off["total"], off);
    let (_, html) = page(&w, &session, "/ui/vms?power=off").await;
    assert_eq!(listed(&html), off);
    let host = &vms().next().unwrap().host;
    let (_, html) = page(&w, &session, &format!("/ui/vms?host={host}")).await;
    assert_eq!(
        listed(&html),
        vms().filter(|v| &v.host == host).count() as u64
    );
    let ds = &vms().find(|v| !v.disks.is_empty()).unwrap().disks[0].datastore;
    let on_ds = vms()
        .filter(|v| v.disks.iter().any(|d| &d.datastore == ds))
        .count() as u64;
    let (_, html) = page(&w, &session, &format!("/ui/vms?datastore={ds}")).await;
    assert_eq!(listed(&html), on_ds, "{ds}");
    assert!(html.contains(&format!("存储 {ds} 上的虚拟机")), "{html}");
    let tag = pool.tags().first().expect("the sim tags its VMs").clone();
    let (_, html) = page(&w, &session, &format!("/ui/vms?tag={tag}")).await;
    assert_eq!(
        listed(&html),
        vms().filter(|v| v.tags.contains(&tag)).count() as u64
    );
    // A network row opens the VMs on it, in its datacenter; the filter stays on the
    // page (a chip that clears it) and on the next page's link.
    let (_, nets) = page(&w, &session, "/ui/networks").await;
    let net = vms()
        .find(|v| !v.nics.is_empty())
        .map(|v| (v.nics[0].network.clone(), v.datacenter.clone()))
        .unwrap();
    let link = format!(
        "/ui/vms?network={}&datacenter={}",
        opsbot_http_encode(&net.0),
        opsbot_http_encode(&net.1)
    );
    assert!(
        nets.contains(&link.replace('&', "&amp;")),
        "{link} in {nets}"
    );
    let on_net = vms()
        .filter(|v| v.datacenter == net.1 && v.nics.iter().any(|n| n.network == net.0))
        .count() as u64;
    let (_, html) = page(&w, &session, &link).await;
    assert_eq!(listed(&html), on_net, "{html}");
    assert!(
        html.contains(&format!("网络 {} 上的虚拟机", net.0)),
        "{html}"
    );
    if on_net > 20 {
        assert!(html.contains(&format!("network={}", opsbot_http_encode(&net.0))));
    }
    // Bars say what they measure.
    assert!(
        stores.contains("已用 ") && overview.contains("已用 "),
        "{stores}"
    );
}

#[tokio::test]
async fn the_web_search_puts_the_exact_name_first() {
    let w = World::start().await;
    let session = admin_session(&w).await;
    let (_, html) = page(&w, &session, "/ui/vms?q=web-01").await;
    let names = names_in(&html);
    assert!(names.len() >= 3, "web-01 and its namesakes: {names:?}");
    assert_eq!(names[0], "web-01", "{names:?}");
    assert!(names.contains(&"dr-web-01".to_string()), "{names:?}");
    assert_eq!(html.matches("精确匹配").count(), 1, "{html}");
}

#[tokio::test]
async fn the_jobs_page_lists_jobs_live_and_unknown_pages_are_styled() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    let vm = w.vm("datacenter=DC0&power=on").await;
    let (s, acc) = w
        .post(
            &admin,
            &format!("/api/v1/vms/sim/{}/actions", vm["id"].as_str().unwrap()),
            serde_json::json!({"action": "reboot"}),
        )
        .await;
    assert_eq!(s, 202, "{acc}");
    let job = acc["job"].as_i64().unwrap();
    w.wait_job(&admin, job).await;

    let session = admin_session(&w).await;
    let (s, html) = page(&w, &session, "/ui/jobs").await;
    assert_eq!(s, 200);
    assert!(
        html.contains(&format!("href=\"/ui/jobs/{job}\"")) && html.contains("成功"),
        "{html}"
    );
    assert!(
        html.contains("data-job=") && html.contains("name=\"user\""),
        "admins filter by user"
    );
    let (_, only) = page(&w, &session, "/ui/jobs?user=zhangsan&state=").await;
    assert!(!only.contains(&format!("/ui/jobs/{job}\"")), "{only}");
    let (_, running) = page(&w, &session, "/ui/jobs?state=running").await;
    assert!(!running.contains(&format!("/ui/jobs/{job}\"")), "{running}");

    // A member sees their own jobs only, and may not ask for someone else's.
    let member = member_session(&w, "zhangsan").await;
    let (s, mine) = page(&w, &member, "/ui/jobs").await;
    assert_eq!(s, 200);
    assert!(
        !mine.contains(&format!("/ui/jobs/{job}\"")) && !mine.contains("name=\"user\""),
        "{mine}"
    );
    let (s, theirs) = page_from(&w, &member, "/ui/jobs?user=admin", Some("/ui/jobs")).await;
    assert_eq!(s, 403);
    assert!(
        theirs.contains("class=\"tabs\"") && theirs.contains(&back_to("/ui/jobs")),
        "{theirs}"
    );

    // Unknown pages: a 404 in the layout, with a way back to where the user was.
    let (s, missing) = page_from(&w, &member, "/ui/no-such-page", Some("/ui/hosts")).await;
    assert_eq!(s, 404);
    assert!(
        missing.contains("页面不存在")
            && missing.contains("/ui/static/app.css?v=")
            && missing.contains("class=\"tabs\"")
            && missing.contains(&back_to("/ui/hosts")),
        "{missing}"
    );
    // A 403 leads back too, not to 纵览.
    let lisi = member_session(&w, "lisi").await;
    let (s, denied) = page_from(&w, &lisi, "/ui/hosts", Some("/ui/vms?power=off")).await;
    assert_eq!(s, 403);
    assert!(
        denied.contains("没有权限") && denied.contains(&back_to("/ui/vms?power=off")),
        "{denied}"
    );
    assert!(!denied.contains("返回纵览"), "{denied}");
}

#[tokio::test]
async fn dialogs_start_empty_and_a_refusal_is_shown_on_the_same_page() {
    let w = World::start().await;
    let session = admin_session(&w).await;
    let vm = w.vm("datacenter=DC0&power=off").await;
    let (id, name) = (vm["id"].as_str().unwrap(), vm["name"].as_str().unwrap());
    let detail = format!("/ui/vms/sim/{id}");
    let (_, html) = page(&w, &session, &detail).await;
    // Nothing pre-filled for typing to append to; each dialog repeats the value.
    for field in ["count", "gb", "network", "new_name"] {
        let input = html
            .split(&format!("<input name=\"{field}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("a {field} field"));
        assert!(
            input.split('>').next().unwrap().contains("value=\"\""),
            "{field}: {input}"
        );
    }
    assert!(
        html.contains(&format!("data-ask-before=\"将 {name} 的 CPU 改为 \"")),
        "{html}"
    );
    let csrf = csrf_in(&html);
    let r = w
        .http
        .post(w.url(&format!("{detail}/act")))
        .header("cookie", &session)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "set_cpu"),
            ("count", "999"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let refused = r.text().await.unwrap();
    assert!(
        refused.contains("超出范围") && refused.contains("role=\"alert\""),
        "{refused}"
    );
    // The same VM's page, with its actions, not a dead end to 纵览.
    assert!(
        refused.contains(&format!("<h1><span class=\"dot off\"></span>{name}</h1>"))
            && refused.contains("dlg-set_cpu"),
        "{refused}"
    );
    let (_, after) = w
        .get(&w.token("admin").await, &format!("/api/v1/vms/sim/{id}"))
        .await;
    assert_eq!(after["cpu"], vm["cpu"], "nothing changed");
}

#[tokio::test]
async fn delete_is_offered_for_a_powered_off_vm_only_and_confirmed_in_its_dialog() {
    let w = World::start().await;
    let session = admin_session(&w).await;
    let on = w.vm("datacenter=DC0&power=on").await;
    let (_, html) = page(
        &w,
        &session,
        &format!("/ui/vms/sim/{}", on["id"].as_str().unwrap()),
    )
    .await;
    assert!(!html.contains("dlg-delete"), "not while it runs");
    let vm = w.vm("datacenter=DC0&power=off").await;
    let (id, name) = (vm["id"].as_str().unwrap(), vm["name"].as_str().unwrap());
    let detail = format!("/ui/vms/sim/{id}");
    let (_, html) = page(&w, &session, &detail).await;
    let dialog = html
        .split("id=\"dlg-delete\"")
        .nth(1)
        .unwrap_or_else(|| panic!("a delete dialog: {html}"));
    let dialog = dialog.split("</dialog>").next().unwrap();
    assert!(
        dialog.contains(&format!("删除虚拟机 {name}")) && dialog.contains("不可恢复"),
        "{dialog}"
    );
    let csrf = csrf_in(&html);
    let r = w
        .http
        .post(w.url(&format!("{detail}/act")))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("action", "delete")])
        .send()
        .await
        .unwrap();
    // On to the job's page.
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.ends_with("?back=/ui/vms"), "its page will be gone: {to}");
    let job: i64 = to
        .strip_prefix("/ui/jobs/")
        .and_then(|j| j.split('?').next())
        .and_then(|j| j.parse().ok())
        .unwrap_or_else(|| panic!("a job page: {to}"));
    let admin = w.token("admin").await;
    let job = w.wait_job(&admin, job).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let (status, _) = w.get(&admin, &format!("/api/v1/vms/sim/{id}")).await;
    assert_eq!(status, 404, "{name} is gone");
}

#[tokio::test]
async fn a_clone_from_the_web_takes_chats_path_and_checks() {
    let w = World::start().await;
    let session = admin_session(&w).await;
    let (s, form) = page(&w, &session, "/ui/clone").await;
    assert_eq!(s, 200);
    // Templates by their own number.
    assert!(form.contains("<option value=\"2\">模板 2 · "), "{form}");
    let csrf = csrf_in(&form);
    let post = |fields: Vec<(&'static str, String)>| {
        let w = &w;
        let session = session.clone();
        async move {
            w.http
                .post(w.url("/ui/clone"))
                .header("cookie", session)
                .form(&fields)
                .send()
                .await
                .unwrap()
        }
    };
    let fields = |name: &str, ip: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("template", "2".to_string()),
            ("name", name.to_string()),
            ("ip", ip.to_string()),
            ("cpu", "2".to_string()),
            ("memory_gb", String::new()),
        ]
    };
    let r = post(fields("web-clone-01", "192.168.2.182")).await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.starts_with("/ui/jobs/"), "{to}");
    let job: i64 = to["/ui/jobs/".len()..]
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let admin = w.token("admin").await;
    assert_eq!(w.wait_job(&admin, job).await["state"], "succeeded");
    let (_, found) = w.get(&admin, "/api/v1/vms?name=web-clone-01").await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["items"][0]["cpu"], 2, "{found}");
    // Chat's checks: the IP is taken now; the form comes back as typed, with why.
    let r = post(fields("web-clone-02", "192.168.2.182")).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("role=\"alert\"")
            && html.contains("192.168.2.182")
            && html.contains("value=\"web-clone-02\""),
        "{html}"
    );
    // The name too, and an IP that is none.
    let r = post(fields("web-clone-01", "192.168.2.190")).await;
    assert_eq!(r.status(), 422);
    let r = post(fields("web-clone-03", "192.168.2")).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("不是有效的 IPv4 地址"));
    // Someone without 克隆 is told so.
    let member = member_session(&w, "zhangsan").await;
    let (s, _) = page(&w, &member, "/ui/clone").await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn vm_pages_and_changes_speak_chinese_not_the_models_words() {
    let w = World::start().await;
    let session = admin_session(&w).await;
    let admin = w.token("admin").await;
    let vm = w.vm("power=on").await;
    let id = vm["id"].as_str().unwrap();
    let (_, html) = page(&w, &session, &format!("/ui/vms/sim/{id}")).await;
    for said in ["VMware Tools", "运行中", "网卡 1", "硬盘 1"] {
        assert!(html.contains(said), "the VM page says {said}");
    }
    for raw in ["toolsOk", "Network adapter", "Hard disk", ">Tools<"] {
        assert!(!html.contains(raw), "the VM page does not show {raw}");
    }
    // A change the engine makes lands in the history in words: CPU and memory as
    // numbers with units, never a field name or a JSON list.
    let (s, acc) = w
        .post(
            &admin,
            &format!("/api/v1/vms/sim/{id}/actions"),
            serde_json::json!({"action": "set_memory", "gb": 64}),
        )
        .await;
    assert_eq!(s, 202, "{acc}");
    let job = w.wait_job(&admin, acc["job"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    for path in ["/ui/changes", "/ui/", &format!("/ui/vms/sim/{id}")] {
        let (status, html) = page(&w, &session, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            html.contains("→ 64 GiB"),
            "{path} shows the new memory in GiB"
        );
        assert!(
            !html.contains("memory_mb") && !html.contains("→ 65536"),
            "{path} shows no raw field or MiB count"
        );
    }
}

#[tokio::test]
async fn services_show_on_the_overview_and_open_their_vms() {
    let w = World::start().await;
    let session = admin_session(&w).await;
    let pool = w.ctx.engine.pool().await.unwrap();
    let services =
        opsbot_engine::services::services(pool.inventory.vms.iter().filter(|v| !v.template), "app");
    let degraded: Vec<_> = services.iter().filter(|s| s.up() < s.vms.len()).collect();
    assert!(!degraded.is_empty(), "the sim has a service with a VM down");
    let (_, overview) = page(&w, &session, "/ui/").await;
    assert!(
        overview.contains(&format!(
            "href=\"/ui/services\"><b>{}</b><span>服务</span>",
            services.len()
        )),
        "{overview}"
    );
    // Each service with a VM down is a warning that opens the VMs not running.
    for s in &degraded {
        let warning = format!("⚠ 服务 {} {}&#x2f;{} 开机 ›", s.name, s.up(), s.vms.len());
        assert!(overview.contains(&warning), "{warning} in {overview}");
        let (_, html) = page(
            &w,
            &session,
            &format!("/ui/vms?tag=app:{}&power=off", s.name),
        )
        .await;
        assert_eq!(listed(&html), (s.vms.len() - s.up()) as u64, "{}", s.name);
    }
    let (status, list) = page(&w, &session, "/ui/services").await;
    assert_eq!(status, 200);
    let shop = services.iter().find(|s| s.name == "shop").unwrap();
    assert!(
        list.contains(&format!(
            "<b>shop</b><span class=\"alert\">{}/{} 开机",
            shop.up(),
            shop.vms.len()
        )),
        "{list}"
    );
    assert!(
        list.contains("href=\"&#x2f;ui&#x2f;vms?tag=app%3Ashop\""),
        "{list}"
    );
}

#[tokio::test]
async fn a_running_job_is_cancelled_from_its_page() {
    let w = World::with(Options {
        // A clone takes minutes: surely running when cancelled, ended at once by it.
        sim_time_scale: 100.0,
        ..Options::default()
    })
    .await;
    let session = admin_session(&w).await;
    let admin = w.token("admin").await;
    let body = serde_json::json!({"template": 1, "name": "web-cancel-me", "ip": "192.168.2.191"});
    let (s, acc) = w.post(&admin, "/api/v1/vms", body).await;
    assert_eq!(s, 202, "{acc}");
    let id = acc["job"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, job) = w.get(&admin, &format!("/api/v1/jobs/{id}")).await;
        assert_eq!(job["state"], "running", "{job}");
        if job["progress"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress: {job}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let path = format!("/ui/jobs/{id}");
    let (_, html) = page(&w, &session, &path).await;
    assert!(
        html.contains(&format!("action=\"/ui/jobs/{id}/cancel\"")),
        "a running job offers to cancel it: {html}"
    );
    let post = |csrf: String| {
        w.http
            .post(w.url(&format!("{path}/cancel")))
            .header("cookie", &session)
            .form(&[("csrf", csrf)])
            .send()
    };
    // A forged form changes nothing.
    let r = post("forged".into()).await.unwrap();
    assert_ne!(r.status(), 200);
    let (_, job) = w.get(&admin, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job["state"], "running", "{job}");
    let r = post(csrf_in(&html)).await.unwrap();
    assert_eq!(r.status(), 200);
    let answered = r.text().await.unwrap();
    assert!(answered.contains("已请求取消"), "{answered}");
    let job = w.wait_job(&admin, id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    // Once it has ended: no button, and asking again says why, on the same page.
    let (_, html) = page(&w, &session, &path).await;
    assert!(!html.contains("取消任务"), "{html}");
    let r = post(csrf_in(&html)).await.unwrap();
    assert_eq!(r.status(), 409);
    let answered = r.text().await.unwrap();
    assert!(
        answered.contains("无需取消") && answered.contains(&format!("任务 #{id}")),
        "{answered}"
    );
}

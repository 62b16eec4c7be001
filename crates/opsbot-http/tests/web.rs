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
        (detail.as_str(), "确认关机"),
        ("/ui/hosts", "esxi-"),
        ("/ui/datastores", "剩余"),
        ("/ui/networks", "VLAN"),
        ("/ui/audit", "审计日志"),
        ("/ui/changes", "created"),
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

//! The login page, the local administrator's password login and logout. The login
//! form is protected against cross-site posting by a nonce cookie the form's `csrf`
//! field is signed over; password attempts are limited per client address.

use super::session::{self, LOGIN_COOKIE};
use crate::auth::ClientIp;
use crate::context::ApiContext;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use opsbot_core::{AuditEntry, AuditResult};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Where to go after logging in: only a path of this web UI (no open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui/")
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() < 512 =>
        {
            n.to_string()
        }
        _ => "/ui/".to_string(),
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_wecom_browser(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("wxwork"))
}

fn not_enabled() -> Response {
    (
        StatusCode::NOT_FOUND,
        "the web UI is not enabled on this server\n",
    )
        .into_response()
}

fn render_login(ctx: &ApiContext, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let nonce = session::random_token();
    let local = ctx.config.admin_user.is_some();
    let mut r = ctx.templates.page(
        "login.html",
        minijinja::context! {
            title => "登录",
            asset_version => super::asset_version(),
            next => next,
            error => error,
            wecom => ctx.oauth.is_some(),
            local => local,
            login_csrf => session::sign(ctx, "login", &nonce),
        },
    );
    *r.status_mut() = status;
    if local {
        if let Ok(v) = session::set_cookie(ctx, LOGIN_COOKIE, &nonce, 600).parse() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// `GET /ui/login`. Inside the WeCom app, straight on to the login-free OAuth flow.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let Some(ctx) = state.api.clone() else {
        return not_enabled();
    };
    let next = safe_next(q.next.as_deref());
    if ctx.oauth.is_some() && is_wecom_browser(&headers) {
        return Redirect::to(&format!("/ui/auth/wecom?next={}", encode(&next))).into_response();
    }
    render_login(&ctx, &next, None, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    user: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /ui/login`: the local administrator.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(ctx) = state.api.clone() else {
        return not_enabled();
    };
    let next = safe_next(form.next.as_deref());
    let nonce = session::read_cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if nonce.is_empty() || !session::same(&form.csrf, &session::sign(&ctx, "login", &nonce)) {
        return render_login(
            &ctx,
            &next,
            Some("登录页面已过期,请重新输入"),
            StatusCode::FORBIDDEN,
        );
    }
    if ctx.login_limiter.check(&ip).await.is_err() {
        // Audited like any anonymous refusal: per address and minute, not one row each.
        ctx.refusals
            .record(
                "web",
                ip,
                "登录(local)",
                &format!(
                    "login refused: too many attempts from {ip} (user {:?})",
                    crate::refusals::cap(&form.user, 64)
                ),
            )
            .await;
        return render_login(
            &ctx,
            &next,
            Some("尝试次数过多,请一分钟后再试"),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let (Some(admin), Some(hash)) = (&ctx.config.admin_user, &ctx.config.admin_password_hash)
    else {
        return render_login(
            &ctx,
            &next,
            Some("未配置本地管理员登录"),
            StatusCode::FORBIDDEN,
        );
    };
    // The hash is checked even for a wrong name, so timing does not tell names apart.
    let password_ok = crate::config::verify_password(&form.password, hash);
    let ok = password_ok && session::same(&form.user, admin);
    audit_login(&ctx, &form.user, "local", ok, ip).await;
    if !ok {
        return render_login(
            &ctx,
            &next,
            Some("用户名或密码错误"),
            StatusCode::UNAUTHORIZED,
        );
    }
    establish(&ctx, admin, "local", &next).await
}

/// Starts a session and sends the browser on.
pub async fn establish(ctx: &ApiContext, user: &str, via: &str, next: &str) -> Response {
    match session::create(ctx, user, via).await {
        Ok(id) => {
            let mut r = Redirect::to(next).into_response();
            let headers = r.headers_mut();
            for cookie in [
                session::set_cookie(ctx, session::COOKIE, &id, ctx.config.session_ttl_secs),
                session::clear_cookie(ctx, LOGIN_COOKIE),
                session::clear_cookie(ctx, session::OAUTH_COOKIE),
            ] {
                if let Ok(v) = cookie.parse() {
                    headers.append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "could not store a web session");
            ctx.templates.message(
                StatusCode::SERVICE_UNAVAILABLE,
                "暂时无法登录",
                "会话存储不可用,请稍后重试",
                None,
            )
        }
    }
}

/// Every login attempt, good or bad, is in the audit log.
pub async fn audit_login(ctx: &ApiContext, user: &str, via: &str, ok: bool, ip: std::net::IpAddr) {
    let message = if ok { "logged in" } else { "login refused" };
    audit_web(
        ctx,
        user,
        &format!("登录({via})"),
        ok,
        &format!("{message} from {ip}"),
    )
    .await;
}

/// One audit entry of the web UI's own (logins, logouts).
async fn audit_web(ctx: &ApiContext, user: &str, text: &str, ok: bool, message: &str) {
    let entry = AuditEntry {
        id: 0,
        at: chrono::Utc::now(),
        user: user.chars().take(64).collect(),
        channel: "web".into(),
        chat: None,
        text: text.to_string(),
        command: None,
        result: if ok {
            AuditResult::Ok
        } else {
            AuditResult::Denied
        },
        message: message.to_string(),
        duration_ms: 0,
        job_id: None,
    };
    if let Err(e) = ctx.audit().append_audit(&entry).await {
        tracing::error!(error = %e, "audit entry of the web UI lost");
    }
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// `POST /ui/logout`: ends the session (also on the server, so a copied cookie dies).
pub async fn logout(
    State(state): State<AppState>,
    user: super::WebUser,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let Some(ctx) = state.api.clone() else {
        return not_enabled();
    };
    if !session::same(&form.csrf, user.csrf()) {
        return ctx.templates.message(
            StatusCode::FORBIDDEN,
            "请求无效",
            "页面已过期,请刷新后重试",
            Some(&user.auth.user),
        );
    }
    if let Some(id) = session::read_cookie(&headers, session::COOKIE) {
        if let Err(e) = session::destroy(&ctx, &id).await {
            tracing::warn!(error = %e, "could not remove a web session");
        }
    }
    audit_web(
        &ctx,
        &user.auth.user,
        "退出登录",
        true,
        &format!("from {}", user.auth.ip),
    )
    .await;
    let mut r = Redirect::to("/ui/login").into_response();
    if let Ok(v) = session::clear_cookie(&ctx, session::COOKIE).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

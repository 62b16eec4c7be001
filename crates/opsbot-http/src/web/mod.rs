//! The web UI under `/ui`: server-rendered pages for phones (纵览, VMs, hosts,
//! datastores, networks, audit log, change history, jobs), WeCom OAuth and local
//! admin login, logout. Pages use the REST API's filters and the engine's structured
//! entry point, so they show and do exactly what the API does for the same user.

mod login;
mod oauth;
mod pages;
pub mod render;
pub mod session;

use crate::auth::{client_ip, Authenticated};
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::OnceLock;

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::overview))
        .route("/ui/vms", get(pages::vms))
        .route("/ui/vms/{provider}/{id}", get(pages::vm))
        .route("/ui/vms/{provider}/{id}/act", post(pages::act))
        .route("/ui/jobs/{id}", get(pages::job))
        .route("/ui/hosts", get(pages::hosts))
        .route("/ui/datastores", get(pages::datastores))
        .route("/ui/networks", get(pages::networks))
        .route("/ui/audit", get(pages::audit))
        .route("/ui/changes", get(pages::changes))
        .route("/ui/login", get(login::page).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/auth/wecom", get(oauth::start))
        .route("/ui/auth/wecom/callback", get(oauth::callback))
        .route(
            "/ui/static/app.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/ui/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .layer(axum::middleware::map_response(deny_framing))
}

/// No page of ours may be shown inside another site's frame (clickjacking: a hidden
/// 关机 button under a visitor's click). The CSP's `frame-ancestors` is the current
/// form, `X-Frame-Options` the one older browsers and WeCom's webview know.
pub async fn deny_framing(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("frame-ancestors 'none'"),
    );
    response
}

/// Changes whenever the CSS or script does, so browsers may cache them for good.
pub fn asset_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{CSS}{JS}").as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    })
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

/// A signed-in web user; a page request without a valid session is sent to log in.
pub struct WebUser {
    pub auth: Authenticated,
}

impl WebUser {
    pub fn csrf(&self) -> &str {
        self.auth
            .session
            .as_ref()
            .map(|s| s.csrf.as_str())
            .unwrap_or("")
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(ctx) = state.api.clone() else {
            return Err((
                StatusCode::NOT_FOUND,
                "the web UI is not enabled on this server\n",
            )
                .into_response());
        };
        let ip = client_ip(parts, &ctx.trusted_proxies);
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/ui/");
            Redirect::to(&format!("/ui/login?next={}", login::encode(next))).into_response()
        };
        let Some(id) = session::read_cookie(&parts.headers, session::COOKIE) else {
            return Err(to_login());
        };
        match session::load(&ctx, &id).await {
            Ok(Some(s)) => Ok(WebUser {
                auth: Authenticated::from_session(ctx, s, ip),
            }),
            Ok(None) => Err(to_login()),
            Err(e) => {
                tracing::error!(error = %e, "web session store unavailable");
                Err(ctx.templates.message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "会话存储不可用",
                    "暂时无法验证登录状态,请稍后重试",
                    None,
                ))
            }
        }
    }
}

//! The web UI under `/ui`: server-rendered pages for phones (纵览, VMs, hosts,
//! datastores, networks, audit log, change history, jobs, deploy projects and release
//! orders), WeCom OAuth and local
//! admin login, logout. Pages use the REST API's filters and the engine's structured
//! entry point, so they show and do exactly what the API does for the same user.

mod deploys;
mod kube;
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
        .route("/ui/jobs", get(pages::jobs))
        .route("/ui/jobs/{id}", get(pages::job))
        .route("/ui/jobs/{id}/cancel", post(pages::cancel_job))
        .route("/ui/clone", get(pages::clone_form).post(pages::clone))
        .route("/ui/hosts", get(pages::hosts))
        .route("/ui/datastores", get(pages::datastores))
        .route("/ui/networks", get(pages::networks))
        .route("/ui/services", get(pages::services))
        .route("/ui/audit", get(pages::audit))
        .route("/ui/changes", get(pages::changes))
        .route("/ui/workloads", get(kube::workloads))
        .route(
            "/ui/workloads/{provider}/{cluster}/{namespace}/{name}/{action}",
            post(kube::act),
        )
        .route("/ui/projects", get(deploys::projects))
        .route("/ui/projects/{name}/{what}", post(deploys::project_act))
        .route("/ui/releases", get(deploys::releases))
        .route("/ui/releases/{id}", get(deploys::release))
        .route("/ui/releases/{id}/{action}", post(deploys::act))
        // Any other page under /ui: a styled 404 in the layout, with a way back.
        .route("/ui/{*rest}", get(pages::not_found))
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
    /// The page of ours the user came from (`Referer`), where an error page sends
    /// them back to; `None` when they came from elsewhere or the browser did not say.
    pub back: Option<String>,
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
                back: came_from(parts),
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

/// The path of the page of ours that linked here: the `Referer`'s path when it names
/// this very host and a page under `/ui/` (anything else could send the user off site).
fn came_from(parts: &Parts) -> Option<String> {
    let referer = parts.headers.get(header::REFERER)?.to_str().ok()?;
    let host = parts.headers.get(header::HOST)?.to_str().ok()?;
    let rest = referer
        .strip_prefix("https://")
        .or_else(|| referer.strip_prefix("http://"))?;
    let path = rest.strip_prefix(host)?;
    let path = path.split('#').next().unwrap_or(path);
    (login::safe_next(Some(path)) == path).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(referer: &str) -> Parts {
        let (parts, ()) = axum::http::Request::builder()
            .uri("/ui/hosts")
            .header(header::HOST, "ops.example.com")
            .header(header::REFERER, referer)
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    #[test]
    fn only_our_own_pages_are_a_way_back() {
        for (referer, back) in [
            (
                "https://ops.example.com/ui/vms?power=off",
                Some("/ui/vms?power=off"),
            ),
            ("http://ops.example.com/ui/jobs#x", Some("/ui/jobs")),
            ("https://evil.example.com/ui/vms", None),
            ("https://ops.example.com.evil.net/ui/vms", None),
            ("https://ops.example.com//evil.net/ui/", None),
            ("https://ops.example.com/api/v1/vms", None),
            ("javascript:alert(1)", None),
        ] {
            assert_eq!(came_from(&parts(referer)).as_deref(), back, "{referer}");
        }
    }
}

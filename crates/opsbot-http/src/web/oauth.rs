//! WeCom's login-free flow (PROTOCOLS.md §2.5): redirect to WeCom's authorize page
//! with a one-time `state`, take the `code` WeCom sends back, ask `auth/getuserinfo`
//! who it belongs to, and start a session for that WeCom userid, who then has exactly
//! the roles chat gives them. The state is bound to the browser by a signed cookie,
//! lives ten minutes and is good for one login: the store records it as used.

use super::login::{audit_login, encode, establish, safe_next};
use super::session::{self, OAUTH_COOKIE};
use crate::auth::ClientIp;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use opsbot_wecom::api::UserIdentity;
use serde::Deserialize;

/// How long a login round trip through WeCom may take.
const STATE_TTL_SECS: i64 = 600;
/// Where used states are recorded (the store's processed-message ids). A state older
/// than [`STATE_TTL_SECS`] is refused by its signed issue time, so a record may be
/// pruned after that.
const STATE_USED: &str = "web:oauth-state";

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

fn not_configured() -> Response {
    (
        StatusCode::NOT_FOUND,
        "WeCom login is not configured (web.wecom_app)\n",
    )
        .into_response()
}

/// `GET /ui/auth/wecom`: off to WeCom.
pub async fn start(State(state): State<AppState>, Query(q): Query<StartQuery>) -> Response {
    let Some(ctx) = state.api.clone() else {
        return not_configured();
    };
    let (Some(app), Some(public)) = (&ctx.oauth, &ctx.public_url) else {
        return not_configured();
    };
    let next = safe_next(q.next.as_deref());
    // WeCom allows [a-zA-Z0-9] in state, at most 128 bytes.
    let nonce: String = rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let next_b64 = URL_SAFE_NO_PAD.encode(next.as_bytes());
    let issued = chrono::Utc::now().timestamp();
    let signed = format!("{nonce}.{next_b64}.{issued}");
    let mac = session::sign(&ctx, "oauth", &signed);
    let cookie = session::set_cookie(
        &ctx,
        OAUTH_COOKIE,
        &format!("{signed}.{mac}"),
        STATE_TTL_SECS as u64,
    );
    let redirect_uri = format!("{public}/ui/auth/wecom/callback");
    let url = format!(
        "{}?appid={}&redirect_uri={}&response_type=code&scope=snsapi_base&state={nonce}&agentid={}#wechat_redirect",
        app.authorize_url,
        encode(&app.corp_id),
        encode(&redirect_uri),
        app.agent_id
    );
    let mut r = Redirect::to(&url).into_response();
    if let Ok(v) = cookie.parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /ui/auth/wecom/callback?code=…&state=…`: back from WeCom.
pub async fn callback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(ctx) = state.api.clone() else {
        return not_configured();
    };
    let Some(app) = &ctx.oauth else {
        return not_configured();
    };
    let retry = |status: StatusCode, title: &str, text: &str| {
        let mut r = ctx.templates.page(
            "message.html",
            minijinja::context! {
                title => title, text => text, asset_version => super::asset_version(),
                link => "/ui/auth/wecom", link_label => "重新登录",
            },
        );
        *r.status_mut() = status;
        r
    };
    // The state must be the one this browser was given, with our signature, recent.
    let cookie = session::read_cookie(&headers, OAUTH_COOKIE).unwrap_or_default();
    let mut pieces = cookie.splitn(4, '.');
    let (nonce, next_b64, issued, mac) = (
        pieces.next().unwrap_or(""),
        pieces.next().unwrap_or(""),
        pieces.next().unwrap_or(""),
        pieces.next().unwrap_or(""),
    );
    let signed_ok = session::same(
        mac,
        &session::sign(&ctx, "oauth", &format!("{nonce}.{next_b64}.{issued}")),
    );
    let age = issued
        .parse::<i64>()
        .map(|t| chrono::Utc::now().timestamp() - t);
    let recent = age.is_ok_and(|a| (-60..=STATE_TTL_SECS).contains(&a));
    if !signed_ok || !recent || !session::same(q.state.as_deref().unwrap_or(""), nonce) {
        return retry(
            StatusCode::BAD_REQUEST,
            "登录已失效",
            "登录状态不匹配或已过期,请重新登录",
        );
    }
    // One use only, on every instance sharing the store: a state (with its cookie)
    // that came back once never signs anyone in again, whatever code comes with it.
    match ctx.message_ids().mark_processed(STATE_USED, nonce).await {
        Ok(true) => {}
        Ok(false) => {
            return retry(
                StatusCode::BAD_REQUEST,
                "登录已失效",
                "这个登录链接已经用过了,请重新登录",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record an OAuth state as used");
            return retry(
                StatusCode::SERVICE_UNAVAILABLE,
                "暂时无法登录",
                "存储不可用,请稍后重试",
            );
        }
    }
    let next = URL_SAFE_NO_PAD
        .decode(next_b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let next = safe_next(next.as_deref());
    let Some(code) = q.code.filter(|c| !c.is_empty() && c.len() <= 512) else {
        return retry(
            StatusCode::BAD_REQUEST,
            "登录失败",
            "企业微信没有返回登录码",
        );
    };
    match app.client.getuserinfo(&code).await {
        Ok(UserIdentity::Member { user_id, .. }) => {
            // The same bindings as chat: a member with no role may not come in.
            if !ctx.engine.policy().user_bindings().contains_key(&user_id) {
                audit_login(&ctx, &user_id, "wecom", false, ip).await;
                return ctx.templates.message(
                    StatusCode::FORBIDDEN,
                    "没有访问权限",
                    &format!("您({user_id})尚未开通资源池权限,请联系管理员"),
                    None,
                );
            }
            audit_login(&ctx, &user_id, "wecom", true, ip).await;
            establish(&ctx, &user_id, "wecom", &next).await
        }
        Ok(UserIdentity::NonMember { .. }) => ctx.templates.message(
            StatusCode::FORBIDDEN,
            "没有访问权限",
            "资源池仅对企业成员开放",
            None,
        ),
        Err(opsbot_wecom::Error::InvalidOauthCode) => retry(
            StatusCode::BAD_REQUEST,
            "登录码无效",
            "登录码已使用或已过期(5 分钟内有效,只能使用一次),请重新登录",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "WeCom OAuth getuserinfo failed");
            retry(
                StatusCode::BAD_GATEWAY,
                "企业微信暂不可用",
                "无法向企业微信确认您的身份,请稍后重试",
            )
        }
    }
}

//! Web logins: a random session id in an HttpOnly cookie, the session itself in the
//! session store (memory or Redis, with the login's lifetime as TTL) under an HMAC of
//! the id with the web key, so a store dump yields no usable cookie, and a new secret
//! key (rotation) ends every login. Each session carries its own CSRF
//! token. Also the signed short-lived cookies of the login form and the OAuth state.

use crate::context::ApiContext;
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use opsbot_store::StoreError;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The session cookie.
pub const COOKIE: &str = "ob_session";
/// The login form's cookie (a nonce the form's CSRF field is bound to).
pub const LOGIN_COOKIE: &str = "ob_login";
/// The OAuth round trip's cookie (state nonce and where to go afterwards).
pub const OAUTH_COOKIE: &str = "ob_oauth";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSession {
    pub user: String,
    /// Sent back by forms (field `csrf`) and scripts (header `X-CSRF-Token`).
    pub csrf: String,
    /// `wecom` or `local`.
    pub via: String,
    /// Unix time.
    pub expires_at: i64,
}

fn store_key(ctx: &ApiContext, id: &str) -> String {
    format!("web:session:{}", sign(ctx, "session", id))
}

pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Starts a session for `user`; returns the cookie value.
pub async fn create(ctx: &ApiContext, user: &str, via: &str) -> Result<String, StoreError> {
    let id = random_token();
    let ttl = ctx.config.session_ttl_secs;
    let s = WebSession {
        user: user.to_string(),
        csrf: random_token(),
        via: via.to_string(),
        expires_at: chrono::Utc::now().timestamp() + ttl as i64,
    };
    let json = serde_json::to_string(&s).expect("a session serializes");
    ctx.sessions
        .put(&store_key(ctx, &id), &json, Duration::from_secs(ttl))
        .await?;
    metrics::counter!("opsbot_web_logins_total", "via" => via.to_string()).increment(1);
    Ok(id)
}

/// The session behind a cookie value; `None` for an unknown, expired or forged one.
pub async fn load(ctx: &ApiContext, id: &str) -> Result<Option<WebSession>, StoreError> {
    if id.len() != 43
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(None);
    }
    let Some(json) = ctx.sessions.get(&store_key(ctx, id)).await? else {
        return Ok(None);
    };
    let Ok(s) = serde_json::from_str::<WebSession>(&json) else {
        return Ok(None);
    };
    Ok((s.expires_at > chrono::Utc::now().timestamp()).then_some(s))
}

pub async fn destroy(ctx: &ApiContext, id: &str) -> Result<(), StoreError> {
    ctx.sessions.remove(&store_key(ctx, id)).await
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (the OAuth redirect back from WeCom
/// is a cross-site top-level GET that must carry the state cookie), Secure on https.
pub fn set_cookie(ctx: &ApiContext, name: &str, value: &str, max_age: u64) -> String {
    let secure = if ctx.secure_cookies() { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

pub fn clear_cookie(ctx: &ApiContext, name: &str) -> String {
    set_cookie(ctx, name, "", 0)
}

/// The value of cookie `name` in the request.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Constant-time string equality (CSRF tokens, MACs).
pub fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// HMAC-SHA256 of `purpose|data` under the web key, base64url.
pub fn sign(ctx: &ApiContext, purpose: &str, data: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&ctx.key).expect("any key length");
    m.update(purpose.as_bytes());
    m.update(b"|");
    m.update(data.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

//! Who is calling: the [`Authenticated`] extractor that every REST handler (and the
//! web UI's JSON endpoints) takes. It accepts
//!
//! - `Authorization: Bearer <token>` from `opsbot token create` (kind `api`): signature,
//!   expiry, revocation and the token's IP allow-list are checked by `opsbot-auth`;
//! - or the web UI's session cookie; then an unsafe method (POST, PUT, PATCH, DELETE)
//!   also needs the session's CSRF token in `X-CSRF-Token`.
//!
//! It then spends one unit of the caller's rate budget (per token, or per web user).
//! What the caller may do is the engine's policy for that user: the same roles and
//! scopes as chat, default deny. A refused unsafe call is written to the audit log:
//! one row each for an identified caller, through [`crate::refusals`] (per address
//! and minute, text capped) for an anonymous one.
//!
//! Other routes reuse it by taking `Authenticated` as an argument:
//! `async fn handler(auth: Authenticated, ...)`, then `auth.caller()` for the engine or
//! `auth.may(command)` / `auth.may_at(command, path)` for a policy check.

use crate::context::ApiContext;
use crate::error::ApiError;
use crate::refusals::{cap, MAX_TEXT_CHARS};
use crate::web::session::{self, WebSession};
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use ipnet::IpNet;
use opsbot_auth::TokenKind;
use opsbot_core::{AuditEntry, AuditResult};
use opsbot_engine::{Caller, Viewer};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A caller the API accepted.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user id the policy knows.
    pub user: String,
    /// `api` (bearer token) or `web` (session cookie).
    pub channel: &'static str,
    /// The token's public id, for a bearer token.
    pub token_id: Option<String>,
    /// The web session, for a cookie.
    pub session: Option<WebSession>,
    /// The client address (after trusted proxies).
    pub ip: IpAddr,
    ctx: Arc<ApiContext>,
}

impl Authenticated {
    /// The engine's view of the caller.
    pub fn caller(&self) -> Caller {
        Caller {
            user: self.user.clone(),
            channel: self.channel.to_string(),
        }
    }

    /// What the caller may see: the engine decides, with the same rules as chat.
    pub fn viewer(&self) -> Viewer {
        self.ctx.engine.viewer(&self.caller())
    }

    /// May the caller run `command` at all?
    pub fn may(&self, command: &str) -> bool {
        self.ctx.engine.policy().can_run(&self.user, None, command)
    }

    /// May the caller run `command` on the object at scope path `path`?
    pub fn may_at(&self, command: &str, path: &str) -> bool {
        self.ctx
            .engine
            .policy()
            .allows(&self.user, None, command, path)
    }

    /// The caller holds `command` on every object (no per-object checks needed).
    pub fn everywhere(&self, command: &str) -> bool {
        self.ctx
            .engine
            .policy()
            .allows_everywhere(&self.user, None, command)
    }

    /// A 403 unless the caller may run `command` somewhere.
    pub fn require(&self, command: &str) -> Result<(), ApiError> {
        if self.may(command) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "⛔ 您({})没有权限执行「{command}」",
                self.user
            )))
        }
    }

    pub fn context(&self) -> &Arc<ApiContext> {
        &self.ctx
    }

    /// The caller behind a web session (the web UI's pages).
    pub(crate) fn from_session(ctx: Arc<ApiContext>, session: WebSession, ip: IpAddr) -> Self {
        Authenticated {
            user: session.user.clone(),
            channel: "web",
            token_id: None,
            session: Some(session),
            ip,
            ctx,
        }
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(ctx) = state.api.clone() else {
            return Err(ApiError::not_found(
                "the REST API is not enabled on this server",
            ));
        };
        let ip = client_ip(parts, &ctx.trusted_proxies);
        match authenticate(&ctx, parts, ip).await {
            Ok(a) => Ok(a),
            Err(refused) => {
                if is_unsafe(&parts.method) {
                    audit_refusal(&ctx, parts, ip, &refused).await;
                }
                Err(refused.error)
            }
        }
    }
}

/// A refused call, and who made it when that is known (a valid session with a wrong
/// CSRF token, a caller over their rate budget).
struct Refused {
    error: ApiError,
    user: Option<String>,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Refused { error, user: None }
    }
}

async fn authenticate(
    ctx: &Arc<ApiContext>,
    parts: &Parts,
    ip: IpAddr,
) -> Result<Authenticated, Refused> {
    let (user, channel, token_id, session) = match bearer(&parts.headers)? {
        Some(token) => {
            let p = ctx
                .tokens
                .verify(token, TokenKind::Api, ip)
                .await
                .map_err(|e| {
                    tracing::info!(%ip, error = %e, "API token refused");
                    if !e.is_client_error() {
                        ApiError::new(
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            "unavailable",
                            e.public(),
                        )
                    } else if matches!(e, opsbot_auth::AuthError::AddressNotAllowed(_)) {
                        ApiError::forbidden(e.public())
                    } else {
                        ApiError::unauthorized(e.public())
                    }
                })?;
            (p.subject, "api", Some(p.token_id), None)
        }
        None => {
            let Some(id) = session::read_cookie(&parts.headers, session::COOKIE) else {
                return Err(ApiError::unauthorized(
                    "authentication required: send Authorization: Bearer <token> (opsbot token create)",
                )
                .into());
            };
            let s = session::load(ctx, &id)
                .await
                .map_err(|e| ApiError::unavailable("reading the web session", &e))?
                .ok_or_else(|| {
                    ApiError::unauthorized("the session has expired or is not valid; log in again")
                })?;
            if is_unsafe(&parts.method) {
                let sent = parts
                    .headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !session::same(sent, &s.csrf) {
                    return Err(Refused {
                        error: ApiError::forbidden(
                            "missing or wrong X-CSRF-Token for this session",
                        ),
                        user: Some(s.user.clone()),
                    });
                }
            }
            (s.user.clone(), "web", None, Some(s))
        }
    };
    let key = match &token_id {
        Some(t) => format!("token:{t}"),
        None => format!("web:{user}"),
    };
    if let Err(error) = spend(ctx, &key).await {
        return Err(Refused {
            error,
            user: Some(user),
        });
    }
    Ok(Authenticated {
        user,
        channel,
        token_id,
        session,
        ip,
        ctx: ctx.clone(),
    })
}

/// Spends one unit of the rate budget `key` (`token:<id>` or `web:<user>`): the API's
/// calls and the web UI's actions draw on the same budget.
pub(crate) async fn spend(ctx: &ApiContext, key: &str) -> Result<(), ApiError> {
    match ctx.limiter.check(&key.to_string()).await {
        Ok(()) => Ok(()),
        Err(wait) => {
            metrics::counter!("opsbot_http_rate_limited_total").increment(1);
            Err(ApiError::rate_limited(wait.as_secs_f64().ceil() as u64))
        }
    }
}

/// The bearer token, if the request has an Authorization header.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The client's address as an extractor (see [`client_ip`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let trusted = state
            .api
            .as_ref()
            .map(|c| c.trusted_proxies.as_slice())
            .unwrap_or(&[]);
        Ok(ClientIp(client_ip(parts, trusted)))
    }
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not a trusted proxy itself.
pub fn client_ip(parts: &Parts, trusted: &[IpNet]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    resolve_client(peer, &parts.headers, trusted)
}

fn resolve_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(canonical)
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// A refused unsafe call: an identified caller's is audited on its own; an anonymous
/// one's goes through the refusal log, which bounds what anonymous clients can write.
async fn audit_refusal(ctx: &ApiContext, parts: &Parts, ip: IpAddr, refused: &Refused) {
    let path = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.path())
        .unwrap_or(parts.uri.path());
    let text = cap(&format!("{} {path}", parts.method), MAX_TEXT_CHARS);
    let message = format!(
        "{}: {}",
        refused.error.status.as_u16(),
        refused.error.message
    );
    let Some(user) = &refused.user else {
        ctx.refusals.record("api", ip, &text, &message).await;
        return;
    };
    let entry = AuditEntry {
        id: 0,
        at: chrono::Utc::now(),
        user: user.clone(),
        channel: "api".into(),
        chat: None,
        text,
        command: None,
        result: AuditResult::Denied,
        message: cap(&message, MAX_TEXT_CHARS * 2),
        duration_ms: 0,
        job_id: None,
    };
    if let Err(err) = ctx.audit().append_audit(&entry).await {
        tracing::error!(error = %err, "audit entry of a refused API call lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec!["127.0.0.1/32".parse::<IpNet>().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // From the proxy: the address it saw.
        assert_eq!(
            resolve_client(ip("127.0.0.1"), &headers("203.0.113.9"), &trusted),
            ip("203.0.113.9")
        );
        // A client's own forged entry sits left of the one the proxy appended.
        assert_eq!(
            resolve_client(ip("127.0.0.1"), &headers("10.0.0.1, 203.0.113.9"), &trusted),
            ip("203.0.113.9")
        );
        // Not from a proxy: the header is ignored.
        assert_eq!(
            resolve_client(ip("198.51.100.4"), &headers("10.0.0.1"), &trusted),
            ip("198.51.100.4")
        );
        // No proxies configured: the peer, always.
        assert_eq!(
            resolve_client(ip("127.0.0.1"), &headers("10.0.0.1"), &[]),
            ip("127.0.0.1")
        );
        // IPv4-mapped IPv6 peers are their IPv4 address.
        assert_eq!(
            resolve_client(ip("::ffff:127.0.0.1"), &HeaderMap::new(), &[]),
            ip("127.0.0.1")
        );
    }
}

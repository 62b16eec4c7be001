//! CMDB over HTTP. `POST /api/v1/agent/report`: an agent's report, authenticated by
//! its agent token (kind, expiry, revocation, source address, and the host it may
//! speak for); 200 only once stored. The token is checked from the headers before a
//! byte of the body is read, and a declared length over `cmdb.max_report_bytes` is
//! refused unread, so a client without a valid token cannot make the server take in
//! (or wait for) a body. `GET /api/v1/assets[/{name}[/changes]]`: assets,
//! their facts and changes, for API tokens whose user may run 资产 / 变更 on the
//! asset's scope. Errors are JSON `{"error": "…"}` with a 4xx the client can act on.
//!
//! The query endpoints authenticate like the rest of the REST API (the shared
//! [`Authenticated`] extractor: API token or web session, rate limit) and then see
//! only the assets the engine's `Viewer` admits (`sees_asset`), as chat does.

use crate::auth::Authenticated;
use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use opsbot_auth::{AuthError, Principal, TokenKind, Tokens};
use opsbot_cmdb::chat::names;
use opsbot_cmdb::ingest::{Ingestor, Origin};
use opsbot_cmdb::CmdbError;
use opsbot_core::asset::{CHANGE_KIND, CHANGE_PROVIDER};
use opsbot_core::{Asset, AuditEntry, AuditResult, Change};
use opsbot_engine::Engine;
use opsbot_store::{AssetQuery, ChangeQuery};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// What the CMDB endpoints need.
pub struct CmdbApi {
    pub ingestor: Ingestor,
    pub tokens: Tokens,
    /// The engine the query endpoints audit through.
    pub engine: Arc<Engine>,
    pub max_report_bytes: usize,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut r = (status, Json(json!({ "error": message.into() }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

fn not_configured() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "the CMDB is not enabled on this server",
    )
}

/// The peer address; unknown (a router served without connect info) counts as
/// 0.0.0.0, which no allow-list admits.
fn peer(info: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    info.map(|Extension(ConnectInfo(a))| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn authenticate(
    tokens: &Tokens,
    headers: &HeaderMap,
    kind: TokenKind,
    peer: IpAddr,
) -> Result<Principal, Response> {
    let Some(token) = bearer(headers) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            format!(
                "missing token: send Authorization: Bearer <{} token>",
                kind.as_str()
            ),
        ));
    };
    tokens.verify(token, kind, peer).await.map_err(|e| {
        tracing::warn!(%peer, error = %e, "token refused");
        let status = match &e {
            AuthError::AddressNotAllowed(_) => StatusCode::FORBIDDEN,
            e if e.is_client_error() => StatusCode::UNAUTHORIZED,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        error(status, e.public())
    })
}

fn too_large(max: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the report is larger than {max} bytes (cmdb.max_report_bytes); \
             check what the plug-ins print"
        ),
    )
}

/// An answer given without reading the request's body: the connection ends with it,
/// so the client does not send its next request after a body the server never read.
fn unread(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r
}

#[tracing::instrument(skip_all)]
pub async fn report(
    State(state): State<AppState>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(cmdb) = state.cmdb.as_ref() else {
        return not_configured();
    };
    let peer = peer(info);
    // The body is not touched until the token has passed: answering drops it unread.
    let principal = match authenticate(&cmdb.tokens, &headers, TokenKind::Agent, peer).await {
        Ok(p) => p,
        Err(r) => return unread(r),
    };
    let max = cmdb.max_report_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return unread(too_large(max));
    }
    let body = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(e) => {
            let e = e.into_inner();
            if e.is::<http_body_util::LengthLimitError>() {
                return too_large(max);
            }
            tracing::debug!(%peer, error = %e, "report body not received");
            return error(
                StatusCode::BAD_REQUEST,
                format!("the report body could not be read: {e}"),
            );
        }
    };
    let origin = Origin::Agent {
        token_id: principal.token_id.clone(),
        subject: principal.subject.clone(),
    };
    match cmdb.ingestor.submit_body(&body, origin).await {
        Ok(receipt) => Json(json!({
            "status": "stored",
            "asset": receipt.identity,
            "created": receipt.created,
            "changes": receipt.changes.len(),
            "vm": receipt.vm.map(|v| format!("{}/{}", v.provider, v.name)),
        }))
        .into_response(),
        Err(e) => {
            let status = match &e {
                CmdbError::InvalidReport(_) => StatusCode::BAD_REQUEST,
                CmdbError::WrongHost(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            tracing::warn!(%peer, token = %principal.token_id, %status, error = %e, "report refused");
            error(status, e.to_string())
        }
    }
}

fn asset_json(a: &Asset) -> Value {
    json!({
        "identity": a.identity,
        "hostname": a.hostname,
        "source": a.source,
        "status": a.status.as_str(),
        "vm": a.vm.as_ref().map(|v| json!({
            "provider": v.provider, "id": v.vm_id, "name": v.name, "path": v.scope_path,
        })),
        "first_seen": a.first_seen,
        "last_seen": a.last_seen,
    })
}

fn change_json(c: &Change) -> Value {
    json!({
        "at": c.at, "field": c.field, "old": c.old_value, "new": c.new_value, "source": c.source,
    })
}

/// An API caller with the right to run `command`, or the answer refusing them.
struct Caller {
    user: String,
    /// What the engine lets the caller see: the one visibility decision.
    view: opsbot_engine::Viewer,
}

fn caller(auth: &Authenticated, command: &str) -> Result<Caller, crate::error::ApiError> {
    auth.require(command)?;
    Ok(Caller {
        user: auth.user.clone(),
        view: auth.viewer(),
    })
}

impl Caller {
    fn sees(&self, command: &str, a: &Asset) -> bool {
        self.view.sees_asset(command, a)
    }

    /// One audit entry per API query, like every chat command.
    async fn audit(
        &self,
        cmdb: &CmdbApi,
        text: String,
        command: &str,
        status: StatusCode,
        started: Instant,
    ) {
        let entry = AuditEntry {
            id: 0,
            at: chrono::Utc::now(),
            user: self.user.clone(),
            channel: "api".into(),
            chat: None,
            text,
            command: Some(command.into()),
            result: if status.is_success() {
                AuditResult::Ok
            } else {
                AuditResult::Invalid
            },
            message: status.to_string(),
            duration_ms: started.elapsed().as_millis() as i64,
            job_id: None,
        };
        if let Err(e) = cmdb.engine.store().append_audit(&entry).await {
            tracing::error!(error = %e, "audit entry lost");
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    search: Option<String>,
    status: Option<String>,
    #[serde(default)]
    limit: u64,
    #[serde(default)]
    offset: u64,
}

fn store_error(e: opsbot_store::StoreError) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(params): Query<ListParams>,
) -> Response {
    let started = Instant::now();
    let Some(cmdb) = state.cmdb.as_ref() else {
        return not_configured();
    };
    let who = match caller(&auth, names::ASSET) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let status = match params
        .status
        .as_deref()
        .map(opsbot_core::AssetStatus::parse)
    {
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "status must be \"active\" or \"stale\"",
            )
        }
        Some(s) => s,
        None => None,
    };
    let query = AssetQuery {
        search: params.search.clone(),
        status,
        limit: 0,
        offset: 0,
    };
    let assets = match cmdb.engine.store().asset_list(&query).await {
        Ok(a) => a,
        Err(e) => return store_error(e),
    };
    let visible: Vec<Value> = assets
        .iter()
        .filter(|a| who.sees(names::ASSET, a))
        .skip(params.offset as usize)
        .take(if params.limit == 0 {
            usize::MAX
        } else {
            params.limit as usize
        })
        .map(asset_json)
        .collect();
    who.audit(
        cmdb,
        "GET /api/v1/assets".into(),
        names::ASSET,
        StatusCode::OK,
        started,
    )
    .await;
    Json(json!({ "assets": visible })).into_response()
}

async fn find(cmdb: &CmdbApi, who: &Caller, command: &str, name: &str) -> Result<Asset, Response> {
    match cmdb.engine.store().asset_find(name).await {
        Ok(Some(a)) if who.sees(command, &a) => Ok(a),
        Ok(_) => Err(error(StatusCode::NOT_FOUND, format!("no asset {name:?}"))),
        Err(e) => Err(store_error(e)),
    }
}

pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(name): Path<String>,
) -> Response {
    let started = Instant::now();
    let Some(cmdb) = state.cmdb.as_ref() else {
        return not_configured();
    };
    let who = match caller(&auth, names::ASSET) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let text = format!("GET /api/v1/assets/{name}");
    let asset = match find(cmdb, &who, names::ASSET, &name).await {
        Ok(a) => a,
        Err(r) => {
            who.audit(cmdb, text, names::ASSET, r.status(), started)
                .await;
            return r;
        }
    };
    let store = cmdb.engine.store();
    let (facts, report) = match (
        store.asset_facts(asset.id).await,
        store.asset_report(asset.id).await,
    ) {
        (Ok(f), Ok(r)) => (f, r),
        (Err(e), _) | (_, Err(e)) => return store_error(e),
    };
    let mut body = asset_json(&asset);
    body["facts"] = json!(facts);
    body["report"] = report
        .and_then(|r| serde_json::from_str::<Value>(&r).ok())
        .unwrap_or(Value::Null);
    who.audit(cmdb, text, names::ASSET, StatusCode::OK, started)
        .await;
    Json(body).into_response()
}

#[derive(Debug, Deserialize)]
pub struct ChangeParams {
    limit: Option<u64>,
}

pub async fn changes(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(name): Path<String>,
    Query(params): Query<ChangeParams>,
) -> Response {
    let started = Instant::now();
    let Some(cmdb) = state.cmdb.as_ref() else {
        return not_configured();
    };
    let who = match caller(&auth, names::CHANGES) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let text = format!("GET /api/v1/assets/{name}/changes");
    let asset = match find(cmdb, &who, names::CHANGES, &name).await {
        Ok(a) => a,
        Err(r) => {
            who.audit(cmdb, text, names::CHANGES, r.status(), started)
                .await;
            return r;
        }
    };
    let changes = match cmdb
        .engine
        .store()
        .changes(&ChangeQuery {
            provider: Some(CHANGE_PROVIDER.into()),
            object_kind: Some(CHANGE_KIND.into()),
            object_id: Some(asset.identity.clone()),
            limit: params.limit.unwrap_or(100).clamp(1, 1000),
            offset: 0,
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return store_error(e),
    };
    who.audit(cmdb, text, names::CHANGES, StatusCode::OK, started)
        .await;
    Json(json!({
        "asset": asset.identity,
        "changes": changes.iter().map(change_json).collect::<Vec<_>>(),
    }))
    .into_response()
}

//! `/alerts/{source}`: the alert gateway's webhooks (`openfalcon`, `alertmanager`,
//! `zabbix`, `generic`). Each request is authenticated for its source, read within the
//! body limit, parsed and durably stored before the 200; every refusal is a JSON
//! `{error, message}` with a 4xx, and overload or a store outage a 503 (Alertmanager
//! retries 5xx and drops on 4xx).

use crate::AppState;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opsbot_alerts::{Error, Source};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

fn refuse(source: &str, e: &Error) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if status.is_server_error() {
        tracing::warn!(%source, %status, error = %e, "alert refused; the sender should retry");
    } else {
        tracing::info!(%source, %status, error = %e, "alert refused");
    }
    let body = Json(json!({ "error": e.code(), "message": e.to_string() }));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        (status, [(header::RETRY_AFTER, "5")], body).into_response()
    } else {
        (status, body).into_response()
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

/// The token a sender presents: `Authorization: Bearer`, `X-Opsbot-Token`, `?token=`.
fn token<'a>(headers: &'a HeaderMap, query: &'a str) -> Option<std::borrow::Cow<'a, str>> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(v.trim().into());
    }
    if let Some(v) = headers.get("x-opsbot-token").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().into());
    }
    query
        .split('&')
        .find_map(|p| p.strip_prefix("token="))
        .and_then(|v| opsbot_channels::query::parse_form(&format!("t={v}")))
        .and_then(|mut m| m.remove("t"))
        .map(Into::into)
}

#[tracing::instrument(skip_all, fields(source = %source))]
pub async fn receive(
    State(state): State<AppState>,
    Path(source): Path<String>,
    request: Request,
) -> Response {
    let Some(gateway) = state.alerts.as_ref() else {
        return error(
            StatusCode::NOT_FOUND,
            "not_configured",
            "the alert gateway is not configured on this server ([alerts] in the configuration)"
                .into(),
        );
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let method = request.method().clone();
    let query = request.uri().query().unwrap_or("").to_string();
    let headers = request.headers().clone();
    let source_kind = match gateway.authorize(&source, peer, token(&headers, &query).as_deref()) {
        Ok(s) => s,
        Err(e) => return refuse(&source, &e),
    };
    if method == Method::GET && source_kind != Source::OpenFalcon {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{source}: POST the payload; only openfalcon accepts GET with a query"),
        );
    }
    let limit = gateway.settings().max_body_bytes;
    let body = match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("{source}: the body is larger than alerts.max_body_bytes ({limit} bytes)"),
            )
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match gateway
        .ingest(source_kind, &peer.to_string(), content_type, &query, &body)
        .await
    {
        Ok(done) => Json(json!({
            "status": "ok",
            "stored": done.alerts.len(),
            "news": done.news,
            "payload_id": done.payload_id,
            "ids": done.alerts,
        }))
        .into_response(),
        Err(e) => refuse(&source, &e),
    }
}

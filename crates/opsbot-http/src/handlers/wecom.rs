//! `/wecom/{app}/callback`: WeCom's URL verification (GET) and message callbacks (POST).
//! The raw query is passed on undecoded: `echostr` is base64 and a `+` must stay a `+`.

use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opsbot_channels::wecom::CallbackError;

fn not_configured() -> Response {
    (
        StatusCode::NOT_FOUND,
        "WeCom is not configured on this server\n",
    )
        .into_response()
}

fn refused(app: &str, e: CallbackError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    tracing::warn!(%app, %status, error = %e, "wecom callback refused");
    (status, format!("{e}\n")).into_response()
}

#[tracing::instrument(skip_all, fields(app = %app))]
pub async fn verify(
    State(state): State<AppState>,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(ch) = state.wecom.as_ref() else {
        return not_configured();
    };
    match ch.verify_url(&app, query.as_deref().unwrap_or("")) {
        // The plaintext exactly, nothing around it: WeCom compares byte for byte.
        Ok(echo) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo).into_response(),
        Err(e) => refused(&app, e),
    }
}

#[tracing::instrument(skip_all, fields(app = %app))]
pub async fn message(
    State(state): State<AppState>,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
    body: String,
) -> Response {
    let Some(ch) = state.wecom.as_ref() else {
        return not_configured();
    };
    match ch
        .receive(&app, query.as_deref().unwrap_or(""), &body)
        .await
    {
        Ok(reply) if reply.is_empty() => StatusCode::OK.into_response(),
        Ok(reply) => (
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            reply,
        )
            .into_response(),
        Err(e) => refused(&app, e),
    }
}

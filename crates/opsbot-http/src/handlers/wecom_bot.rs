//! `/wecom/bot/{name}/callback`: a WeCom smart robot's URL verification (GET) and JSON
//! callbacks (POST). The raw query is passed on undecoded: `echostr` is base64.

use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opsbot_channels::CallbackError;

fn not_configured() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no WeCom robot is configured on this server\n",
    )
        .into_response()
}

fn refused(bot: &str, e: CallbackError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    tracing::warn!(%bot, %status, error = %e, "wecom robot callback refused");
    (status, format!("{e}\n")).into_response()
}

#[tracing::instrument(skip_all, fields(bot = %bot))]
pub async fn verify(
    State(state): State<AppState>,
    Path(bot): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(ch) = state.wecom_bots.as_ref() else {
        return not_configured();
    };
    match ch.verify_url(&bot, query.as_deref().unwrap_or("")) {
        // The plaintext exactly, nothing around it: WeCom compares byte for byte.
        Ok(echo) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo).into_response(),
        Err(e) => refused(&bot, e),
    }
}

#[tracing::instrument(skip_all, fields(bot = %bot))]
pub async fn message(
    State(state): State<AppState>,
    Path(bot): Path<String>,
    RawQuery(query): RawQuery,
    body: String,
) -> Response {
    let Some(ch) = state.wecom_bots.as_ref() else {
        return not_configured();
    };
    match ch
        .receive(&bot, query.as_deref().unwrap_or(""), &body)
        .await
    {
        Ok(reply) if reply.is_empty() => StatusCode::OK.into_response(),
        Ok(reply) => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            reply,
        )
            .into_response(),
        Err(e) => refused(&bot, e),
    }
}

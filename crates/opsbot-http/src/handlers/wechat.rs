//! `/wechat/{name}/callback`: a WeChat Official Account's URL verification (GET) and
//! message callbacks (POST, plain or safe mode).

use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opsbot_channels::mp::Answer;
use opsbot_channels::CallbackError;

fn not_configured() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no WeChat Official Account is configured on this server\n",
    )
        .into_response()
}

fn refused(account: &str, e: CallbackError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    tracing::warn!(%account, %status, error = %e, "wechat callback refused");
    (status, format!("{e}\n")).into_response()
}

#[tracing::instrument(skip_all, fields(account = %account))]
pub async fn verify(
    State(state): State<AppState>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(ch) = state.wechat.as_ref() else {
        return not_configured();
    };
    match ch
        .verify_url(&account, query.as_deref().unwrap_or(""))
        .await
    {
        // Letters and digits only (checked by the channel), as plain text that no
        // browser sniffs into anything else (`nosniff` is on every answer).
        Ok(echo) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo).into_response(),
        Err(e) => refused(&account, e),
    }
}

#[tracing::instrument(skip_all, fields(account = %account))]
pub async fn message(
    State(state): State<AppState>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    body: String,
) -> Response {
    let Some(ch) = state.wechat.as_ref() else {
        return not_configured();
    };
    match ch
        .receive(&account, query.as_deref().unwrap_or(""), &body)
        .await
    {
        // WeChat's "nothing to say": it does not try again and shows nothing.
        Ok(Answer::Nothing) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "success",
        )
            .into_response(),
        Ok(Answer::Reply(xml)) => (
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            xml,
        )
            .into_response(),
        Err(e) => refused(&account, e),
    }
}

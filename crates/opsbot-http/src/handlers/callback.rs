//! Every channel's callback route (`/wecom/{app}/callback`, `/wecom/bot/{bot}/callback`,
//! `/wechat/{account}/callback`, one per [`ChannelKind`]): the platform's URL check
//! (GET) and its callbacks (POST), handed to the channel registered for the kind. The
//! raw query is passed on undecoded: `echostr` is base64 and a `+` must stay a `+`.

use crate::{AppState, CALLBACK_BODY_LIMIT};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use opsbot_channels::{Answer, CallbackError, ChannelKind};

/// GET and POST of `kind`'s callback route, with the callbacks' body limit.
pub fn route(kind: &'static ChannelKind) -> MethodRouter<AppState> {
    get(
        move |State(state): State<AppState>,
              Path(name): Path<String>,
              RawQuery(query): RawQuery| verify(kind, state, name, query),
    )
    .post(
        move |State(state): State<AppState>,
              Path(name): Path<String>,
              RawQuery(query): RawQuery,
              body: String| message(kind, state, name, query, body),
    )
    .layer(DefaultBodyLimit::max(CALLBACK_BODY_LIMIT))
}

fn not_configured(kind: &ChannelKind) -> Response {
    (StatusCode::NOT_FOUND, kind.not_configured).into_response()
}

fn refused(kind: &ChannelKind, name: &str, e: CallbackError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    tracing::warn!(channel = kind.name, %name, %status, error = %e, "callback refused");
    (status, format!("{e}\n")).into_response()
}

#[tracing::instrument(skip_all, fields(channel = kind.name, name = %name))]
async fn verify(
    kind: &'static ChannelKind,
    state: AppState,
    name: String,
    query: Option<String>,
) -> Response {
    let Some(ch) = state.channels.get(kind.name) else {
        return not_configured(kind);
    };
    match ch.verify(&name, query.as_deref().unwrap_or("")).await {
        // The plaintext exactly, nothing around it: the platforms compare byte for byte.
        // An Official Account's is letters and digits only (checked by the channel), as
        // plain text that no browser sniffs into anything else (`nosniff` is on every
        // answer).
        Ok(echo) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo).into_response(),
        Err(e) => refused(kind, &name, e),
    }
}

#[tracing::instrument(skip_all, fields(channel = kind.name, name = %name))]
async fn message(
    kind: &'static ChannelKind,
    state: AppState,
    name: String,
    query: Option<String>,
    body: String,
) -> Response {
    let Some(ch) = state.channels.get(kind.name) else {
        return not_configured(kind);
    };
    match ch
        .receive(&name, query.as_deref().unwrap_or(""), &body)
        .await
    {
        Ok(Answer::Nothing) if kind.nothing.is_empty() => StatusCode::OK.into_response(),
        Ok(Answer::Nothing) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            kind.nothing,
        )
            .into_response(),
        Ok(Answer::Reply(reply)) => {
            ([(header::CONTENT_TYPE, kind.reply_type)], reply).into_response()
        }
        Err(e) => refused(kind, &name, e),
    }
}

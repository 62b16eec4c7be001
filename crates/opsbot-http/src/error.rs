//! The one error type of the REST API: a status and a JSON body `{error, message}`.
//! `error` is a stable machine-readable code, `message` says what to fix; neither
//! carries internals (store errors are logged, and the client is told to retry).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opsbot_engine::Refusal;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every API error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `forbidden`, `not_found`, `bad_request`,
    /// `invalid`, `conflict`, `rate_limited`, `unavailable`, ...
    #[schema(example = "forbidden")]
    pub error: String,
    /// What went wrong, in words a user can act on.
    #[schema(example = "⛔ 您(zhangsan)没有权限执行「关机」")]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests for this token; retry in {} s",
                    retry_after.max(1)
                ),
            )
        }
    }

    /// A server-side failure: logged in full, reported without detail.
    pub fn unavailable(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{context} failed: the store is not answering; retry later"),
        )
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let (status, code) = match &r {
            Refusal::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Refusal::Denied(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Refusal::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Refusal::Failed(_) => (StatusCode::CONFLICT, "conflict"),
            Refusal::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        let message = match r {
            Refusal::Unavailable(m) => {
                tracing::error!(message = %m, "engine could not reach the store");
                "the store is not answering; retry later".to_string()
            }
            other => other.message().to_string(),
        };
        ApiError::new(status, code, message)
    }
}

impl From<opsbot_store::StoreError> for ApiError {
    fn from(e: opsbot_store::StoreError) -> Self {
        ApiError::unavailable("reading the store", &e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.code.to_string(),
                message: self.message,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

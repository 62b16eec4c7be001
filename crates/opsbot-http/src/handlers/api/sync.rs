//! `POST /api/v1/sync`: refresh the pool from every provider now (a job).

use super::dto::Accepted;
use crate::auth::Authenticated;
use crate::error::{ApiResult, ErrorBody};
use axum::response::{IntoResponse, Response};
use opsbot_engine::{Mode, Request};

/// Start a pool sync.
#[utoipa::path(post, path = "/api/v1/sync", operation_id = "start_sync", tag = "operations",
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn start(auth: Authenticated) -> ApiResult<Response> {
    let acted = auth
        .context()
        .engine
        .act(&auth.caller(), Request::Sync, Mode::Run)
        .await?;
    Ok(super::vms::accepted(acted).into_response())
}

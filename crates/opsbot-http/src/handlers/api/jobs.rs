//! `/api/v1/jobs`: jobs with state and progress. Users see their own jobs;
//! administrators (commands `*` on scope `*`) everyone's, as `任务` does in chat; the
//! engine decides.

use super::dto::{CancelRequested, JobDto};
use super::ApiPath;
use super::{ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opsbot_core::{JobId, JobState};
use opsbot_store::JobQuery;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// running, succeeded, failed, interrupted, cancelled
    #[param(example = "succeeded")]
    pub state: Option<String>,
    /// Administrators only: another user's jobs.
    #[param(example = "zhangsan")]
    pub user: Option<String>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// The latest jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", operation_id = "list_jobs", tag = "jobs", params(Query),
    responses((status = 200, body = Page<JobDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    let paging = Paging::from_parts(Some(1), q.per_page)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "state {s:?} is not one of running, succeeded, failed, interrupted, cancelled"
            ))
        })?),
    };
    let user = auth
        .viewer()
        .whose(q.user)
        .map_err(|_| ApiError::forbidden("only administrators may list other users' jobs"))?;
    let jobs = auth
        .context()
        .jobs()
        .jobs(&JobQuery {
            user,
            state,
            limit: paging.per_page as u64,
        })
        .await?;
    let items: Vec<JobDto> = jobs.into_iter().map(JobDto::from).collect();
    Ok(json(&Page {
        has_more: items.len() == paging.per_page as usize,
        items,
        page: 1,
        per_page: paging.per_page,
        total: None,
    }))
}

/// One job: state, progress, latest note or result.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", operation_id = "get_job", tag = "jobs",
    params(("id" = i64, Path, description = "a job's number", example = 1)),
    responses((status = 200, body = JobDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(auth: Authenticated, ApiPath(id): ApiPath<i64>) -> ApiResult<Response> {
    let engine = &auth.context().engine;
    match engine.job_for(&auth.caller(), JobId(id)).await? {
        Some(j) => Ok(json(&JobDto::from(j))),
        None => Err(ApiError::not_found(format!(
            "job #{id} does not exist or is not yours"
        ))),
    }
}

/// Cancel a running job, where its provider can: the job's owner or an administrator
/// only, as `取消:#N` in chat. 202: asked (the job ends `cancelled` once stopped); 409:
/// it cannot be cancelled (finished, its provider cannot, past the point of no return,
/// or run by another opsbot process); 403: `取消` not granted; 404: no such job, or not yours (as reading it).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", operation_id = "cancel_job", tag = "jobs",
    params(("id" = i64, Path, description = "a running job's number", example = 1)),
    responses((status = 202, body = CancelRequested), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(auth: Authenticated, ApiPath(id): ApiPath<i64>) -> ApiResult<Response> {
    let engine = &auth.context().engine;
    let message = engine.cancel_job(&auth.caller(), JobId(id)).await?;
    let body = CancelRequested {
        job: id,
        message,
        status_url: format!("/api/v1/jobs/{id}"),
    };
    Ok((StatusCode::ACCEPTED, json(&body)).into_response())
}

//! `/api/v1/alerts` and `/api/v1/dead-letters`: what the alert gateway took in and what
//! it could not deliver. Reading them takes the same permission as `告警` in chat.

use super::ApiPath;
use super::{ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::response::Response;
use opsbot_store::alerts::{AlertQuery, FIRING, RESOLVED};
use serde::Deserialize;
use utoipa::IntoParams;

/// The chat command whose permission these reads need.
const COMMAND: &str = opsbot_engine::commands::names::ALERTS;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// firing or resolved (default both)
    #[param(example = "firing")]
    pub status: Option<String>,
    /// openfalcon, alertmanager, zabbix, generic
    #[param(example = "alertmanager")]
    pub source: Option<String>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// Alerts, newest first (each with its labels, acknowledgement and occurrences).
#[utoipa::path(get, path = "/api/v1/alerts", operation_id = "list_alerts", tag = "alerts", params(Query),
    responses((status = 200, description = "a page of alerts"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let paging = Paging::from_parts(q.page, q.per_page)?;
    if let Some(s) = q.status.as_deref() {
        if s != FIRING && s != RESOLVED {
            return Err(ApiError::bad_request(format!(
                "status {s:?} is not one of {FIRING}, {RESOLVED}"
            )));
        }
    }
    let mut items = opsbot_alerts::query::alerts(
        auth.context().store.as_ref(),
        &AlertQuery {
            status: q.status,
            source: q.source,
            limit: u64::from(paging.per_page) + 1,
            offset: u64::from(paging.page - 1) * u64::from(paging.per_page),
        },
    )
    .await?;
    let has_more = items.len() > paging.per_page as usize;
    items.truncate(paging.per_page as usize);
    Ok(json(&Page {
        items,
        page: paging.page,
        per_page: paging.per_page,
        total: None,
        has_more,
    }))
}

/// One alert and the payload it last came in, verbatim.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", operation_id = "get_alert", tag = "alerts",
    params(("id" = i64, Path, description = "an alert's number", example = 1)),
    responses((status = 200, description = "the alert and its raw payload"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(auth: Authenticated, ApiPath(id): ApiPath<i64>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    match opsbot_alerts::query::alert(auth.context().store.as_ref(), id).await? {
        Some((alert, payload)) => Ok(json(&serde_json::json!({
            "alert": alert,
            "payload": payload,
        }))),
        None => Err(ApiError::not_found(format!("alert #{id} does not exist"))),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadQuery {
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<u32>,
}

/// WeCom messages given up on (alerts and chat replies), newest first, with the reason.
#[utoipa::path(get, path = "/api/v1/dead-letters", operation_id = "list_dead_letters", tag = "alerts", params(DeadQuery),
    responses((status = 200, description = "dead letters"), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead_letters(
    auth: Authenticated,
    ApiQuery(q): ApiQuery<DeadQuery>,
) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1..=500"));
    }
    let items =
        opsbot_alerts::query::dead_letters(auth.context().store.as_ref(), u64::from(limit)).await?;
    Ok(json(&serde_json::json!({ "items": items })))
}

//! `/api/v1/datacenters`: the datacenters the caller may see.

use super::dto::DatacenterDto;
use super::{visible, ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::extract::Path;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub provider: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

const COMMAND: &str = "数据中心";

/// List datacenters.
#[utoipa::path(get, path = "/api/v1/datacenters", tag = "inventory", params(Query),
    responses((status = 200, body = Page<DatacenterDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let paging = Paging::from_parts(q.page, q.per_page)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    let all: Vec<_> = pool
        .inventory
        .datacenters
        .iter()
        .filter(|d| super::matches(&q.provider, &d.provider))
        .filter(|d| see(&format!("{}/{}", d.provider, d.name)) || auth.may("*"))
        .collect();
    Ok(json(&Page::of(all, paging, DatacenterDto::from)))
}

/// One datacenter.
#[utoipa::path(get, path = "/api/v1/datacenters/{provider}/{id}", tag = "inventory",
    params(("provider" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = DatacenterDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(auth: Authenticated, Path((provider, id)): Path<(String, String)>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    pool.inventory
        .datacenters
        .iter()
        .find(|d| d.provider == provider && d.id == id)
        .filter(|d| see(&format!("{}/{}", d.provider, d.name)) || auth.may("*"))
        .map(|d| json(&DatacenterDto::from(d)))
        .ok_or_else(|| ApiError::not_found(format!("no datacenter {provider}/{id} that you may see")))
}

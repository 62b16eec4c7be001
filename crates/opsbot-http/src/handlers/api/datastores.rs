//! `/api/v1/datastores`: capacity and free space.

use super::dto::DatastoreDto;
use super::{visible, ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::extract::Path;
use axum::response::Response;
use opsbot_core::Datastore;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub q: Option<String>,
    pub provider: Option<String>,
    pub datacenter: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

const COMMAND: &str = "存储";

pub(crate) fn path(d: &Datastore) -> String {
    format!("{}/{}/{}", d.provider, d.datacenter, d.name)
}

/// List datastores.
#[utoipa::path(get, path = "/api/v1/datastores", tag = "inventory", params(Query),
    responses((status = 200, body = Page<DatastoreDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let paging = Paging::from_parts(q.page, q.per_page)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    let needle = q.q.as_deref().map(str::to_lowercase);
    let all: Vec<&Datastore> = pool
        .inventory
        .datastores
        .iter()
        .filter(|d| {
            super::matches(&q.provider, &d.provider)
                && super::matches(&q.datacenter, &d.datacenter)
                && needle.as_deref().is_none_or(|n| d.name.to_lowercase().contains(n))
        })
        .filter(|d| see(&path(d)))
        .collect();
    Ok(json(&Page::of(all, paging, DatastoreDto::from)))
}

/// One datastore.
#[utoipa::path(get, path = "/api/v1/datastores/{provider}/{id}", tag = "inventory",
    params(("provider" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = DatastoreDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(auth: Authenticated, Path((provider, id)): Path<(String, String)>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    pool.inventory
        .datastores
        .iter()
        .find(|d| d.provider == provider && d.id == id)
        .filter(|d| see(&path(d)))
        .map(|d| json(&DatastoreDto::from(d)))
        .ok_or_else(|| ApiError::not_found(format!("no datastore {provider}/{id} that you may see")))
}

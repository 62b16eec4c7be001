//! `/api/v1/networks`: port groups and VLANs.

use super::dto::NetworkDto;
use super::{visible, ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::extract::Path;
use axum::response::Response;
use opsbot_core::Network;
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

const COMMAND: &str = "网络";

pub(crate) fn path(d: &Network) -> String {
    format!("{}/{}/{}", d.provider, d.datacenter, d.name)
}

/// List networks.
#[utoipa::path(get, path = "/api/v1/networks", tag = "inventory", params(Query),
    responses((status = 200, body = Page<NetworkDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let paging = Paging::from_parts(q.page, q.per_page)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    let needle = q.q.as_deref().map(str::to_lowercase);
    let all: Vec<&Network> = pool
        .inventory
        .networks
        .iter()
        .filter(|d| {
            super::matches(&q.provider, &d.provider)
                && super::matches(&q.datacenter, &d.datacenter)
                && needle.as_deref().is_none_or(|n| d.name.to_lowercase().contains(n))
        })
        .filter(|d| see(&path(d)))
        .collect();
    Ok(json(&Page::of(all, paging, NetworkDto::from)))
}

/// One network.
#[utoipa::path(get, path = "/api/v1/networks/{provider}/{id}", tag = "inventory",
    params(("provider" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = NetworkDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(auth: Authenticated, Path((provider, id)): Path<(String, String)>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    pool.inventory
        .networks
        .iter()
        .find(|d| d.provider == provider && d.id == id)
        .filter(|d| see(&path(d)))
        .map(|d| json(&NetworkDto::from(d)))
        .ok_or_else(|| ApiError::not_found(format!("no network {provider}/{id} that you may see")))
}

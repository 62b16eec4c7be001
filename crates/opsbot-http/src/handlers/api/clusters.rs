//! `/api/v1/clusters`: clusters with their host and VM counts.

use super::dto::ClusterDto;
use super::{visible, ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::extract::Path;
use axum::response::Response;
use opsbot_core::Cluster;
use opsbot_engine::pool::PoolView;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub provider: Option<String>,
    pub datacenter: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

const COMMAND: &str = "集群";

fn dto<'a>(pool: &'a PoolView, c: &'a Cluster) -> ClusterDto<'a> {
    let hosts = pool
        .inventory
        .hosts
        .iter()
        .filter(|h| h.provider == c.provider && h.cluster == c.name && h.datacenter == c.datacenter)
        .count();
    let vms = pool
        .vms()
        .filter(|v| v.provider == c.provider && v.cluster == c.name && v.datacenter == c.datacenter)
        .count();
    ClusterDto::new(c, hosts, vms)
}

fn path(c: &Cluster) -> String {
    format!("{}/{}/{}", c.provider, c.datacenter, c.name)
}

/// List clusters.
#[utoipa::path(get, path = "/api/v1/clusters", tag = "inventory", params(Query),
    responses((status = 200, body = Page<ClusterDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let paging = Paging::from_parts(q.page, q.per_page)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    let all: Vec<&Cluster> = pool
        .inventory
        .clusters
        .iter()
        .filter(|c| super::matches(&q.provider, &c.provider) && super::matches(&q.datacenter, &c.datacenter))
        .filter(|c| see(&path(c)))
        .collect();
    Ok(json(&Page::of(all, paging, |c| dto(&pool, c))))
}

/// One cluster.
#[utoipa::path(get, path = "/api/v1/clusters/{provider}/{id}", tag = "inventory",
    params(("provider" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ClusterDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(auth: Authenticated, Path((provider, id)): Path<(String, String)>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    pool.inventory
        .clusters
        .iter()
        .find(|c| c.provider == provider && c.id == id)
        .filter(|c| see(&path(c)))
        .map(|c| json(&dto(&pool, c)))
        .ok_or_else(|| ApiError::not_found(format!("no cluster {provider}/{id} that you may see")))
}

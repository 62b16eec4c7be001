//! `/api/v1/networks`: port groups and VLANs.

use super::datastores::Query;
use super::dto::NetworkDto;
use super::objects;
use super::ApiPath;
use super::{ApiQuery, Page};
use crate::auth::Authenticated;
use crate::error::{ApiResult, ErrorBody};
use axum::response::Response;
use opsbot_engine::Lens;

/// List networks (port groups).
#[utoipa::path(get, path = "/api/v1/networks", operation_id = "list_networks", tag = "inventory", params(Query),
    responses((status = 200, body = Page<NetworkDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    objects::list(
        &auth,
        auth.viewer().networks(&pool, Lens::NETWORKS),
        q.common(),
        (q.page, q.per_page),
        |_| true,
        NetworkDto::from,
    )
}

/// One network.
#[utoipa::path(get, path = "/api/v1/networks/{provider}/{id}", operation_id = "get_network", tag = "inventory",
    params(("provider" = String, Path, example = "sim"), ("id" = String, Path, example = "network-DC0-VM Network")),
    responses((status = 200, body = NetworkDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    auth: Authenticated,
    ApiPath((provider, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    objects::get(
        &auth,
        auth.viewer().networks(&pool, Lens::NETWORKS),
        &provider,
        &id,
        NetworkDto::from,
    )
}

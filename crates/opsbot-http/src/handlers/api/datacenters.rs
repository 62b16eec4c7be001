//! `/api/v1/datacenters`: the datacenters the caller may see.

use super::dto::DatacenterDto;
use super::objects::{self, Common};
use super::ApiPath;
use super::{ApiQuery, Page};
use crate::auth::Authenticated;
use crate::error::{ApiResult, ErrorBody};
use axum::response::Response;
use opsbot_engine::Lens;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    #[param(example = "sim")]
    pub provider: Option<String>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// List datacenters.
#[utoipa::path(get, path = "/api/v1/datacenters", operation_id = "list_datacenters", tag = "inventory", params(Query),
    responses((status = 200, body = Page<DatacenterDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    let common = Common {
        provider: &q.provider,
        ..Common::default()
    };
    objects::list(
        &auth,
        auth.viewer().datacenters(&pool, Lens::DATACENTERS),
        common,
        (q.page, q.per_page),
        |_| true,
        DatacenterDto::from,
    )
}

/// One datacenter.
#[utoipa::path(get, path = "/api/v1/datacenters/{provider}/{id}", operation_id = "get_datacenter", tag = "inventory",
    params(("provider" = String, Path, example = "sim"), ("id" = String, Path, example = "datacenter-DC0")),
    responses((status = 200, body = DatacenterDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    auth: Authenticated,
    ApiPath((provider, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    objects::get(
        &auth,
        auth.viewer().datacenters(&pool, Lens::DATACENTERS),
        &provider,
        &id,
        DatacenterDto::from,
    )
}

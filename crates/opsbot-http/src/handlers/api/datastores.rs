//! `/api/v1/datastores`: capacity and free space.

use super::dto::DatastoreDto;
use super::objects::{self, Common};
use super::ApiPath;
use super::{ApiQuery, Page};
use crate::auth::Authenticated;
use crate::error::{ApiResult, ErrorBody};
use axum::response::Response;
use opsbot_engine::Lens;
use serde::Deserialize;
use utoipa::IntoParams;

/// The filters of the datastore and network lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Substring of the name.
    #[param(example = "prod")]
    pub q: Option<String>,
    #[param(example = "sim")]
    pub provider: Option<String>,
    #[param(example = "DC0")]
    pub datacenter: Option<String>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

impl Query {
    pub(crate) fn common(&self) -> Common<'_> {
        Common {
            q: self.q.as_deref(),
            provider: &self.provider,
            datacenter: &self.datacenter,
        }
    }
}

/// List datastores.
#[utoipa::path(get, path = "/api/v1/datastores", operation_id = "list_datastores", tag = "inventory", params(Query),
    responses((status = 200, body = Page<DatastoreDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    objects::list(
        &auth,
        auth.viewer().datastores(&pool, Lens::DATASTORES),
        q.common(),
        (q.page, q.per_page),
        |_| true,
        DatastoreDto::from,
    )
}

/// One datastore.
#[utoipa::path(get, path = "/api/v1/datastores/{provider}/{id}", operation_id = "get_datastore", tag = "inventory",
    params(("provider" = String, Path, example = "sim"), ("id" = String, Path, example = "datastore-DC0-ds-prod-01")),
    responses((status = 200, body = DatastoreDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    auth: Authenticated,
    ApiPath((provider, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    objects::get(
        &auth,
        auth.viewer().datastores(&pool, Lens::DATASTORES),
        &provider,
        &id,
        DatastoreDto::from,
    )
}

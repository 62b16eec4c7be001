//! `/api/v1/datastores`: capacity and free space.

use super::dto::DatastoreDto;
use super::objects::{self, Common};
use super::{ApiQuery, Page};
use crate::auth::Authenticated;
use crate::error::{ApiResult, ErrorBody};
use axum::extract::Path;
use axum::response::Response;
use opsbot_engine::Lens;
use serde::Deserialize;
use utoipa::IntoParams;

/// The filters of the datastore and network lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Substring of the name.
    pub q: Option<String>,
    pub provider: Option<String>,
    pub datacenter: Option<String>,
    pub page: Option<u32>,
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
#[utoipa::path(get, path = "/api/v1/datastores", tag = "inventory", params(Query),
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
#[utoipa::path(get, path = "/api/v1/datastores/{provider}/{id}", tag = "inventory",
    params(("provider" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = DatastoreDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    auth: Authenticated,
    Path((provider, id)): Path<(String, String)>,
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

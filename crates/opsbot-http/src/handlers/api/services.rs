//! `/api/v1/services`: the business systems VMs serve (the values of the `[pool]
//! service_tag` tag, `app:erp` → erp), each with how many of its VMs are up. A
//! service's VMs are `/api/v1/vms?tag=app:erp`.

use super::{ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiResult, ErrorBody};
use crate::json;
use axum::response::Response;
use opsbot_engine::services::Service;
use opsbot_engine::Lens;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// true: only services with a VM not powered on.
    #[param(example = false)]
    pub degraded: Option<bool>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// One service, over the VMs the caller sees.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceDto {
    /// The tag's value (`erp`).
    #[schema(example = "shop")]
    pub name: String,
    /// The tag that selects its VMs (`app:erp`): `/api/v1/vms?tag=…`.
    #[schema(example = "app:shop")]
    pub tag: String,
    pub vms: usize,
    /// VMs powered on.
    pub up: usize,
    /// VMs not powered on (off or suspended), by name.
    pub down: Vec<String>,
}

impl ServiceDto {
    fn new(s: &Service<'_>, key: &str) -> Self {
        ServiceDto {
            name: s.name.clone(),
            tag: s.tag(key),
            vms: s.vms.len(),
            up: s.up(),
            down: s.down().map(|v| v.name.clone()).collect(),
        }
    }
}

/// List services: VMs grouped by their service tag, with how many are up.
#[utoipa::path(get, path = "/api/v1/services", operation_id = "list_services", tag = "vms", params(Query),
    responses((status = 200, body = Page<ServiceDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    super::objects::require(&auth, Lens::SERVICES)?;
    let paging = Paging::from_parts(q.page, q.per_page)?;
    let engine = &auth.context().engine;
    let key = engine.service_tag();
    let pool = engine.pool().await?;
    let vms = auth.viewer().vms(&pool, Lens::SERVICES);
    let all: Vec<Service<'_>> = opsbot_engine::services::services(vms, key)
        .into_iter()
        .filter(|s| !q.degraded.unwrap_or(false) || s.up() < s.vms.len())
        .collect();
    Ok(json(&Page::of(all, paging, |s| ServiceDto::new(&s, key))))
}

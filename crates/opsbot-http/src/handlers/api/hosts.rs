//! `/api/v1/hosts`: physical hosts with what is placed on them.

use super::dto::HostDto;
use super::objects::{self, Common};
use super::ApiPath;
use super::{ApiQuery, Page};
use crate::auth::Authenticated;
use crate::error::{ApiResult, ErrorBody};
use axum::response::Response;
use opsbot_core::{Host, PowerState};
use opsbot_engine::pool::PoolView;
use opsbot_engine::{Lens, Viewer};
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Substring of the name.
    #[param(example = "esxi")]
    pub q: Option<String>,
    #[param(example = "sim")]
    pub provider: Option<String>,
    #[param(example = "DC0")]
    pub datacenter: Option<String>,
    #[param(example = "Cluster-Prod")]
    pub cluster: Option<String>,
    /// connected, disconnected, notResponding
    #[param(example = "connected")]
    pub state: Option<String>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// Per host (provider, name): VMs placed, powered-on vCPU and memory allocated.
pub(crate) type Allocation<'a> = HashMap<(&'a str, &'a str), (usize, u64, u64)>;

/// What is placed on each host, counting only the VMs the caller sees.
pub(crate) fn allocation<'p>(pool: &'p PoolView, viewer: &Viewer) -> Allocation<'p> {
    let mut m: Allocation<'_> = HashMap::new();
    for v in viewer.vms(pool, Lens::VMS) {
        let e = m.entry((v.provider.as_str(), v.host.as_str())).or_default();
        e.0 += 1;
        if v.power == PowerState::PoweredOn {
            e.1 += u64::from(v.cpu);
            e.2 += v.memory_mb;
        }
    }
    m
}

fn dto<'a>(alloc: &Allocation<'_>, h: &'a Host) -> HostDto<'a> {
    let (n, cpu, mem) = alloc
        .get(&(h.provider.as_str(), h.name.as_str()))
        .copied()
        .unwrap_or_default();
    HostDto::new(h, n, cpu, mem)
}

/// List hosts.
#[utoipa::path(get, path = "/api/v1/hosts", operation_id = "list_hosts", tag = "inventory", params(Query),
    responses((status = 200, body = Page<HostDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    let viewer = auth.viewer();
    let alloc = allocation(&pool, &viewer);
    let common = Common {
        q: q.q.as_deref(),
        provider: &q.provider,
        datacenter: &q.datacenter,
    };
    let extra = |h: &Host| {
        super::matches(&q.cluster, &h.cluster) && super::matches(&q.state, &h.connection_state)
    };
    objects::list(
        &auth,
        viewer.hosts(&pool, Lens::HOSTS),
        common,
        (q.page, q.per_page),
        extra,
        |h| dto(&alloc, h),
    )
}

/// One host.
#[utoipa::path(get, path = "/api/v1/hosts/{provider}/{id}", operation_id = "get_host", tag = "inventory",
    params(("provider" = String, Path, example = "sim"), ("id" = String, Path, example = "host-esxi-prod-01.dc0.local")),
    responses((status = 200, body = HostDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    auth: Authenticated,
    ApiPath((provider, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    let viewer = auth.viewer();
    let alloc = allocation(&pool, &viewer);
    let visible = viewer.hosts(&pool, Lens::HOSTS);
    objects::get(&auth, visible, &provider, &id, |h| dto(&alloc, h))
}

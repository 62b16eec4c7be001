//! `/api/v1/clusters`: clusters with their host and VM counts.

use super::dto::ClusterDto;
use super::objects::{self, Common};
use super::ApiPath;
use super::{ApiQuery, Page};
use crate::auth::Authenticated;
use crate::error::{ApiResult, ErrorBody};
use axum::response::Response;
use opsbot_core::{Cluster, Host, Vm};
use opsbot_engine::pool::PoolView;
use opsbot_engine::{Lens, Viewer};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    #[param(example = "sim")]
    pub provider: Option<String>,
    #[param(example = "DC0")]
    pub datacenter: Option<String>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// What a cluster holds that the caller sees: its counts cover nothing else.
struct Seen<'p> {
    hosts: Vec<&'p Host>,
    vms: Vec<&'p Vm>,
}

impl<'p> Seen<'p> {
    fn of(viewer: &Viewer, pool: &'p PoolView) -> Seen<'p> {
        let see = viewer.vm_sight(Lens::CLUSTERS);
        Seen {
            hosts: viewer.hosts(pool, Lens::CLUSTERS),
            vms: pool.vms().filter(|v| see(v)).collect(),
        }
    }

    fn dto<'a>(&self, c: &'a Cluster) -> ClusterDto<'a> {
        let here = |provider: &str, dc: &str, cluster: &str| {
            provider == c.provider && dc == c.datacenter && cluster == c.name
        };
        let hosts = self
            .hosts
            .iter()
            .filter(|h| here(&h.provider, &h.datacenter, &h.cluster))
            .count();
        let vms = self
            .vms
            .iter()
            .filter(|v| here(&v.provider, &v.datacenter, &v.cluster))
            .count();
        ClusterDto::new(c, hosts, vms)
    }
}

/// List clusters.
#[utoipa::path(get, path = "/api/v1/clusters", operation_id = "list_clusters", tag = "inventory", params(Query),
    responses((status = 200, body = Page<ClusterDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    let common = Common {
        provider: &q.provider,
        datacenter: &q.datacenter,
        q: None,
    };
    let viewer = auth.viewer();
    let seen = Seen::of(&viewer, &pool);
    objects::list(
        &auth,
        viewer.clusters(&pool, Lens::CLUSTERS),
        common,
        (q.page, q.per_page),
        |_| true,
        |c| seen.dto(c),
    )
}

/// One cluster.
#[utoipa::path(get, path = "/api/v1/clusters/{provider}/{id}", operation_id = "get_cluster", tag = "inventory",
    params(("provider" = String, Path, example = "sim"), ("id" = String, Path, example = "domain-c-Cluster-Prod")),
    responses((status = 200, body = ClusterDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    auth: Authenticated,
    ApiPath((provider, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let pool = auth.context().engine.pool().await?;
    let viewer = auth.viewer();
    let seen = Seen::of(&viewer, &pool);
    objects::get(
        &auth,
        viewer.clusters(&pool, Lens::CLUSTERS),
        &provider,
        &id,
        |c| seen.dto(c),
    )
}

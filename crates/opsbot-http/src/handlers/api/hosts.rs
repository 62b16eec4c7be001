//! `/api/v1/hosts`: physical hosts with what is placed on them.

use super::dto::HostDto;
use super::{visible, ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::extract::Path;
use axum::response::Response;
use opsbot_core::{Host, PowerState};
use opsbot_engine::pool::PoolView;
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Substring of the name.
    pub q: Option<String>,
    pub provider: Option<String>,
    pub datacenter: Option<String>,
    pub cluster: Option<String>,
    /// connected, disconnected, notResponding
    pub state: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

const COMMAND: &str = "主机";

pub(crate) fn path(h: &Host) -> String {
    format!("{}/{}/{}/{}", h.provider, h.datacenter, h.cluster, h.name)
}

/// Per host (provider, name): VMs placed, powered-on vCPU and memory allocated.
pub(crate) fn allocation(pool: &PoolView) -> HashMap<(&str, &str), (usize, u64, u64)> {
    let mut m: HashMap<(&str, &str), (usize, u64, u64)> = HashMap::new();
    for v in pool.vms() {
        let e = m.entry((v.provider.as_str(), v.host.as_str())).or_default();
        e.0 += 1;
        if v.power == PowerState::PoweredOn {
            e.1 += u64::from(v.cpu);
            e.2 += v.memory_mb;
        }
    }
    m
}

/// List hosts.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "inventory", params(Query),
    responses((status = 200, body = Page<HostDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let paging = Paging::from_parts(q.page, q.per_page)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    let needle = q.q.as_deref().map(str::to_lowercase);
    let all: Vec<&Host> = pool
        .inventory
        .hosts
        .iter()
        .filter(|h| {
            super::matches(&q.provider, &h.provider)
                && super::matches(&q.datacenter, &h.datacenter)
                && super::matches(&q.cluster, &h.cluster)
                && super::matches(&q.state, &h.connection_state)
                && needle.as_deref().is_none_or(|n| h.name.to_lowercase().contains(n))
        })
        .filter(|h| see(&path(h)))
        .collect();
    let alloc = allocation(&pool);
    Ok(json(&Page::of(all, paging, |h| {
        let (n, cpu, mem) = alloc.get(&(h.provider.as_str(), h.name.as_str())).copied().unwrap_or_default();
        HostDto::new(h, n, cpu, mem)
    })))
}

/// One host.
#[utoipa::path(get, path = "/api/v1/hosts/{provider}/{id}", tag = "inventory",
    params(("provider" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = HostDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(auth: Authenticated, Path((provider, id)): Path<(String, String)>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let pool = auth.context().engine.pool().await?;
    let see = visible(&auth, COMMAND);
    let alloc = allocation(&pool);
    pool.inventory
        .hosts
        .iter()
        .find(|h| h.provider == provider && h.id == id)
        .filter(|h| see(&path(h)))
        .map(|h| {
            let (n, cpu, mem) = alloc.get(&(h.provider.as_str(), h.name.as_str())).copied().unwrap_or_default();
            json(&HostDto::new(h, n, cpu, mem))
        })
        .ok_or_else(|| ApiError::not_found(format!("no host {provider}/{id} that you may see")))
}

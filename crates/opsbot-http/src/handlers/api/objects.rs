//! What the pool-object lists (datacenters, clusters, hosts, datastores, networks)
//! share: the common filters, one page, and the lookup of one object by
//! `(provider, id)`. Which objects the caller sees is the engine's decision
//! ([`opsbot_engine::Viewer`]); these only filter and page what it returns.

use super::{Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::json;
use axum::response::Response;
use opsbot_core::{Cluster, Datacenter, Datastore, Host, Network};
use opsbot_engine::Lens;
use serde::Serialize;

/// A pool object as the API lists it.
pub(crate) trait PoolObject {
    /// The read commands that show it.
    const LENS: Lens;
    /// For messages: `host`, `datastore`, ...
    const KIND: &'static str;
    fn provider(&self) -> &str;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn datacenter(&self) -> &str;
}

macro_rules! object {
    ($t:ty, $lens:expr, $kind:literal, $dc:ident) => {
        impl PoolObject for $t {
            const LENS: Lens = $lens;
            const KIND: &'static str = $kind;
            fn provider(&self) -> &str {
                &self.provider
            }
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn datacenter(&self) -> &str {
                &self.$dc
            }
        }
    };
}

object!(Datacenter, Lens::DATACENTERS, "datacenter", name);
object!(Cluster, Lens::CLUSTERS, "cluster", datacenter);
object!(Host, Lens::HOSTS, "host", datacenter);
object!(Datastore, Lens::DATASTORES, "datastore", datacenter);
object!(Network, Lens::NETWORKS, "network", datacenter);

/// The filters every object list takes.
#[derive(Debug)]
pub(crate) struct Common<'q> {
    pub q: Option<&'q str>,
    pub provider: &'q Option<String>,
    pub datacenter: &'q Option<String>,
}

static NO_FILTER: Option<String> = None;

impl Default for Common<'_> {
    fn default() -> Self {
        Common {
            q: None,
            provider: &NO_FILTER,
            datacenter: &NO_FILTER,
        }
    }
}

/// A 403 unless the caller may list objects through `lens` somewhere.
pub(crate) fn require(auth: &Authenticated, lens: Lens) -> ApiResult<()> {
    if auth.viewer().may_read(lens) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "⛔ 您({})没有权限执行「{}」",
            auth.user,
            lens.command()
        )))
    }
}

/// The objects of `visible` (what the engine lets the caller see) that pass `common`
/// and `extra`.
fn filtered<'a, T: PoolObject>(
    visible: Vec<&'a T>,
    common: &Common<'_>,
    extra: impl Fn(&T) -> bool,
) -> Vec<&'a T> {
    let needle = common.q.map(str::to_lowercase);
    visible
        .into_iter()
        .filter(|o| {
            super::matches(common.provider, o.provider())
                && super::matches(common.datacenter, o.datacenter())
                && needle
                    .as_deref()
                    .is_none_or(|n| o.name().to_lowercase().contains(n))
                && extra(o)
        })
        .collect()
}

/// One page of a list, as JSON.
pub(crate) fn list<'a, T: PoolObject, D: Serialize>(
    auth: &Authenticated,
    visible: Vec<&'a T>,
    common: Common<'_>,
    paging: (Option<u32>, Option<u32>),
    extra: impl Fn(&T) -> bool,
    dto: impl FnMut(&'a T) -> D,
) -> ApiResult<Response> {
    require(auth, T::LENS)?;
    let paging = Paging::from_parts(paging.0, paging.1)?;
    let all = filtered(visible, &common, extra);
    Ok(json(&Page::of(all, paging, dto)))
}

/// One object by `(provider, id)`, as JSON; 404 when missing or out of scope, alike.
pub(crate) fn get<'a, T: PoolObject, D: Serialize>(
    auth: &Authenticated,
    visible: Vec<&'a T>,
    provider: &str,
    id: &str,
    dto: impl FnOnce(&'a T) -> D,
) -> ApiResult<Response> {
    require(auth, T::LENS)?;
    visible
        .into_iter()
        .find(|o| o.provider() == provider && o.id() == id)
        .map(|o| json(&dto(o)))
        .ok_or_else(|| {
            ApiError::not_found(format!("no {} {provider}/{id} that you may see", T::KIND))
        })
}

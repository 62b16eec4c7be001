//! What the pool-object lists (datacenters, clusters, hosts, datastores, networks)
//! share: the scope path permissions match, the common filters, one page, and the
//! lookup of one object by `(provider, id)`.

use super::{visible, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::json;
use axum::response::Response;
use opsbot_core::{Cluster, Datacenter, Datastore, Host, Network};
use serde::Serialize;

/// A pool object as the API lists it.
pub(crate) trait PoolObject {
    /// The list command that grants seeing it (`主机`, ...).
    const COMMAND: &'static str;
    /// For messages: `host`, `datastore`, ...
    const KIND: &'static str;
    fn provider(&self) -> &str;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn datacenter(&self) -> &str;
    /// The scope path roles match.
    fn path(&self) -> String;
}

macro_rules! object {
    ($t:ty, $command:literal, $kind:literal, $dc:ident, $path:expr) => {
        impl PoolObject for $t {
            const COMMAND: &'static str = $command;
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
            fn path(&self) -> String {
                ($path)(self)
            }
        }
    };
}

object!(
    Datacenter,
    "数据中心",
    "datacenter",
    name,
    |d: &Datacenter| format!("{}/{}", d.provider, d.name)
);
object!(
    Cluster,
    "集群",
    "cluster",
    datacenter,
    |c: &Cluster| format!("{}/{}/{}", c.provider, c.datacenter, c.name)
);
object!(Host, "主机", "host", datacenter, |h: &Host| format!(
    "{}/{}/{}/{}",
    h.provider, h.datacenter, h.cluster, h.name
));
object!(
    Datastore,
    "存储",
    "datastore",
    datacenter,
    |d: &Datastore| format!("{}/{}/{}", d.provider, d.datacenter, d.name)
);
object!(
    Network,
    "网络",
    "network",
    datacenter,
    |n: &Network| format!("{}/{}/{}", n.provider, n.datacenter, n.name)
);

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

/// The objects of `items` the caller may see that pass `common` and `extra`.
pub(crate) fn visible_objects<'a, T: PoolObject>(
    auth: &Authenticated,
    items: &'a [T],
    common: &Common<'_>,
    extra: impl Fn(&T) -> bool,
) -> Vec<&'a T> {
    let see = visible(auth, T::COMMAND);
    // Datacenter lists were always shown to administrators (chat's 数据中心 does too).
    let admin = auth.may("*");
    let needle = common.q.map(str::to_lowercase);
    items
        .iter()
        .filter(|o| {
            super::matches(common.provider, o.provider())
                && super::matches(common.datacenter, o.datacenter())
                && needle
                    .as_deref()
                    .is_none_or(|n| o.name().to_lowercase().contains(n))
                && extra(o)
        })
        .filter(|o| see(&o.path()) || (T::KIND == "datacenter" && admin))
        .collect()
}

/// One page of a list, as JSON.
pub(crate) fn list<'a, T: PoolObject, D: Serialize>(
    auth: &Authenticated,
    items: &'a [T],
    common: Common<'_>,
    paging: (Option<u32>, Option<u32>),
    extra: impl Fn(&T) -> bool,
    dto: impl FnMut(&'a T) -> D,
) -> ApiResult<Response> {
    auth.require(T::COMMAND)?;
    let paging = Paging::from_parts(paging.0, paging.1)?;
    let all = visible_objects(auth, items, &common, extra);
    Ok(json(&Page::of(all, paging, dto)))
}

/// One object by `(provider, id)`, as JSON; 404 when missing or out of scope.
pub(crate) fn get<'a, T: PoolObject, D: Serialize>(
    auth: &Authenticated,
    items: &'a [T],
    provider: &str,
    id: &str,
    dto: impl FnOnce(&'a T) -> D,
) -> ApiResult<Response> {
    auth.require(T::COMMAND)?;
    let wanted = |o: &&T| o.provider() == provider && o.id() == id;
    visible_objects(auth, items, &Common::default(), |o| wanted(&o))
        .into_iter()
        .next()
        .map(|o| json(&dto(o)))
        .ok_or_else(|| {
            ApiError::not_found(format!("no {} {provider}/{id} that you may see", T::KIND))
        })
}

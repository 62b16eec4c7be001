//! Which hosts a project releases to, and where SSH reaches each: names from the
//! configuration (a pool VM, a CMDB asset, or an address), the pool's selectors (tag,
//! cluster, folder), CMDB selectors, and the hosts scaling out added. A Salt project's
//! hosts are minion ids (its names, and the minions its target matched): each keeps
//! its name, and its address (for `{host}` in an HTTP health check) is the pool's or
//! CMDB's when they know the name, else the name itself.

use crate::config::{Project, Selector, TransportKind};
use opsbot_core::{Asset, Vm};
use opsbot_store::deploy::DeployStore;
use opsbot_store::{AssetQuery, AssetStore, PoolStore};
use std::net::IpAddr;

/// A host of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub address: String,
}

/// Where the hosts' names are looked up.
pub struct Sources<'a> {
    pub pool: &'a dyn PoolStore,
    pub assets: &'a dyn AssetStore,
    pub deploys: &'a dyn DeployStore,
}

/// Why a project's hosts could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsError {
    #[error("主机「{0}」不在资源池和 CMDB 中,也不是地址")]
    Unknown(String),
    #[error("主机「{0}」没有 IP 地址(虚拟机未开机或未装 VMware Tools?)")]
    NoAddress(String),
    #[error("存储不可用: {0}")]
    Store(String),
}

/// Every host of `project`, configured names first (then `minions`, those its Salt
/// target matched), in a stable order, once each.
pub async fn resolve(
    project: &Project,
    minions: &[String],
    src: &Sources<'_>,
) -> Result<Vec<Target>, HostsError> {
    let store = |e: opsbot_store::StoreError| HostsError::Store(e.to_string());
    let mut out: Vec<Target> = Vec::new();
    let needs_pool = !project.hosts.is_empty()
        || !minions.is_empty()
        || project.select.iter().any(|s| s.cmdb.is_none());
    let vms: Vec<Vm> = if needs_pool {
        src.pool.load_pool().await.map_err(store)?.inventory.vms
    } else {
        Vec::new()
    };
    let salt = project.transport == TransportKind::Salt;
    for name in project.hosts.iter().chain(minions) {
        let t = match by_name(name, &vms, src.assets).await {
            Ok(t) if salt => Target {
                name: name.clone(),
                address: t.address,
            },
            Ok(t) => t,
            Err(HostsError::Unknown(_) | HostsError::NoAddress(_)) if salt => Target {
                name: name.clone(),
                address: name.clone(),
            },
            Err(e) => return Err(e),
        };
        push(&mut out, t);
    }
    for sel in &project.select {
        if let Some(q) = &sel.cmdb {
            let assets = src
                .assets
                .asset_list(&AssetQuery {
                    search: Some(q.clone()),
                    limit: 0,
                    ..AssetQuery::default()
                })
                .await
                .map_err(store)?;
            for a in assets {
                let address = match asset_address(&a, src.assets).await {
                    Err(HostsError::NoAddress(_)) if salt => a.identity.clone(),
                    found => found?,
                };
                push(
                    &mut out,
                    Target {
                        name: a.identity.clone(),
                        address,
                    },
                );
            }
        } else {
            let mut hits: Vec<&Vm> = vms
                .iter()
                .filter(|v| !v.template && matches(v, sel))
                .collect();
            hits.sort_by(|a, b| a.name.cmp(&b.name));
            for vm in hits {
                let t = match vm_target(vm) {
                    Err(HostsError::NoAddress(name)) if salt => Target {
                        name: name.clone(),
                        address: name,
                    },
                    found => found?,
                };
                push(&mut out, t);
            }
        }
    }
    for h in src
        .deploys
        .project_hosts(&project.name)
        .await
        .map_err(store)?
    {
        push(
            &mut out,
            Target {
                name: h.host,
                address: h.address,
            },
        );
    }
    Ok(out)
}

fn push(out: &mut Vec<Target>, t: Target) {
    if !out
        .iter()
        .any(|o| o.name == t.name || o.address == t.address)
    {
        out.push(t);
    }
}

fn matches(vm: &Vm, s: &Selector) -> bool {
    s.tag
        .as_ref()
        .is_none_or(|t| vm.tags.iter().any(|v| v == t))
        && s.cluster.as_ref().is_none_or(|c| &vm.cluster == c)
        && s.folder
            .as_ref()
            .is_none_or(|f| &vm.folder == f || vm.folder.ends_with(&format!("/{f}")))
}

fn vm_target(vm: &Vm) -> Result<Target, HostsError> {
    let address = vm
        .guest_ip
        .clone()
        .or_else(|| vm.ips.first().cloned())
        .ok_or_else(|| HostsError::NoAddress(vm.name.clone()))?;
    Ok(Target {
        name: vm.name.clone(),
        address,
    })
}

async fn by_name(name: &str, vms: &[Vm], assets: &dyn AssetStore) -> Result<Target, HostsError> {
    if let Some(vm) = vms.iter().find(|v| !v.template && v.name == name) {
        return vm_target(vm);
    }
    if name.parse::<IpAddr>().is_ok() {
        return Ok(Target {
            name: name.to_string(),
            address: name.to_string(),
        });
    }
    if let Some(a) = assets
        .asset_find(&name.to_lowercase())
        .await
        .map_err(|e| HostsError::Store(e.to_string()))?
    {
        let address = asset_address(&a, assets).await?;
        return Ok(Target {
            name: name.to_string(),
            address,
        });
    }
    // A DNS name SSH resolves itself.
    if name.contains('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
    {
        return Ok(Target {
            name: name.to_string(),
            address: name.to_string(),
        });
    }
    Err(HostsError::Unknown(name.to_string()))
}

/// A CMDB asset's address: its linked VM's, else the first non-loopback IPv4 it reports.
async fn asset_address(a: &Asset, assets: &dyn AssetStore) -> Result<String, HostsError> {
    let facts = assets
        .asset_facts(a.id)
        .await
        .map_err(|e| HostsError::Store(e.to_string()))?;
    facts
        .iter()
        .filter(|(k, _)| k.starts_with("nic.") && k.ends_with(".ipv4"))
        .flat_map(|(_, v)| v.split(','))
        .map(|ip| ip.split('/').next().unwrap_or("").trim().to_string())
        .find(|ip| !ip.is_empty() && !ip.starts_with("127."))
        .ok_or_else(|| HostsError::NoAddress(a.identity.clone()))
}

/// Splits `hosts` into batches by the cumulative sizes of `strategy.batches` (`[1,
/// "25%", "100%"]`); every host lands in exactly one batch, none empty.
pub fn batches(count: usize, sizes: &[crate::config::BatchSize]) -> Vec<usize> {
    use crate::config::{parse_share, BatchSize};
    if count == 0 {
        return Vec::new();
    }
    let mut ends: Vec<usize> = Vec::new();
    for s in sizes {
        let upto = match s {
            BatchSize::Count(n) => *n as usize,
            BatchSize::Share(p) => {
                let pct = parse_share(p).unwrap_or(100) as usize;
                (count * pct).div_ceil(100)
            }
        }
        .clamp(1, count);
        // A count is a batch size; a share is cumulative.
        let end = match s {
            BatchSize::Count(_) => ends.last().copied().unwrap_or(0) + upto,
            BatchSize::Share(_) => upto,
        }
        .min(count);
        if ends.last().is_none_or(|l| end > *l) {
            ends.push(end);
        }
    }
    if ends.last().is_none_or(|l| *l < count) {
        ends.push(count);
    }
    // Batch number of each host.
    let mut out = Vec::with_capacity(count);
    let mut start = 0;
    for (b, end) in ends.iter().enumerate() {
        out.extend(std::iter::repeat_n(b, end - start));
        start = *end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BatchSize::{Count, Share};

    fn sizes(count: usize, s: &[crate::config::BatchSize]) -> Vec<usize> {
        let b = batches(count, s);
        let n = b.iter().max().map_or(0, |m| m + 1);
        (0..n)
            .map(|i| b.iter().filter(|x| **x == i).count())
            .collect()
    }

    #[test]
    fn canary_then_shares_then_the_rest() {
        let s = [Count(1), Share("25%".into()), Share("100%".into())];
        assert_eq!(sizes(20, &s), [1, 4, 15]);
        assert_eq!(sizes(3, &s), [1, 2]);
        assert_eq!(sizes(1, &s), [1]);
    }

    #[test]
    fn no_batches_is_one_batch_and_counts_add_up() {
        assert_eq!(sizes(5, &[]), [5]);
        assert_eq!(sizes(5, &[Count(2), Count(2)]), [2, 2, 1]);
        assert!(batches(0, &[Count(1)]).is_empty());
    }
}

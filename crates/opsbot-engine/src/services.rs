//! Services: the business systems VMs serve, read from one tag (`app:erp`, the key is
//! `[pool] service_tag`). A VM with two such tags serves both; one without serves none.

use opsbot_core::{PowerState, Vm};
use std::collections::HashMap;

/// One service and its VMs, by name.
#[derive(Debug, Clone)]
pub struct Service<'p> {
    pub name: String,
    pub vms: Vec<&'p Vm>,
}

impl<'p> Service<'p> {
    /// VMs powered on.
    pub fn up(&self) -> usize {
        self.vms
            .iter()
            .filter(|v| v.power == PowerState::PoweredOn)
            .count()
    }

    /// VMs not powered on (off or suspended).
    pub fn down(&self) -> impl Iterator<Item = &&'p Vm> {
        self.vms.iter().filter(|v| v.power != PowerState::PoweredOn)
    }

    /// The tag that selects its VMs (`app:erp`).
    pub fn tag(&self, key: &str) -> String {
        format!("{key}:{}", self.name)
    }
}

/// The services of `vms` (templates left out), by name, each with its VMs in the order
/// given.
pub fn services<'p>(vms: impl IntoIterator<Item = &'p Vm>, key: &str) -> Vec<Service<'p>> {
    let vms: Vec<&'p Vm> = vms.into_iter().filter(|v| !v.template).collect();
    group(vms.iter().copied().enumerate(), key)
        .into_iter()
        .map(|(name, idx)| Service {
            name,
            vms: idx.into_iter().map(|i| vms[i]).collect(),
        })
        .collect()
}

/// [`services`] of a whole pool's VMs as their indexes (in pool order), for the pool
/// view to keep per version.
pub fn group_indexes(vms: &[Vm], key: &str) -> Vec<crate::pool::ServiceGroup> {
    group(vms.iter().enumerate().filter(|(_, v)| !v.template), key)
}

/// Numbered VMs grouped by the service their tags name, names sorted, each group's
/// numbers in the order given. 概况 groups every VM the asker sees, so this allocates
/// nothing per VM: names are borrowed from the tags until the groups are known.
fn group<'v>(
    vms: impl Iterator<Item = (usize, &'v Vm)>,
    key: &str,
) -> Vec<crate::pool::ServiceGroup> {
    let mut by_name: HashMap<&'v str, Vec<usize>> = HashMap::new();
    for (i, vm) in vms {
        for value in vm.tags.iter().filter_map(|t| service_of(t, key)) {
            let entry = by_name.entry(value).or_default();
            // A VM tagged twice with one service is listed once; its VMs arrive one at
            // a time, so a repeat can only be the last one pushed.
            if entry.last() != Some(&i) {
                entry.push(i);
            }
        }
    }
    let mut all: Vec<crate::pool::ServiceGroup> = by_name
        .into_iter()
        .map(|(name, idx)| (name.to_string(), idx))
        .collect();
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    all
}

/// The service a tag names under `key` (`app:erp` → `erp`), ASCII case of the key ignored.
fn service_of<'t>(tag: &'t str, key: &str) -> Option<&'t str> {
    let head = tag.get(..key.len())?;
    let value = tag[key.len()..].strip_prefix(':')?;
    (head.eq_ignore_ascii_case(key) && !value.is_empty()).then_some(value)
}

/// The name of the service `wanted` among `all`, ASCII case ignored.
pub fn find<'a, 'p>(all: &'a [Service<'p>], wanted: &str) -> Option<&'a Service<'p>> {
    all.iter().find(|s| s.name.eq_ignore_ascii_case(wanted))
}

//! List filters: the one VM filter chat (`虚拟机:关机,集群=Cluster-Prod`), the REST API
//! (`/api/v1/vms?power=off&cluster=…`) and the web UI match with, and the chat
//! grammar of the filters every pool list takes.
//!
//! Names match as an engineer types them: ASCII case ignored, a host by its full name
//! or its short name (`esxi-dr-02` for `esxi-dr-02.dc1.local`), a tag exactly or by its
//! category alone (`env` for every `env:*`).

use crate::command::ListKind;
use crate::pool::PoolView;
use crate::view::{Lens, Viewer};
use opsbot_core::{Datastore, Host, PowerState, Vm};
use std::fmt;

/// What a VM list keeps. Empty fields filter nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmFilter {
    /// Lower-cased substring of the name, guest hostname or an IP.
    pub q: Option<String>,
    /// Lower-cased substring of the name.
    pub name: Option<String>,
    /// An IP or its beginning.
    pub ip: Option<String>,
    pub power: Option<PowerState>,
    pub provider: Option<String>,
    pub datacenter: Option<String>,
    pub cluster: Option<String>,
    /// Full or short host name.
    pub host: Option<String>,
    /// A datastore one of the VM's disks is on.
    pub datastore: Option<String>,
    /// A network / port group one of the VM's NICs is on.
    pub network: Option<String>,
    /// Every one of these tags (`env:prod`, or `env` for any value).
    pub tags: Vec<String>,
    /// Templates instead of VMs.
    pub template: bool,
}

/// Does the tag a VM carries satisfy the tag asked for?
pub fn tag_matches(has: &str, wanted: &str) -> bool {
    has.eq_ignore_ascii_case(wanted)
        || (!wanted.contains(':')
            && has
                .split_once(':')
                .is_some_and(|(category, _)| category.eq_ignore_ascii_case(wanted)))
}

/// Is `name` the host asked for, by full or short name?
pub fn host_matches(name: &str, wanted: &str) -> bool {
    name.eq_ignore_ascii_case(wanted)
        || name
            .split_once('.')
            .is_some_and(|(short, _)| short.eq_ignore_ascii_case(wanted))
}

impl VmFilter {
    pub fn is_empty(&self) -> bool {
        *self == VmFilter::default()
    }

    /// The VMs (or templates) the caller sees through `lens` that pass, by name.
    pub fn apply<'a>(&self, viewer: &Viewer, pool: &'a PoolView, lens: Lens) -> Vec<&'a Vm> {
        // `None` for a caller who sees every VM; for a scoped one the engine computes the
        // answer once per pool version, policy and set of roles.
        let scoped = viewer.vm_mask(pool, lens);
        self.matching(pool, |i| scoped.as_ref().is_none_or(|seen| seen[i]))
    }

    /// The VMs (by index `seen` admits) that pass, by name.
    pub fn matching<'a>(&self, pool: &'a PoolView, seen: impl Fn(usize) -> bool) -> Vec<&'a Vm> {
        let vms = &pool.inventory.vms;
        let facets = pool.vm_facets();
        // Placement filters become facet ids once; a name no VM has matches nothing.
        let id = |f: &Option<String>| f.as_deref().map(|v| pool.facet_id(v));
        let placement = [id(&self.provider), id(&self.datacenter), id(&self.cluster)];
        if placement.contains(&Some(None)) {
            return Vec::new();
        }
        let [provider, datacenter, cluster] = placement.map(Option::flatten);
        // A short host name may stand for several hosts (one per datacenter, say).
        let hosts: Option<Vec<u32>> = self.host.as_deref().map(|wanted| {
            let mut ids: Vec<u32> = pool
                .inventory
                .hosts
                .iter()
                .filter(|h| host_matches(&h.name, wanted))
                .filter_map(|h| pool.facet_id(&h.name))
                .chain(pool.facet_id(wanted))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        });
        if hosts.as_ref().is_some_and(Vec::is_empty) {
            return Vec::new();
        }
        let is = |want: Option<u32>, have: u32| want.is_none_or(|w| w == have);
        // The text filters as one scan over the whole pool each.
        let by_text = self.q.as_deref().map(|k| pool.vms_matching(k));
        let by_ip = self.ip.as_deref().map(|ip| pool.vms_with_ip_prefix(ip));
        let keep = |i: usize| -> bool {
            let f = &facets[i];
            // Numbers first; the VM itself is read only for what numbers cannot say.
            f.template == self.template
                && self.power.is_none_or(|p| f.power == p)
                && is(provider, f.provider)
                && is(datacenter, f.datacenter)
                && is(cluster, f.cluster)
                && hosts.as_ref().is_none_or(|h| h.contains(&f.host))
                && seen(i)
                && by_text.as_ref().is_none_or(|hit| hit[i])
                && by_ip.as_ref().is_none_or(|hit| hit[i])
                && self.rest_matches(&vms[i])
        };
        // Non-templates come pre-sorted by name, so the common case sorts nothing.
        if self.template {
            let mut hits: Vec<&Vm> = (0..vms.len())
                .filter(|i| keep(*i))
                .map(|i| &vms[i])
                .collect();
            hits.sort_by(|a, b| a.name.cmp(&b.name));
            hits
        } else {
            pool.vm_indexes_by_name()
                .iter()
                .copied()
                .filter(|i| keep(*i))
                .map(|i| &vms[i])
                .collect()
        }
    }

    /// The filters read from the VM itself (name, disks, NICs, tags).
    fn rest_matches(&self, vm: &Vm) -> bool {
        self.name
            .as_deref()
            .is_none_or(|n| vm.name.to_lowercase().contains(n))
            && self
                .datastore
                .as_deref()
                .is_none_or(|d| vm.disks.iter().any(|x| x.datastore.eq_ignore_ascii_case(d)))
            && self
                .network
                .as_deref()
                .is_none_or(|n| vm.nics.iter().any(|x| x.network.eq_ignore_ascii_case(n)))
            && self
                .tags
                .iter()
                .all(|t| vm.tags.iter().any(|has| tag_matches(has, t)))
    }
}

/// The filters of a chat list command (`虚拟机:关机,集群=Cluster-Prod,2`): the VM
/// filter, and what only hosts and datastores have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Power, placement, datastore, network, tags; a host, datastore, network or
    /// cluster list reads its datacenter (and a host list its cluster) from here.
    pub vms: VmFilter,
    /// Hosts: connected (在线) or not (离线).
    pub online: Option<bool>,
    /// Datastores: with less than [`LOW_FREE_PERCENT`] free (不足).
    pub low: bool,
    /// 服务:名称 — the service whose VMs are listed.
    pub service: Option<String>,
}

/// A datastore with less free space than this (percent) is short of it: the overview
/// warns, and `存储:不足` lists it.
pub const LOW_FREE_PERCENT: u64 = 15;

/// The keys of `key=value` filters, as typed (Chinese first, then English).
const KEYS: &[(Key, &[&str])] = &[
    (Key::Datacenter, &["数据中心", "datacenter", "dc"]),
    (Key::Cluster, &["集群", "cluster"]),
    (Key::Host, &["主机", "host"]),
    (Key::Datastore, &["存储", "datastore", "ds"]),
    (Key::Network, &["网络", "network", "net"]),
    (Key::Tag, &["标签", "tag"]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Datacenter,
    Cluster,
    Host,
    Datastore,
    Network,
    Tag,
}

impl Key {
    fn label(self) -> &'static str {
        KEYS.iter()
            .find(|(k, _)| *k == self)
            .map(|(_, names)| names[0])
            .unwrap_or_default()
    }
}

/// What each list may be filtered by: `key=` filters, then bare words.
fn accepts(kind: ListKind) -> (&'static [Key], &'static [&'static str]) {
    use Key::*;
    match kind {
        ListKind::Vms | ListKind::Services => (
            &[Datacenter, Cluster, Host, Datastore, Network, Tag],
            &["开机", "关机", "挂起"],
        ),
        ListKind::Hosts => (&[Datacenter, Cluster], &["在线", "离线"]),
        ListKind::Datastores => (&[Datacenter], &["不足"]),
        ListKind::Networks | ListKind::Clusters => (&[Datacenter], &[]),
        _ => (&[], &[]),
    }
}

/// A bare word's meaning: (canonical word, spellings).
const WORDS: &[(&str, &[&str])] = &[
    ("开机", &["开机", "on", "poweredon", "运行"]),
    ("关机", &["关机", "off", "poweredoff", "停机"]),
    ("挂起", &["挂起", "suspended"]),
    ("在线", &["在线", "online", "connected"]),
    ("离线", &["离线", "offline", "断开", "无响应"]),
    ("不足", &["不足", "low"]),
];

impl ListFilter {
    pub fn is_empty(&self) -> bool {
        *self == ListFilter::default()
    }

    /// Reads a list command's arguments: filters and at most one page number. `Err` is
    /// the problem, in the words of the usage line.
    pub fn parse(kind: ListKind, args: &[String]) -> Result<(ListFilter, u32), String> {
        let mut f = ListFilter::default();
        let mut page: Option<u32> = None;
        let (keys, words) = accepts(kind);
        for arg in args {
            let arg = arg.trim();
            if arg.is_empty() {
                return Err("有一个筛选条件是空的".into());
            }
            if let Ok(n) = arg.parse::<u32>() {
                if page.replace(n).is_some() {
                    return Err("页码只能有一个".into());
                }
                if !(1..=100_000).contains(&n) {
                    return Err(format!("页码 {n} 超出范围(1–100000)"));
                }
                continue;
            }
            if let Some((k, v)) = arg.split_once('=') {
                let (k, v) = (k.trim().to_lowercase(), v.trim());
                let Some(key) = KEYS
                    .iter()
                    .find(|(_, names)| names.contains(&k.as_str()))
                    .map(|(key, _)| *key)
                else {
                    return Err(format!("不认识的筛选「{k}=」;{}", choices(keys, words)));
                };
                if !keys.contains(&key) {
                    return Err(format!(
                        "不能按「{}=」筛选;{}",
                        key.label(),
                        choices(keys, words)
                    ));
                }
                if v.is_empty() {
                    return Err(format!("「{}=」后面缺少值", key.label()));
                }
                let v = v.to_string();
                let vf = &mut f.vms;
                let slot = match key {
                    Key::Datacenter => &mut vf.datacenter,
                    Key::Cluster => &mut vf.cluster,
                    Key::Host => &mut vf.host,
                    Key::Datastore => &mut vf.datastore,
                    Key::Network => &mut vf.network,
                    Key::Tag => {
                        if !vf.tags.contains(&v) {
                            vf.tags.push(v);
                        }
                        continue;
                    }
                };
                if slot.replace(v).is_some() {
                    return Err(format!("「{}=」只能有一个", key.label()));
                }
                continue;
            }
            let lower = arg.to_lowercase();
            let word = WORDS
                .iter()
                .find(|(_, spellings)| spellings.contains(&lower.as_str()))
                .map(|(w, _)| *w);
            match word {
                Some(w) if words.contains(&w) => {
                    let clash = match w {
                        "开机" => f.vms.power.replace(PowerState::PoweredOn).is_some(),
                        "关机" => f.vms.power.replace(PowerState::PoweredOff).is_some(),
                        "挂起" => f.vms.power.replace(PowerState::Suspended).is_some(),
                        "在线" => f.online.replace(true).is_some(),
                        "离线" => f.online.replace(false).is_some(),
                        _ => std::mem::replace(&mut f.low, true),
                    };
                    if clash {
                        return Err(format!("「{arg}」与前面的条件重复或矛盾"));
                    }
                }
                // A service's VMs: the first other word names the service.
                _ if kind == ListKind::Services && f.service.is_none() => {
                    f.service = Some(arg.to_string());
                }
                _ => {
                    return Err(format!(
                        "「{arg}」不是页码或筛选条件;{}",
                        choices(keys, words)
                    ))
                }
            }
        }
        Ok((f, page.unwrap_or(1)))
    }

    /// Hosts that pass (datacenter, cluster, 在线/离线).
    pub fn host(&self, h: &Host) -> bool {
        let v = &self.vms;
        v.datacenter
            .as_deref()
            .is_none_or(|d| h.datacenter.eq_ignore_ascii_case(d))
            && v.cluster
                .as_deref()
                .is_none_or(|c| h.cluster.eq_ignore_ascii_case(c))
            && self
                .online
                .is_none_or(|on| (h.connection_state == "connected") == on)
    }

    /// Datastores that pass (datacenter, 不足).
    pub fn datastore(&self, d: &Datastore) -> bool {
        self.in_datacenter(&d.datacenter)
            && (!self.low || crate::format::percent(d.free_gb, d.capacity_gb) < LOW_FREE_PERCENT)
    }

    /// Objects of a datacenter-only filter (networks, clusters).
    pub fn in_datacenter(&self, dc: &str) -> bool {
        self.vms
            .datacenter
            .as_deref()
            .is_none_or(|d| dc.eq_ignore_ascii_case(d))
    }
}

/// The filters a list accepts, for an error message.
fn choices(keys: &[Key], words: &[&str]) -> String {
    if keys.is_empty() && words.is_empty() {
        return "这个列表只接受页码".into();
    }
    let mut all: Vec<String> = keys.iter().map(|k| format!("{}=", k.label())).collect();
    all.extend(words.iter().map(|w| w.to_string()));
    format!("可用: {}、页码", all.join("、"))
}

/// The canonical text of the filters, as [`ListFilter::parse`] reads them back: the
/// service, the words, then `key=value` in a fixed order.
impl fmt::Display for ListFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.vms;
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.service.clone());
        parts.extend(v.power.map(|p| p.label().to_string()));
        parts.extend(
            self.online
                .map(|on| if on { "在线" } else { "离线" }.to_string()),
        );
        if self.low {
            parts.push("不足".into());
        }
        for (key, value) in [
            (Key::Datacenter, &v.datacenter),
            (Key::Cluster, &v.cluster),
            (Key::Host, &v.host),
            (Key::Datastore, &v.datastore),
            (Key::Network, &v.network),
        ] {
            if let Some(value) = value {
                parts.push(format!("{}={value}", key.label()));
            }
        }
        parts.extend(v.tags.iter().map(|t| format!("标签={t}")));
        write!(f, "{}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn filters_and_a_page_round_trip() {
        let (f, page) = ListFilter::parse(
            ListKind::Vms,
            &args(&[
                "off",
                "集群=Cluster-Prod",
                "2",
                "tag=env:prod",
                "ds=ds-prod-01",
            ]),
        )
        .unwrap();
        assert_eq!(page, 2);
        assert_eq!(f.vms.power, Some(PowerState::PoweredOff));
        assert_eq!(
            f.to_string(),
            "关机,集群=Cluster-Prod,存储=ds-prod-01,标签=env:prod"
        );
        let text = f.to_string();
        let again: Vec<String> = text.split(',').map(str::to_string).collect();
        assert_eq!(ListFilter::parse(ListKind::Vms, &again).unwrap(), (f, 1));
    }

    #[test]
    fn each_list_takes_its_own_filters() {
        assert!(ListFilter::parse(ListKind::Hosts, &args(&["离线", "集群=Cluster-DR"])).is_ok());
        let e = ListFilter::parse(ListKind::Hosts, &args(&["标签=env:prod"])).unwrap_err();
        assert!(
            e.contains("不能按「标签=」筛选") && e.contains("集群="),
            "{e}"
        );
        let e = ListFilter::parse(ListKind::Vms, &args(&["离线"])).unwrap_err();
        assert!(e.contains("不是页码或筛选条件"), "{e}");
        let e = ListFilter::parse(ListKind::Vms, &args(&["开机", "关机"])).unwrap_err();
        assert!(e.contains("重复或矛盾"), "{e}");
        let e = ListFilter::parse(ListKind::Templates, &args(&["x=1"])).unwrap_err();
        assert!(e.contains("只接受页码"), "{e}");
        let (f, _) = ListFilter::parse(ListKind::Services, &args(&["erp", "关机"])).unwrap();
        assert_eq!(f.service.as_deref(), Some("erp"));
    }

    #[test]
    fn names_match_as_typed() {
        assert!(host_matches("esxi-dr-02.dc1.local", "ESXI-DR-02"));
        assert!(host_matches("esxi-dr-02.dc1.local", "esxi-dr-02.dc1.local"));
        assert!(!host_matches("esxi-dr-02.dc1.local", "esxi-dr-0"));
        assert!(tag_matches("env:prod", "ENV:prod"));
        assert!(tag_matches("env:prod", "env"));
        assert!(!tag_matches("env:prod", "env:pro"));
        assert!(!tag_matches("environment:prod", "env"));
    }
}

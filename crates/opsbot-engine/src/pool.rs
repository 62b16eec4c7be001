//! The engine's read model of the resource pool: the store's snapshot plus lookup
//! indexes, cached in memory and reloaded only when the store's pool version moves, so
//! read commands cost one tiny query however large the estate is (shared by the reads
//! that arrive together, see `pool/version.rs`).

use opsbot_core::{Host, Inventory, PowerState, Template, Vm};
use opsbot_store::{PoolSnapshot, PoolStore};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::sync::Mutex;

mod text;
mod version;
use text::TextColumn;
use version::VersionChecks;

/// Starts each IP in [`PoolView`]'s IP column, so a prefix search is a substring search.
const IP_START: char = '\u{1}';

#[derive(Debug, Default)]
pub struct PoolView {
    pub version: i64,
    pub inventory: Inventory,
    pub templates: Vec<Template>,
    by_name: HashMap<String, Vec<usize>>,
    by_ip: HashMap<String, Vec<usize>>,
    /// Indexes of the VMs that are not templates, ordered by name.
    sorted_vms: Vec<usize>,
    /// provider → provider's VM id → index, for the API's `/vms/{provider}/{id}`.
    by_id: HashMap<String, HashMap<String, usize>>,
    /// What list filters test, per VM (same index), small and contiguous: a filtered
    /// list reads these 10,000 times a request, not the VMs themselves.
    facets: Vec<VmFacets>,
    /// Lower-cased provider, datacenter, cluster and host names → their facet ids.
    facet_ids: HashMap<String, u32>,
    /// Lower-cased name, hostname and IPs of each VM, for substring search over the
    /// whole pool at once.
    search_column: TextColumn,
    /// Each VM's IPs (guest IP included), each after [`IP_START`].
    ip_column: TextColumn,
    /// Every tag some VM carries, sorted, once each (the web list's tag choice).
    tags: Vec<String>,
    /// The services (VM indexes by service name) under the one `[pool] service_tag` key
    /// asked for, grouped once per pool version: 概况 reads them on every call.
    services: std::sync::OnceLock<(String, Vec<ServiceGroup>)>,
}

/// A service's name and its VMs' indexes in the pool.
pub type ServiceGroup = (String, Vec<usize>);

/// A VM's placement and state as small numbers (ids from [`PoolView::facet_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmFacets {
    pub provider: u32,
    pub datacenter: u32,
    pub cluster: u32,
    pub host: u32,
    pub power: PowerState,
    pub template: bool,
}

/// The result of resolving what the user typed to one VM.
#[derive(Debug)]
pub enum VmLookup<'a> {
    Found(&'a Vm),
    Ambiguous(Vec<&'a Vm>),
    Missing { suggestions: Vec<&'a Vm> },
}

impl PoolView {
    pub fn new(snapshot: PoolSnapshot) -> Self {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_ip: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_id: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for (i, vm) in snapshot.inventory.vms.iter().enumerate() {
            by_id
                .entry(vm.provider.clone())
                .or_default()
                .insert(vm.id.clone(), i);
            by_name.entry(vm.name.to_lowercase()).or_default().push(i);
            for ip in vm.ips.iter().chain(vm.guest_ip.iter()) {
                let e = by_ip.entry(ip.clone()).or_default();
                if !e.contains(&i) {
                    e.push(i);
                }
            }
        }
        let mut facet_ids: HashMap<String, u32> = HashMap::new();
        let mut id = |name: &str| -> u32 {
            let next = facet_ids.len() as u32;
            *facet_ids.entry(name.to_ascii_lowercase()).or_insert(next)
        };
        let facets = snapshot
            .inventory
            .vms
            .iter()
            .map(|vm| VmFacets {
                provider: id(&vm.provider),
                datacenter: id(&vm.datacenter),
                cluster: id(&vm.cluster),
                host: id(&vm.host),
                power: vm.power,
                template: vm.template,
            })
            .collect();
        let search_column = TextColumn::new(snapshot.inventory.vms.iter().map(|vm| {
            format!(
                "{}\u{1}{}\u{1}{}",
                vm.name.to_lowercase(),
                vm.guest_hostname.to_lowercase(),
                vm.ips.join("\u{1}")
            )
        }));
        let ip_column = TextColumn::new(snapshot.inventory.vms.iter().map(|vm| {
            vm.ips
                .iter()
                .chain(vm.guest_ip.iter())
                .map(|ip| format!("{IP_START}{ip}"))
                .collect::<String>()
        }));
        let mut tags: Vec<String> = snapshot
            .inventory
            .vms
            .iter()
            .flat_map(|vm| vm.tags.iter().cloned())
            .collect();
        tags.sort_unstable();
        tags.dedup();
        let vms = &snapshot.inventory.vms;
        let mut sorted_vms: Vec<usize> = (0..vms.len()).filter(|i| !vms[*i].template).collect();
        sorted_vms.sort_by(|a, b| vms[*a].name.cmp(&vms[*b].name));
        PoolView {
            version: snapshot.version,
            inventory: snapshot.inventory,
            templates: snapshot.templates,
            by_name,
            by_ip,
            sorted_vms,
            by_id,
            facets,
            facet_ids,
            search_column,
            ip_column,
            tags,
            services: std::sync::OnceLock::new(),
        }
    }

    /// The services of every VM (not templates) under tag key `key`: names sorted, each
    /// with its VMs' indexes in pool order. Grouped once per pool version for the first
    /// key asked (the configured one); another key is grouped on each call.
    pub fn service_groups(&self, key: &str) -> std::borrow::Cow<'_, [ServiceGroup]> {
        let group = || crate::services::group_indexes(&self.inventory.vms, key);
        let (cached_key, groups) = self.services.get_or_init(|| (key.to_string(), group()));
        if cached_key == key {
            std::borrow::Cow::Borrowed(groups)
        } else {
            std::borrow::Cow::Owned(group())
        }
    }

    /// Every tag some VM carries, sorted, once each.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// For each VM (by index into `inventory.vms`), whether its name, guest hostname or
    /// an IP contains `keyword_lower`, in one pass over the pool.
    pub fn vms_matching(&self, keyword_lower: &str) -> Vec<bool> {
        self.search_column.containing(keyword_lower)
    }

    /// For each VM (by index), whether one of its IPs starts with `prefix`.
    pub fn vms_with_ip_prefix(&self, prefix: &str) -> Vec<bool> {
        self.ip_column.containing(&format!("{IP_START}{prefix}"))
    }

    /// Per-VM facets, indexed like `inventory.vms`.
    pub fn vm_facets(&self) -> &[VmFacets] {
        &self.facets
    }

    /// The facet id of a provider, datacenter, cluster or host name (ASCII case
    /// ignored); `None` when no VM has it.
    pub fn facet_id(&self, name: &str) -> Option<u32> {
        self.facet_ids.get(&name.to_ascii_lowercase()).copied()
    }

    /// VMs that are not templates, in inventory order.
    pub fn vms(&self) -> impl Iterator<Item = &Vm> {
        self.inventory.vms.iter().filter(|v| !v.template)
    }

    /// VMs that are not templates, ordered by name.
    pub fn vms_by_name(&self) -> impl Iterator<Item = &Vm> {
        self.sorted_vms.iter().map(|i| &self.inventory.vms[*i])
    }

    pub fn vm_by_id(&self, provider: &str, id: &str) -> Option<&Vm> {
        self.vm(provider, id)
    }

    /// The VM (or template) with the provider's id `id`, in constant time.
    pub fn vm(&self, provider: &str, id: &str) -> Option<&Vm> {
        let i = *self.by_id.get(provider)?.get(id)?;
        self.inventory.vms.get(i)
    }

    /// Indexes into `inventory.vms` of the VMs that are not templates, by name.
    pub fn vm_indexes_by_name(&self) -> &[usize] {
        &self.sorted_vms
    }

    pub fn template(&self, number: u32) -> Option<(&Template, Option<&Vm>)> {
        let t = self.templates.iter().find(|t| t.number == number)?;
        Some((t, self.vm_by_id(&t.provider, &t.vm_id)))
    }

    /// Any VM (not template) using `ip`.
    pub fn vm_with_ip(&self, ip: &str) -> Option<&Vm> {
        self.by_ip
            .get(ip)
            .into_iter()
            .flatten()
            .map(|i| &self.inventory.vms[*i])
            .find(|v| !v.template)
    }

    /// Resolves a name (optionally `provider/name`), IP or UUID to exactly one VM.
    pub fn resolve_vm(&self, wanted: &str) -> VmLookup<'_> {
        self.resolve_vm_where(wanted, |_| true)
    }

    /// [`PoolView::resolve_vm`] among the VMs `keep` admits: the others are treated as
    /// absent, suggestions included, so the answer is the same as if they did not exist.
    pub fn resolve_vm_where(&self, wanted: &str, keep: impl Fn(&Vm) -> bool) -> VmLookup<'_> {
        let wanted = wanted.trim();
        let (provider, name) = match wanted.split_once('/') {
            Some((p, n))
                if self
                    .inventory
                    .vms
                    .iter()
                    .any(|v| v.provider == p && keep(v)) =>
            {
                (Some(p), n)
            }
            _ => (None, wanted),
        };
        let pick = |idx: &Vec<usize>| -> Vec<&Vm> {
            idx.iter()
                .map(|i| &self.inventory.vms[*i])
                .filter(|v| provider.is_none_or(|p| v.provider == p) && keep(v))
                .collect()
        };
        let candidates = self
            .by_name
            .get(&name.to_lowercase())
            .map(pick)
            .filter(|v| !v.is_empty())
            .or_else(|| self.by_ip.get(name).map(pick).filter(|v| !v.is_empty()))
            .unwrap_or_else(|| {
                self.inventory
                    .vms
                    .iter()
                    .filter(|v| (v.uuid == name || v.instance_uuid == name) && keep(v))
                    .collect()
            });
        match candidates.len() {
            1 => VmLookup::Found(candidates[0]),
            0 => VmLookup::Missing {
                suggestions: self
                    .search_ranked(wanted, &keep)
                    .into_iter()
                    .filter(|(_, v)| !v.template)
                    .take(3)
                    .map(|(_, v)| v)
                    .collect(),
            },
            _ => VmLookup::Ambiguous(candidates),
        }
    }

    /// VMs (templates included) matching `keyword`, closest first (see [`Closeness`]).
    pub fn search(&self, keyword: &str) -> Vec<&Vm> {
        self.search_where(keyword, |_| true)
    }

    /// [`PoolView::search`] among the VMs `keep` admits (the fallback to close names
    /// too, so what is left out cannot change the answer).
    pub fn search_where(&self, keyword: &str, keep: impl Fn(&Vm) -> bool) -> Vec<&Vm> {
        self.search_ranked(keyword, keep)
            .into_iter()
            .map(|(_, vm)| vm)
            .collect()
    }

    /// The one search 查, the numeric menu and VM suggestions share: every VM `keep`
    /// admits whose name, `provider/name`, hostname, IP or UUID matches `keyword`, each
    /// with how closely, best first ([`rank`]); when nothing matches, the names most
    /// alike, marked [`Closeness::Similar`].
    pub fn search_ranked(
        &self,
        keyword: &str,
        keep: impl Fn(&Vm) -> bool,
    ) -> Vec<(Closeness, &Vm)> {
        let k = keyword.trim().to_lowercase();
        let mut hits: Vec<(Closeness, &Vm)> = self
            .vms_matching(&k)
            .into_iter()
            .zip(&self.inventory.vms)
            .filter_map(|(hit, vm)| (hit && keep(vm)).then_some(vm))
            .filter_map(|vm| vm_closeness(&k, vm).map(|c| (c, vm)))
            .collect();
        // What the text column does not hold: `provider/name` and UUIDs, exact only
        // (looked for only when the keyword could be one: a pool-wide scan otherwise).
        if k.contains('/') || looks_like_uuid(&k) {
            let extra: Vec<&Vm> = self
                .inventory
                .vms
                .iter()
                .filter(|vm| k.contains('/') && is_provider_name(&k, vm) || is_uuid(&k, vm))
                .filter(|vm| keep(vm) && !hits.iter().any(|(_, h)| std::ptr::eq(*h, *vm)))
                .collect();
            hits.extend(extra.into_iter().map(|vm| (Closeness::Exact, vm)));
        }
        if hits.is_empty() {
            return self
                .similar(&k, 5, &keep)
                .into_iter()
                .map(|vm| (Closeness::Similar, vm))
                .collect();
        }
        rank(&mut hits, |vm| vm_extra(&k, vm), |vm| &vm.name);
        hits
    }

    /// Reorders VMs that matched `keyword` (by any filter) closest first, as
    /// [`PoolView::search_ranked`] would: what the web UI's search sorts its hits by.
    pub fn rank_by_closeness<'a>(keyword: &str, vms: &mut [&'a Vm]) {
        let k = keyword.trim().to_lowercase();
        let mut ranked: Vec<(Closeness, &'a Vm)> = vms
            .iter()
            .map(|vm| (vm_closeness(&k, vm).unwrap_or(Closeness::Similar), *vm))
            .collect();
        rank(&mut ranked, |vm| vm_extra(&k, vm), |vm| &vm.name);
        for (slot, (_, vm)) in vms.iter_mut().zip(ranked) {
            *slot = vm;
        }
    }

    /// Hosts whose name matches `keyword`, each with how closely, closest first.
    pub fn search_hosts_ranked(&self, keyword: &str) -> Vec<(Closeness, &Host)> {
        let k = keyword.trim().to_lowercase();
        let mut hits: Vec<(Closeness, &Host)> = self
            .inventory
            .hosts
            .iter()
            .filter_map(|h| host_closeness(&k, &h.name.to_lowercase()).map(|c| (c, h)))
            .collect();
        rank(&mut hits, |h| host_extra(&k, h), |h| &h.name);
        hits
    }

    /// The names closest to `wanted` by edit similarity, best first.
    fn similar(&self, wanted: &str, n: usize, keep: &dyn Fn(&Vm) -> bool) -> Vec<&Vm> {
        let wanted = wanted.to_lowercase();
        let mut scored: Vec<(f64, &Vm)> = self
            .inventory
            .vms
            .iter()
            .filter(|v| keep(v))
            .map(|v| (strsim::jaro_winkler(&wanted, &v.name.to_lowercase()), v))
            .filter(|(s, _)| *s >= 0.75)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(n).map(|(_, v)| v).collect()
    }
}

/// How closely a VM or host matches what was typed, best first: the one order every
/// search ranks by (never the alphabet, which put `dr-web-01` before `web-01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Closeness {
    /// The name, `provider/name`, an IP or a UUID is exactly what was typed.
    Exact,
    /// The name starts with it (`web` → `web-01`).
    Prefix,
    /// It starts a word of the name (`web` → `dr-web-01`), or the hostname or an IP
    /// starts with it (`10.10` → 10.10.1.5).
    Word,
    /// The name, hostname or an IP contains it somewhere.
    Substring,
    /// Nothing contains it; the name is merely alike.
    Similar,
}

impl Closeness {
    pub fn is_exact(self) -> bool {
        self == Closeness::Exact
    }
}

/// Orders hits by closeness, then by how much longer than the keyword the text it
/// matched is (`web-01` before `web-01-old`, 10.10.100.11 before 10.10.100.111 for
/// `10.10.100.1`), then by name, so equal hits keep a stable order.
fn rank<T>(hits: &mut [(Closeness, &T)], extra: impl Fn(&T) -> usize, name: impl Fn(&T) -> &str) {
    hits.sort_by_cached_key(|(c, t)| (*c, extra(t), name(t).to_string()));
}

/// How many characters the shortest of a VM's name, hostname and IPs that contains the
/// lower-cased `keyword` has beyond it (the name's difference when none does).
fn vm_extra(keyword: &str, vm: &Vm) -> usize {
    let k = keyword.chars().count();
    let name = vm.name.to_lowercase();
    let hostname = vm.guest_hostname.to_lowercase();
    std::iter::once(name.as_str())
        .chain(std::iter::once(hostname.as_str()))
        .chain(vm.ips.iter().chain(vm.guest_ip.iter()).map(String::as_str))
        .filter(|t| !keyword.is_empty() && t.contains(keyword))
        .map(|t| t.chars().count().saturating_sub(k))
        .min()
        .unwrap_or_else(|| name.chars().count().abs_diff(k))
}

/// [`vm_extra`] for a host's name.
fn host_extra(keyword: &str, host: &Host) -> usize {
    host.name.chars().count().abs_diff(keyword.chars().count())
}

/// How a lower-cased name matches the lower-cased `keyword`, if it does.
pub fn name_closeness(keyword: &str, name_lower: &str) -> Option<Closeness> {
    if keyword.is_empty() {
        return None;
    }
    if name_lower == keyword {
        Some(Closeness::Exact)
    } else if name_lower.starts_with(keyword) {
        Some(Closeness::Prefix)
    } else if name_lower.match_indices(keyword).any(|(at, _)| {
        name_lower[..at]
            .chars()
            .next_back()
            .is_some_and(|c| !c.is_alphanumeric())
    }) {
        Some(Closeness::Word)
    } else if name_lower.contains(keyword) {
        Some(Closeness::Substring)
    } else {
        None
    }
}

/// How a lower-cased host name matches: its short name (`esxi-dr-02` of
/// `esxi-dr-02.dc1.local`) is as exact as the whole.
fn host_closeness(keyword: &str, name_lower: &str) -> Option<Closeness> {
    match name_lower.split_once('.') {
        Some((short, _)) if short == keyword => Some(Closeness::Exact),
        _ => name_closeness(keyword, name_lower),
    }
}

/// How a VM matches the lower-cased `keyword` by name, `provider/name`, hostname, IP
/// or UUID, if it does.
pub fn vm_closeness(keyword: &str, vm: &Vm) -> Option<Closeness> {
    let ips = || vm.ips.iter().chain(vm.guest_ip.iter());
    if is_provider_name(keyword, vm) || is_uuid(keyword, vm) || ips().any(|ip| ip == keyword) {
        return Some(Closeness::Exact);
    }
    let by_name = name_closeness(keyword, &vm.name.to_lowercase());
    let hostname = vm.guest_hostname.to_lowercase();
    let by_other = if !keyword.is_empty()
        && (hostname.starts_with(keyword) || ips().any(|ip| ip.starts_with(keyword)))
    {
        Some(Closeness::Word)
    } else if hostname.contains(keyword) || ips().any(|ip| ip.contains(keyword)) {
        Some(Closeness::Substring)
    } else {
        None
    };
    match (by_name, by_other) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn is_provider_name(keyword: &str, vm: &Vm) -> bool {
    keyword
        .split_once('/')
        .is_some_and(|(p, n)| p.eq_ignore_ascii_case(&vm.provider) && n == vm.name.to_lowercase())
        || (!keyword.contains('/') && vm.name.to_lowercase() == keyword)
}

/// Whether `keyword` could be a UUID: 32 hex digits, with or without dashes.
fn looks_like_uuid(keyword: &str) -> bool {
    keyword.chars().filter(char::is_ascii_hexdigit).count() == 32
        && keyword.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn is_uuid(keyword: &str, vm: &Vm) -> bool {
    !keyword.is_empty()
        && (vm.uuid.eq_ignore_ascii_case(keyword) || vm.instance_uuid.eq_ignore_ascii_case(keyword))
}

/// Shares one [`PoolView`] between requests and refreshes it when the store changes.
pub struct PoolCache {
    store: Arc<dyn PoolStore>,
    current: RwLock<Arc<PoolView>>,
    reload: Mutex<()>,
    versions: VersionChecks,
}

impl PoolCache {
    pub fn new(store: Arc<dyn PoolStore>) -> Self {
        PoolCache {
            store,
            current: RwLock::new(Arc::new(PoolView {
                version: -1,
                ..PoolView::default()
            })),
            reload: Mutex::new(()),
            versions: VersionChecks::default(),
        }
    }

    fn cached(&self) -> Arc<PoolView> {
        self.current.read().expect("pool lock poisoned").clone()
    }

    /// The pool as the store has it now.
    pub async fn get(&self) -> opsbot_store::Result<Arc<PoolView>> {
        let version = self.versions.current(self.store.as_ref()).await?;
        let cached = self.cached();
        if cached.version == version {
            return Ok(cached);
        }
        // One reload at a time; whoever waited finds it done.
        let _guard = self.reload.lock().await;
        let cached = self.cached();
        if cached.version == version {
            return Ok(cached);
        }
        let view = Arc::new(PoolView::new(self.store.load_pool().await?));
        *self.current.write().expect("pool lock poisoned") = view.clone();
        Ok(view)
    }
}

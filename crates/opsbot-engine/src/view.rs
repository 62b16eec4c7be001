//! What one caller may see: the single place that decides visibility, read by chat, the
//! REST API and the web UI alike, which only map what it returns to text, JSON or HTML.
//!
//! The rule: an object is seen through a *lens*, the read commands that show its kind
//! (`主机` for hosts, `虚拟机` for VMs, and `查`, which finds both), held on the object's
//! scope path. What a caller does not see does not exist for them: lists leave it out,
//! counts do not count it, lookups answer as for a name that does not exist, and
//! suggestions never name it. Other users' jobs and audit entries are for
//! administrators only (a role with commands `*` on scope `*`); a `*` role with limited
//! scopes is not one.

use crate::pool::{PoolView, VmLookup};
use opsbot_core::{
    Change, Cluster, Datacenter, Datastore, Host, JobRecord, Network, Policy, PowerState, Template,
    Vm,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The names of the read commands, as roles grant them (from the command table).
pub mod read {
    pub use crate::commands::names::{
        CLUSTERS, DATACENTERS, DATASTORES, FIND, HOSTS, JOBS, NETWORKS, OVERVIEW, SERVICES,
        TEMPLATES, VMS,
    };
}

/// The commands through which objects are seen: any one of them held on an object's
/// path shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lens {
    first: &'static str,
    second: Option<&'static str>,
}

impl Lens {
    pub const VMS: Lens = Lens::pair(read::VMS, read::FIND);
    pub const HOSTS: Lens = Lens::pair(read::HOSTS, read::FIND);
    pub const DATASTORES: Lens = Lens::pair(read::DATASTORES, read::FIND);
    pub const NETWORKS: Lens = Lens::pair(read::NETWORKS, read::FIND);
    pub const CLUSTERS: Lens = Lens::pair(read::CLUSTERS, read::FIND);
    pub const DATACENTERS: Lens = Lens::pair(read::DATACENTERS, read::FIND);
    pub const TEMPLATES: Lens = Lens::pair(read::TEMPLATES, read::FIND);
    /// A service is its VMs: seen through `服务`, or as VMs.
    pub const SERVICES: Lens = Lens::pair(read::SERVICES, read::VMS);
    /// `概况` counts what it covers, and nothing else.
    pub const OVERVIEW: Lens = Lens::of(read::OVERVIEW);
    /// `查` finds what it covers.
    pub const FIND: Lens = Lens::of(read::FIND);

    /// Seen through one command (an operation's own, say).
    pub const fn of(command: &'static str) -> Lens {
        Lens {
            first: command,
            second: None,
        }
    }

    const fn pair(first: &'static str, second: &'static str) -> Lens {
        Lens {
            first,
            second: Some(second),
        }
    }

    /// The command that names this lens in a refusal (`⛔ … 「主机」`).
    pub fn command(self) -> &'static str {
        self.first
    }

    fn commands(self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.first).chain(self.second)
    }
}

/// One caller's permissions, fixed for the length of a request.
#[derive(Clone)]
pub struct Viewer {
    policy: Arc<Policy>,
    user: String,
    chat: Option<String>,
    masks: Arc<VmMasks>,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("user", &self.user)
            .field("chat", &self.chat)
            .finish_non_exhaustive()
    }
}

/// The totals of `概况` and the web overview, over what the caller may see.
#[derive(Debug)]
pub struct Overview<'p> {
    pool: &'p PoolView,
    /// Per pool VM (same index): counted here (seen, in the datacenter, not a template).
    counted: Vec<bool>,
    pub datacenters: Vec<&'p Datacenter>,
    pub clusters: Vec<&'p Cluster>,
    pub hosts: Vec<&'p Host>,
    /// VMs, not templates.
    pub vms: Vec<&'p Vm>,
    pub templates: usize,
    pub datastores: Vec<&'p Datastore>,
    pub networks: Vec<&'p Network>,
}

impl<'p> Overview<'p> {
    pub fn hosts_up(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| h.connection_state == "connected")
            .count()
    }

    fn powered_on(&self) -> impl Iterator<Item = &&Vm> {
        self.vms.iter().filter(|v| v.power == PowerState::PoweredOn)
    }

    pub fn vms_on(&self) -> usize {
        self.powered_on().count()
    }

    /// vCPUs allocated to powered-on VMs.
    pub fn vcpu(&self) -> u64 {
        self.powered_on().map(|v| u64::from(v.cpu)).sum()
    }

    /// Memory (MiB) allocated to powered-on VMs.
    pub fn vmem_mb(&self) -> u64 {
        self.powered_on().map(|v| v.memory_mb).sum()
    }

    pub fn capacity_gb(&self) -> u64 {
        self.datastores.iter().map(|d| d.capacity_gb).sum()
    }

    pub fn free_gb(&self) -> u64 {
        self.datastores.iter().map(|d| d.free_gb).sum()
    }

    /// The services of the VMs counted, by the tag key `key` (`app`): the pool's groups
    /// (made once per pool version) narrowed to what is counted here.
    pub fn services(&self, key: &str) -> Vec<crate::services::Service<'p>> {
        let vms = &self.pool.inventory.vms;
        self.pool
            .service_groups(key)
            .iter()
            .filter_map(|(name, idx)| {
                let seen: Vec<&'p Vm> = idx
                    .iter()
                    .filter(|i| self.counted[**i])
                    .map(|i| &vms[*i])
                    .collect();
                (!seen.is_empty()).then(|| crate::services::Service {
                    name: name.clone(),
                    vms: seen,
                })
            })
            .collect()
    }

    /// The VMs counted that sit on host `host` (a host's VMs for its warning line).
    pub fn vms_on_host(&self, host: &Host) -> usize {
        self.vms
            .iter()
            .filter(|v| v.provider == host.provider && v.host == host.name)
            .count()
    }
}

impl Viewer {
    pub(crate) fn new(
        policy: Arc<Policy>,
        user: &str,
        chat: Option<&str>,
        masks: Arc<VmMasks>,
    ) -> Viewer {
        Viewer {
            policy,
            user: user.to_string(),
            chat: chat.map(str::to_string),
            masks,
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The names of the roles the caller holds (their own and their chat's).
    pub fn roles(&self) -> Vec<String> {
        self.policy.role_set(&self.user, self.chat.as_deref())
    }

    /// May the caller run `command` at all (somewhere)?
    pub fn may(&self, command: &str) -> bool {
        self.policy
            .can_run(&self.user, self.chat.as_deref(), command)
    }

    /// May the caller run `command` on the object at scope path `path`?
    pub fn may_at(&self, command: &str, path: &str) -> bool {
        self.policy
            .allows(&self.user, self.chat.as_deref(), command, path)
    }

    /// May the caller see this CMDB asset through `command` (资产 / 变更)? On the
    /// asset's scope path: the linked VM's, else `cmdb/<identity>`.
    pub fn sees_asset(&self, command: &str, asset: &opsbot_core::Asset) -> bool {
        self.may_at(command, &asset.scope_path())
    }

    /// Does the caller hold `command` on every object?
    pub fn everywhere(&self, command: &str) -> bool {
        self.policy
            .allows_everywhere(&self.user, self.chat.as_deref(), command)
    }

    /// Does the caller hold `lens` on every scope? Then nothing needs filtering, and the
    /// passes over every VM that find what a scoped caller's clusters hold are skipped.
    fn sees_all(&self, lens: Lens) -> bool {
        lens.commands().any(|c| self.everywhere(c))
    }

    /// May the caller list anything through `lens`?
    pub fn may_read(&self, lens: Lens) -> bool {
        lens.commands().any(|c| self.may(c))
    }

    /// Every command everywhere: reads everyone's jobs and audit entries.
    pub fn is_admin(&self) -> bool {
        self.policy.is_admin(&self.user, self.chat.as_deref())
    }

    /// A test of scope paths through `lens`, decided once for callers who hold it
    /// everywhere (no glob matching per object for them).
    pub fn sight(&self, lens: Lens) -> impl Fn(&str) -> bool + '_ {
        let everywhere = lens.commands().any(|c| self.everywhere(c));
        move |path: &str| everywhere || lens.commands().any(|c| self.may_at(c, path))
    }

    /// Does the caller see this VM (or template) as a VM?
    pub fn sees_vm(&self, vm: &Vm) -> bool {
        self.sight(Lens::VMS)(&vm.scope_path())
    }

    /// A VM test through `lens`, decided once for callers who hold it everywhere.
    pub fn vm_sight(&self, lens: Lens) -> impl Fn(&Vm) -> bool + '_ {
        let see = self.sight(lens);
        move |vm: &Vm| see(&vm.scope_path())
    }

    /// A VM test for one operation: the VMs the caller sees, and those `command` may
    /// act on (a role may grant an operation without the list).
    pub fn vm_test<'a>(&'a self, command: &'a str) -> impl Fn(&Vm) -> bool + 'a {
        let list = self.sight(Lens::VMS);
        let act = self.everywhere(command);
        move |vm: &Vm| {
            act || {
                let path = vm.scope_path();
                list(&path) || self.may_at(command, &path)
            }
        }
    }

    /// For each VM of the pool (by index into `inventory.vms`), whether the caller sees
    /// it through `lens`; `None` when they see every one. Computed once per pool
    /// version, policy and set of roles, and shared by callers with the same roles.
    pub fn vm_mask(&self, pool: &PoolView, lens: Lens) -> Option<Arc<Vec<bool>>> {
        if lens.commands().any(|c| self.everywhere(c)) {
            return None;
        }
        let roles = self.policy.role_set(&self.user, self.chat.as_deref());
        Some(self.masks.get(&self.policy, roles, lens, pool, || {
            let see = self.sight(lens);
            pool.inventory
                .vms
                .iter()
                .map(|v| see(&v.scope_path()))
                .collect()
        }))
    }

    /// The VMs (not templates) the caller sees through `lens`, by name.
    pub fn vms<'p>(&self, pool: &'p PoolView, lens: Lens) -> Vec<&'p Vm> {
        let mask = self.vm_mask(pool, lens);
        let vms = &pool.inventory.vms;
        pool.vm_indexes_by_name()
            .iter()
            .filter(|i| mask.as_ref().is_none_or(|m| m[**i]))
            .map(|i| &vms[*i])
            .collect()
    }

    /// The VM (or template) at `(provider, id)`, if the caller sees it.
    pub fn vm<'p>(&self, pool: &'p PoolView, provider: &str, id: &str) -> Option<&'p Vm> {
        pool.vm(provider, id).filter(|v| self.sees_vm(v))
    }

    /// The VM at `(provider, id)` for operation `command`, if the caller sees it.
    pub fn vm_for<'p>(
        &self,
        pool: &'p PoolView,
        command: &str,
        provider: &str,
        id: &str,
    ) -> Option<&'p Vm> {
        pool.vm(provider, id).filter(|v| self.vm_test(command)(v))
    }

    /// What the caller typed, resolved among the VMs they see or may act on with
    /// `command`; the others are absent, suggestions included.
    pub fn resolve_vm<'p>(&self, pool: &'p PoolView, wanted: &str, command: &str) -> VmLookup<'p> {
        pool.resolve_vm_where(wanted, self.vm_test(command))
    }

    /// VMs and templates matching `keyword` that the caller may find (`查`'s scope),
    /// closest first.
    pub fn search<'p>(&self, pool: &'p PoolView, keyword: &str) -> Vec<&'p Vm> {
        let see = self.sight(Lens::FIND);
        pool.search_where(keyword, |v| see(&v.scope_path()))
    }

    /// [`Viewer::search`] with how closely each VM matched.
    pub fn search_ranked<'p>(
        &self,
        pool: &'p PoolView,
        keyword: &str,
    ) -> Vec<(crate::pool::Closeness, &'p Vm)> {
        let see = self.sight(Lens::FIND);
        pool.search_ranked(keyword, |v| see(&v.scope_path()))
    }

    pub fn hosts<'p>(&self, pool: &'p PoolView, lens: Lens) -> Vec<&'p Host> {
        let see = self.sight(lens);
        pool.inventory
            .hosts
            .iter()
            .filter(|h| see(&h.scope_path()))
            .collect()
    }

    pub fn datastores<'p>(&self, pool: &'p PoolView, lens: Lens) -> Vec<&'p Datastore> {
        let see = self.sight(lens);
        pool.inventory
            .datastores
            .iter()
            .filter(|d| see(&d.scope_path()))
            .collect()
    }

    pub fn networks<'p>(&self, pool: &'p PoolView, lens: Lens) -> Vec<&'p Network> {
        let see = self.sight(lens);
        pool.inventory
            .networks
            .iter()
            .filter(|n| see(&n.scope_path()))
            .collect()
    }

    /// Clusters whose own path is in scope, or that hold a host or VM that is: a
    /// scope such as `vc1/DC0/Cluster-A/**` shows its cluster.
    pub fn clusters<'p>(&self, pool: &'p PoolView, lens: Lens) -> Vec<&'p Cluster> {
        if self.sees_all(lens) {
            return pool.inventory.clusters.iter().collect();
        }
        let see = self.sight(lens);
        // One pass over what clusters hold, not one per cluster.
        let mut holding: HashSet<(&str, &str, &str)> = HashSet::new();
        for h in self.hosts(pool, lens) {
            holding.insert((&h.provider, &h.datacenter, &h.cluster));
        }
        for v in self.all_vms(pool, lens) {
            holding.insert((&v.provider, &v.datacenter, &v.cluster));
        }
        pool.inventory
            .clusters
            .iter()
            .filter(|c| {
                holding.contains(&(c.provider.as_str(), c.datacenter.as_str(), c.name.as_str()))
                    || see(&c.scope_path())
            })
            .collect()
    }

    /// Datacenters whose own path is in scope, or that hold anything that is.
    pub fn datacenters<'p>(&self, pool: &'p PoolView, lens: Lens) -> Vec<&'p Datacenter> {
        if self.sees_all(lens) {
            return pool.inventory.datacenters.iter().collect();
        }
        let see = self.sight(lens);
        let mut holding: HashSet<(&str, &str)> = HashSet::new();
        for c in self.clusters(pool, lens) {
            holding.insert((&c.provider, &c.datacenter));
        }
        for d in self.datastores(pool, lens) {
            holding.insert((&d.provider, &d.datacenter));
        }
        for n in self.networks(pool, lens) {
            holding.insert((&n.provider, &n.datacenter));
        }
        // Hosts and VMs sit in clusters, counted above; a VM without one still counts.
        for v in self.all_vms(pool, lens) {
            holding.insert((&v.provider, &v.datacenter));
        }
        pool.inventory
            .datacenters
            .iter()
            .filter(|d| {
                holding.contains(&(d.provider.as_str(), d.name.as_str())) || see(&d.scope_path())
            })
            .collect()
    }

    /// VMs and templates seen through `lens`, in inventory order (the cached mask).
    fn all_vms<'p>(&self, pool: &'p PoolView, lens: Lens) -> impl Iterator<Item = &'p Vm> {
        let mask = self.vm_mask(pool, lens);
        pool.inventory
            .vms
            .iter()
            .enumerate()
            .filter(move |(i, _)| mask.as_ref().is_none_or(|m| m[*i]))
            .map(|(_, v)| v)
    }

    /// The numbered templates whose VM the caller sees through `lens` (a template whose
    /// VM left the pool is shown to whoever may list templates).
    pub fn templates<'p>(&self, pool: &'p PoolView, lens: Lens) -> Vec<&'p Template> {
        let see = self.sight(lens);
        pool.templates
            .iter()
            .filter(|t| {
                pool.vm(&t.provider, &t.vm_id)
                    .is_none_or(|v| see(&v.scope_path()))
            })
            .collect()
    }

    /// `概况` and the web overview: what the caller's `概况` covers, in one datacenter
    /// or all.
    pub fn overview<'p>(&self, pool: &'p PoolView, datacenter: Option<&str>) -> Overview<'p> {
        let lens = Lens::OVERVIEW;
        let in_dc = |dc: &str| datacenter.is_none_or(|d| d.eq_ignore_ascii_case(dc));
        // Scope paths are built only for a caller who does not see everything.
        let all = self.sees_all(lens);
        let sight = self.sight(lens);
        let see = |path: &dyn Fn() -> String| all || sight(&path());
        let mask = self.vm_mask(pool, lens);
        let shown = |i: usize| mask.as_ref().is_none_or(|m| m[i]);
        let vms = &pool.inventory.vms;
        let counted: Vec<bool> = (0..vms.len())
            .map(|i| !vms[i].template && in_dc(&vms[i].datacenter) && shown(i))
            .collect();
        Overview {
            pool,
            datacenters: self
                .datacenters(pool, lens)
                .into_iter()
                .filter(|d| in_dc(&d.name))
                .collect(),
            clusters: self
                .clusters(pool, lens)
                .into_iter()
                .filter(|c| in_dc(&c.datacenter))
                .collect(),
            hosts: pool
                .inventory
                .hosts
                .iter()
                .filter(|h| in_dc(&h.datacenter) && see(&|| h.scope_path()))
                .collect(),
            vms: (0..vms.len())
                .filter(|i| counted[*i])
                .map(|i| &vms[i])
                .collect(),
            templates: (0..vms.len())
                .filter(|i| vms[*i].template && in_dc(&vms[*i].datacenter) && shown(*i))
                .count(),
            datastores: pool
                .inventory
                .datastores
                .iter()
                .filter(|d| in_dc(&d.datacenter) && see(&|| d.scope_path()))
                .collect(),
            networks: pool
                .inventory
                .networks
                .iter()
                .filter(|n| in_dc(&n.datacenter) && see(&|| n.scope_path()))
                .collect(),
            counted,
        }
    }

    /// A change to a pool object the caller sees through `lens` (one that left the
    /// pool has no scope any more: administrators only).
    pub fn sees_change(&self, pool: &PoolView, change: &Change, lens: Lens) -> bool {
        if lens.commands().any(|c| self.everywhere(c)) {
            return true;
        }
        change_path(pool, change).is_some_and(|path| self.sight(lens)(&path))
    }

    /// A job the caller may read: their own, or any for an administrator.
    pub fn sees_job(&self, job: &JobRecord) -> bool {
        job.user == self.user || self.is_admin()
    }

    /// Whose jobs or audit entries a read covers: `wanted`, or the caller themselves;
    /// everyone's (`None`) only for an administrator. `Err` when the caller asks for
    /// another user's and is not one.
    pub fn whose(&self, wanted: Option<String>) -> Result<Option<String>, NotAdmin> {
        match wanted {
            Some(u) if u != self.user && !self.is_admin() => Err(NotAdmin),
            Some(u) => Ok(Some(u)),
            None if self.is_admin() => Ok(None),
            None => Ok(Some(self.user.clone())),
        }
    }
}

/// Another user's records were asked for by someone who is not an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAdmin;

/// The scope path of the object a change is about, if it is still in the pool.
fn change_path(pool: &PoolView, c: &Change) -> Option<String> {
    let inv = &pool.inventory;
    let p = &c.provider;
    match c.object_kind.as_str() {
        "vm" => pool.vm(p, &c.object_id).map(|v| v.scope_path()),
        "host" => inv
            .hosts
            .iter()
            .find(|h| &h.provider == p && h.id == c.object_id)
            .map(Host::scope_path),
        "datastore" => inv
            .datastores
            .iter()
            .find(|d| &d.provider == p && d.id == c.object_id)
            .map(Datastore::scope_path),
        "network" => inv
            .networks
            .iter()
            .find(|n| &n.provider == p && n.id == c.object_id)
            .map(Network::scope_path),
        "cluster" => inv
            .clusters
            .iter()
            .find(|x| &x.provider == p && x.id == c.object_id)
            .map(Cluster::scope_path),
        "datacenter" => inv
            .datacenters
            .iter()
            .find(|d| &d.provider == p && d.id == c.object_id)
            .map(Datacenter::scope_path),
        _ => None,
    }
}

/// Computed VM masks, per set of roles and lens.
#[derive(Default)]
pub(crate) struct VmMasks {
    by_roles: Mutex<HashMap<(Vec<String>, Lens), Mask>>,
}

struct Mask {
    version: i64,
    /// Held, so its address cannot be reused by a later policy while this is cached.
    policy: Arc<Policy>,
    seen: Arc<Vec<bool>>,
}

/// More distinct (roles, lens) pairs than this at once and the cache starts over.
const MASKS: usize = 10_000;

impl VmMasks {
    fn get(
        &self,
        policy: &Arc<Policy>,
        roles: Vec<String>,
        lens: Lens,
        pool: &PoolView,
        compute: impl FnOnce() -> Vec<bool>,
    ) -> Arc<Vec<bool>> {
        let key = (roles, lens);
        let fresh = |m: &Mask| m.version == pool.version && Arc::ptr_eq(&m.policy, policy);
        // Held while computing: a burst of first requests computes it once, not once
        // per request (a few milliseconds for 10,000 VMs).
        let mut map = self.by_roles.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = map.get(&key).filter(|m| fresh(m)) {
            return m.seen.clone();
        }
        let seen = Arc::new(compute());
        if map.len() >= MASKS {
            map.clear();
        }
        map.insert(
            key,
            Mask {
                version: pool.version,
                policy: policy.clone(),
                seen: seen.clone(),
            },
        );
        seen
    }
}

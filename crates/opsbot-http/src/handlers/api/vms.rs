//! `/api/v1/vms`: the VM list (filters, sort, pages) served from the in-memory pool
//! view, one VM, the chat's VM operations as jobs, and clones.

use super::dto::{Accepted, Planned, VmDto};
use super::{ApiJson, ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opsbot_core::Policy;
use opsbot_core::{PowerState, Vm};
use opsbot_engine::pool::PoolView;
use opsbot_engine::{Acted, CloneSpec, Mode, Request, VmAction};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Listing VMs needs `虚拟机` or `查` (each in its scopes).
const LIST: &str = "虚拟机";

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Substring of the name, guest hostname or an IP (case-insensitive).
    #[param(example = "web")]
    pub q: Option<String>,
    /// Substring of the name.
    #[param(example = "web")]
    pub name: Option<String>,
    /// An IP, or its beginning (`10.10.`).
    #[param(example = "10.10.")]
    pub ip: Option<String>,
    /// on, off, suspended (or poweredOn, poweredOff).
    #[param(example = "on")]
    pub power: Option<String>,
    #[param(example = "sim")]
    pub provider: Option<String>,
    #[param(example = "DC0")]
    pub datacenter: Option<String>,
    #[param(example = "Cluster-Prod")]
    pub cluster: Option<String>,
    #[param(example = "esxi-prod-01.dc0.local")]
    pub host: Option<String>,
    /// A tag the VM carries, exactly (`env:prod`); repeat with commas for all of several.
    #[param(example = "env:prod")]
    pub tag: Option<String>,
    /// true: templates instead of VMs.
    #[param(example = false)]
    pub template: Option<bool>,
    /// name, cpu, memory, power, ip, host, cluster, datacenter; `-` first for descending.
    #[param(example = "-cpu")]
    pub sort: Option<String>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// The filters of a VM list, checked; shared by the API and the web UI.
#[derive(Debug, Clone, Default)]
pub struct VmFilter {
    pub q: Option<String>,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub power: Option<PowerState>,
    pub provider: Option<String>,
    pub datacenter: Option<String>,
    pub cluster: Option<String>,
    pub host: Option<String>,
    /// Every one of these tags.
    pub tags: Vec<String>,
    pub template: bool,
    pub sort: Sort,
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Name,
    Cpu,
    Memory,
    Power,
    Ip,
    Host,
    Cluster,
    Datacenter,
}

pub fn parse_power(s: &str) -> Result<PowerState, ApiError> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "poweredon" => Ok(PowerState::PoweredOn),
        "off" | "poweredoff" => Ok(PowerState::PoweredOff),
        "suspended" => Ok(PowerState::Suspended),
        _ => Err(ApiError::bad_request(format!(
            "power {s:?} is not one of on, off, suspended"
        ))),
    }
}

impl VmFilter {
    pub fn from_query(mut q: Query) -> Result<(VmFilter, Paging), ApiError> {
        // An empty field (a web form's "全部") is no filter.
        for f in [
            &mut q.q,
            &mut q.name,
            &mut q.ip,
            &mut q.power,
            &mut q.provider,
            &mut q.datacenter,
            &mut q.cluster,
            &mut q.host,
            &mut q.tag,
            &mut q.sort,
        ] {
            if f.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *f = None;
            }
        }
        let paging = Paging::from_parts(q.page, q.per_page)?;
        let (descending, key) = match q.sort.as_deref() {
            None => (false, "name"),
            Some(s) => match s.strip_prefix('-') {
                Some(k) => (true, k),
                None => (false, s),
            },
        };
        let sort = match key {
            "name" => Sort::Name,
            "cpu" => Sort::Cpu,
            "memory" => Sort::Memory,
            "power" => Sort::Power,
            "ip" => Sort::Ip,
            "host" => Sort::Host,
            "cluster" => Sort::Cluster,
            "datacenter" => Sort::Datacenter,
            other => {
                return Err(ApiError::bad_request(format!(
                    "sort {other:?} is not one of name, cpu, memory, power, ip, host, cluster, datacenter"
                )))
            }
        };
        for (k, v) in [
            ("q", &q.q),
            ("name", &q.name),
            ("ip", &q.ip),
            ("tag", &q.tag),
        ] {
            if v.as_ref().is_some_and(|v| v.chars().count() > 200) {
                return Err(ApiError::bad_request(format!(
                    "{k} is longer than 200 characters"
                )));
            }
        }
        let lower =
            |o: Option<String>| o.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
        Ok((
            VmFilter {
                q: lower(q.q),
                name: lower(q.name),
                ip: q.ip.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
                power: q.power.as_deref().map(parse_power).transpose()?,
                provider: q.provider,
                datacenter: q.datacenter,
                cluster: q.cluster,
                host: q.host,
                tags: q
                    .tag
                    .iter()
                    .flat_map(|t| t.split(','))
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect(),
                template: q.template.unwrap_or(false),
                sort,
                descending,
            },
            paging,
        ))
    }

    /// The VMs the caller may see that pass the filters, sorted.
    pub fn apply<'a>(&self, auth: &Authenticated, pool: &'a PoolView) -> Vec<&'a Vm> {
        // Decided once: a user who holds the list everywhere needs no per-VM path (an
        // allocation and a glob match each, 10,000 times a request otherwise); for a
        // scoped user the answer is computed once per pool version and policy.
        let everywhere = auth.everywhere(LIST) || auth.everywhere("查");
        let scoped = (!everywhere).then(|| auth.context().visible_vms.get(auth, pool));
        let vms = &pool.inventory.vms;
        let facets = pool.vm_facets();
        // Placement filters become facet ids once; a name no VM has matches nothing.
        let id = |f: &Option<String>| f.as_deref().map(|v| pool.facet_id(v));
        let placement = [
            id(&self.provider),
            id(&self.datacenter),
            id(&self.cluster),
            id(&self.host),
        ];
        if placement.contains(&Some(None)) {
            return Vec::new();
        }
        let [provider, datacenter, cluster, host] = placement.map(Option::flatten);
        let is = |want: Option<u32>, have: u32| want.is_none_or(|w| w == have);
        // The text filters as one scan over the whole pool each.
        let by_text = self.q.as_deref().map(|k| pool.vms_matching(k));
        let by_ip = self.ip.as_deref().map(|ip| pool.vms_with_ip_prefix(ip));
        let keep = |i: usize| -> bool {
            let f = &facets[i];
            // Numbers first; the VM itself is read only for the text filters.
            f.template == self.template
                && self.power.is_none_or(|p| f.power == p)
                && is(provider, f.provider)
                && is(datacenter, f.datacenter)
                && is(cluster, f.cluster)
                && is(host, f.host)
                && scoped.as_ref().is_none_or(|seen| seen[i])
                && by_text.as_ref().is_none_or(|hit| hit[i])
                && by_ip.as_ref().is_none_or(|hit| hit[i])
                && self
                    .name
                    .as_deref()
                    .is_none_or(|n| vms[i].name.to_lowercase().contains(n))
                && self.tags.iter().all(|t| vms[i].tags.contains(t))
        };
        // Non-templates come pre-sorted by name, so the common case sorts nothing.
        let mut hits: Vec<&Vm> = if self.template {
            (0..vms.len())
                .filter(|i| keep(*i))
                .map(|i| &vms[i])
                .collect()
        } else {
            pool.vm_indexes_by_name()
                .iter()
                .copied()
                .filter(|i| keep(*i))
                .map(|i| &vms[i])
                .collect()
        };
        let ip = |v: &Vm| -> Option<Ipv4Addr> {
            v.guest_ip
                .as_deref()
                .or(v.ips.first().map(String::as_str))
                .and_then(|s| s.parse().ok())
        };
        match self.sort {
            Sort::Name if self.template => hits.sort_by(|a, b| a.name.cmp(&b.name)),
            Sort::Name => {}
            Sort::Cpu => hits.sort_by_key(|v| v.cpu),
            Sort::Memory => hits.sort_by_key(|v| v.memory_mb),
            Sort::Power => hits.sort_by_key(|v| v.power.as_str()),
            Sort::Ip => hits.sort_by_key(|v| ip(v)),
            Sort::Host => hits.sort_by(|a, b| a.host.cmp(&b.host)),
            Sort::Cluster => hits.sort_by(|a, b| a.cluster.cmp(&b.cluster)),
            Sort::Datacenter => hits.sort_by(|a, b| a.datacenter.cmp(&b.datacenter)),
        }
        if self.descending {
            hits.reverse();
        }
        hits
    }
}

/// Which VMs (by index into the pool's list) scoped users may list, for the pool
/// version and policy it was computed under. What a user sees follows from the roles
/// bound to them alone, so users with the same roles share one answer.
#[derive(Default)]
pub struct VisibleVms {
    by_roles: std::sync::Mutex<HashMap<Vec<String>, Visible>>,
}

struct Visible {
    version: i64,
    /// Held, so its address cannot be reused by a later policy while this is cached.
    policy: Arc<Policy>,
    seen: Arc<Vec<bool>>,
}

/// More distinct role sets than this at once and the cache starts over.
const VISIBLE_ROLE_SETS: usize = 10_000;

impl VisibleVms {
    pub fn get(&self, auth: &Authenticated, pool: &PoolView) -> Arc<Vec<bool>> {
        let policy = auth.context().engine.policy();
        let roles = policy
            .user_bindings()
            .get(&auth.user)
            .cloned()
            .unwrap_or_default();
        let fresh = |v: &Visible| v.version == pool.version && Arc::ptr_eq(&v.policy, &policy);
        // Held while computing: a burst of first requests computes it once, not once
        // per request (a few milliseconds for 10,000 VMs).
        let mut map = self.lock();
        if let Some(v) = map.get(&roles).filter(|v| fresh(v)) {
            return v.seen.clone();
        }
        let see = super::visible(auth, LIST);
        let seen: Arc<Vec<bool>> = Arc::new(
            pool.inventory
                .vms
                .iter()
                .map(|v| see(&v.scope_path()))
                .collect(),
        );
        if map.len() >= VISIBLE_ROLE_SETS {
            map.clear();
        }
        map.insert(
            roles,
            Visible {
                version: pool.version,
                policy,
                seen: seen.clone(),
            },
        );
        seen
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<String>, Visible>> {
        self.by_roles.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn require_list(auth: &Authenticated) -> ApiResult<()> {
    if auth.may(LIST) || auth.may("查") {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "⛔ 您({})没有权限执行「{LIST}」",
            auth.user
        )))
    }
}

/// List VMs: filter, sort, paginate.
#[utoipa::path(get, path = "/api/v1/vms", operation_id = "list_vms", tag = "vms", params(Query),
    responses((status = 200, body = Page<VmDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    require_list(&auth)?;
    let (filter, paging) = VmFilter::from_query(q)?;
    let pool = auth.context().engine.pool().await?;
    let hits = filter.apply(&auth, &pool);
    Ok(json(&Page::of(hits, paging, VmDto::from)))
}

/// The VM at `(provider, id)` if the caller may see it.
pub fn find<'a>(
    auth: &Authenticated,
    pool: &'a PoolView,
    provider: &str,
    id: &str,
) -> ApiResult<&'a Vm> {
    pool.vm(provider, id)
        .filter(|v| auth.may_at(LIST, &v.scope_path()) || auth.may_at("查", &v.scope_path()))
        .ok_or_else(|| ApiError::not_found(format!("no VM {provider}/{id} that you may see")))
}

/// One VM with NICs and disks.
#[utoipa::path(get, path = "/api/v1/vms/{provider}/{id}", operation_id = "get_vm", tag = "vms",
    params(("provider" = String, Path, example = "sim"), ("id" = String, Path, description = "the provider's id", example = "vm-5")),
    responses((status = 200, body = VmDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    auth: Authenticated,
    Path((provider, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    require_list(&auth)?;
    let pool = auth.context().engine.pool().await?;
    Ok(json(&VmDto::from(find(&auth, &pool, &provider, &id)?)))
}

/// An operation on a VM: the chat's VM commands.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionBody {
    /// 开机
    PowerOn {},
    /// 关机 (hard power off)
    PowerOff {},
    /// 关闭系统 (guest shutdown through VMware Tools)
    Shutdown {},
    /// 重启
    Reboot {},
    /// ping (guest IP reachability and tools heartbeat)
    Ping {},
    /// CPU
    SetCpu { count: u32 },
    /// 内存
    SetMemory { gb: u32 },
    /// 加盘
    AddDisk {
        gb: u32,
        #[serde(default)]
        datastore: Option<String>,
    },
    /// 换网 (port group name or VLAN id)
    SetNetwork { network: String },
    /// 改名
    Rename { new_name: String },
}

impl From<ActionBody> for VmAction {
    fn from(b: ActionBody) -> Self {
        match b {
            ActionBody::PowerOn {} => VmAction::PowerOn,
            ActionBody::PowerOff {} => VmAction::PowerOff,
            ActionBody::Shutdown {} => VmAction::Shutdown,
            ActionBody::Reboot {} => VmAction::Reboot,
            ActionBody::Ping {} => VmAction::Ping,
            ActionBody::SetCpu { count } => VmAction::SetCpu { count },
            ActionBody::SetMemory { gb } => VmAction::SetMemory { gb },
            ActionBody::AddDisk { gb, datastore } => VmAction::AddDisk { gb, datastore },
            ActionBody::SetNetwork { network } => VmAction::SetNetwork { network },
            ActionBody::Rename { new_name } => VmAction::Rename { new_name },
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActQuery {
    /// Only validate and describe what would happen.
    #[param(example = true)]
    pub dry_run: Option<bool>,
}

/// The 202 answer for a started job, or 200 with the plan of a dry run.
pub(crate) fn accepted(acted: Acted) -> Response {
    match acted {
        Acted::Started {
            command,
            job,
            message,
        } => (
            StatusCode::ACCEPTED,
            json(&Accepted {
                job: job.0,
                command,
                message,
                status_url: format!("/api/v1/jobs/{}", job.0),
            }),
        )
            .into_response(),
        Acted::Planned {
            command,
            summary,
            destructive,
        } => json(&Planned {
            command,
            summary,
            destructive,
        }),
    }
}

/// Run an operation on a VM (a job; poll `status_url`). The call is the confirmation.
#[utoipa::path(post, path = "/api/v1/vms/{provider}/{id}/actions", operation_id = "act_on_vm", tag = "vms",
    params(("provider" = String, Path, example = "sim"), ("id" = String, Path, example = "vm-5"), ActQuery),
    request_body = ActionBody,
    responses((status = 202, body = Accepted), (status = 200, body = Planned, description = "dry run"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not possible now, e.g. already off"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn act(
    auth: Authenticated,
    Path((provider, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ActQuery>,
    ApiJson(body): ApiJson<ActionBody>,
) -> ApiResult<Response> {
    // A VM the caller may not see is "not found", as for reads.
    let pool = auth.context().engine.pool().await?;
    let action = VmAction::from(body);
    if pool
        .vm(&provider, &id)
        .is_some_and(|v| !auth.may_at(action.command(), &v.scope_path()))
        && find(&auth, &pool, &provider, &id).is_err()
    {
        return Err(ApiError::not_found(format!(
            "no VM {provider}/{id} that you may see"
        )));
    }
    let mode = if q.dry_run.unwrap_or(false) {
        Mode::Plan
    } else {
        Mode::Run
    };
    let acted = auth
        .context()
        .engine
        .act(
            &auth.caller(),
            Request::Vm {
                provider,
                id,
                action,
            },
            mode,
        )
        .await?;
    Ok(accepted(acted))
}

/// A clone from a numbered template (`克隆`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneBody {
    /// The template's number (`GET /templates`).
    pub template: u32,
    pub name: String,
    #[schema(value_type = String, example = "192.168.2.182")]
    pub ip: Ipv4Addr,
    #[serde(default)]
    pub cpu: Option<u32>,
    #[serde(default)]
    pub memory_gb: Option<u32>,
}

/// Clone a VM from a template (a job).
#[utoipa::path(post, path = "/api/v1/vms", operation_id = "clone_vm", tag = "vms", params(ActQuery),
    request_body = CloneBody,
    responses((status = 202, body = Accepted), (status = 200, body = Planned, description = "dry run"),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn clone(
    auth: Authenticated,
    ApiQuery(q): ApiQuery<ActQuery>,
    ApiJson(body): ApiJson<CloneBody>,
) -> ApiResult<Response> {
    let mode = if q.dry_run.unwrap_or(false) {
        Mode::Plan
    } else {
        Mode::Run
    };
    let spec = CloneSpec {
        template: body.template,
        name: body.name,
        ip: body.ip,
        cpu: body.cpu,
        memory_gb: body.memory_gb,
    };
    let acted = auth
        .context()
        .engine
        .act(&auth.caller(), Request::Clone(spec), mode)
        .await?;
    Ok(accepted(acted))
}

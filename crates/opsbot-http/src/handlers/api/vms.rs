//! `/api/v1/vms`: the VM list (filters, sort, pages) served from the in-memory pool
//! view, one VM, the chat's VM operations as jobs, and clones.

use super::dto::{Accepted, Planned, VmDto};
use super::ApiPath;
use super::{ApiJson, ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opsbot_core::{PowerState, Vm};
use opsbot_engine::pool::PoolView;
use opsbot_engine::{Acted, CloneSpec, Lens, Mode, Request, Viewer, VmAction};
use serde::Deserialize;
use std::net::Ipv4Addr;
use utoipa::{IntoParams, ToSchema};

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
    /// The host's full or short name (`esxi-dr-02`).
    #[param(example = "esxi-prod-01.dc0.local")]
    pub host: Option<String>,
    /// A datastore one of the VM's disks is on.
    #[param(example = "ds-prod-01")]
    pub datastore: Option<String>,
    /// A network (port group) one of the VM's NICs is on.
    #[param(example = "VLAN100-业务网")]
    pub network: Option<String>,
    /// A tag the VM carries (`env:prod`, or `env` for any value; ASCII case ignored);
    /// commas for all of several.
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

/// The filters of a VM list, checked, with the order; shared by the API and the web UI.
/// The matching is the engine's ([`opsbot_engine::filter::VmFilter`]), the one chat's
/// `虚拟机:关机,集群=…` uses.
#[derive(Debug, Clone, Default)]
pub struct VmFilter {
    pub matching: opsbot_engine::filter::VmFilter,
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
            &mut q.datastore,
            &mut q.network,
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
        let trim = |o: Option<String>| o.map(|s| s.trim().to_string());
        Ok((
            VmFilter {
                matching: opsbot_engine::filter::VmFilter {
                    q: lower(q.q),
                    name: lower(q.name),
                    ip: trim(q.ip).filter(|s| !s.is_empty()),
                    power: q.power.as_deref().map(parse_power).transpose()?,
                    provider: trim(q.provider),
                    datacenter: trim(q.datacenter),
                    cluster: trim(q.cluster),
                    host: trim(q.host),
                    datastore: trim(q.datastore),
                    network: trim(q.network),
                    tags: q
                        .tag
                        .iter()
                        .flat_map(|t| t.split(','))
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect(),
                    template: q.template.unwrap_or(false),
                },
                sort,
                descending,
            },
            paging,
        ))
    }

    /// The VMs the caller may see (the engine's decision) that pass the filters, sorted.
    pub fn apply<'a>(&self, viewer: &Viewer, pool: &'a PoolView) -> Vec<&'a Vm> {
        // By name from the engine; any other order is the API's.
        let mut hits = self.matching.apply(viewer, pool, Lens::VMS);
        let ip = |v: &Vm| -> Option<Ipv4Addr> {
            v.guest_ip
                .as_deref()
                .or(v.ips.first().map(String::as_str))
                .and_then(|s| s.parse().ok())
        };
        match self.sort {
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

/// List VMs: filter, sort, paginate.
#[utoipa::path(get, path = "/api/v1/vms", operation_id = "list_vms", tag = "vms", params(Query),
    responses((status = 200, body = Page<VmDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    super::objects::require(&auth, Lens::VMS)?;
    let (filter, paging) = VmFilter::from_query(q)?;
    let pool = auth.context().engine.pool().await?;
    let hits = filter.apply(&auth.viewer(), &pool);
    Ok(json(&Page::of(hits, paging, VmDto::from)))
}

/// The VM at `(provider, id)` if the caller may see it.
pub fn find<'a>(
    auth: &Authenticated,
    pool: &'a PoolView,
    provider: &str,
    id: &str,
) -> ApiResult<&'a Vm> {
    auth.viewer()
        .vm(pool, provider, id)
        .ok_or_else(|| ApiError::not_found(format!("no VM {provider}/{id} that you may see")))
}

/// One VM with NICs and disks.
#[utoipa::path(get, path = "/api/v1/vms/{provider}/{id}", operation_id = "get_vm", tag = "vms",
    params(("provider" = String, Path, example = "sim"), ("id" = String, Path, description = "the provider's id", example = "vm-5")),
    responses((status = 200, body = VmDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    auth: Authenticated,
    ApiPath((provider, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    super::objects::require(&auth, Lens::VMS)?;
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
    /// 删除 (a powered-off VM with its disks; cannot be undone)
    Delete {},
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
            ActionBody::Delete {} => VmAction::Delete,
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
    ApiPath((provider, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ActQuery>,
    ApiJson(body): ApiJson<ActionBody>,
) -> ApiResult<Response> {
    // A VM the caller may not see is "not found", exactly as a missing one: the
    // engine decides and answers both alike.
    let action = VmAction::from(body);
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

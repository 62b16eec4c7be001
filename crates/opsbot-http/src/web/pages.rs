//! The pages: 纵览, VM list and detail (with the actions the user may take, each
//! behind a confirm dialog), job progress, hosts, datastores, networks, audit log and
//! change history. Reads use the REST API's filters; actions the engine's structured
//! entry point, so a page shows and does what the API would for the same user.

use super::{asset_version, WebUser};
use crate::handlers::api::vms::{self as api_vms, VmFilter};
use crate::handlers::api::{self, Paging};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use opsbot_core::{Host, JobId};
use opsbot_engine::view::read;
use opsbot_engine::{Acted, Lens, Mode, Refusal, Request, VmAction};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

fn base(user: &WebUser, title: &str, nav: &str) -> minijinja::Value {
    context! {
        title => title,
        nav => nav,
        user => user.auth.user,
        csrf => user.csrf(),
        asset_version => asset_version(),
    }
}

fn denied(user: &WebUser, command: &str) -> Response {
    user.auth.context().templates.message(
        StatusCode::FORBIDDEN,
        "没有权限",
        &format!(
            "⛔ 您({})没有权限执行「{command}」。如需开通,请联系管理员",
            user.auth.user
        ),
        Some(&user.auth.user),
    )
}

fn unavailable(user: &WebUser) -> Response {
    user.auth.context().templates.message(
        StatusCode::SERVICE_UNAVAILABLE,
        "存储暂不可用",
        "资源池数据暂时无法读取,请稍后重试",
        Some(&user.auth.user),
    )
}

fn percent(part: u64, whole: u64) -> u64 {
    opsbot_engine::format::percent(part, whole)
}

#[derive(Debug, Serialize)]
struct DatastoreView {
    name: String,
    datacenter: String,
    kind: String,
    capacity_gb: u64,
    free_gb: u64,
    used_percent: u64,
}

#[derive(Debug, Serialize)]
struct HostView {
    name: String,
    datacenter: String,
    cluster: String,
    cpu_cores: u32,
    memory_mb: u64,
    connection_state: String,
    vms: usize,
    allocated_vcpu: u64,
    memory_percent: u64,
}

/// `/ui/`: 纵览, what an engineer glances at first: the engine's overview of what the
/// user's `概况` covers, exactly as chat counts it.
pub async fn overview(user: WebUser) -> Response {
    const COMMAND: &str = read::OVERVIEW;
    let auth = &user.auth;
    if !auth.may(COMMAND) {
        return denied(&user, COMMAND);
    }
    let ctx = auth.context();
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(&user);
    };
    let viewer = auth.viewer();
    let o = viewer.overview(&pool, None);
    let mut datastores: Vec<DatastoreView> = o
        .datastores
        .iter()
        .map(|d| DatastoreView {
            name: d.name.clone(),
            datacenter: d.datacenter.clone(),
            kind: d.kind.clone(),
            capacity_gb: d.capacity_gb,
            free_gb: d.free_gb,
            used_percent: 100 - percent(d.free_gb, d.capacity_gb).min(100),
        })
        .collect();
    datastores.sort_by_key(|d| std::cmp::Reverse(d.used_percent));
    let datastores_total = datastores.len();
    datastores.truncate(12);
    let mut hosts = host_views(&pool, &viewer, &o.hosts);
    hosts.sort_by_key(|h| std::cmp::Reverse(h.memory_percent));
    hosts.truncate(8);
    let mut warnings: Vec<String> = o
        .hosts
        .iter()
        .filter(|h| h.connection_state != "connected")
        .map(|h| format!("主机 {} {}", h.name, h.connection_state))
        .collect();
    warnings.extend(
        o.datastores
            .iter()
            .filter(|d| percent(d.free_gb, d.capacity_gb) < 15)
            .map(|d| {
                format!(
                    "存储 {} 仅剩 {}%",
                    d.name,
                    percent(d.free_gb, d.capacity_gb)
                )
            }),
    );
    warnings.truncate(10);
    let changes = api::changes::change_page(
        auth,
        None,
        None,
        None,
        Paging {
            page: 1,
            per_page: 8,
        },
    )
    .await
    .map(|p| p.items)
    .unwrap_or_default();
    let (on, vms) = (o.vms_on(), o.vms.len());
    let view = context! {
        datacenters => o.datacenters.len(),
        clusters => o.clusters.len(),
        hosts => o.hosts.len(),
        hosts_up => o.hosts_up(),
        vms => vms,
        vms_on => on,
        vms_off => vms - on,
        vms_on_percent => percent(on as u64, vms as u64),
        vcpu => o.vcpu(),
        vmem_mb => o.vmem_mb(),
        templates => o.templates,
        networks => o.networks.len(),
        storage_capacity_gb => o.capacity_gb(),
        storage_free_gb => o.free_gb(),
        datastores_more => datastores_total > datastores.len(),
        datastores_total => datastores_total,
        datastores => datastores,
        hosts_shown => hosts.len(),
        busy_hosts => hosts,
        warnings => warnings,
    };
    ctx.templates.page(
        "overview.html",
        context! { o => view, changes => changes, ..base(&user, "纵览", "overview") },
    )
}

/// The hosts the engine let the user see, with what of theirs is placed on them.
fn host_views(
    pool: &opsbot_engine::pool::PoolView,
    viewer: &opsbot_engine::Viewer,
    hosts: &[&Host],
) -> Vec<HostView> {
    let alloc = api::hosts::allocation(pool, viewer);
    hosts
        .iter()
        .map(|h| {
            let (vms, cpu, mem) = alloc
                .get(&(h.provider.as_str(), h.name.as_str()))
                .copied()
                .unwrap_or_default();
            HostView {
                name: h.name.clone(),
                datacenter: h.datacenter.clone(),
                cluster: h.cluster.clone(),
                cpu_cores: h.cpu_cores,
                memory_mb: h.memory_mb,
                connection_state: h.connection_state.clone(),
                vms,
                allocated_vcpu: cpu,
                memory_percent: percent(mem, h.memory_mb),
            }
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct VmRow<'a> {
    provider: &'a str,
    id: &'a str,
    name: &'a str,
    power: &'static str,
    cpu: u32,
    memory_mb: u64,
    ip: Option<&'a str>,
    cluster: &'a str,
}

const PAGE: u32 = 20;

/// `/ui/vms?q=&power=&cluster=&page=`: search and filters.
pub async fn vms(user: WebUser, Query(q): Query<api_vms::Query>) -> Response {
    let auth = &user.auth;
    let viewer = auth.viewer();
    if !viewer.may_read(Lens::VMS) {
        return denied(&user, Lens::VMS.command());
    }
    let ctx = auth.context();
    let shown = (
        q.q.clone(),
        q.power.clone(),
        q.cluster.clone(),
        q.tag.clone(),
    );
    let page = q.page.unwrap_or(1).max(1);
    let (filter, _) = match VmFilter::from_query(api_vms::Query {
        per_page: Some(PAGE),
        page: Some(page),
        ..q
    }) {
        Ok(f) => f,
        Err(e) => {
            return ctx.templates.message(
                StatusCode::BAD_REQUEST,
                "搜索条件无效",
                &e.message,
                Some(&auth.user),
            )
        }
    };
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(&user);
    };
    let hits = filter.apply(&viewer, &pool);
    let total = hits.len();
    let pages = total.div_ceil(PAGE as usize).max(1);
    let page = (page as usize).min(pages);
    let rows: Vec<VmRow> = hits
        .iter()
        .skip((page - 1) * PAGE as usize)
        .take(PAGE as usize)
        .map(|v| VmRow {
            provider: &v.provider,
            id: &v.id,
            name: &v.name,
            power: v.power.as_str(),
            cpu: v.cpu,
            memory_mb: v.memory_mb,
            ip: v.guest_ip.as_deref().or(v.ips.first().map(String::as_str)),
            cluster: &v.cluster,
        })
        .collect();
    // The choices offered are of what the user sees, too.
    let (mut clusters, tags): (Vec<&str>, Vec<&String>) =
        if viewer.vm_mask(&pool, Lens::VMS).is_none() {
            let clusters = pool.inventory.clusters.iter().map(|c| c.name.as_str());
            (clusters.collect(), pool.tags().iter().collect())
        } else {
            let seen = viewer.vms(&pool, Lens::VMS);
            let mut tags: Vec<&String> = seen.iter().flat_map(|v| v.tags.iter()).collect();
            tags.sort_unstable();
            tags.dedup();
            (seen.iter().map(|v| v.cluster.as_str()).collect(), tags)
        };
    clusters.sort_unstable();
    clusters.dedup();
    let enc = |s: &Option<String>| super::login::encode(s.as_deref().unwrap_or(""));
    let query = format!(
        "q={}&power={}&cluster={}&tag={}",
        enc(&shown.0),
        enc(&shown.1),
        enc(&shown.2),
        enc(&shown.3)
    );
    ctx.templates.page(
        "vms.html",
        context! {
            vms => rows, total => total, page => page, pages => pages, query => query,
            clusters => clusters, tags => tags,
            f => context! { q => shown.0, power => shown.1, cluster => shown.2, tag => shown.3 },
            ..base(&user, "虚拟机", "vms")
        },
    )
}

#[derive(Debug, Serialize)]
struct Input {
    label: &'static str,
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    value: String,
}

#[derive(Debug, Serialize)]
struct ActionView {
    key: &'static str,
    label: &'static str,
    destructive: bool,
    summary: String,
    input: Option<Input>,
}

/// The VM actions the web UI offers: key, label, and for those that take an argument
/// the input the dialog asks for.
const ACTIONS: &[(&str, &str)] = &[
    ("power_on", "开机"),
    ("power_off", "关机"),
    ("shutdown", "关闭系统"),
    ("reboot", "重启"),
    ("ping", "ping"),
    ("set_cpu", "修改 CPU"),
    ("set_memory", "修改内存"),
    ("add_disk", "加盘"),
    ("set_network", "换网"),
    ("rename", "改名"),
];

/// The action a form asks for, with its argument parsed.
fn action_from(key: &str, form: &HashMap<String, String>) -> Result<VmAction, String> {
    let number = |field: &str, what: &str| -> Result<u32, String> {
        let raw = form.get(field).map(|s| s.trim()).unwrap_or("");
        raw.parse::<u32>()
            .map_err(|_| format!("{what}「{raw}」不是整数"))
    };
    let text = |field: &str| {
        form.get(field)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    Ok(match key {
        "power_on" => VmAction::PowerOn,
        "power_off" => VmAction::PowerOff,
        "shutdown" => VmAction::Shutdown,
        "reboot" => VmAction::Reboot,
        "ping" => VmAction::Ping,
        "set_cpu" => VmAction::SetCpu {
            count: number("count", "CPU 数")?,
        },
        "set_memory" => VmAction::SetMemory {
            gb: number("gb", "内存 GiB")?,
        },
        "add_disk" => VmAction::AddDisk {
            gb: number("gb", "磁盘 GiB")?,
            datastore: None,
        },
        "set_network" => VmAction::SetNetwork {
            network: text("network"),
        },
        "rename" => VmAction::Rename {
            new_name: text("new_name"),
        },
        other => return Err(format!("未知操作「{other}」")),
    })
}

/// `/ui/vms/{provider}/{id}`: facts, the actions this user may take, changes.
pub async fn vm(user: WebUser, Path((provider, id)): Path<(String, String)>) -> Response {
    let auth = &user.auth;
    let ctx = auth.context();
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(&user);
    };
    let Ok(vm) = api_vms::find(auth, &pool, &provider, &id) else {
        return ctx.templates.message(
            StatusCode::NOT_FOUND,
            "找不到虚拟机",
            &format!("没有您可以查看的虚拟机 {provider}/{id}"),
            Some(&auth.user),
        );
    };
    let caller = auth.caller();
    let viewer = auth.viewer();
    let mut actions = Vec::new();
    for (key, label) in ACTIONS {
        let (input, action) = match *key {
            "set_cpu" => (
                Some(Input {
                    label: "CPU 数量",
                    name: "count",
                    kind: "number",
                    value: vm.cpu.to_string(),
                }),
                VmAction::SetCpu { count: vm.cpu },
            ),
            "set_memory" => (
                Some(Input {
                    label: "内存 (GiB)",
                    name: "gb",
                    kind: "number",
                    value: (vm.memory_mb / 1024).max(1).to_string(),
                }),
                VmAction::SetMemory { gb: 1 },
            ),
            "add_disk" => (
                Some(Input {
                    label: "磁盘大小 (GiB)",
                    name: "gb",
                    kind: "number",
                    value: "50".into(),
                }),
                VmAction::AddDisk {
                    gb: 1,
                    datastore: None,
                },
            ),
            "set_network" => (
                Some(Input {
                    label: "端口组或 VLAN",
                    name: "network",
                    kind: "text",
                    value: vm
                        .nics
                        .first()
                        .map(|n| n.network.clone())
                        .unwrap_or_default(),
                }),
                VmAction::SetNetwork {
                    network: String::new(),
                },
            ),
            "rename" => (
                Some(Input {
                    label: "新名称",
                    name: "new_name",
                    kind: "text",
                    value: vm.name.clone(),
                }),
                VmAction::Rename {
                    new_name: String::new(),
                },
            ),
            other => (
                None,
                action_from(other, &HashMap::new()).expect("argument-free action"),
            ),
        };
        let command = action.command();
        let destructive = ctx.engine.is_destructive(command);
        let summary = if input.is_none() {
            // The engine says exactly what would happen, or why it cannot.
            match ctx
                .engine
                .act(
                    &caller,
                    Request::Vm {
                        provider: provider.clone(),
                        id: id.clone(),
                        action,
                    },
                    Mode::Plan,
                )
                .await
            {
                Ok(Acted::Planned { summary, .. }) => summary,
                _ => continue,
            }
        } else {
            if vm.template || !viewer.may_at(command, &vm.scope_path()) {
                continue;
            }
            format!("{label}: {}", vm.name)
        };
        actions.push(ActionView {
            key,
            label,
            destructive,
            summary,
            input,
        });
    }
    let changes = api::changes::change_page(
        auth,
        Some(provider.clone()),
        Some("vm".into()),
        Some(id.clone()),
        Paging {
            page: 1,
            per_page: 10,
        },
    )
    .await
    .map(|p| p.items)
    .unwrap_or_default();
    ctx.templates.page(
        "vm.html",
        context! {
            vm => crate::handlers::api::dto::VmDto::from(vm),
            power_label => vm.power.label(),
            actions => actions,
            changes => changes,
            ..base(&user, &vm.name, "vms")
        },
    )
}

/// `POST /ui/vms/{provider}/{id}/act`: the confirmed dialog; on to the job's page.
pub async fn act(
    user: WebUser,
    Path((provider, id)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let auth = &user.auth;
    let ctx = auth.context();
    let templates = &ctx.templates;
    if !super::session::same(
        form.get("csrf").map(String::as_str).unwrap_or(""),
        user.csrf(),
    ) {
        return templates.message(
            StatusCode::FORBIDDEN,
            "请求无效",
            "页面已过期,请返回刷新后重试",
            Some(&auth.user),
        );
    }
    // The same per-user budget as the API: a page must not be a way around it.
    if let Err(e) = crate::auth::spend(ctx, &format!("web:{}", auth.user)) {
        let wait = e.retry_after.unwrap_or(1);
        let mut page = templates.message(
            StatusCode::TOO_MANY_REQUESTS,
            "操作过于频繁",
            &format!(
                "您的操作太频繁,已暂停执行。请 {wait} 秒后再试(每位用户每分钟的操作次数有上限)"
            ),
            Some(&auth.user),
        );
        page.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, wait.into());
        return page;
    }
    let key = form.get("action").map(String::as_str).unwrap_or("");
    let action = match action_from(key, &form) {
        Ok(a) => a,
        Err(e) => {
            return templates.message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "参数无效",
                &e,
                Some(&auth.user),
            )
        }
    };
    let request = Request::Vm {
        provider: provider.clone(),
        id: id.clone(),
        action,
    };
    match ctx.engine.act(&auth.caller(), request, Mode::Run).await {
        Ok(Acted::Started { job, .. }) => Redirect::to(&format!(
            "/ui/jobs/{}?back={}",
            job.0,
            super::login::encode(&format!("/ui/vms/{provider}/{id}"))
        ))
        .into_response(),
        Ok(Acted::Planned { summary, .. }) => {
            templates.message(StatusCode::OK, "未执行", &summary, Some(&auth.user))
        }
        Err(r) => {
            let status = match &r {
                Refusal::NotFound(_) => StatusCode::NOT_FOUND,
                Refusal::Denied(_) => StatusCode::FORBIDDEN,
                Refusal::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                Refusal::Failed(_) => StatusCode::CONFLICT,
                Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            templates.message(status, "未能执行", r.message(), Some(&auth.user))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct JobQuery {
    back: Option<String>,
}

/// `/ui/jobs/{id}`: live progress (the script polls `/api/v1/jobs/{id}`).
pub async fn job(user: WebUser, Path(id): Path<i64>, Query(q): Query<JobQuery>) -> Response {
    let auth = &user.auth;
    let ctx = auth.context();
    let job = match ctx.engine.job_for(&auth.caller(), JobId(id)).await {
        Ok(Some(j)) => j,
        Ok(None) => {
            return ctx.templates.message(
                StatusCode::NOT_FOUND,
                "找不到任务",
                &format!("任务 #{id} 不存在或不属于您"),
                Some(&auth.user),
            )
        }
        Err(_) => return unavailable(&user),
    };
    let back = q.back.as_deref().map(|b| super::login::safe_next(Some(b)));
    ctx.templates.page(
        "job.html",
        context! {
            state_label => job.state.label(),
            job => crate::handlers::api::dto::JobDto::from(job),
            vm_link => back,
            ..base(&user, &format!("任务 #{id}"), "vms")
        },
    )
}

/// `/ui/hosts`.
pub async fn hosts(user: WebUser) -> Response {
    let auth = &user.auth;
    let viewer = auth.viewer();
    if !viewer.may_read(Lens::HOSTS) {
        return denied(&user, Lens::HOSTS.command());
    }
    let ctx = auth.context();
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(&user);
    };
    let hosts = host_views(&pool, &viewer, &viewer.hosts(&pool, Lens::HOSTS));
    ctx.templates.page(
        "hosts.html",
        context! { hosts => hosts, ..base(&user, "主机", "hosts") },
    )
}

/// `/ui/datastores`.
pub async fn datastores(user: WebUser) -> Response {
    let auth = &user.auth;
    let viewer = auth.viewer();
    if !viewer.may_read(Lens::DATASTORES) {
        return denied(&user, Lens::DATASTORES.command());
    }
    let ctx = auth.context();
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(&user);
    };
    let list: Vec<_> = viewer
        .datastores(&pool, Lens::DATASTORES)
        .into_iter()
        .map(crate::handlers::api::dto::DatastoreDto::from)
        .collect();
    ctx.templates.page(
        "datastores.html",
        context! { datastores => list, ..base(&user, "存储", "datastores") },
    )
}

/// `/ui/networks`.
pub async fn networks(user: WebUser) -> Response {
    let auth = &user.auth;
    let viewer = auth.viewer();
    if !viewer.may_read(Lens::NETWORKS) {
        return denied(&user, Lens::NETWORKS.command());
    }
    let ctx = auth.context();
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(&user);
    };
    let list: Vec<_> = viewer
        .networks(&pool, Lens::NETWORKS)
        .into_iter()
        .map(crate::handlers::api::dto::NetworkDto::from)
        .collect();
    ctx.templates.page(
        "networks.html",
        context! { networks => list, ..base(&user, "网络", "networks") },
    )
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    page: Option<u32>,
}

/// `/ui/audit`: the user's own entries; everyone's for administrators.
pub async fn audit(user: WebUser, Query(q): Query<PageQuery>) -> Response {
    let auth = &user.auth;
    let ctx = auth.context();
    let paging = Paging {
        page: q.page.unwrap_or(1).clamp(1, 100_000),
        per_page: 30,
    };
    let who = api::audit::scoped_user(auth, None).unwrap_or(Some(auth.user.clone()));
    match api::audit::audit_page(auth, who, None, paging).await {
        Ok(p) => ctx.templates.page(
            "audit.html",
            context! { entries => p.items, page => p.page, has_more => p.has_more, admin => auth.viewer().is_admin(), ..base(&user, "审计日志", "audit") },
        ),
        Err(_) => unavailable(&user),
    }
}

/// `/ui/changes`.
pub async fn changes(user: WebUser, Query(q): Query<PageQuery>) -> Response {
    let auth = &user.auth;
    if !auth.may(api::changes::COMMAND) {
        return denied(&user, api::changes::COMMAND);
    }
    let ctx = auth.context();
    let paging = Paging {
        page: q.page.unwrap_or(1).clamp(1, 100_000),
        per_page: 30,
    };
    match api::changes::change_page(auth, None, None, None, paging).await {
        Ok(p) => ctx.templates.page(
            "changes.html",
            context! { changes => p.items, page => p.page, has_more => p.has_more, ..base(&user, "变更记录", "changes") },
        ),
        Err(_) => unavailable(&user),
    }
}

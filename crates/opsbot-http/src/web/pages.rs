//! The pages: 纵览, VM list and detail (with the actions the user may take, each
//! behind a confirm dialog), clone from a template, jobs and job progress, hosts,
//! datastores, networks, audit log and change history. Reads use the REST API's
//! filters; actions the engine's structured entry point, so a page shows and does
//! what the API (and chat) would for the same user. An error is shown on the page the
//! user was on, or on a message page that leads back there.

use super::{asset_version, WebUser};
use crate::handlers::api::vms::{self as api_vms, VmFilter};
use crate::handlers::api::{self, Paging};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use opsbot_core::{Host, JobId};
use opsbot_engine::commands::names::CLONE;
use opsbot_engine::pool::{vm_closeness, Closeness, PoolView};
use opsbot_engine::view::read;
use opsbot_engine::{Acted, CloneSpec, Lens, Mode, Refusal, Request, VmAction};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub(super) fn base(user: &WebUser, title: &str, nav: &str) -> minijinja::Value {
    context! {
        title => title,
        nav => nav,
        user => user.auth.user,
        csrf => user.csrf(),
        asset_version => asset_version(),
        kube => user.auth.context().kube.is_some(),
    }
}

/// A message page in the signed-in layout whose link leads back to the page the
/// user came from (纵览 only when we do not know it).
pub(super) fn message(user: &WebUser, status: StatusCode, title: &str, text: &str) -> Response {
    message_back(user, status, title, text, user.back.as_deref())
}

pub(super) fn message_back(
    user: &WebUser,
    status: StatusCode,
    title: &str,
    text: &str,
    back: Option<&str>,
) -> Response {
    user.auth.context().templates.message_in(
        status,
        context! { text => text, back => back, ..base(user, title, "") },
    )
}

fn denied(user: &WebUser, command: &str) -> Response {
    message(
        user,
        StatusCode::FORBIDDEN,
        "没有权限",
        &format!(
            "⛔ 您({})没有权限执行「{command}」。如需开通,请联系管理员",
            user.auth.user
        ),
    )
}

pub(super) fn unavailable(user: &WebUser) -> Response {
    message(
        user,
        StatusCode::SERVICE_UNAVAILABLE,
        "存储暂不可用",
        "资源池数据暂时无法读取,请稍后重试",
    )
}

/// Any other page under `/ui/`: a 404 in the layout, with a way back.
pub async fn not_found(user: WebUser) -> Response {
    message(
        &user,
        StatusCode::NOT_FOUND,
        "页面不存在",
        "没有这个页面,可能链接已过期或地址有误",
    )
}

/// A `/ui/vms` link with one filter set.
fn vms_link(key: &str, value: &str) -> String {
    format!("/ui/vms?{key}={}", super::login::encode(value))
}

/// The used share of a datastore, as chat's 已用 says it (one rounding everywhere).
fn used_percent(free: u64, capacity: u64) -> u64 {
    opsbot_engine::format::used_percent(free, capacity)
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
struct Warning {
    text: String,
    /// The VM list the warning is about.
    link: String,
}

#[derive(Debug, Serialize)]
struct HostView {
    name: String,
    datacenter: String,
    cluster: String,
    cpu_cores: u32,
    memory_mb: u64,
    connection_state: String,
    connection_label: String,
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
            used_percent: used_percent(d.free_gb, d.capacity_gb),
        })
        .collect();
    datastores.sort_by_key(|d| std::cmp::Reverse(d.used_percent));
    let datastores_total = datastores.len();
    datastores.truncate(12);
    let mut hosts = host_views(&pool, &viewer, &o.hosts);
    hosts.sort_by_key(|h| std::cmp::Reverse(h.memory_percent));
    hosts.truncate(8);
    // Each warning opens the VMs it puts at risk.
    let mut warnings: Vec<Warning> = o
        .hosts
        .iter()
        .filter(|h| h.connection_state != "connected")
        .map(|h| Warning {
            text: format!(
                "主机 {} {}",
                h.name,
                opsbot_engine::words::host_state(&h.connection_state)
            ),
            link: vms_link("host", &h.name),
        })
        .collect();
    warnings.extend(
        o.datastores
            .iter()
            .filter(|d| used_percent(d.free_gb, d.capacity_gb) >= super::render::HOT_PERCENT)
            .map(|d| Warning {
                text: format!(
                    "存储 {} 已用 {}%,仅剩 {}",
                    d.name,
                    used_percent(d.free_gb, d.capacity_gb),
                    opsbot_engine::format::fmt_size(d.free_gb)
                ),
                link: vms_link("datastore", &d.name),
            }),
    );
    // A business system with a VM down opens that system's VMs that are not running.
    let key = ctx.engine.service_tag();
    let services = o.services(key);
    warnings.extend(
        services
            .iter()
            .filter(|s| s.up() < s.vms.len())
            .map(|s| Warning {
                text: format!("服务 {} {}/{} 开机", s.name, s.up(), s.vms.len()),
                link: format!(
                    "/ui/vms?tag={}&power=off",
                    super::login::encode(&s.tag(key))
                ),
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
        services => services.len(),
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
        context! {
            o => view, changes => changes, may_clone => auth.may(CLONE),
            ..base(&user, "纵览", "overview")
        },
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
                connection_label: opsbot_engine::words::host_state(&h.connection_state)
                    .into_owned(),
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
    /// The search's exact answer (name, IP or UUID), listed first.
    exact: bool,
}

const PAGE: u32 = 20;

/// The VM list's query: the filters 纵览, hosts and datastores link to.
#[derive(Debug, Default, Deserialize)]
pub struct VmsQuery {
    q: Option<String>,
    power: Option<String>,
    cluster: Option<String>,
    host: Option<String>,
    tag: Option<String>,
    datastore: Option<String>,
    network: Option<String>,
    datacenter: Option<String>,
    page: Option<u32>,
}

/// `/ui/vms?q=&power=&cluster=&host=&tag=&datastore=&network=&datacenter=&page=`: search
/// and the engine's VM filter, the same one chat's 虚拟机:… and the REST API use.
pub async fn vms(user: WebUser, Query(q): Query<VmsQuery>) -> Response {
    let auth = &user.auth;
    let viewer = auth.viewer();
    if !viewer.may_read(Lens::VMS) {
        return denied(&user, Lens::VMS.command());
    }
    let ctx = auth.context();
    let page = q.page.unwrap_or(1).max(1);
    let (filter, _) = match VmFilter::from_query(api_vms::Query {
        q: q.q.clone(),
        power: q.power.clone(),
        cluster: q.cluster.clone(),
        host: q.host.clone(),
        tag: q.tag.clone(),
        datastore: q.datastore.clone(),
        network: q.network.clone(),
        datacenter: q.datacenter.clone(),
        ..api_vms::Query::default()
    }) {
        Ok(f) => f,
        Err(e) => {
            return message_back(
                &user,
                StatusCode::BAD_REQUEST,
                "搜索条件无效",
                &e.message,
                Some("/ui/vms"),
            )
        }
    };
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(&user);
    };
    let mut hits = filter.apply(&viewer, &pool);
    let datastore = q
        .datastore
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    // A search lists its hits closest first, the exact one (whole name, `provider/name`,
    // IP or UUID) marked: the engine's one ranking, as chat's 查 orders them.
    let keyword = q.q.as_deref().map(str::trim).unwrap_or("").to_lowercase();
    if !keyword.is_empty() {
        PoolView::rank_by_closeness(&keyword, &mut hits);
    }
    let exact = |v: &opsbot_core::Vm| {
        !keyword.is_empty() && vm_closeness(&keyword, v).is_some_and(Closeness::is_exact)
    };
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
            exact: exact(v),
        })
        .collect();
    // The choices offered are of what the user sees, too.
    let seen = viewer.vms(&pool, Lens::VMS);
    let (mut clusters, tags): (Vec<&str>, Vec<&String>) =
        if viewer.vm_mask(&pool, Lens::VMS).is_none() {
            let clusters = pool.inventory.clusters.iter().map(|c| c.name.as_str());
            (clusters.collect(), pool.tags().iter().collect())
        } else {
            let mut tags: Vec<&String> = seen.iter().flat_map(|v| v.tags.iter()).collect();
            tags.sort_unstable();
            tags.dedup();
            (seen.iter().map(|v| v.cluster.as_str()).collect(), tags)
        };
    clusters.sort_unstable();
    clusters.dedup();
    let mut hosts: Vec<&str> = seen.iter().map(|v| v.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let enc = |s: &Option<String>| super::login::encode(s.as_deref().unwrap_or(""));
    // Filters that have no control on the page (they arrive from a link: a datastore's
    // bar, a network row) show as chips; each chip's link is the query without it.
    let keyed = [
        ("q", &q.q),
        ("power", &q.power),
        ("cluster", &q.cluster),
        ("host", &q.host),
        ("tag", &q.tag),
        ("datastore", &q.datastore),
        ("network", &q.network),
        ("datacenter", &q.datacenter),
    ];
    let query_without = |skip: &str| -> String {
        keyed
            .iter()
            .filter(|(k, _)| *k != skip)
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let query = query_without("");
    let chips: Vec<minijinja::Value> = [
        ("datastore", "存储", &q.datastore),
        ("network", "网络", &q.network),
        ("datacenter", "数据中心", &q.datacenter),
    ]
    .into_iter()
    .filter_map(|(key, label, value)| {
        let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
        Some(context! { key => key, label => label, value => value, clear => query_without(key) })
    })
    .collect();
    ctx.templates.page(
        "vms.html",
        context! {
            vms => rows, total => total, page => page, pages => pages, query => query,
            chips => chips,
            clusters => clusters, hosts => hosts, tags => tags,
            may_clone => auth.may(CLONE),
            f => context! {
                q => q.q, power => q.power, cluster => q.cluster, host => q.host,
                tag => q.tag, datastore => datastore,
            },
            ..base(&user, "虚拟机", "vms")
        },
    )
}

#[derive(Debug, Serialize)]
struct Input {
    label: String,
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    /// What the field holds now, shown greyed in the empty field: typing replaces it
    /// instead of appending to it (`加盘` 50 → 5050).
    placeholder: String,
    min: Option<u32>,
    /// The question the dialog asks once a value is typed: `ask_before` value
    /// `ask_after` ("将 web-01 的 CPU 改为 4?").
    ask_before: String,
    ask_after: &'static str,
}

#[derive(Debug, Serialize)]
struct ActionView {
    key: &'static str,
    label: &'static str,
    /// Red: the action interrupts what runs on the VM.
    interrupts: bool,
    summary: String,
    input: Option<Input>,
}

/// The VM actions the web UI offers: key, label, and for those that take an argument
/// the input the dialog asks for.
const ACTIONS: &[(&str, &str)] = &[
    ("power_on", "开机"),
    ("power_off", "强制关机"),
    ("shutdown", "关闭系统"),
    ("reboot", "重启"),
    ("ping", "ping"),
    ("set_cpu", "修改 CPU"),
    ("set_memory", "修改内存"),
    ("add_disk", "加盘"),
    ("set_network", "换网"),
    ("rename", "改名"),
    // Offered only while the VM is off (the engine's plan refuses it otherwise).
    ("delete", "删除"),
];

/// The actions shown red: they stop the guest, cut it off the network or delete it.
/// Red is kept for these so that it keeps meaning something.
const INTERRUPTING: &[&str] = &["power_off", "shutdown", "reboot", "set_network", "delete"];

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
        "delete" => VmAction::Delete,
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

/// The dialog field of an action that takes an argument, and a stand-in action of
/// the same command (for the permission check).
fn input_for(key: &str, vm: &opsbot_core::Vm) -> Option<(Input, VmAction)> {
    use opsbot_engine::command::{CPU_RANGE, DISK_GB_RANGE, MEMORY_GB_RANGE};
    let n = &vm.name;
    let range = |what: &str, (lo, hi): (u32, u32)| format!("{what}({lo}–{hi})");
    Some(match key {
        "set_cpu" => (
            Input {
                label: range("CPU 数量", CPU_RANGE),
                name: "count",
                kind: "number",
                placeholder: format!("当前 {}", vm.cpu),
                min: Some(CPU_RANGE.0),
                ask_before: format!("将 {n} 的 CPU 改为 "),
                ask_after: "?",
            },
            VmAction::SetCpu { count: vm.cpu },
        ),
        "set_memory" => (
            Input {
                label: range("内存 GiB", MEMORY_GB_RANGE),
                name: "gb",
                kind: "number",
                placeholder: format!("当前 {}", (vm.memory_mb / 1024).max(1)),
                min: Some(MEMORY_GB_RANGE.0),
                ask_before: format!("将 {n} 的内存改为 "),
                ask_after: " GiB?",
            },
            VmAction::SetMemory { gb: 1 },
        ),
        "add_disk" => (
            Input {
                label: range("新磁盘 GiB", DISK_GB_RANGE),
                name: "gb",
                kind: "number",
                placeholder: "例如 50".into(),
                min: Some(DISK_GB_RANGE.0),
                ask_before: format!("为 {n} 添加一块 "),
                ask_after: " GiB 的磁盘?",
            },
            VmAction::AddDisk {
                gb: 1,
                datastore: None,
            },
        ),
        "set_network" => (
            Input {
                label: "端口组或 VLAN".into(),
                name: "network",
                kind: "text",
                placeholder: vm
                    .nics
                    .first()
                    .map(|nic| format!("当前 {}", nic.network))
                    .unwrap_or_default(),
                min: None,
                ask_before: format!("将 {n} 的网络改为 "),
                ask_after: "?",
            },
            VmAction::SetNetwork {
                network: String::new(),
            },
        ),
        "rename" => (
            Input {
                label: "新名称".into(),
                name: "new_name",
                kind: "text",
                placeholder: format!("当前 {n}"),
                min: None,
                ask_before: format!("将 {n} 改名为 "),
                ask_after: "?",
            },
            VmAction::Rename {
                new_name: String::new(),
            },
        ),
        _ => return None,
    })
}

/// `/ui/vms/{provider}/{id}`: facts, the actions this user may take, changes.
pub async fn vm(user: WebUser, Path((provider, id)): Path<(String, String)>) -> Response {
    vm_page(&user, &provider, &id, None).await
}

/// The VM page; with `refused`, the reason the last action was not taken, at the top
/// of the same page the user acted on (status 422 unless the caller says otherwise).
async fn vm_page(user: &WebUser, provider: &str, id: &str, refused: Option<&str>) -> Response {
    let auth = &user.auth;
    let ctx = auth.context();
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(user);
    };
    let Ok(vm) = api_vms::find(auth, &pool, provider, id) else {
        return message(
            user,
            StatusCode::NOT_FOUND,
            "找不到虚拟机",
            &format!("没有您可以查看的虚拟机 {provider}/{id}"),
        );
    };
    let caller = auth.caller();
    let viewer = auth.viewer();
    let mut actions = Vec::new();
    for (key, label) in ACTIONS {
        let (input, action) = match input_for(key, vm) {
            Some((input, action)) => (Some(input), action),
            None => (
                None,
                action_from(key, &HashMap::new()).expect("argument-free action"),
            ),
        };
        let command = action.command();
        let summary = if input.is_none() {
            // The engine says exactly what would happen, or why it cannot.
            match ctx
                .engine
                .act(
                    &caller,
                    Request::Vm {
                        provider: provider.to_string(),
                        id: id.to_string(),
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
            interrupts: INTERRUPTING.contains(key),
            summary,
            input,
        });
    }
    let changes = api::changes::change_page(
        auth,
        Some(provider.to_string()),
        Some("vm".into()),
        Some(id.to_string()),
        Paging {
            page: 1,
            per_page: 10,
        },
    )
    .await
    .map(|p| p.items)
    .unwrap_or_default();
    let mut page = ctx.templates.page(
        "vm.html",
        context! {
            vm => crate::handlers::api::dto::VmDto::from(vm),
            power_label => vm.power.label(),
            actions => actions,
            changes => changes,
            refused => refused,
            ..base(user, &vm.name, "vms")
        },
    );
    if refused.is_some() && page.status().is_success() {
        *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    page
}

/// Whether a form carries this session's CSRF value.
pub(super) fn csrf_ok(user: &WebUser, form: &HashMap<String, String>) -> bool {
    super::session::same(
        form.get("csrf").map(String::as_str).unwrap_or(""),
        user.csrf(),
    )
}

pub(super) fn expired(user: &WebUser) -> Response {
    message(
        user,
        StatusCode::FORBIDDEN,
        "请求无效",
        "页面已过期,请返回刷新后重试",
    )
}

/// The same per-user budget as the API: a page must not be a way around it. The
/// refusal says how long to wait.
pub(super) async fn over_budget(user: &WebUser) -> Option<(String, u64)> {
    let ctx = user.auth.context();
    crate::auth::spend(ctx, &format!("web:{}", user.auth.user))
        .await
        .err()
        .map(|e| {
            let wait = e.retry_after.unwrap_or(1);
            (
                format!(
                    "操作过于频繁,已暂停执行。请 {wait} 秒后再试(每位用户每分钟的操作次数有上限)"
                ),
                wait,
            )
        })
}

/// The page of an action refused for going past the user's budget (429 with
/// `Retry-After`), linking back to `back`; `None` while within it.
pub(super) async fn busy(user: &WebUser, back: Option<&str>) -> Option<Response> {
    over_budget(user).await.map(|(text, wait)| {
        with_retry_after(
            message_back(user, StatusCode::TOO_MANY_REQUESTS, "未能执行", &text, back),
            wait,
        )
    })
}

/// An API refusal as a page in the layout (a store outage as the outage page).
pub(super) fn refusal(user: &WebUser, e: &crate::error::ApiError, back: Option<&str>) -> Response {
    if e.status == StatusCode::SERVICE_UNAVAILABLE {
        return unavailable(user);
    }
    message_back(user, e.status, "未能执行", &e.message, back)
}

/// What a web action that went through the engine's `run_command` leads to: a job's
/// page (its link back to `from`), or the answer as a message linking to `then`.
pub(super) fn ran_page(
    user: &WebUser,
    ran: opsbot_engine::Ran,
    from: &str,
    then: &str,
) -> Response {
    match ran {
        opsbot_engine::Ran::Started { job, .. } => axum::response::Redirect::to(&format!(
            "/ui/jobs/{}?back={}",
            job.0,
            super::login::encode(from)
        ))
        .into_response(),
        opsbot_engine::Ran::Done { command, message } => {
            message_back(user, StatusCode::OK, command, &message, Some(then))
        }
    }
}

pub(super) fn with_retry_after(mut page: Response, wait: u64) -> Response {
    *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    page.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, wait.into());
    page
}

/// `POST /ui/vms/{provider}/{id}/act`: the confirmed dialog; on to the job's page, or
/// back to the VM's page with the reason it was refused.
pub async fn act(
    user: WebUser,
    Path((provider, id)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let auth = &user.auth;
    let ctx = auth.context();
    if !csrf_ok(&user, &form) {
        return expired(&user);
    }
    if let Some((text, wait)) = over_budget(&user).await {
        return with_retry_after(vm_page(&user, &provider, &id, Some(&text)).await, wait);
    }
    let key = form.get("action").map(String::as_str).unwrap_or("");
    let action = match action_from(key, &form) {
        Ok(a) => a,
        Err(e) => return vm_page(&user, &provider, &id, Some(&e)).await,
    };
    // A deleted VM has no page to return to: back to the list.
    let back = if action == VmAction::Delete {
        "/ui/vms".to_string()
    } else {
        format!("/ui/vms/{provider}/{id}")
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
            super::login::encode(&back)
        ))
        .into_response(),
        Ok(Acted::Planned { summary, .. }) => message(&user, StatusCode::OK, "未执行", &summary),
        Err(Refusal::Unavailable(_)) => unavailable(&user),
        Err(r @ Refusal::NotFound(_)) => {
            message(&user, StatusCode::NOT_FOUND, "未能执行", r.message())
        }
        Err(r) => {
            let status = match &r {
                Refusal::Denied(_) => StatusCode::FORBIDDEN,
                Refusal::Failed(_) => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let mut page = vm_page(&user, &provider, &id, Some(r.message())).await;
            if page.status() == StatusCode::UNPROCESSABLE_ENTITY {
                *page.status_mut() = status;
            }
            page
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct JobQuery {
    back: Option<String>,
}

/// `/ui/jobs/{id}`: live progress (the script polls `/api/v1/jobs/{id}`).
pub async fn job(user: WebUser, Path(id): Path<i64>, Query(q): Query<JobQuery>) -> Response {
    let back = q.back.as_deref().map(|b| super::login::safe_next(Some(b)));
    job_page(&user, id, back, None).await
}

/// A job's page; `notice` is what a cancel request was answered (refusals included),
/// shown above the job so the user stays where they were.
async fn job_page(
    user: &WebUser,
    id: i64,
    back: Option<String>,
    notice: Option<(bool, String)>,
) -> Response {
    let auth = &user.auth;
    let ctx = auth.context();
    let job = match ctx.engine.job_for(&auth.caller(), JobId(id)).await {
        Ok(Some(j)) => j,
        Ok(None) => {
            return message(
                user,
                StatusCode::NOT_FOUND,
                "找不到任务",
                &format!("任务 #{id} 不存在或不属于您"),
            )
        }
        Err(_) => return unavailable(user),
    };
    let running = !job.state.is_final();
    // Back to where the job was started from (the VM, the clone form), else the list.
    ctx.templates.page(
        "job.html",
        context! {
            state_label => job.state.label(),
            job => crate::handlers::api::dto::JobDto::from(job),
            back => back,
            running => running,
            notice => notice.as_ref().map(|(ok, text)| context! { ok => ok, text => text }),
            ..base(user, &format!("任务 #{id}"), "jobs")
        },
    )
}

/// `POST /ui/jobs/{id}/cancel`: the web's `取消:#N`, through the same engine path
/// (owner or administrator, audited); the answer is shown on the job's page.
pub async fn cancel_job(
    user: WebUser,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !csrf_ok(&user, &form) {
        return expired(&user);
    }
    let ctx = user.auth.context();
    let (status, notice) = match ctx.engine.cancel_job(&user.auth.caller(), JobId(id)).await {
        Ok(text) => (StatusCode::OK, (true, text)),
        Err(Refusal::Unavailable(_)) => return unavailable(&user),
        Err(r) => {
            let status = match &r {
                Refusal::Denied(_) => StatusCode::FORBIDDEN,
                Refusal::NotFound(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            (status, (false, r.message().to_string()))
        }
    };
    let mut page = job_page(&user, id, None, Some(notice)).await;
    if page.status() == StatusCode::OK {
        *page.status_mut() = status;
    }
    page
}

/// `/ui/jobs?state=&user=`.
#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    state: Option<String>,
    /// Administrators: one user's jobs (empty: everyone's).
    user: Option<String>,
}

#[derive(Debug, Serialize)]
struct JobRow {
    state_label: &'static str,
    #[serde(flatten)]
    job: crate::handlers::api::dto::JobDto,
}

/// How many jobs the list shows, newest first (the API's default page).
const JOBS_SHOWN: u64 = 50;

/// `/ui/jobs`: the user's latest jobs (an administrator's: everyone's, or one
/// user's), running ones followed live.
pub async fn jobs(user: WebUser, Query(q): Query<JobsQuery>) -> Response {
    let auth = &user.auth;
    let ctx = auth.context();
    let viewer = auth.viewer();
    let admin = viewer.is_admin();
    let state = q.state.as_deref().filter(|s| !s.is_empty());
    let state = match state.map(|s| opsbot_core::JobState::parse(s).ok_or(s)) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(s)) => {
            return message_back(
                &user,
                StatusCode::BAD_REQUEST,
                "筛选条件无效",
                &format!("没有「{s}」这种任务状态"),
                Some("/ui/jobs"),
            )
        }
    };
    let wanted = q
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    let Ok(who) = viewer.whose(wanted.clone()) else {
        return message_back(
            &user,
            StatusCode::FORBIDDEN,
            "没有权限",
            "只有管理员可以查看其他用户的任务",
            Some("/ui/jobs"),
        );
    };
    let Ok(list) = ctx
        .jobs()
        .jobs(&opsbot_store::JobQuery {
            user: who,
            state,
            limit: JOBS_SHOWN,
        })
        .await
    else {
        return unavailable(&user);
    };
    let rows: Vec<JobRow> = list
        .into_iter()
        .map(|j| JobRow {
            state_label: j.state.label(),
            job: crate::handlers::api::dto::JobDto::from(j),
        })
        .collect();
    let states = [
        opsbot_core::JobState::Running,
        opsbot_core::JobState::Succeeded,
        opsbot_core::JobState::Failed,
        opsbot_core::JobState::Interrupted,
    ]
    .map(|s| (s.as_str(), s.label()));
    ctx.templates.page(
        "jobs.html",
        context! {
            jobs => rows, admin => admin, states => states, limit => JOBS_SHOWN,
            f => context! { state => state.map(|s| s.as_str()), user => wanted },
            ..base(&user, "任务", "jobs")
        },
    )
}

#[derive(Debug, Serialize)]
struct TemplateOption<'a> {
    number: u32,
    name: &'a str,
    guest_os: &'a str,
}

/// What the clone form holds: as typed, so a refused form comes back as it was.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CloneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    cpu: String,
    #[serde(default)]
    memory_gb: String,
}

/// `/ui/clone?template=N`: the clone form.
pub async fn clone_form(user: WebUser, Query(q): Query<HashMap<String, String>>) -> Response {
    let form = CloneForm {
        template: q.get("template").cloned().unwrap_or_default(),
        ..CloneForm::default()
    };
    clone_page(&user, &form, None).await
}

/// The clone form, with `refused` (the engine's reason, as chat would give it) at the
/// top when the last try was refused.
async fn clone_page(user: &WebUser, form: &CloneForm, refused: Option<&str>) -> Response {
    let auth = &user.auth;
    if !auth.may(CLONE) {
        return denied(user, CLONE);
    }
    let ctx = auth.context();
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(user);
    };
    let templates: Vec<TemplateOption> = auth
        .viewer()
        .templates(&pool, Lens::TEMPLATES)
        .into_iter()
        .map(|t| TemplateOption {
            number: t.number,
            name: &t.name,
            guest_os: &t.guest_os,
        })
        .collect();
    use opsbot_engine::command::{CPU_RANGE, MEMORY_GB_RANGE};
    let mut page = ctx.templates.page(
        "clone.html",
        context! {
            templates => templates, form => form, refused => refused,
            cpu_range => CPU_RANGE, memory_range => MEMORY_GB_RANGE,
            ..base(user, "从模板克隆", "vms")
        },
    );
    if refused.is_some() && page.status().is_success() {
        *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    page
}

/// The clone request a form asks for, or why it cannot be one.
fn clone_spec(form: &CloneForm) -> Result<CloneSpec, String> {
    let number = |raw: &str, what: &str| -> Result<Option<u32>, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse()
            .map(Some)
            .map_err(|_| format!("{what}「{raw}」不是整数"))
    };
    let template = number(&form.template, "模板编号")?.ok_or("请选择模板")?;
    let name = form.name.trim();
    if name.is_empty() {
        return Err("请填写新虚拟机的名称".into());
    }
    let ip = form.ip.trim();
    let ip = ip
        .parse()
        .map_err(|_| format!("IP「{ip}」不是有效的 IPv4 地址"))?;
    Ok(CloneSpec {
        template,
        name: name.to_string(),
        ip,
        cpu: number(&form.cpu, "CPU 数")?,
        memory_gb: number(&form.memory_gb, "内存 GiB")?,
    })
}

/// `POST /ui/clone`: the engine's clone (the path chat's 克隆 takes: name and IP
/// free, template, ranges, permission), then the job's page.
pub async fn clone(user: WebUser, Form(form): Form<CloneForm>) -> Response {
    let auth = &user.auth;
    if !super::session::same(&form.csrf, user.csrf()) {
        return expired(&user);
    }
    if let Some((text, wait)) = over_budget(&user).await {
        return with_retry_after(clone_page(&user, &form, Some(&text)).await, wait);
    }
    let spec = match clone_spec(&form) {
        Ok(s) => s,
        Err(e) => return clone_page(&user, &form, Some(&e)).await,
    };
    let ctx = auth.context();
    match ctx
        .engine
        .act(&auth.caller(), Request::Clone(spec), Mode::Run)
        .await
    {
        Ok(Acted::Started { job, .. }) => {
            Redirect::to(&format!("/ui/jobs/{}?back=/ui/jobs", job.0)).into_response()
        }
        Ok(Acted::Planned { summary, .. }) => message(&user, StatusCode::OK, "未执行", &summary),
        Err(Refusal::Unavailable(_)) => unavailable(&user),
        Err(r) => clone_page(&user, &form, Some(r.message())).await,
    }
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

/// `/ui/services`: the business systems the user's VMs serve (their `[pool]
/// service_tag` tag), each with how many VMs are on and which are not; a row opens
/// the service's VMs (the overview's warning opens those not running).
pub async fn services(user: WebUser) -> Response {
    let auth = &user.auth;
    let viewer = auth.viewer();
    if !viewer.may_read(Lens::SERVICES) {
        return denied(&user, Lens::SERVICES.command());
    }
    let ctx = auth.context();
    let Ok(pool) = ctx.engine.pool().await else {
        return unavailable(&user);
    };
    let key = ctx.engine.service_tag();
    let list: Vec<minijinja::Value> =
        opsbot_engine::services::services(viewer.vms(&pool, Lens::SERVICES), key)
            .iter()
            .map(|s| {
                let tag = super::login::encode(&s.tag(key));
                context! {
                    name => s.name, up => s.up(), vms => s.vms.len(),
                    down => s.down().map(|v| v.name.as_str()).collect::<Vec<_>>(),
                    link => format!("/ui/vms?tag={tag}"),
                }
            })
            .collect();
    ctx.templates.page(
        "services.html",
        context! { services => list, key => key, ..base(&user, "服务", "services") },
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

//! Reads of the resource pool (概况, 查, the object lists) and 同步, which refreshes it.
//! Everything shown is what the asker's [`crate::view::Viewer`] lets them see.

use super::{foreign, names, Ctx, Handled};
use crate::command::{Args, Command, CommandSpec, ListKind, ParseError};
use crate::engine::{invalid, ok, sync_summary};
use crate::filter::ListFilter;
use crate::format::{self, page};
use crate::pool::{Closeness, PoolView};
use crate::reply::Response;
use crate::session::{Paging, Session};
use crate::view::{Lens, Viewer};
use opsbot_core::{Host, Vm};
use std::fmt::Write;

mod lists;
use lists::Listed;

pub const OVERVIEW: CommandSpec = CommandSpec::new(
    names::OVERVIEW,
    &["overview"],
    "概况[:数据中心]",
    "资源概况:数据中心、集群、主机、虚拟机、存储、网络、告警",
    |a| {
        a.count(0, 1).map(|_| Command::Overview {
            datacenter: a.opt(0),
        })
    },
)
.runs(run)
.example("概况");

pub const FIND: CommandSpec = CommandSpec::new(
    names::FIND,
    &["find", "查询", "search", "详情", "状态"],
    "查:关键字[,页码]",
    "按名称、IP、UUID 或模糊匹配查找虚拟机和主机;名称完全一致的直接显示详情",
    |a| {
        a.count(1, 2)?;
        Ok(Command::Find {
            keyword: a.text(0),
            page: a.opt_number(1, "页码", 1, 100_000)?.unwrap_or(1),
        })
    },
)
.runs(run)
.example("查:web-01");

/// A list command: an optional page number.
const fn list(
    name: &'static str,
    aliases: &'static [&'static str],
    usage: &'static str,
    summary: &'static str,
    parse: fn(&Args) -> Result<Command, ParseError>,
) -> CommandSpec {
    CommandSpec::new(name, aliases, usage, summary, parse).runs(run)
}

pub const VMS: CommandSpec = list(
    names::VMS,
    &["vms", "vm"],
    "虚拟机[:筛选,…][,页码]",
    "虚拟机列表;筛选: 开机/关机、主机=、集群=、数据中心=、存储=、网络=、标签=(可组合)",
    |a| listing(a, ListKind::Vms),
)
.example("虚拟机:2");
pub const HOSTS: CommandSpec = list(
    names::HOSTS,
    &["hosts"],
    "主机[:筛选,…][,页码]",
    "物理主机列表;筛选: 在线/离线、集群=、数据中心=",
    |a| listing(a, ListKind::Hosts),
)
.example("主机");
pub const DATASTORES: CommandSpec = list(
    names::DATASTORES,
    &["datastores", "ds"],
    "存储[:筛选,…][,页码]",
    "存储容量与剩余;筛选: 不足、数据中心=",
    |a| listing(a, ListKind::Datastores),
)
.example("存储");
pub const NETWORKS: CommandSpec = list(
    names::NETWORKS,
    &["networks"],
    "网络[:数据中心=…][,页码]",
    "端口组与 VLAN",
    |a| listing(a, ListKind::Networks),
)
.example("网络");
pub const CLUSTERS: CommandSpec = list(
    names::CLUSTERS,
    &["clusters"],
    "集群[:数据中心=…][,页码]",
    "集群列表",
    |a| listing(a, ListKind::Clusters),
);
pub const DATACENTERS: CommandSpec = list(
    names::DATACENTERS,
    &["datacenters", "dcs"],
    "数据中心",
    "数据中心列表",
    |a| listing(a, ListKind::Datacenters),
);
pub const TEMPLATES: CommandSpec = list(
    names::TEMPLATES,
    &["templates"],
    "模板",
    "带编号的模板(克隆时使用编号)",
    |a| listing(a, ListKind::Templates),
)
.example("模板");

pub const SERVICES: CommandSpec = list(
    names::SERVICES,
    &["services", "service", "svc"],
    "服务[:名称][,筛选,…][,页码]",
    "按业务系统(app 标签)分组的虚拟机及开机数;服务:名称 列出其虚拟机",
    |a| listing(a, ListKind::Services),
);

pub const SYNC: CommandSpec = CommandSpec::new(
    names::SYNC,
    &["sync"],
    "同步",
    "立即从各集群同步资源池",
    |a| a.count(0, 0).map(|_| Command::Sync),
)
.runs(sync)
.example("同步");

fn listing(a: &Args, kind: ListKind) -> Result<Command, ParseError> {
    let (filter, page) = ListFilter::parse(kind, &a.args).map_err(|p| a.usage(p))?;
    Ok(Command::List { kind, page, filter })
}

fn run(cx: Ctx<'_>, cmd: Command) -> Handled<'_> {
    Box::pin(async move {
        let Ctx {
            engine,
            asker,
            sess,
            pool,
            ..
        } = cx;
        let view = &asker.view;
        Ok(match cmd {
            Command::Overview { datacenter } => {
                if let Some(dc) = &datacenter {
                    // Only the datacenters the asker sees exist for them.
                    let seen = view.datacenters(&pool, Lens::OVERVIEW);
                    if !seen.iter().any(|d| d.name.eq_ignore_ascii_case(dc)) {
                        let names: Vec<_> = seen.iter().map(|d| d.name.as_str()).collect();
                        return Ok(invalid(format!(
                            "没有数据中心「{dc}」;现有: {}",
                            if names.is_empty() {
                                "(无)".to_string()
                            } else {
                                names.join("、")
                            }
                        )));
                    }
                }
                if pool.inventory.datacenters.is_empty() {
                    return Ok(ok(
                        "资源池是空的:没有配置集群,或尚未同步。发送 同步 立即同步",
                    ));
                }
                let alerts = match engine.subsystems.alerts() {
                    None => "告警网关未配置".to_string(),
                    Some(desk) => match desk.firing_count().await {
                        Ok(0) => "无正在发生的告警".to_string(),
                        Ok(n) => format!("🔥 {n} 条正在发生(发送 告警 查看)"),
                        Err(e) => format!("⚠ 暂不可用({e})"),
                    },
                };
                let overview = view.overview(&pool, datacenter.as_deref());
                ok(format::overview(
                    &overview,
                    datacenter.as_deref(),
                    &alerts,
                    &engine.settings.service_tag,
                ))
            }
            Command::Find { keyword, page: n } => find(sess, &pool, view, &keyword, n),
            Command::List { kind, page, filter } => {
                let listed = Listed {
                    kind,
                    filter: &filter,
                };
                lists::list(engine, view, &pool, sess, listed, page)
            }
            cmd => foreign(&cmd),
        })
    })
}

/// 查: one exact match (name, `provider/name`, IP or UUID) is the answer, shown as its
/// card with the near misses named under it; otherwise every hit, VMs and hosts, closest
/// first with exact ones marked ★, a page at a time (下一页 pages on).
fn find(sess: &mut Session, pool: &PoolView, view: &Viewer, keyword: &str, n: u32) -> Response {
    let see = view.sight(Lens::FIND);
    let hosts: Vec<(Closeness, &Host)> = pool
        .search_hosts_ranked(keyword)
        .into_iter()
        .filter(|(_, h)| see(&h.scope_path()))
        .collect();
    let mut vms = view.search_ranked(pool, keyword);
    // Names merely alike are a guess for when nothing else matched, a host included.
    if !hosts.is_empty() {
        vms.retain(|(c, _)| *c != Closeness::Similar);
    }
    let exact_vms: Vec<&Vm> = vms
        .iter()
        .filter(|(c, _)| c.is_exact())
        .map(|(_, v)| *v)
        .collect();
    let exact_hosts = hosts.iter().filter(|(c, _)| c.is_exact()).count();
    if n <= 1 {
        match (exact_vms.as_slice(), exact_hosts, vms.len() + hosts.len()) {
            (_, _, 0) => return invalid(format!("没有找到与「{keyword}」匹配的虚拟机或主机")),
            ([vm], 0, _) => {
                let mut text = format::vm_detail(vm);
                let others: Vec<&str> = vms
                    .iter()
                    .filter(|(_, v)| !std::ptr::eq(*v, *vm))
                    .map(|(_, v)| v.name.as_str())
                    .chain(hosts.iter().map(|(_, h)| h.name.as_str()))
                    .collect();
                if !others.is_empty() {
                    let shown: Vec<&str> = others.iter().take(5).copied().collect();
                    let _ = write!(
                        text,
                        "\n\n另有 {} 个相近的匹配: {}{}",
                        others.len(),
                        shown.join("、"),
                        if others.len() > shown.len() {
                            "…"
                        } else {
                            ""
                        }
                    );
                }
                return ok(text);
            }
            ([], 0, 1) if hosts.is_empty() => return ok(format::vm_detail(vms[0].1)),
            _ => {}
        }
    }
    // VMs and hosts in one order; on a tie the VM comes first.
    let mut hits: Vec<(Closeness, String)> = vms
        .iter()
        .map(|(c, v)| (*c, format::vm_line(v)))
        .chain(
            hosts
                .iter()
                .map(|(c, h)| (*c, format!("🖥 {}", format::host_line(h)))),
        )
        .collect();
    hits.sort_by_key(|(c, _)| *c);
    let any_exact = hits.iter().any(|(c, _)| c.is_exact());
    let lines: Vec<String> = hits
        .into_iter()
        .map(|(c, line)| {
            if c.is_exact() {
                format!("★ {line}")
            } else {
                line
            }
        })
        .collect();
    let title = if any_exact {
        format!("查找「{keyword}」· ★ 完全一致")
    } else {
        format!("查找「{keyword}」")
    };
    let (text, more) = page(&title, &lines, n, |l| l.clone());
    sess.paging = Some(Paging {
        command: format!("{}:{keyword}", names::FIND),
        page: n.max(1),
        last: !more,
    });
    ok(text)
}

/// 同步: a job that pulls every provider's inventory into the pool.
fn sync(cx: Ctx<'_>, cmd: Command) -> Handled<'_> {
    Box::pin(async move {
        let engine = cx.engine;
        let syncer = engine.syncer.clone();
        let providers = engine.providers.clone();
        let source = format!("sync:{}", cx.asker.source());
        engine
            .start_job(
                cx.asker,
                cx.sink,
                cmd.name(),
                "同步资源池".to_string(),
                // A sync writes the pool as it reads; stopping halfway helps nobody.
                false,
                move |progress| {
                    Box::pin(async move {
                        let reports = syncer.run(&providers, &source, Some(&progress)).await?;
                        Ok(sync_summary(&reports))
                    })
                },
            )
            .await
    })
}

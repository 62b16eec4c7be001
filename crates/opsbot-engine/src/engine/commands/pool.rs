//! Reads of the resource pool (概况, 查, the object lists) and 同步, which refreshes it.
//! Everything shown is what the asker's [`crate::view::Viewer`] lets them see.

use super::{foreign, names, Ctx, Handled};
use crate::command::{Args, Command, CommandSpec, ListKind, ParseError};
use crate::engine::{invalid, ok, sync_summary};
use crate::format::{self, page};
use crate::pool::{Closeness, PoolView};
use crate::reply::Response;
use crate::session::{Paging, Session};
use crate::view::{Lens, Viewer};
use opsbot_core::{Host, Vm};
use std::fmt::Write;

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
    "虚拟机[:页码]",
    "虚拟机列表",
    |a| listing(a, ListKind::Vms),
)
.example("虚拟机:2");
pub const HOSTS: CommandSpec = list(
    names::HOSTS,
    &["hosts"],
    "主机[:页码]",
    "物理主机列表",
    |a| listing(a, ListKind::Hosts),
)
.example("主机");
pub const DATASTORES: CommandSpec = list(
    names::DATASTORES,
    &["datastores", "ds"],
    "存储[:页码]",
    "存储容量与剩余",
    |a| listing(a, ListKind::Datastores),
)
.example("存储");
pub const NETWORKS: CommandSpec = list(
    names::NETWORKS,
    &["networks"],
    "网络[:页码]",
    "端口组与 VLAN",
    |a| listing(a, ListKind::Networks),
)
.example("网络");
pub const CLUSTERS: CommandSpec = list(
    names::CLUSTERS,
    &["clusters"],
    "集群[:页码]",
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
    Ok(Command::List {
        kind,
        page: a.page()?,
    })
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
                ok(format::overview(&overview, datacenter.as_deref(), &alerts))
            }
            Command::Find { keyword, page: n } => find(sess, &pool, view, &keyword, n),
            Command::List { kind, page: n } => {
                let name = Command::List { kind, page: n }.name();
                if kind == ListKind::Vms {
                    // Only the shown page is formatted: the pool may hold tens of thousands.
                    let vms = view.vms(&pool, Lens::VMS);
                    let (text, more) = page("虚拟机列表", &vms, n, |v| format::vm_line(v));
                    sess.paging = Some(Paging {
                        command: name.to_string(),
                        page: n.max(1),
                        last: !more,
                    });
                    return Ok(ok(text));
                }
                let lines: Vec<String> = match kind {
                    ListKind::Hosts => view
                        .hosts(&pool, Lens::HOSTS)
                        .into_iter()
                        .map(format::host_line)
                        .collect(),
                    ListKind::Datastores => view
                        .datastores(&pool, Lens::DATASTORES)
                        .into_iter()
                        .map(format::datastore_line)
                        .collect(),
                    ListKind::Networks => view
                        .networks(&pool, Lens::NETWORKS)
                        .into_iter()
                        .map(|n| {
                            let vlan = n
                                .vlan
                                .map(|v| format!("VLAN {v}"))
                                .unwrap_or_else(|| "-".into());
                            let kind = if n.kind == opsbot_core::NetworkKind::Distributed {
                                "分布式"
                            } else {
                                "标准"
                            };
                            format!("{} [{}] {vlan} {kind}", n.name, n.datacenter)
                        })
                        .collect(),
                    ListKind::Clusters => {
                        // A cluster's counts are of what the asker sees in it.
                        let hosts = view.hosts(&pool, Lens::CLUSTERS);
                        let see = view.vm_sight(Lens::CLUSTERS);
                        let vms: Vec<&Vm> = pool.vms().filter(|v| see(v)).collect();
                        view.clusters(&pool, Lens::CLUSTERS)
                            .into_iter()
                            .map(|c| {
                                let here = |p: &str, cl: &str| p == c.provider && cl == c.name;
                                let h = hosts
                                    .iter()
                                    .filter(|h| here(&h.provider, &h.cluster))
                                    .count();
                                let v =
                                    vms.iter().filter(|v| here(&v.provider, &v.cluster)).count();
                                format!("{} [{}] 主机 {h} · 虚拟机 {v}", c.name, c.datacenter)
                            })
                            .collect()
                    }
                    ListKind::Datacenters => view
                        .datacenters(&pool, Lens::DATACENTERS)
                        .into_iter()
                        .map(|d| format!("{} ({})", d.name, d.provider))
                        .collect(),
                    ListKind::Templates => view
                        .templates(&pool, Lens::TEMPLATES)
                        .into_iter()
                        .map(|t| format!("[{}] {} {}", t.number, t.name, t.guest_os))
                        .collect(),
                    _ => foreign(&cmd_of(kind, n)),
                };
                engine.list_reply(sess, name, n, lines)
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

fn cmd_of(kind: ListKind, page: u32) -> Command {
    Command::List { kind, page }
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
                "同步资源池".into(),
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

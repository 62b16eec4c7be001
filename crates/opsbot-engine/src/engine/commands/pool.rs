//! Reads of the resource pool (概况, 查, the object lists) and 同步, which refreshes it.
//! Everything shown is what the asker's [`crate::view::Viewer`] lets them see.

use super::{foreign, names, Ctx, Handled};
use crate::command::{Args, Command, CommandSpec, ListKind, ParseError};
use crate::engine::{invalid, ok, sync_summary};
use crate::format::{self, page};
use crate::session::Paging;
use crate::view::Lens;
use opsbot_core::Vm;

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
.runs(run);

pub const FIND: CommandSpec = CommandSpec::new(
    names::FIND,
    &["find", "查询", "search"],
    "查:关键字",
    "按名称、IP 或模糊匹配查找虚拟机和主机",
    |a| {
        a.count(1, 1)?;
        Ok(Command::Find { keyword: a.text(0) })
    },
)
.runs(run);

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
);
pub const HOSTS: CommandSpec = list(
    names::HOSTS,
    &["hosts"],
    "主机[:页码]",
    "物理主机列表",
    |a| listing(a, ListKind::Hosts),
);
pub const DATASTORES: CommandSpec = list(
    names::DATASTORES,
    &["datastores", "ds"],
    "存储[:页码]",
    "存储容量与剩余",
    |a| listing(a, ListKind::Datastores),
);
pub const NETWORKS: CommandSpec = list(
    names::NETWORKS,
    &["networks"],
    "网络[:页码]",
    "端口组与 VLAN",
    |a| listing(a, ListKind::Networks),
);
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
);

pub const SYNC: CommandSpec = CommandSpec::new(
    names::SYNC,
    &["sync"],
    "同步",
    "立即从各集群同步资源池",
    |a| a.count(0, 0).map(|_| Command::Sync),
)
.runs(sync);

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
            Command::Find { keyword } => {
                let mut vms: Vec<&Vm> = view.search(&pool, &keyword);
                vms.sort_by(|a, b| a.name.cmp(&b.name));
                let see = view.sight(Lens::FIND);
                let hosts: Vec<_> = pool
                    .search_hosts(&keyword)
                    .into_iter()
                    .filter(|h| see(&h.scope_path()))
                    .collect();
                match (vms.as_slice(), hosts.as_slice()) {
                    ([], []) => invalid(format!("没有找到与「{keyword}」匹配的虚拟机或主机")),
                    ([vm], []) => ok(format::vm_detail(vm)),
                    _ => {
                        let mut lines: Vec<String> =
                            vms.iter().map(|v| format::vm_line(v)).collect();
                        lines.extend(hosts.iter().map(|h| format!("🖥 {}", format::host_line(h))));
                        let title = format!("查找「{keyword}」");
                        ok(format::first_screen(&title, &lines, |l| l.clone()))
                    }
                }
            }
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

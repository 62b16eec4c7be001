//! The pool lists (虚拟机, 主机, 存储, 网络, 集群, 数据中心, 模板, 服务), filtered and
//! paged. Every list remembers itself, filters included, so 下一页 goes on with it.

use crate::command::{Command, ListKind};
use crate::engine::{invalid, ok, Engine};
use crate::filter::{host_matches, tag_matches, ListFilter, VmFilter};
use crate::format::{self, page};
use crate::pool::PoolView;
use crate::reply::Response;
use crate::services::{self, Service};
use crate::session::{Paging, Session};
use crate::view::{Lens, Viewer};
use opsbot_core::{NetworkKind, Vm};

/// Which list, with which filters.
pub(super) struct Listed<'f> {
    pub kind: ListKind,
    pub filter: &'f ListFilter,
}

impl Listed<'_> {
    /// The command that shows page 1 again (filters included): what 下一页 continues.
    fn command(&self) -> String {
        Command::List {
            kind: self.kind,
            page: 1,
            filter: self.filter.clone(),
        }
        .to_string()
    }

    /// `虚拟机列表`, or `虚拟机列表 · 关机,集群=Cluster-Prod`.
    fn title(&self, name: &str) -> String {
        if self.filter.is_empty() {
            format!("{name}列表")
        } else {
            format!("{name}列表 · {}", self.filter)
        }
    }
}

pub(super) fn list(
    engine: &Engine,
    view: &Viewer,
    pool: &PoolView,
    sess: &mut Session,
    listed: Listed<'_>,
    n: u32,
) -> Response {
    let f = listed.filter;
    let name = Command::List {
        kind: listed.kind,
        page: n,
        filter: ListFilter::default(),
    }
    .name();
    let title = listed.title(name);
    let lines: Vec<String> = match listed.kind {
        ListKind::Vms => {
            if let Some(problem) = unknown_names(view, pool, &f.vms, Lens::VMS) {
                return invalid(problem);
            }
            // Only the shown page is formatted: the pool may hold tens of thousands.
            // Unfiltered, the viewer's own list: no per-VM filter test (the usual case).
            let vms = if f.vms.is_empty() {
                view.vms(pool, Lens::VMS)
            } else {
                f.vms.apply(view, pool, Lens::VMS)
            };
            return paged(sess, &listed, &title, &vms, n, |v| format::vm_line(v));
        }
        ListKind::Services => return services(engine, view, pool, sess, &listed, n),
        ListKind::Hosts => view
            .hosts(pool, Lens::HOSTS)
            .into_iter()
            .filter(|h| f.host(h))
            .map(format::host_line)
            .collect(),
        ListKind::Datastores => view
            .datastores(pool, Lens::DATASTORES)
            .into_iter()
            .filter(|d| f.datastore(d))
            .map(format::datastore_line)
            .collect(),
        ListKind::Networks => view
            .networks(pool, Lens::NETWORKS)
            .into_iter()
            .filter(|n| f.in_datacenter(&n.datacenter))
            .map(|n| {
                let vlan = n
                    .vlan
                    .map(|v| format!("VLAN {v}"))
                    .unwrap_or_else(|| "-".into());
                let kind = if n.kind == NetworkKind::Distributed {
                    "分布式"
                } else {
                    "标准"
                };
                format!("{} [{}] {vlan} {kind}", n.name, n.datacenter)
            })
            .collect(),
        ListKind::Clusters => {
            // A cluster's counts are of what the asker sees in it.
            let hosts = view.hosts(pool, Lens::CLUSTERS);
            let see = view.vm_sight(Lens::CLUSTERS);
            let vms: Vec<&Vm> = pool.vms().filter(|v| see(v)).collect();
            view.clusters(pool, Lens::CLUSTERS)
                .into_iter()
                .filter(|c| f.in_datacenter(&c.datacenter))
                .map(|c| {
                    let here = |p: &str, cl: &str| p == c.provider && cl == c.name;
                    let h = hosts
                        .iter()
                        .filter(|h| here(&h.provider, &h.cluster))
                        .count();
                    let v = vms.iter().filter(|v| here(&v.provider, &v.cluster)).count();
                    format!("{} [{}] 主机 {h} · 虚拟机 {v}", c.name, c.datacenter)
                })
                .collect()
        }
        ListKind::Datacenters => view
            .datacenters(pool, Lens::DATACENTERS)
            .into_iter()
            .map(|d| format!("{} ({})", d.name, d.provider))
            .collect(),
        ListKind::Templates => {
            // Numbered by the template's own number, the one 克隆 takes.
            let templates = view.templates(pool, Lens::TEMPLATES);
            let (text, more) = format::page_by_number(
                &title,
                &templates,
                n,
                |t| t.number,
                |t| format!("{} {}", t.name, t.guest_os),
            );
            return remember(sess, &listed, n, text, more);
        }
        ListKind::Alerts | ListKind::DeadLetters | ListKind::Jobs => {
            unreachable!("{name} is not a pool list")
        }
    };
    paged(sess, &listed, &title, &lines, n, |l| l.clone())
}

/// One page of `items`, remembered for 下一页 with the list's filters.
fn paged<T>(
    sess: &mut Session,
    listed: &Listed<'_>,
    title: &str,
    items: &[T],
    n: u32,
    line: impl Fn(&T) -> String,
) -> Response {
    let (text, more) = page(title, items, n, line);
    remember(sess, listed, n, text, more)
}

/// Answers with one page of a list and remembers it for 下一页.
fn remember(sess: &mut Session, listed: &Listed<'_>, n: u32, text: String, more: bool) -> Response {
    sess.paging = Some(Paging {
        command: listed.command(),
        page: n.max(1),
        last: !more,
    });
    ok(text)
}

/// 服务: the services with how many of their VMs are up; 服务:名称: that service's VMs.
fn services(
    engine: &Engine,
    view: &Viewer,
    pool: &PoolView,
    sess: &mut Session,
    listed: &Listed<'_>,
    n: u32,
) -> Response {
    let key = engine.settings.service_tag.as_str();
    let f = listed.filter;
    if let Some(problem) = unknown_names(view, pool, &f.vms, Lens::SERVICES) {
        return invalid(problem);
    }
    let vms = f.vms.apply(view, pool, Lens::SERVICES);
    let all: Vec<Service<'_>> = services::services(vms.iter().copied(), key);
    let Some(wanted) = &f.service else {
        let title = listed.title(crate::commands::names::SERVICES);
        return paged(sess, listed, &title, &all, n, |s| service_line(s));
    };
    let Some(service) = services::find(&all, wanted) else {
        // Named among every service the asker sees, not only those the filters leave.
        let every = services::services(view.vms(pool, Lens::SERVICES), key);
        let names: Vec<&str> = every.iter().map(|s| s.name.as_str()).collect();
        return invalid(
            if every.iter().any(|s| s.name.eq_ignore_ascii_case(wanted)) {
                format!("服务「{wanted}」没有符合条件的虚拟机")
            } else if names.is_empty() {
                format!("没有服务「{wanted}」:没有虚拟机带「{key}:」标签")
            } else {
                format!("没有服务「{wanted}」;现有: {}", names.join("、"))
            },
        );
    };
    let title = format!(
        "服务 {} · {}/{} 开机{}",
        service.name,
        service.up(),
        service.vms.len(),
        if f.vms.is_empty() {
            String::new()
        } else {
            let mut rest = f.clone();
            rest.service = None;
            format!(" · {rest}")
        }
    );
    paged(sess, listed, &title, &service.vms, n, |v| {
        format::vm_line(v)
    })
}

/// `erp 3/4 开机 ⚠ 1 台未开机`.
pub(crate) fn service_line(s: &Service<'_>) -> String {
    let (up, all) = (s.up(), s.vms.len());
    if up == all {
        format!("{} {up}/{all} 开机", s.name)
    } else {
        format!("{} {up}/{all} 开机 ⚠ {} 台未开机", s.name, all - up)
    }
}

/// A placement, datastore, network or tag no visible object has: say so, with the
/// names there are, instead of an empty list that looks like "nothing is wrong".
fn unknown_names(view: &Viewer, pool: &PoolView, f: &VmFilter, lens: Lens) -> Option<String> {
    fn choose<'a>(what: &str, wanted: &str, have: impl Iterator<Item = &'a str>) -> String {
        let mut names: Vec<&str> = have.collect();
        names.sort_unstable();
        names.dedup();
        let more = names.len() > 12;
        names.truncate(12);
        format!(
            "没有{what}「{wanted}」;现有: {}{}",
            if names.is_empty() {
                "(无)".to_string()
            } else {
                names.join("、")
            },
            if more { "…" } else { "" }
        )
    }
    if let Some(dc) = &f.datacenter {
        let seen = view.datacenters(pool, lens);
        if !seen.iter().any(|d| d.name.eq_ignore_ascii_case(dc)) {
            return Some(choose("数据中心", dc, seen.iter().map(|d| d.name.as_str())));
        }
    }
    if let Some(c) = &f.cluster {
        let seen = view.clusters(pool, lens);
        if !seen.iter().any(|x| x.name.eq_ignore_ascii_case(c)) {
            return Some(choose("集群", c, seen.iter().map(|x| x.name.as_str())));
        }
    }
    if let Some(h) = &f.host {
        // The hosts seen, and those the VMs seen sit on.
        let hosts = view.hosts(pool, lens);
        let vms = view.vms(pool, lens);
        let mut seen = hosts
            .iter()
            .map(|x| x.name.as_str())
            .chain(vms.iter().map(|v| v.host.as_str()));
        if !seen.clone().any(|x| host_matches(x, h)) {
            return Some(choose("主机", h, &mut seen));
        }
    }
    if let Some(d) = &f.datastore {
        let seen = view.datastores(pool, lens);
        if !seen.iter().any(|x| x.name.eq_ignore_ascii_case(d)) {
            return Some(choose("存储", d, seen.iter().map(|x| x.name.as_str())));
        }
    }
    if let Some(n) = &f.network {
        let seen = view.networks(pool, lens);
        if !seen.iter().any(|x| x.name.eq_ignore_ascii_case(n)) {
            return Some(choose("网络", n, seen.iter().map(|x| x.name.as_str())));
        }
    }
    if !f.tags.is_empty() {
        let vms = view.vms(pool, lens);
        for t in &f.tags {
            if !vms
                .iter()
                .any(|v| v.tags.iter().any(|has| tag_matches(has, t)))
            {
                let have = || vms.iter().flat_map(|v| v.tags.iter().map(String::as_str));
                // The values of the category asked for, when it has any.
                let category = t.split_once(':').map(|(c, _)| c);
                let same = |has: &&str| category.is_some_and(|c| tag_matches(has, c));
                return Some(if have().any(|h| same(&h)) {
                    choose("虚拟机带标签", t, have().filter(same))
                } else {
                    choose("虚拟机带标签", t, have())
                });
            }
        }
    }
    None
}

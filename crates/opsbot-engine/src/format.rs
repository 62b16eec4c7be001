//! Replies sized for a phone screen: short lines, lists cut into pages.

use crate::view::Overview;
use crate::words;
use opsbot_core::{Datastore, Host, JobRecord, PowerState, Vm};
use std::fmt::Write;

/// Items per page of a list reply.
pub const PAGE_SIZE: usize = 10;

/// One page of `items` rendered with `line`, with a footer telling how to go on.
pub fn page<T>(title: &str, items: &[T], page: u32, line: impl Fn(&T) -> String) -> (String, bool) {
    let pages = items.len().div_ceil(PAGE_SIZE).max(1);
    let page = (page as usize).clamp(1, pages);
    let start = (page - 1) * PAGE_SIZE;
    let lines: Vec<String> = items.iter().skip(start).take(PAGE_SIZE).map(line).collect();
    paged(title, items.len() as u64, page as u32, &lines)
}

/// [`page`] for items that carry their own number (templates: `克隆:2,…` names template
/// 2), shown instead of the position, so a list never has two numberings.
pub fn page_by_number<T>(
    title: &str,
    items: &[T],
    page: u32,
    number: impl Fn(&T) -> u32,
    line: impl Fn(&T) -> String,
) -> (String, bool) {
    let pages = items.len().div_ceil(PAGE_SIZE).max(1);
    let page = (page as usize).clamp(1, pages);
    let shown = items.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE);
    let lines: Vec<(u64, String)> = shown.map(|t| (u64::from(number(t)), line(t))).collect();
    numbered(title, items.len() as u64, page as u32, &lines)
}

/// Page `page` of a list of `total` items whose lines for that page were fetched
/// elsewhere (a store query), with the same header, numbering and footer as [`page`].
pub fn paged(title: &str, total: u64, page: u32, lines: &[String]) -> (String, bool) {
    let pages = total.div_ceil(PAGE_SIZE as u64).max(1);
    let start = (u64::from(page).clamp(1, pages) - 1) * PAGE_SIZE as u64;
    let lines: Vec<(u64, String)> = (start + 1..)
        .zip(lines.iter().take(PAGE_SIZE).cloned())
        .collect();
    numbered(title, total, page, &lines)
}

fn numbered(title: &str, total: u64, page: u32, lines: &[(u64, String)]) -> (String, bool) {
    let pages = total.div_ceil(PAGE_SIZE as u64).max(1);
    let page = u64::from(page).clamp(1, pages);
    let mut out = format!("【{title}】共 {total} 个");
    if pages > 1 {
        let _ = write!(out, ",第 {page}/{pages} 页");
    }
    for (n, line) in lines {
        let _ = write!(out, "\n{n}. {line}");
    }
    if total == 0 {
        out.push_str("\n(无)");
    }
    let more = page < pages;
    if more {
        out.push_str("\n发送 下一页 查看更多");
    }
    (out, more)
}

pub fn vm_line(v: &Vm) -> String {
    let ip = v
        .guest_ip
        .as_deref()
        .or(v.ips.first().map(String::as_str))
        .unwrap_or("-");
    let mark = match v.power {
        PowerState::PoweredOn => "🟢",
        PowerState::PoweredOff => "⚪",
        PowerState::Suspended => "🟡",
    };
    format!(
        "{mark}{} {}C/{} {ip}",
        v.name,
        v.cpu,
        fmt_memory(v.memory_mb, "")
    )
}

/// Memory (in MiB, as providers report it) as a phone shows it: `8GiB`, `1.5GiB`, or
/// `512MiB` below one GiB (`sep` goes between number and unit). Sizes are binary and
/// labelled so everywhere: chat, the web UI and the CMDB card.
pub fn fmt_memory(mb: u64, sep: &str) -> String {
    if mb < 1024 {
        format!("{mb}{sep}MiB")
    } else if mb.is_multiple_of(1024) {
        format!("{}{sep}GiB", mb / 1024)
    } else {
        format!("{:.1}{sep}GiB", mb as f64 / 1024.0)
    }
}

pub fn host_line(h: &Host) -> String {
    let state = if h.connection_state == "connected" {
        "在线".to_string()
    } else {
        format!("⚠{}", words::host_state(&h.connection_state))
    };
    format!(
        "{} {} {}核 {} {}",
        h.name,
        if h.cluster.is_empty() {
            "-"
        } else {
            &h.cluster
        },
        h.cpu_cores,
        fmt_memory(h.memory_mb, ""),
        state
    )
}

pub fn datastore_line(d: &Datastore) -> String {
    format!(
        "{} [{}] {} 已用 {}% · 剩余 {} / 共 {}",
        d.name,
        d.datacenter,
        d.kind,
        used_percent(d.free_gb, d.capacity_gb),
        fmt_size(d.free_gb),
        fmt_size(d.capacity_gb),
    )
}

/// A size in GiB (datastores, disks): `500 GiB`, or `3.3 TiB` from one TiB up.
pub fn fmt_size(gb: u64) -> String {
    if gb >= 1024 {
        format!("{:.1} TiB", gb as f64 / 1024.0)
    } else {
        format!("{gb} GiB")
    }
}

pub fn percent(part: u64, whole: u64) -> u64 {
    (part * 100).checked_div(whole).unwrap_or(0)
}

/// The used share of a capacity of which `free` is left, in whole percent (rounded).
/// Every percentage a user reads says whether it is used or free; the web's bars show
/// the used share, so chat says 已用 with the same number.
pub fn used_percent(free: u64, capacity: u64) -> u64 {
    let used = capacity.saturating_sub(free);
    (used * 100 + capacity / 2)
        .checked_div(capacity)
        .unwrap_or(0)
}

/// The detail card of one VM.
pub fn vm_detail(v: &Vm) -> String {
    let mut out = format!(
        "【{}】{}\n位置: {}/{}/{}\n主机: {}\n配置: {} CPU / {} 内存 / 磁盘 {}\n系统: {}\nIP: {}\nVMware Tools: {}",
        v.name,
        v.power.label(),
        v.provider,
        v.datacenter,
        v.cluster,
        v.host,
        v.cpu,
        fmt_memory(v.memory_mb, " "),
        fmt_size(v.disk_total_gb()),
        if v.guest_os.is_empty() { "-" } else { &v.guest_os },
        if v.ips.is_empty() { "-".to_string() } else { v.ips.join(", ") },
        words::tools(&v.tools_status)
    );
    if !v.tags.is_empty() {
        let _ = write!(out, "\n标签: {}", v.tags.join(" "));
    }
    for n in &v.nics {
        let _ = write!(out, "\n{}", words::nic(n));
    }
    for d in &v.disks {
        let _ = write!(out, "\n{}", words::disk(d));
    }
    if v.template {
        out.push_str("\n(模板)");
    }
    out
}

/// The 概况 reply: everything an engineer glances at first, over what the asker sees.
/// `service_tag` is the tag key services are read from (`app`).
pub fn overview(
    o: &Overview<'_>,
    datacenter: Option<&str>,
    alerts: &str,
    service_tag: &str,
) -> String {
    let (vms, on) = (o.vms.len(), o.vms_on());
    let (cap, free) = (o.capacity_gb(), o.free_gb());
    let hosts_up = o.hosts_up();
    let title = datacenter
        .map(|d| format!("【资源概况 · {d}】"))
        .unwrap_or_else(|| "【资源概况】".into());
    let services = o.services(service_tag);
    let degraded: Vec<_> = services.iter().filter(|s| s.up() < s.vms.len()).collect();
    let mut out = format!(
        "{title}\n数据中心 {} · 集群 {} · 主机 {}({hosts_up} 在线)\n虚拟机 {vms}: 开机 {on} / 关机 {} · 模板 {}\n已分配 {} vCPU / {} 内存\n存储 {} 个: 容量 {},已用 {}%,剩余 {}\n网络 {} 个端口组",
        o.datacenters.len(),
        o.clusters.len(),
        o.hosts.len(),
        vms - on,
        o.templates,
        o.vcpu(),
        fmt_memory(o.vmem_mb(), " "),
        o.datastores.len(),
        fmt_size(cap),
        used_percent(free, cap),
        fmt_size(free),
        o.networks.len(),
    );
    if !services.is_empty() {
        let _ = write!(out, "\n服务 {} 个", services.len());
        if degraded.is_empty() {
            out.push_str(" · 虚拟机全部开机");
        } else {
            let _ = write!(out, " · {} 个有虚拟机未开机", degraded.len());
        }
    }
    for h in o.hosts.iter().filter(|h| h.connection_state != "connected") {
        let _ = write!(
            out,
            "\n⚠ 主机 {} {}",
            h.name,
            words::host_state(&h.connection_state)
        );
        match o.vms_on_host(h) {
            0 => out.push_str(" · 其上没有虚拟机"),
            n => {
                // The short name when it names this host alone: shorter to type.
                let short = h.name.split('.').next().unwrap_or(&h.name);
                let unique = o
                    .hosts
                    .iter()
                    .filter(|x| crate::filter::host_matches(&x.name, short))
                    .count()
                    == 1;
                let name = if unique { short } else { h.name.as_str() };
                let _ = write!(out, " · 虚拟机:主机={name} 查看其上 {n} 台虚拟机");
            }
        }
    }
    for d in o
        .datastores
        .iter()
        .filter(|d| percent(d.free_gb, d.capacity_gb) < crate::filter::LOW_FREE_PERCENT)
    {
        let _ = write!(
            out,
            "\n⚠ 存储 {} 剩余仅 {}%",
            d.name,
            percent(d.free_gb, d.capacity_gb)
        );
    }
    // A handful of services by name; the rest are one command away.
    const SHOWN: usize = 5;
    for s in degraded.iter().take(SHOWN) {
        let down = s.vms.len() - s.up();
        let _ = write!(
            out,
            "\n⚠ 服务 {} {}/{} 开机 · 服务:{},关机 查看未开机的 {down} 台",
            s.name,
            s.up(),
            s.vms.len(),
            s.name
        );
    }
    if degraded.len() > SHOWN {
        let _ = write!(
            out,
            "\n…另有 {} 个服务有虚拟机未开机(发送 服务 查看)",
            degraded.len() - SHOWN
        );
    }
    let _ = write!(out, "\n告警: {alerts}");
    out
}

/// One job in `任务`: times in `zone`, which the list's title names.
pub fn job_line(j: &JobRecord, zone: &opsbot_core::Zone) -> String {
    let local = zone.format(j.created_at, "%m-%d %H:%M");
    let progress = if j.state.is_final() {
        String::new()
    } else {
        format!(" {}%", j.progress)
    };
    format!(
        "#{} {} {}{progress} {local} {}",
        j.id.0,
        j.command,
        j.state.label(),
        truncate(&j.message, 40)
    )
}

/// A duration as chat says it: `30 秒`, `10 分钟`, `1 分 30 秒`, `2 小时 5 分钟`.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    match (h, m, sec) {
        (0, 0, sec) => format!("{sec} 秒"),
        (0, m, 0) => format!("{m} 分钟"),
        (0, m, sec) => format!("{m} 分 {sec} 秒"),
        (h, 0, 0) => format!("{h} 小时"),
        (h, m, 0) => format!("{h} 小时 {m} 分钟"),
        (h, m, sec) => format!("{h} 小时 {m} 分 {sec} 秒"),
    }
}

pub fn truncate(s: &str, chars: usize) -> String {
    if s.chars().count() <= chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(chars).collect();
        t.push('…');
        t
    }
}

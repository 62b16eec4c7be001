//! Every sentence of the CMDB's answers: the asset card (`资产:主机名`) and the change
//! list (`变更:主机名`), formatted for a phone (Chinese, short lines). The asset desk
//! reports data (`opsbot_core::AssetCard`, `opsbot_core::Change`); wording lives here,
//! and [`crate::chat`] answers with it.

use chrono::{DateTime, Utc};
use opsbot_core::asset::{Problem, ProblemKind};
use opsbot_core::{Asset, AssetCard, AssetStatus, Change, Zone};
use std::fmt::Write;
use std::time::Duration;

/// `1.5 GiB`, `512 MiB`, `2.0 TiB`: binary sizes, labelled as such.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if v >= 100.0 || (v - v.round()).abs() < 0.05 {
        format!("{:.0} {}", v, UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `3 天 4 小时`, `5 分钟`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if days > 0 {
        format!("{days} 天 {hours} 小时")
    } else if hours > 0 {
        format!("{hours} 小时 {mins} 分钟")
    } else {
        format!("{} 分钟", mins.max(if s > 0 { 1 } else { 0 }))
    }
}

/// Lines shown per list before `… 另 N 个`.
const MAX_LINES: usize = 4;

/// The asset card. Pure (time passed in) so it can be snapshot-tested.
pub fn card(c: &AssetCard, now: DateTime<Utc>, zone: &Zone) -> String {
    let (asset, facts, report, stale_after) =
        (&c.asset, &c.facts, c.collected.as_ref(), c.stale_after);
    let f = |k: &str| facts.get(k).map(String::as_str).unwrap_or("");
    let mut out = String::new();
    let age = (now - asset.last_seen).to_std().unwrap_or_default();
    let stale = asset.status == AssetStatus::Stale || age > stale_after;
    let via = match asset.source.as_str() {
        "ssh" => "SSH 采集",
        "salt" => "Salt 采集",
        _ => "agent",
    };
    let named = is_named(asset);
    let title = title(asset);
    let _ = writeln!(
        out,
        "【资产 {title}】{} · {via}",
        if stale { "⚠ 失联" } else { "在线" }
    );
    if asset.identity != asset.hostname {
        if named {
            let _ = writeln!(out, "主机名: {}", asset.hostname);
        } else {
            let _ = writeln!(out, "标识: {}(主机已改名)", asset.identity);
        }
    }
    let os = if f("os.pretty_name").is_empty() {
        f("os.name")
    } else {
        f("os.pretty_name")
    };
    if !os.is_empty() || !f("os.kernel").is_empty() {
        let _ = writeln!(out, "系统: {os} · 内核 {} {}", f("os.kernel"), f("os.arch"));
    }
    if !f("cpu.threads").is_empty() {
        let _ = writeln!(
            out,
            "CPU: {} · {} 路 {} 核 {} 线程",
            f("cpu.model"),
            f("cpu.sockets"),
            f("cpu.cores"),
            f("cpu.threads")
        );
    }
    if let Ok(total) = f("memory.total_bytes").parse::<u64>() {
        let swap = f("memory.swap_bytes").parse::<u64>().unwrap_or(0);
        let _ = writeln!(out, "内存: {} · 交换 {}", bytes(total), bytes(swap));
    }
    let mut list = |title: &str, lines: Vec<String>| {
        for (i, l) in lines.iter().take(MAX_LINES).enumerate() {
            let _ = writeln!(
                out,
                "{}{l}",
                if i == 0 {
                    format!("{title}: ")
                } else {
                    "  ".into()
                }
            );
        }
        if lines.len() > MAX_LINES {
            let _ = writeln!(out, "  … 另 {} 个", lines.len() - MAX_LINES);
        }
    };
    if let Some(r) = report {
        list(
            "磁盘",
            r.disks
                .iter()
                .map(|d| {
                    let mut l = format!("{} {}", d.name, bytes(d.size_bytes));
                    if let Some(m) = &d.model {
                        let _ = write!(l, " {m}");
                    }
                    if let Some(s) = &d.serial {
                        let _ = write!(l, " SN {s}");
                    }
                    l
                })
                .collect(),
        );
        list(
            "文件系统",
            r.filesystems
                .iter()
                .map(|fs| match (fs.size_bytes, fs.used_bytes) {
                    (Some(size), Some(used)) if size > 0 => format!(
                        "{} {} 已用 {}%",
                        fs.mount,
                        bytes(size),
                        (used as f64 * 100.0 / size as f64).round()
                    ),
                    _ => format!("{} {}", fs.mount, fs.fstype),
                })
                .collect(),
        );
        list(
            "网卡",
            r.nics
                .iter()
                .map(|n| {
                    let mut l = format!("{} {}", n.name, n.mac);
                    for ip in &n.ipv4 {
                        let _ = write!(l, " {ip}");
                    }
                    match n.speed_mbps {
                        Some(s) => {
                            let _ = write!(l, " {s} Mb/s");
                        }
                        None if n.state != "up" && !n.state.is_empty() => {
                            let _ = write!(l, " ({})", n.state);
                        }
                        None => {}
                    }
                    l
                })
                .collect(),
        );
    }
    let vendor = [f("board.sys_vendor"), f("board.product_name")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !vendor.is_empty() || !f("board.product_serial").is_empty() {
        let mut l = format!("型号: {vendor}");
        if !f("board.product_serial").is_empty() {
            let _ = write!(l, " · SN {}", f("board.product_serial"));
        }
        let _ = writeln!(out, "{l}");
    }
    if !f("board.product_uuid").is_empty() {
        let _ = writeln!(out, "UUID: {}", f("board.product_uuid"));
    }
    if let Some(vm) = &asset.vm {
        let _ = writeln!(out, "虚拟机: {}({})", vm.name, vm.scope_path);
    }
    if let Some(r) = report {
        if !r.plugins.is_empty() {
            let names: Vec<String> = r
                .plugins
                .iter()
                .map(|n| {
                    let count = facts
                        .keys()
                        .filter(|k| k.starts_with(&format!("plugin.{n}.")))
                        .count();
                    format!("{n}({count} 项)")
                })
                .collect();
            let _ = writeln!(out, "插件: {}", names.join("、"));
        }
        if let Some(up) = r.uptime_secs {
            let _ = writeln!(out, "已运行: {}", span(Duration::from_secs(up)));
        }
    }
    let _ = writeln!(
        out,
        "最近上报: {}({}前) · agent {}",
        zone.stamp(asset.last_seen),
        span(age),
        f("agent.version")
    );
    if let Some(r) = report {
        for p in r.problems.iter().take(3) {
            let _ = writeln!(out, "⚠ {}", problem(p));
        }
        if r.problems.len() > 3 {
            let _ = writeln!(out, "⚠ … 另 {} 项采集问题", r.problems.len() - 3);
        }
    }
    if stale {
        let _ = writeln!(
            out,
            "⚠ 已 {} 未上报(超过 {}),请检查主机和 agent",
            span(age),
            span(stale_after)
        );
    }
    let _ = write!(out, "发送 变更:{title} 查看变更记录");
    out
}

/// What a collector or plug-in could not do, for the card.
pub fn problem(p: &Problem) -> String {
    let what = p.path.as_deref().unwrap_or(&p.collector);
    match p.kind {
        ProblemKind::Denied => format!("无权读取 {what}(以 root 运行 agent 可读取)"),
        ProblemKind::Unreadable => format!("无法读取 {what}: {}", p.message),
        ProblemKind::Timeout => format!("插件 {} 超时: {}", p.plugin_name(), p.message),
        ProblemKind::Failed => format!("插件 {} 失败: {}", p.plugin_name(), p.message),
        ProblemKind::Garbage => format!("插件 {} 输出无效: {}", p.plugin_name(), p.message),
        ProblemKind::Skipped => format!("已跳过 {what}: {}", p.message),
    }
}

/// A value as the change list shows it: bytes humanised, long text cut.
fn shown(field: &str, v: Option<&str>) -> String {
    let Some(v) = v else {
        return "∅".into();
    };
    if field.ends_with("_bytes") {
        if let Ok(n) = v.parse::<u64>() {
            return bytes(n);
        }
    }
    let mut s: String = v.chars().take(40).collect();
    if v.chars().count() > 40 {
        s.push('…');
    }
    s
}

/// A fact key in words (`disk.sda.size_bytes` → `磁盘 sda 容量`); unknown keys as they are.
pub fn label(field: &str) -> String {
    let fixed = match field {
        "os.pretty_name" => "系统",
        "os.name" => "系统名称",
        "os.id" => "系统 ID",
        "os.version_id" => "系统版本",
        "os.kernel" => "内核",
        "os.arch" => "架构",
        "cpu.model" => "CPU 型号",
        "cpu.sockets" => "CPU 路数",
        "cpu.cores" => "CPU 核数",
        "cpu.threads" => "CPU 线程数",
        "memory.total_bytes" => "内存",
        "memory.swap_bytes" => "交换分区",
        "agent.version" => "agent 版本",
        "vm" => "关联虚拟机",
        "token" => "agent 令牌",
        "board.product_serial" => "序列号",
        "board.product_uuid" => "系统 UUID",
        "board.product_name" => "型号",
        "board.sys_vendor" => "厂商",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.into();
    }
    let parts: Vec<&str> = field.split('.').collect();
    let attr = |a: &str| -> String {
        match a {
            "size_bytes" => "容量".into(),
            "model" => "型号".into(),
            "serial" => "序列号".into(),
            "mac" => "MAC".into(),
            "ipv4" => "IPv4".into(),
            "ipv6" => "IPv6".into(),
            "speed_mbps" => "速率(Mb/s)".into(),
            "state" => "状态".into(),
            "device" => "设备".into(),
            "fstype" => "类型".into(),
            other => other.into(),
        }
    };
    match parts.as_slice() {
        ["disk", name, a] => format!("磁盘 {name} {}", attr(a)),
        ["nic", name, a] => format!("网卡 {name} {}", attr(a)),
        ["fs", .., a] if parts.len() >= 3 => {
            format!(
                "文件系统 {} {}",
                parts[1..parts.len() - 1].join("."),
                attr(a)
            )
        }
        ["plugin", name, rest @ ..] => format!("插件 {name} {}", rest.join(".")),
        _ => field.into(),
    }
}

/// An SSH target is known by its configured name and a Salt minion by its minion id;
/// an agent's host by its hostname now (its identity is the name it first reported).
fn is_named(asset: &Asset) -> bool {
    matches!(asset.source.as_str(), "ssh" | "salt")
}

/// The name an asset is shown under (see [`is_named`]).
fn title(asset: &Asset) -> &str {
    if is_named(asset) {
        &asset.identity
    } else {
        &asset.hostname
    }
}

/// The change list (`变更:主机名`), newest first as the desk gives it.
pub fn changes(asset: &Asset, changes: &[Change], zone: &Zone) -> String {
    if changes.is_empty() {
        return format!("【{} 变更记录】暂无变更", title(asset));
    }
    let mut out = format!(
        "【{} 最近变更】{} 条,新的在前,时间 {}",
        title(asset),
        changes.len(),
        zone.label(changes[0].at)
    );
    for c in changes {
        let line = match c.field.as_str() {
            "created" => format!("首次上报({})", c.new_value.as_deref().unwrap_or("")),
            "status" if c.new_value.as_deref() == Some("stale") => "⚠ 标记为失联".to_string(),
            "status" => "恢复上报".to_string(),
            "hostname" => format!(
                "改名 {} → {}",
                shown("", c.old_value.as_deref()),
                shown("", c.new_value.as_deref())
            ),
            field => format!(
                "{}: {} → {}",
                label(field),
                shown(field, c.old_value.as_deref()),
                shown(field, c.new_value.as_deref())
            ),
        };
        let _ = write!(
            out,
            "\n{} {line}({})",
            zone.format(c.at, "%m-%d %H:%M"),
            c.source
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use opsbot_core::asset::{Collected, Disk, Filesystem, Nic};
    use opsbot_core::Facts;

    fn asset(hostname: &str, at: DateTime<Utc>) -> Asset {
        Asset {
            id: 1,
            identity: "db-01".into(),
            hostname: hostname.into(),
            source: "agent".into(),
            status: AssetStatus::Active,
            token_id: "t1".into(),
            vm: None,
            first_seen: at,
            last_seen: at,
        }
    }

    /// What the CMDB's `server` fixture (a Dell R740 database host) reports, with the
    /// filesystems' usage fixed.
    fn server(hostname: &str, at: DateTime<Utc>) -> AssetCard {
        let facts: Facts = [
            ("os.pretty_name", "Debian GNU/Linux 12 (bookworm)"),
            ("os.name", "Debian GNU/Linux"),
            ("os.kernel", "6.1.0-18-amd64"),
            ("os.arch", "x86_64"),
            ("cpu.model", "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"),
            ("cpu.sockets", "2"),
            ("cpu.cores", "4"),
            ("cpu.threads", "8"),
            ("memory.total_bytes", "270179188736"),
            ("memory.swap_bytes", "8589930496"),
            ("board.sys_vendor", "Dell Inc."),
            ("board.product_name", "PowerEdge R740"),
            ("board.product_serial", "8XYZ123"),
            ("board.product_uuid", "4c4c4544-0058-5910-8033-b8c04f313233"),
            ("agent.version", "0.1.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let disk = |name: &str, sectors: u64, model: &str, serial: &str| Disk {
            name: name.into(),
            size_bytes: sectors * 512,
            model: Some(model.into()),
            serial: Some(serial.into()),
            ..Disk::default()
        };
        let fs = |mount: &str| Filesystem {
            mount: mount.into(),
            size_bytes: Some(100 << 30),
            used_bytes: Some(62 << 30),
            ..Filesystem::default()
        };
        let nic = |name: &str, mac: &str, ipv4: &[&str], speed: Option<u64>, state: &str| Nic {
            name: name.into(),
            mac: mac.into(),
            ipv4: ipv4.iter().map(|s| s.to_string()).collect(),
            speed_mbps: speed,
            state: state.into(),
            ..Nic::default()
        };
        AssetCard {
            asset: asset(hostname, at),
            facts,
            collected: Some(Collected {
                disks: vec![
                    disk(
                        "nvme0n1",
                        3_750_748_848,
                        "SAMSUNG MZQL23T8HCLS-00A07",
                        "S64HNE0R123456",
                    ),
                    disk("sda", 937_703_088, "INTEL SSDSC2KB48", "BTYF0123456789"),
                ],
                filesystems: vec![
                    fs("/"),
                    fs("/var/lib/mysql"),
                    fs("/boot/efi"),
                    fs("/mnt/backup disk"),
                ],
                nics: vec![
                    nic(
                        "eth0",
                        "b8:ca:3a:6e:10:20",
                        &["10.20.30.41/24", "10.20.30.42/24"],
                        Some(10_000),
                        "up",
                    ),
                    nic("eth1", "b8:ca:3a:6e:10:21", &[], None, "down"),
                ],
                plugins: vec![],
                uptime_secs: Some(1_049_000),
                problems: vec![],
            }),
            stale_after: Duration::from_secs(86_400),
        }
    }

    #[test]
    fn card_of_a_server() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 40, 0).unwrap();
        let now = at + chrono::Duration::minutes(3);
        let text = card(&server("db-01", at), now, &shanghai());
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_salt_minion_is_titled_by_its_minion_id_and_says_salt() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 40, 0).unwrap();
        let mut c = server("db-01.example.com", at);
        c.asset.source = "salt".into();
        let text = card(&c, at, &shanghai());
        assert!(text.starts_with("【资产 db-01】在线 · Salt 采集"), "{text}");
        assert!(text.contains("主机名: db-01.example.com"), "{text}");
    }

    #[test]
    fn card_of_a_stale_renamed_host() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 40, 0).unwrap();
        let mut c = server("db-02", at);
        c.collected.as_mut().unwrap().problems.push(Problem::new(
            "board",
            ProblemKind::Denied,
            Some("/sys/class/dmi/id/product_serial"),
            "permission denied".into(),
        ));
        let now = at + chrono::Duration::days(3);
        let text = card(&c, now, &shanghai());
        assert!(text.contains("⚠ 失联"), "{text}");
        assert!(text.contains("标识: db-01(主机已改名)"), "{text}");
        assert!(
            text.contains("无权读取 /sys/class/dmi/id/product_serial"),
            "{text}"
        );
        assert!(text.contains("已 3 天 0 小时 未上报"), "{text}");
    }

    #[test]
    fn change_list() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 40, 0).unwrap();
        let c = |field: &str, old: Option<&str>, new: Option<&str>| Change {
            id: 0,
            at,
            provider: "cmdb".into(),
            object_kind: "asset".into(),
            object_id: "db-01".into(),
            object_name: "db-01".into(),
            field: field.into(),
            old_value: old.map(str::to_string),
            new_value: new.map(str::to_string),
            source: "agent:t1".into(),
        };
        let text = changes(
            &asset("db-01", at),
            &[
                c(
                    "memory.total_bytes",
                    Some("17179869184"),
                    Some("34359738368"),
                ),
                c("hostname", Some("db-01"), Some("db-02")),
                c("status", Some("active"), Some("stale")),
                c("disk.sdb.size_bytes", None, Some("1000204886016")),
                c("created", None, Some("db-01")),
            ],
            &shanghai(),
        );
        insta::assert_snapshot!(text);
        assert_eq!(label("plugin.raid.ctl.fw"), "插件 raid ctl.fw");
        assert_eq!(
            label("fs./var/lib.x.size_bytes"),
            "文件系统 /var/lib.x 容量"
        );
        assert_eq!(label("something.else"), "something.else");
    }

    #[test]
    fn byte_sizes_read_naturally() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(16 << 30), "16 GiB");
        assert_eq!(bytes(1536 << 20), "1.5 GiB");
        assert_eq!(bytes(263_846_864 * 1024), "252 GiB");
        // 25.3 decimal GB is 23.5 binary GiB, and says so.
        assert_eq!(bytes(25_276_194_816), "23.5 GiB");
        assert_eq!(bytes(3 << 40), "3 TiB");
    }

    fn shanghai() -> Zone {
        Zone::parse("Asia/Shanghai").unwrap()
    }

    #[test]
    fn times_name_their_zone() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 40, 0).unwrap();
        let c = server("db-01", at);
        let utc = Zone::parse("UTC").unwrap();
        let text = card(&c, at, &utc);
        assert!(text.contains("最近上报: 12-01 00:40 UTC("), "{text}");
        let kolkata = Zone::parse("Asia/Kolkata").unwrap();
        let text = card(&c, at, &kolkata);
        assert!(text.contains("最近上报: 12-01 06:10 UTC+5:30("), "{text}");
    }
}

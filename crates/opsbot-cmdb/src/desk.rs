//! The asset desk: `资产:主机名` and `变更:主机名` for the chat engine, answered from
//! the store and formatted for a phone (Chinese, short lines).

use crate::facts::Report;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use opsbot_core::asset::{CHANGE_KIND, CHANGE_PROVIDER};
use opsbot_core::{Asset, AssetDesk, AssetLookup, AssetStatus, Change, DeskError, Facts, Zone};
use opsbot_store::{AssetQuery, AssetStore, ChangeLog, ChangeQuery};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

pub struct StoreDesk {
    store: Arc<dyn AssetStore>,
    /// Where the assets' changes are (the change history they share with the pool).
    changes: Arc<dyn ChangeLog>,
    stale_after: Duration,
    /// The zone times are shown in (`[chat] timezone`), named beside them.
    zone: Zone,
}

impl StoreDesk {
    /// Times in the machine's zone until [`StoreDesk::with_zone`].
    pub fn new(
        store: Arc<dyn AssetStore>,
        changes: Arc<dyn ChangeLog>,
        stale_after: Duration,
    ) -> StoreDesk {
        StoreDesk {
            store,
            changes,
            stale_after,
            zone: Zone::Local,
        }
    }

    pub fn with_zone(mut self, zone: Zone) -> StoreDesk {
        self.zone = zone;
        self
    }
}

fn store_err(e: opsbot_store::StoreError) -> DeskError {
    DeskError::Unavailable(e.to_string())
}

#[async_trait]
impl AssetDesk for StoreDesk {
    async fn find(
        &self,
        name: &str,
        visible: &(dyn for<'a> Fn(&'a Asset) -> bool + Send + Sync),
    ) -> Result<AssetLookup, DeskError> {
        if let Some(a) = self.store.asset_find(name).await.map_err(store_err)? {
            if visible(&a) {
                return Ok(AssetLookup::Found(Box::new(a)));
            }
        }
        let key = name.trim().to_lowercase();
        let all = self
            .store
            .asset_list(&AssetQuery::default())
            .await
            .map_err(store_err)?;
        let mut scored: Vec<(f64, String)> = all
            .into_iter()
            .filter(|a| visible(a))
            .map(|a| {
                let s = strsim::jaro_winkler(&key, &a.hostname)
                    .max(strsim::jaro_winkler(&key, &a.identity));
                let s = if a.hostname.contains(&key) {
                    s.max(0.9)
                } else {
                    s
                };
                (s, a.hostname)
            })
            .filter(|(s, _)| *s >= 0.75)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(AssetLookup::NotFound {
            similar: scored.into_iter().take(5).map(|(_, n)| n).collect(),
        })
    }

    async fn card(&self, asset: &Asset) -> Result<String, DeskError> {
        let facts = self.store.asset_facts(asset.id).await.map_err(store_err)?;
        let report = self
            .store
            .asset_report(asset.id)
            .await
            .map_err(store_err)?
            .and_then(|r| serde_json::from_str::<Report>(&r).ok());
        Ok(card(
            asset,
            &facts,
            report.as_ref(),
            self.stale_after,
            Utc::now(),
            &self.zone,
        ))
    }

    async fn changes(&self, asset: &Asset, limit: u64) -> Result<String, DeskError> {
        let changes = self
            .changes
            .changes(&ChangeQuery {
                provider: Some(CHANGE_PROVIDER.into()),
                object_kind: Some(CHANGE_KIND.into()),
                object_id: Some(asset.identity.clone()),
                limit,
                offset: 0,
            })
            .await
            .map_err(store_err)?;
        Ok(changes_text(asset, &changes, &self.zone))
    }
}

/// The CMDB as a chat subsystem: 资产 and 变更 are answered here.
impl opsbot_core::Subsystem for StoreDesk {
    fn register(self: Arc<Self>, registry: &mut opsbot_core::Registry) {
        registry.asset_desk(self);
    }
}

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
pub fn card(
    asset: &Asset,
    facts: &Facts,
    report: Option<&Report>,
    stale_after: Duration,
    now: DateTime<Utc>,
    zone: &Zone,
) -> String {
    let f = |k: &str| facts.get(k).map(String::as_str).unwrap_or("");
    let mut out = String::new();
    let age = (now - asset.last_seen).to_std().unwrap_or_default();
    let stale = asset.status == AssetStatus::Stale || age > stale_after;
    let ssh = asset.source == "ssh";
    let via = if ssh { "SSH 采集" } else { "agent" };
    // An SSH target is known by its configured name; an agent's host by its hostname
    // now (its identity is the name it first reported).
    let title = if ssh {
        &asset.identity
    } else {
        &asset.hostname
    };
    let _ = writeln!(
        out,
        "【资产 {title}】{} · {via}",
        if stale { "⚠ 失联" } else { "在线" }
    );
    if asset.identity != asset.hostname {
        if ssh {
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
                .keys()
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
            let _ = writeln!(out, "⚠ {}", p.chinese());
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

pub fn changes_text(asset: &Asset, changes: &[Change], zone: &Zone) -> String {
    if changes.is_empty() {
        return format!("【{} 变更记录】暂无变更", asset.hostname);
    }
    let mut out = format!(
        "【{} 最近变更】{} 条,新的在前,时间 {}",
        asset.hostname,
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
    use crate::collect;
    use crate::source::FsSource;
    use chrono::TimeZone;

    fn asset(report: &Report, at: DateTime<Utc>) -> Asset {
        Asset {
            id: 1,
            identity: "db-01".into(),
            hostname: report.hostname.clone(),
            source: "agent".into(),
            status: AssetStatus::Active,
            token_id: "t1".into(),
            vm: None,
            first_seen: at,
            last_seen: at,
        }
    }

    fn server_report() -> Report {
        let root =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server");
        let mut r = collect::collect(&FsSource::at(root), &[], None);
        // Usage of the fixture directory depends on the machine; fix it.
        for fs in &mut r.filesystems {
            fs.size_bytes = Some(100 << 30);
            fs.used_bytes = Some(62 << 30);
        }
        r.agent_version = "0.1.0".into();
        r
    }

    #[test]
    fn card_of_a_server() {
        let r = server_report();
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 40, 0).unwrap();
        let now = at + chrono::Duration::minutes(3);
        let text = card(
            &asset(&r, at),
            &r.facts(),
            Some(&r),
            Duration::from_secs(86_400),
            now,
            &shanghai(),
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn card_of_a_stale_renamed_host() {
        let mut r = server_report();
        r.hostname = "db-02".into();
        r.problems.push(crate::facts::Problem::new(
            "board",
            crate::facts::ProblemKind::Denied,
            Some("/sys/class/dmi/id/product_serial"),
            "permission denied".into(),
        ));
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 40, 0).unwrap();
        let now = at + chrono::Duration::days(3);
        let text = card(
            &asset(&r, at),
            &r.facts(),
            Some(&r),
            Duration::from_secs(86_400),
            now,
            &shanghai(),
        );
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
        let r = server_report();
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
        let text = changes_text(
            &asset(&r, at),
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
        let r = server_report();
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 40, 0).unwrap();
        let utc = Zone::parse("UTC").unwrap();
        let text = card(
            &asset(&r, at),
            &r.facts(),
            Some(&r),
            Duration::from_secs(86_400),
            at,
            &utc,
        );
        assert!(text.contains("最近上报: 12-01 00:40 UTC("), "{text}");
        let kolkata = Zone::parse("Asia/Kolkata").unwrap();
        let text = card(
            &asset(&r, at),
            &r.facts(),
            Some(&r),
            Duration::from_secs(86_400),
            at,
            &kolkata,
        );
        assert!(text.contains("最近上报: 12-01 06:10 UTC+5:30("), "{text}");
    }
}

//! The model's values in the words a user reads. Providers keep vSphere's own vocabulary
//! in the pool (`toolsOk`, `notResponding`, `Network adapter 1`) because sync compares it
//! and the REST API returns it; chat, the web UI and the change history translate it here,
//! once, so no surface shows a raw enum or a JSON list.

use crate::format::{fmt_memory, fmt_size};
use opsbot_core::{Change, Disk, Nic, PowerState};
use std::borrow::Cow;

/// A host's connection state: `connected` → 在线, `notResponding` → 无响应.
pub fn host_state(state: &str) -> Cow<'_, str> {
    match state {
        "connected" => "在线".into(),
        "disconnected" => "已断开".into(),
        "notResponding" => "无响应".into(),
        "" => "未知".into(),
        other => other.into(),
    }
}

/// A VM's VMware Tools state, as the pool keeps it.
pub fn tools(status: &str) -> Cow<'_, str> {
    match status {
        "toolsOk" => "运行中".into(),
        "toolsNotRunning" => "未运行".into(),
        "toolsOld" => "运行中(版本过旧)".into(),
        "toolsNotInstalled" => "未安装".into(),
        "" => "未知".into(),
        other => other.into(),
    }
}

/// A virtual device's label: `Network adapter 1` → 网卡 1, `Hard disk 2` → 硬盘 2. Labels
/// a vCenter was localised to, or renamed by hand, stay as they are.
pub fn device(label: &str) -> Cow<'_, str> {
    const KNOWN: [(&str, &str); 4] = [
        ("Network adapter ", "网卡 "),
        ("Hard disk ", "硬盘 "),
        ("CD/DVD drive ", "光驱 "),
        ("SCSI controller ", "SCSI 控制器 "),
    ];
    for (english, chinese) in KNOWN {
        if let Some(n) = label.strip_prefix(english) {
            return format!("{chinese}{n}").into();
        }
    }
    label.into()
}

/// One NIC as a line: `网卡 1 VLAN100-业务网 00:50:56:00:01:a8`, `(未连接)` when it is not.
pub fn nic(n: &Nic) -> String {
    let mut out = format!("{} {} {}", device(&n.label), n.network, n.mac);
    if !n.connected {
        out.push_str("(未连接)");
    }
    out
}

/// One disk as a line: `硬盘 1 50 GiB @ ds-prod-01`.
pub fn disk(d: &Disk) -> String {
    format!(
        "{} {} @ {}",
        device(&d.label),
        fmt_size(d.capacity_gb),
        d.datastore
    )
}

/// An object kind of the change history.
pub fn object_kind(kind: &str) -> &str {
    match kind {
        "datacenter" => "数据中心",
        "cluster" => "集群",
        "host" => "主机",
        "vm" => "虚拟机",
        "datastore" => "存储",
        "network" => "网络",
        other => other,
    }
}

/// A field of the change history: `tools_status` → VMware Tools, `memory_mb` → 内存.
pub fn field(field: &str) -> &str {
    match field {
        "created" => "新增",
        "removed" => "删除",
        "name" => "名称",
        "uuid" | "instance_uuid" => "UUID",
        "datacenter" => "数据中心",
        "cluster" => "集群",
        "host" => "主机",
        "folder" => "文件夹",
        "power" => "电源",
        "cpu" => "CPU",
        "cpu_cores" => "CPU 核心",
        "cpu_mhz" => "CPU 主频",
        "memory_mb" => "内存",
        "guest_os" => "系统",
        "guest_hostname" => "客户机主机名",
        "guest_ip" | "ips" => "IP",
        "tools_status" => "VMware Tools",
        "template" => "模板",
        "nics" => "网卡",
        "disks" => "磁盘",
        "tags" => "标签",
        "connection_state" => "连接状态",
        "capacity_gb" => "容量",
        "free_gb" => "剩余空间",
        "kind" => "类型",
        "vlan" => "VLAN",
        other => other,
    }
}

/// One side of a change, in words; `-` for none.
pub fn change_value(field: &str, value: Option<&str>) -> String {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return "-".into();
    };
    let list = |v: &str| -> Option<String> {
        let items: Vec<String> = serde_json::from_str(v).ok()?;
        Some(if items.is_empty() {
            "(无)".into()
        } else {
            items.join(", ")
        })
    };
    let translated = match field {
        "tools_status" => Some(tools(v).into_owned()),
        "connection_state" => Some(host_state(v).into_owned()),
        "power" => PowerState::parse(v).map(|p| p.label().to_string()),
        "memory_mb" => v.parse().ok().map(|mb| fmt_memory(mb, " ")),
        "capacity_gb" | "free_gb" => v.parse().ok().map(fmt_size),
        "cpu_mhz" => Some(format!("{v} MHz")),
        "template" => match v {
            "true" => Some("是".into()),
            "false" => Some("否".into()),
            _ => None,
        },
        "nics" => serde_json::from_str::<Vec<Nic>>(v)
            .ok()
            .map(|nics| joined(nics.iter().map(nic))),
        "disks" => serde_json::from_str::<Vec<Disk>>(v)
            .ok()
            .map(|disks| joined(disks.iter().map(disk))),
        "ips" | "tags" => list(v),
        _ => None,
    };
    translated.unwrap_or_else(|| v.to_string())
}

fn joined(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    if all.is_empty() {
        "(无)".into()
    } else {
        all.join("; ")
    }
}

/// A change of the pool in one line, without its time and object:
/// `VMware Tools: 运行中 → 未运行`, `新增`, `删除`.
pub fn change(c: &Change) -> String {
    change_parts(&c.field, c.old_value.as_deref(), c.new_value.as_deref())
}

/// [`change`] from its parts, for surfaces that hold a change as separate fields.
pub fn change_parts(changed: &str, old: Option<&str>, new: Option<&str>) -> String {
    match changed {
        "created" | "removed" => field(changed).to_string(),
        f => format!(
            "{}: {} → {}",
            field(f),
            change_value(f, old),
            change_value(f, new)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change_of(field: &str, old: &str, new: &str) -> Change {
        Change {
            id: 1,
            at: chrono::Utc::now(),
            provider: "sim".into(),
            object_kind: "vm".into(),
            object_id: "vm-1".into(),
            object_name: "web-01".into(),
            field: field.into(),
            old_value: Some(old.into()),
            new_value: Some(new.into()),
            source: "sync".into(),
        }
    }

    #[test]
    fn tools_and_host_states_read_as_chinese() {
        assert_eq!(
            change(&change_of("tools_status", "toolsOk", "toolsNotRunning")),
            "VMware Tools: 运行中 → 未运行"
        );
        assert_eq!(host_state("notResponding"), "无响应");
        assert_eq!(
            change(&change_of("connection_state", "connected", "notResponding")),
            "连接状态: 在线 → 无响应"
        );
    }

    #[test]
    fn nic_changes_are_lines_not_json() {
        let old = r#"[{"label":"Network adapter 1","mac":"00:50:56:00:00:01","network":"VLAN100-业务网","connected":true}]"#;
        let new = r#"[{"label":"Network adapter 1","mac":"00:50:56:00:00:01","network":"VLAN200-测试网","connected":false}]"#;
        assert_eq!(
            change(&change_of("nics", old, new)),
            "网卡: 网卡 1 VLAN100-业务网 00:50:56:00:00:01 → 网卡 1 VLAN200-测试网 00:50:56:00:00:01(未连接)"
        );
        let disks =
            r#"[{"label":"Hard disk 1","capacity_gb":50,"datastore":"ds-prod-01","unit":0}]"#;
        assert_eq!(
            change(&change_of("disks", "[]", disks)),
            "磁盘: (无) → 硬盘 1 50 GiB @ ds-prod-01"
        );
    }

    #[test]
    fn sizes_power_and_lists_use_units_and_words() {
        assert_eq!(
            change(&change_of("memory_mb", "4096", "8192")),
            "内存: 4 GiB → 8 GiB"
        );
        assert_eq!(
            change(&change_of("power", "poweredOn", "poweredOff")),
            "电源: 开机 → 关机"
        );
        assert_eq!(
            change(&change_of(
                "ips",
                r#"["10.0.0.1"]"#,
                r#"["10.0.0.1","10.0.0.2"]"#
            )),
            "IP: 10.0.0.1 → 10.0.0.1, 10.0.0.2"
        );
    }

    #[test]
    fn unknown_values_and_labels_stay_as_they_are() {
        assert_eq!(tools("guestToolsBlacklisted"), "guestToolsBlacklisted");
        assert_eq!(device("网络适配器 1"), "网络适配器 1");
        assert_eq!(change_value("nics", Some("not json")), "not json");
        assert_eq!(change_value("cpu", None), "-");
    }
}

//! Hostname, OS release, kernel and uptime.

use super::Reader;
use crate::facts::Os;

pub(super) fn hostname(r: &mut Reader<'_>) -> Option<String> {
    r.text("hostname", "/proc/sys/kernel/hostname")
        .or_else(|| r.text("hostname", "/etc/hostname"))
        .map(|h| h.lines().next().unwrap_or("").trim().to_string())
        .filter(|h| !h.is_empty())
}

/// `/etc/os-release` (or `/usr/lib/os-release`) plus the kernel release and machine.
pub(super) fn os(r: &mut Reader<'_>) -> Os {
    let text = r
        .text("os", "/etc/os-release")
        .or_else(|| r.text("os", "/usr/lib/os-release"))
        .unwrap_or_default();
    let mut os = Os::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "NAME" => os.name = v,
            "ID" => os.id = v,
            "VERSION_ID" => os.version_id = v,
            "PRETTY_NAME" => os.pretty_name = v,
            _ => {}
        }
    }
    os.kernel = r
        .text("os", "/proc/sys/kernel/osrelease")
        .unwrap_or_default();
    os.arch = r.quiet("/proc/sys/kernel/arch").unwrap_or_default();
    os
}

pub(super) fn uptime(r: &mut Reader<'_>) -> Option<u64> {
    let text = r.text("uptime", "/proc/uptime")?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(secs as u64)
}

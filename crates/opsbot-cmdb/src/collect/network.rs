//! Network interfaces (`/sys/class/net`) with their addresses.

use super::Reader;
use crate::facts::Nic;
use std::net::IpAddr;

pub(super) fn nics(r: &mut Reader<'_>) -> Vec<Nic> {
    let addrs = match r.src.addresses() {
        Ok(a) => a,
        Err(e) => {
            r.problems.push(crate::facts::Problem::new(
                "nics",
                crate::facts::ProblemKind::Unreadable,
                None,
                format!("interface addresses: {e}"),
            ));
            Vec::new()
        }
    };
    let mut out = Vec::new();
    for name in r.list("nics", "/sys/class/net") {
        if name == "lo" {
            continue;
        }
        let base = format!("/sys/class/net/{name}");
        let mine = || addrs.iter().filter(|a| a.name == name);
        out.push(Nic {
            mac: r.quiet(&format!("{base}/address")).unwrap_or_default(),
            // Sorted: getifaddrs and `ip addr` list them in different orders.
            ipv4: sorted(mine().filter(|a| matches!(a.ip, IpAddr::V4(_)))),
            ipv6: sorted(mine().filter(|a| matches!(a.ip, IpAddr::V6(_)))),
            // -1 or unreadable (EINVAL) when the link is down.
            speed_mbps: r
                .quiet(&format!("{base}/speed"))
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|s| *s > 0)
                .map(|s| s as u64),
            state: r.quiet(&format!("{base}/operstate")).unwrap_or_default(),
            mtu: r.quiet(&format!("{base}/mtu")).and_then(|s| s.parse().ok()),
            name,
        });
    }
    out
}

fn sorted<'a>(addrs: impl Iterator<Item = &'a crate::source::IfAddr>) -> Vec<String> {
    let mut v: Vec<String> = addrs.map(|a| format!("{}/{}", a.ip, a.prefix)).collect();
    v.sort();
    v.dedup();
    v
}

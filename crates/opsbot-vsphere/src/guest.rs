//! Guest customisation settings of one vCenter provider: what a clone gets besides the IP
//! the chat command names (`克隆:模板号,名称,IP`), looked up by the subnet that IP is in,
//! and the Windows (Sysprep) identity for Windows templates.
//!
//! ```toml
//! [[providers.guest_networks]]
//! cidr = "192.168.2.0/24"
//! gateway = "192.168.2.1"
//! dns = ["192.168.1.53"]
//! domain = "corp.example.com"
//!
//! [providers.windows]
//! admin_password = "…"
//! ```

use ipnet::Ipv4Net;
use opsbot_core::Rejection;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// One subnet clones may be put in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestNetwork {
    /// The subnet, `192.168.2.0/24`: gives the netmask.
    pub cidr: String,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    /// The guest's DNS domain (default `localdomain`).
    #[serde(default)]
    pub domain: Option<String>,
}

/// The Sysprep identity of Windows clones.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsGuest {
    /// The local Administrator password Sysprep sets (required to clone Windows).
    pub admin_password: String,
    /// Windows time zone index (210 = China Standard Time).
    #[serde(default = "china_time_zone")]
    pub timezone: u32,
    #[serde(default = "workgroup")]
    pub workgroup: String,
    /// Registered organisation (and owner).
    #[serde(default = "organization")]
    pub organization: String,
    /// Product key; empty for volume-licensed media.
    #[serde(default)]
    pub product_key: String,
}

impl std::fmt::Debug for WindowsGuest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowsGuest")
            .field("admin_password", &"<hidden>")
            .field("timezone", &self.timezone)
            .field("workgroup", &self.workgroup)
            .field("organization", &self.organization)
            .finish_non_exhaustive()
    }
}

fn china_time_zone() -> u32 {
    210
}
fn workgroup() -> String {
    "WORKGROUP".into()
}
fn organization() -> String {
    "opsbot".into()
}

/// What a provider knows about its guests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestSettings {
    pub networks: Vec<GuestNetwork>,
    pub windows: Option<WindowsGuest>,
}

/// The network settings of one clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestNet {
    pub subnet_mask: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: String,
}

/// Without a configured subnet: the usual /24, no gateway.
const FALLBACK_MASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
const DEFAULT_DOMAIN: &str = "localdomain";

impl GuestSettings {
    /// Checks every entry; the error is (key below `providers[i].`, problem).
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, n) in self.networks.iter().enumerate() {
            let k = |f: &str| format!("guest_networks[{i}].{f}");
            let net = parse_net(&n.cidr).map_err(|p| (k("cidr"), p))?;
            if let Some(g) = &n.gateway {
                let g: Ipv4Addr = g
                    .parse()
                    .map_err(|_| (k("gateway"), format!("{g:?} is not an IPv4 address")))?;
                if !net.contains(&g) {
                    return Err((k("gateway"), format!("{g} is not in {net}")));
                }
            }
            for (j, d) in n.dns.iter().enumerate() {
                if d.parse::<Ipv4Addr>().is_err() {
                    return Err((
                        k(&format!("dns[{j}]")),
                        format!("{d:?} is not an IPv4 address"),
                    ));
                }
            }
            if let Some(d) = &n.domain {
                if d.is_empty() || d.len() > 253 || d.contains(char::is_whitespace) {
                    return Err((k("domain"), format!("{d:?} is not a DNS domain")));
                }
            }
        }
        if let Some(w) = &self.windows {
            if w.admin_password.is_empty() {
                return Err(("windows.admin_password".into(), "must not be empty".into()));
            }
        }
        Ok(())
    }

    /// The settings for a clone at `ip`: the most specific configured subnet holding it.
    /// With subnets configured, an IP in none of them is refused (it would get a guess
    /// for mask and gateway); with none configured, a /24 without gateway.
    pub fn for_ip(&self, ip: Ipv4Addr) -> Result<GuestNet, Rejection> {
        if self.networks.is_empty() {
            return Ok(GuestNet {
                subnet_mask: FALLBACK_MASK,
                gateway: None,
                dns: Vec::new(),
                domain: DEFAULT_DOMAIN.into(),
            });
        }
        let best = self
            .networks
            .iter()
            .filter_map(|n| parse_net(&n.cidr).ok().map(|net| (net, n)))
            .filter(|(net, _)| net.contains(&ip))
            .max_by_key(|(net, _)| net.prefix_len());
        let Some((net, n)) = best else {
            return Err(Rejection::IpOutsideSubnets {
                ip,
                subnets: self.networks.iter().map(|n| n.cidr.clone()).collect(),
            });
        };
        Ok(GuestNet {
            subnet_mask: net.netmask(),
            gateway: n.gateway.as_deref().and_then(|g| g.parse().ok()),
            dns: n.dns.iter().filter_map(|d| d.parse().ok()).collect(),
            domain: n.domain.clone().unwrap_or_else(|| DEFAULT_DOMAIN.into()),
        })
    }
}

fn parse_net(cidr: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = cidr
        .parse()
        .map_err(|_| format!("{cidr:?} is not an IPv4 subnet like 192.168.2.0/24"))?;
    if net.prefix_len() > 30 {
        return Err(format!("{cidr} leaves no room for hosts (at most /30)"));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(cidr: &str, gateway: Option<&str>) -> GuestNetwork {
        GuestNetwork {
            cidr: cidr.into(),
            gateway: gateway.map(str::to_string),
            dns: vec!["192.168.1.53".into()],
            domain: Some("corp.example.com".into()),
        }
    }

    #[test]
    fn the_most_specific_subnet_wins() {
        let s = GuestSettings {
            networks: vec![
                net("192.168.0.0/16", Some("192.168.0.1")),
                net("192.168.2.0/24", Some("192.168.2.1")),
            ],
            windows: None,
        };
        s.validate().unwrap();
        let g = s.for_ip("192.168.2.182".parse().unwrap()).unwrap();
        assert_eq!(g.subnet_mask, Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(g.gateway, Some(Ipv4Addr::new(192, 168, 2, 1)));
        assert_eq!(g.dns, vec![Ipv4Addr::new(192, 168, 1, 53)]);
        assert_eq!(g.domain, "corp.example.com");
        let g = s.for_ip("192.168.9.9".parse().unwrap()).unwrap();
        assert_eq!(g.subnet_mask, Ipv4Addr::new(255, 255, 0, 0));
        let e = opsbot_engine::render::provider::rejection(
            &s.for_ip("10.0.0.5".parse().unwrap()).unwrap_err(),
        );
        assert!(
            e.contains("10.0.0.5") && e.contains("192.168.2.0/24"),
            "{e}"
        );
    }

    #[test]
    fn without_subnets_a_24_without_gateway() {
        let g = GuestSettings::default()
            .for_ip("10.1.2.3".parse().unwrap())
            .unwrap();
        assert_eq!(g.subnet_mask, FALLBACK_MASK);
        assert_eq!(g.gateway, None);
    }

    #[test]
    fn bad_entries_name_the_key() {
        let bad = |n: GuestNetwork| {
            GuestSettings {
                networks: vec![n],
                windows: None,
            }
            .validate()
            .unwrap_err()
        };
        assert_eq!(bad(net("192.168.2.0/33", None)).0, "guest_networks[0].cidr");
        let (k, p) = bad(net("192.168.2.0/24", Some("10.0.0.1")));
        assert_eq!(k, "guest_networks[0].gateway");
        assert!(p.contains("not in 192.168.2.0/24"), "{p}");
        let mut n = net("192.168.2.0/24", None);
        n.dns = vec!["dns.example.com".into()];
        assert_eq!(bad(n).0, "guest_networks[0].dns[0]");
        let w = GuestSettings {
            networks: Vec::new(),
            windows: Some(WindowsGuest {
                admin_password: String::new(),
                timezone: 210,
                workgroup: workgroup(),
                organization: organization(),
                product_key: String::new(),
            }),
        };
        assert_eq!(w.validate().unwrap_err().0, "windows.admin_password");
    }

    #[test]
    fn debug_hides_the_password() {
        let w: WindowsGuest = serde_json::from_str(r#"{"admin_password":"S3cret!"}"#).unwrap();
        assert_eq!(w.timezone, 210);
        assert!(!format!("{w:?}").contains("S3cret"));
    }
}

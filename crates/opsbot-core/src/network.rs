//! Choosing a port group the way an engineer names it: by its name, or by a VLAN id
//! (`200`, `VLAN200`, `vlan 200`) that exactly one port group of the place carries.
//! The engine's plan check and the simulated provider choose among a datacenter's port
//! groups with [`resolve_in_datacenter`]; vSphere, which must also know what the VM's
//! host has, reads VLAN ids with [`vlan_of`].

use crate::inventory::Network;
use crate::outcome::{NetworkName, Place, Rejection};

/// `VLAN 20`, `vlan20`, `20` → 20.
pub fn vlan_of(wanted: &str) -> Option<u16> {
    let t = wanted.trim();
    let t = match t.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("vlan") => &t[4..],
        _ => t,
    };
    t.trim().parse().ok()
}

impl Network {
    /// The port group as refusals name it: its name and VLAN.
    pub fn label(&self) -> NetworkName {
        NetworkName {
            name: self.name.clone(),
            vlan: self.vlan,
        }
    }
}

/// The port group `wanted` names among `nets`, the port groups of `datacenter`: its
/// name, else a VLAN id exactly one of them carries. Refused as ambiguous (with the
/// candidates) or missing (with what the datacenter has).
pub fn resolve_in_datacenter<'a>(
    nets: &[&'a Network],
    datacenter: &str,
    wanted: &str,
) -> Result<&'a Network, Rejection> {
    if let Some(n) = nets.iter().find(|n| n.name == wanted) {
        return Ok(n);
    }
    if let Some(vlan) = vlan_of(wanted) {
        let matches: Vec<&Network> = nets
            .iter()
            .copied()
            .filter(|n| n.vlan == Some(vlan))
            .collect();
        match matches.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                return Err(Rejection::AmbiguousNetwork {
                    wanted: wanted.to_string(),
                    candidates: many.iter().map(|n| n.label()).collect(),
                })
            }
        }
    }
    Err(Rejection::NoSuchNetwork {
        wanted: wanted.to_string(),
        place: Place::Datacenter(datacenter.to_string()),
        available: nets.iter().map(|n| n.label()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::NetworkKind;

    fn net(name: &str, vlan: Option<u16>) -> Network {
        Network {
            provider: "sim".into(),
            id: name.into(),
            name: name.into(),
            datacenter: "DC0".into(),
            kind: NetworkKind::Standard,
            vlan,
        }
    }

    #[test]
    fn vlan_ids_are_read_with_or_without_the_word() {
        assert_eq!(vlan_of("200"), Some(200));
        assert_eq!(vlan_of("VLAN200"), Some(200));
        assert_eq!(vlan_of("vlan 20"), Some(20));
        assert_eq!(vlan_of("VLAN200-数据库"), None);
        assert_eq!(vlan_of("web"), None);
    }

    #[test]
    fn a_name_or_one_vlan_picks_a_port_group() {
        let (a, b, c) = (
            net("VLAN100-业务网", Some(100)),
            net("VLAN200-数据库", Some(200)),
            net("VLAN200-备份", Some(200)),
        );
        let nets = [&a, &b];
        assert_eq!(
            resolve_in_datacenter(&nets, "DC0", "VLAN200-数据库")
                .unwrap()
                .name,
            b.name
        );
        assert_eq!(
            resolve_in_datacenter(&nets, "DC0", "vlan 100")
                .unwrap()
                .name,
            a.name
        );
        assert!(matches!(
            resolve_in_datacenter(&[&a, &b, &c], "DC0", "200"),
            Err(Rejection::AmbiguousNetwork { candidates, .. }) if candidates.len() == 2
        ));
        assert!(matches!(
            resolve_in_datacenter(&nets, "DC0", "999"),
            Err(Rejection::NoSuchNetwork { available, .. }) if available.len() == 2
        ));
    }
}

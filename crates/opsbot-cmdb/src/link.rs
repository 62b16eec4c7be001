//! Linking an asset to its VM in the resource pool. Inside a VMware VM,
//! `/sys/class/dmi/id/product_uuid` is the VM's BIOS UUID (vSphere `config.uuid`) —
//! on older virtual hardware with its first three groups byte-swapped (SMBIOS
//! little-endian) — and the serial reads `VMware-42 1c 2d …`, the same UUID's bytes
//! in order. Both orders of both are tried.

use opsbot_core::{Inventory, VmLink};
use std::collections::HashMap;

/// 32 lower-case hex digits, or `None` when `s` is not a UUID.
pub fn normalize_uuid(s: &str) -> Option<String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .collect::<String>()
        .to_lowercase();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// The UUID with its first three groups byte-swapped (the other SMBIOS order).
pub fn swap_groups(hex: &str) -> String {
    let b = hex.as_bytes();
    let pairs = |r: std::ops::Range<usize>| -> Vec<&[u8]> { b[r].chunks(2).rev().collect() };
    let mut out = Vec::with_capacity(32);
    for group in [pairs(0..8), pairs(8..12), pairs(12..16)] {
        for p in group {
            out.extend_from_slice(p);
        }
    }
    out.extend_from_slice(&b[16..]);
    String::from_utf8(out).unwrap_or_default()
}

/// `VMware-42 1c 2d 3e 4f 50 61 72-83 94 a5 b6 c7 d8 e9 fa` → the UUID's hex.
pub fn uuid_from_vmware_serial(serial: &str) -> Option<String> {
    normalize_uuid(serial.trim().strip_prefix("VMware-")?)
}

/// The pool's VMs by BIOS UUID, rebuilt when the pool version moves.
#[derive(Debug, Default, Clone)]
pub struct PoolIndex {
    pub version: i64,
    by_uuid: HashMap<String, VmLink>,
}

impl PoolIndex {
    pub fn build(version: i64, inventory: &Inventory) -> PoolIndex {
        let by_uuid = inventory
            .vms
            .iter()
            .filter(|v| !v.template)
            .filter_map(|v| {
                Some((
                    normalize_uuid(&v.uuid)?,
                    VmLink {
                        provider: v.provider.clone(),
                        vm_id: v.id.clone(),
                        name: v.name.clone(),
                        scope_path: v.scope_path(),
                    },
                ))
            })
            .collect();
        PoolIndex { version, by_uuid }
    }

    /// The VM whose BIOS UUID is the host's DMI UUID or serial, in either byte order.
    pub fn find(
        &self,
        product_uuid: Option<&str>,
        product_serial: Option<&str>,
    ) -> Option<&VmLink> {
        let mut candidates = Vec::new();
        if let Some(u) = product_uuid.and_then(normalize_uuid) {
            candidates.push(swap_groups(&u));
            candidates.push(u);
        }
        if let Some(u) = product_serial.and_then(uuid_from_vmware_serial) {
            candidates.push(swap_groups(&u));
            candidates.push(u);
        }
        candidates.iter().find_map(|c| self.by_uuid.get(c))
    }

    pub fn len(&self) -> usize {
        self.by_uuid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uuid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VSPHERE: &str = "421c2d3e-4f50-6172-8394-a5b6c7d8e9fa";

    fn index() -> PoolIndex {
        let mut inv = Inventory::default();
        let vm = opsbot_core::Vm {
            provider: "vc1".into(),
            id: "vm-42".into(),
            name: "web-01".into(),
            uuid: VSPHERE.into(),
            instance_uuid: String::new(),
            datacenter: "DC0".into(),
            cluster: "C1".into(),
            host: "esx-1".into(),
            folder: String::new(),
            power: opsbot_core::PowerState::PoweredOn,
            cpu: 2,
            memory_mb: 4096,
            guest_os: String::new(),
            guest_hostname: String::new(),
            guest_ip: None,
            ips: vec![],
            tools_status: String::new(),
            template: false,
            nics: vec![],
            disks: vec![],
            tags: vec![],
        };
        inv.vms.push(vm);
        PoolIndex::build(1, &inv)
    }

    #[test]
    fn swapping_twice_is_identity() {
        let u = normalize_uuid(VSPHERE).unwrap();
        assert_eq!(swap_groups(&u), "3e2d1c42504f72618394a5b6c7d8e9fa");
        assert_eq!(swap_groups(&swap_groups(&u)), u);
    }

    #[test]
    fn finds_the_vm_by_uuid_in_both_orders_and_by_serial() {
        let idx = index();
        let hit = |u: Option<&str>, s: Option<&str>| idx.find(u, s).map(|l| l.vm_id.clone());
        assert_eq!(
            hit(Some("421C2D3E-4F50-6172-8394-A5B6C7D8E9FA"), None).as_deref(),
            Some("vm-42")
        );
        assert_eq!(
            hit(Some("3E2D1C42-504F-7261-8394-A5B6C7D8E9FA"), None).as_deref(),
            Some("vm-42")
        );
        assert_eq!(
            hit(
                None,
                Some("VMware-42 1c 2d 3e 4f 50 61 72-83 94 a5 b6 c7 d8 e9 fa")
            )
            .as_deref(),
            Some("vm-42")
        );
        assert_eq!(
            hit(
                Some("00000000-0000-0000-0000-000000000000"),
                Some("8XYZ123")
            ),
            None
        );
        assert_eq!(hit(Some("garbage"), None), None);
        assert_eq!(
            idx.find(Some(VSPHERE), None).unwrap().scope_path,
            "vc1/DC0/C1/web-01"
        );
    }
}

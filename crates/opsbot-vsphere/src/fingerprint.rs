//! Change tokens for re-syncs: a digest of the properties the pool is built from, so a
//! re-sync can tell "nothing changed" from a light pass instead of a full read.
//!
//! The light pass reads, per VM, a handful of small properties ([`VM_PATHS`]) instead of
//! the device list and guest networks, and the few non-VM objects in full. On a real
//! vCenter `config.changeVersion` moves on every reconfiguration; vcsim leaves it empty,
//! so the CPU, memory, disk and NIC counts and the VM's networks and datastores stand in
//! for it. The non-VM objects are few: they are read in full and digested as mapped. A change no watched property shows (a disk grown in place, a MAC edited) is
//! picked up by the periodic full read the caller forces.
//!
//! The same digest is computed from a full read (whose VM paths include [`VM_PATHS`]),
//! so the token a full sync leaves equals what the next light pass finds when nothing
//! moved. Digests are order-independent sums of per-object hashes: the property
//! collector promises no order.

use crate::client::ObjectContent;
use crate::xml::Node;
use opsbot_core::Inventory;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The VM properties whose change makes a re-sync read everything.
pub const VM_PATHS: &[&str] = &[
    "name",
    "config.changeVersion",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "runtime.powerState",
    "runtime.host",
    "guest.ipAddress",
    "guest.hostName",
    "guest.toolsRunningStatus",
    "summary.config.template",
    "summary.config.numVirtualDisks",
    "summary.config.numEthernetCards",
    "network",
    "datastore",
];

/// Bumped whenever what goes into a token changes, so an old token never matches.
const SCHEME: &str = "v1";

/// An order-independent digest of a set of objects.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    sum: u64,
    count: u64,
}

impl Digest {
    /// Adds one object, hashing only `paths` of it (absent properties count as absent).
    pub fn add(&mut self, oc: &ObjectContent, paths: &[&str]) {
        let mut h = DefaultHasher::new();
        oc.obj.kind.hash(&mut h);
        oc.obj.value.hash(&mut h);
        for path in paths {
            match oc.get(path) {
                Some(node) => {
                    path.hash(&mut h);
                    hash_node(node, &mut h);
                }
                None => 0u8.hash(&mut h),
            }
        }
        self.push(h.finish());
    }

    fn push(&mut self, hash: u64) {
        self.sum = self.sum.wrapping_add(hash);
        self.count += 1;
    }
}

/// The digest of the non-VM part of an inventory, as mapped: a datastore's free space
/// moving by bytes is no change until the pool's GB figure moves.
pub fn of_base(base: &Inventory) -> Digest {
    let mut d = Digest::default();
    let mut h = DefaultHasher::new();
    format!(
        "{:?}{:?}{:?}{:?}{:?}",
        base.datacenters, base.clusters, base.hosts, base.datastores, base.networks
    )
    .hash(&mut h);
    d.push(h.finish());
    d
}

/// The token for a vCenter whose non-VM objects digest to `context` and VMs to `vms`.
pub fn token(context: Digest, vms: Digest) -> String {
    format!(
        "{SCHEME}-{:016x}-{}-{:016x}-{}",
        context.sum, context.count, vms.sum, vms.count
    )
}

fn hash_node(node: &Node, h: &mut DefaultHasher) {
    node.name.hash(h);
    node.xsi_type.hash(h);
    node.attrs.hash(h);
    node.text.hash(h);
    node.children.len().hash(h);
    for c in &node.children {
        hash_node(c, h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::MoRef;
    use std::collections::HashMap;

    fn vm(id: &str, props: &[(&str, &str)]) -> ObjectContent {
        ObjectContent {
            obj: MoRef::new("VirtualMachine", id),
            props: props
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Node {
                            name: "val".into(),
                            text: v.to_string(),
                            ..Node::default()
                        },
                    )
                })
                .collect::<HashMap<_, _>>(),
        }
    }

    fn digest(objects: &[ObjectContent]) -> Digest {
        let mut d = Digest::default();
        for o in objects {
            d.add(o, VM_PATHS);
        }
        d
    }

    #[test]
    fn order_does_not_matter_but_values_do() {
        let a = vm(
            "vm-1",
            &[("name", "web-01"), ("runtime.powerState", "poweredOn")],
        );
        let b = vm("vm-2", &[("name", "web-02")]);
        assert_eq!(
            digest(&[a.clone(), b.clone()]),
            digest(&[b.clone(), a.clone()])
        );
        let off = vm(
            "vm-1",
            &[("name", "web-01"), ("runtime.powerState", "poweredOff")],
        );
        assert_ne!(digest(&[a.clone(), b.clone()]), digest(&[off, b.clone()]));
        assert_ne!(
            digest(std::slice::from_ref(&a)),
            digest(&[a, b]),
            "a VM added"
        );
    }

    #[test]
    fn unwatched_properties_are_ignored_and_absence_is_seen() {
        let a = vm("vm-1", &[("name", "web-01")]);
        let mut with_devices = a.clone();
        with_devices
            .props
            .insert("config.hardware.device".into(), Node::default());
        assert_eq!(digest(std::slice::from_ref(&a)), digest(&[with_devices]));
        let mut moved = a.clone();
        moved.props.insert("runtime.host".into(), Node::default());
        assert_ne!(digest(&[a]), digest(&[moved]));
    }

    #[test]
    fn token_names_the_scheme_and_counts() {
        let t = token(Digest::default(), digest(&[vm("vm-1", &[])]));
        assert!(t.starts_with("v1-") && t.ends_with("-1"), "{t}");
    }
}

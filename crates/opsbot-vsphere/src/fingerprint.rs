//! Change tokens for re-syncs: per-VM prints of the properties the pool is built from,
//! so a re-sync can tell from a light pass which VMs changed instead of reading all.
//!
//! The light pass reads, per VM, a handful of small properties ([`VM_PATHS`]) instead of
//! the device list and guest networks, and the few non-VM objects in full. On a real
//! vCenter `config.changeVersion` moves on every reconfiguration; vcsim leaves it empty,
//! so the CPU, memory, disk and NIC counts and the VM's networks and datastores stand in
//! for it. The non-VM objects are digested as mapped, so a datastore's free space moving
//! by bytes is no change until the pool's GB figure moves. A change no watched property
//! shows (a disk grown in place, a MAC edited) is picked up by the periodic full read the
//! caller forces.
//!
//! The same prints come from a full read (whose VM paths include [`VM_PATHS`]), so the
//! token a full sync leaves equals what the next light pass finds when nothing moved.

use crate::client::ObjectContent;
use crate::xml::Node;
use opsbot_core::Inventory;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The VM properties whose change makes a re-sync read that VM again.
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
    "customValue",
];

/// Bumped whenever what goes into a token changes, so an old token never matches.
const SCHEME: &str = "v2";

/// What a token records: a digest of the non-VM objects and one print per VM (by MoRef
/// value).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prints {
    pub base: u64,
    pub vms: BTreeMap<String, u64>,
}

/// Which VMs differ between two [`Prints`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VmDelta {
    /// New or changed since the older prints.
    pub changed: Vec<String>,
    /// In the older prints, gone now.
    pub removed: Vec<String>,
}

impl VmDelta {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty()
    }
}

impl Prints {
    /// Records VM `oc` (only [`VM_PATHS`] of it count).
    pub fn add_vm(&mut self, oc: &ObjectContent) {
        self.vms.insert(oc.obj.value.clone(), vm_print(oc));
    }

    /// Records the non-VM part of an inventory, as mapped, and the custom attribute
    /// names VM tags are spelled with (renaming one retags every VM that has it).
    pub fn set_base(&mut self, base: &Inventory, fields: &BTreeMap<i64, String>) {
        let mut h = DefaultHasher::new();
        format!(
            "{:?}{:?}{:?}{:?}{:?}{fields:?}",
            base.datacenters, base.clusters, base.hosts, base.datastores, base.networks
        )
        .hash(&mut h);
        self.base = h.finish();
    }

    /// These prints with each tagged VM's vSphere tags folded into its print, so a tag
    /// attached or detached reads that VM again. Untagged VMs keep their print, so a
    /// vCenter without tags keeps the tokens it had.
    pub fn with_tags(&self, tags: &crate::tagging::VmTags) -> Prints {
        let mut p = self.clone();
        for (id, print) in p.vms.iter_mut() {
            if let Some(t) = tags.get(id).filter(|t| !t.is_empty()) {
                let mut h = DefaultHasher::new();
                print.hash(&mut h);
                t.hash(&mut h);
                *print = h.finish();
            }
        }
        p
    }

    /// The VMs that differ from `older`.
    pub fn delta_from(&self, older: &Prints) -> VmDelta {
        VmDelta {
            changed: self
                .vms
                .iter()
                .filter(|(id, print)| older.vms.get(*id) != Some(print))
                .map(|(id, _)| id.clone())
                .collect(),
            removed: older
                .vms
                .keys()
                .filter(|id| !self.vms.contains_key(*id))
                .cloned()
                .collect(),
        }
    }

    /// The token text: the scheme, the base digest, then one `moref print` line per VM.
    pub fn token(&self) -> String {
        let mut t = String::with_capacity(32 + self.vms.len() * 28);
        let _ = writeln!(t, "{SCHEME} {:016x}", self.base);
        for (id, print) in &self.vms {
            let _ = writeln!(t, "{id} {print:016x}");
        }
        t
    }

    /// Reads a token back; `None` for a token of another scheme or a damaged one.
    pub fn parse(token: &str) -> Option<Prints> {
        let mut lines = token.lines();
        let (scheme, base) = lines.next()?.split_once(' ')?;
        if scheme != SCHEME {
            return None;
        }
        let mut prints = Prints {
            base: u64::from_str_radix(base, 16).ok()?,
            vms: BTreeMap::new(),
        };
        for line in lines {
            let (id, print) = line.split_once(' ')?;
            prints
                .vms
                .insert(id.to_string(), u64::from_str_radix(print, 16).ok()?);
        }
        Some(prints)
    }
}

fn vm_print(oc: &ObjectContent) -> u64 {
    let mut h = DefaultHasher::new();
    for path in VM_PATHS {
        match oc.get(path) {
            Some(node) => {
                path.hash(&mut h);
                hash_node(node, &mut h);
            }
            None => 0u8.hash(&mut h),
        }
    }
    h.finish()
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

    fn prints(objects: &[ObjectContent]) -> Prints {
        let mut p = Prints::default();
        for o in objects {
            p.add_vm(o);
        }
        p
    }

    #[test]
    fn the_delta_names_changed_new_and_gone_vms() {
        let a = vm(
            "vm-1",
            &[("name", "web-01"), ("runtime.powerState", "poweredOn")],
        );
        let b = vm("vm-2", &[("name", "web-02")]);
        let before = prints(&[a.clone(), b.clone()]);
        assert_eq!(
            prints(&[b.clone(), a.clone()]),
            before,
            "order does not matter"
        );
        assert!(prints(&[a.clone(), b.clone()])
            .delta_from(&before)
            .is_empty());

        let off = vm(
            "vm-1",
            &[("name", "web-01"), ("runtime.powerState", "poweredOff")],
        );
        let c = vm("vm-3", &[("name", "web-03")]);
        let d = prints(&[off, c]).delta_from(&before);
        assert_eq!(d.changed, ["vm-1", "vm-3"]);
        assert_eq!(d.removed, ["vm-2"]);
    }

    #[test]
    fn unwatched_properties_are_ignored_and_absence_is_seen() {
        let a = vm("vm-1", &[("name", "web-01")]);
        let mut with_devices = a.clone();
        with_devices
            .props
            .insert("config.hardware.device".into(), Node::default());
        assert_eq!(prints(std::slice::from_ref(&a)), prints(&[with_devices]));
        let mut moved = a.clone();
        moved.props.insert("runtime.host".into(), Node::default());
        assert_ne!(prints(&[a]), prints(&[moved]));
    }

    #[test]
    fn a_tag_attached_changes_only_that_vms_print() {
        let before = prints(&[vm("vm-1", &[("name", "a")]), vm("vm-2", &[("name", "b")])]);
        let none = crate::tagging::VmTags::new();
        assert_eq!(before.with_tags(&none), before);
        let mut tags = crate::tagging::VmTags::new();
        tags.insert("vm-2".into(), vec!["env:prod".into()]);
        let after = before.with_tags(&tags);
        assert_eq!(after.delta_from(&before).changed, ["vm-2"]);
        assert!(before.with_tags(&tags).delta_from(&after).is_empty());
    }

    #[test]
    fn tokens_round_trip_and_other_schemes_are_refused() {
        let mut p = prints(&[vm("vm-1", &[("name", "a")]), vm("vm-22", &[])]);
        p.set_base(&Inventory::default(), &BTreeMap::new());
        let t = p.token();
        assert!(t.starts_with("v2 "), "{t}");
        assert_eq!(Prints::parse(&t), Some(p));
        assert_eq!(Prints::parse("v1-0-0-0-0"), None);
        assert_eq!(Prints::parse("v2 zz\n"), None);
        assert_eq!(Prints::parse("v2 00\nvm-1\n"), None);
    }
}

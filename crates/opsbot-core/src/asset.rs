//! CMDB assets as the rest of opsbot sees them: the stored record, facts flattened to
//! `key → value`, the field-by-field diff that feeds the change history, and the
//! [`AssetDesk`] the chat engine answers `资产` / `变更` through. No I/O here.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Facts flattened to dotted keys (`os.name`, `nic.eth0.mac`, `plugin.raid.level`),
/// sorted, so two reports compare field by field.
pub type Facts = BTreeMap<String, String>;

/// The `provider` of asset rows in the shared change history (`change_log`).
pub const CHANGE_PROVIDER: &str = "cmdb";
/// The `object_kind` of asset rows in the change history.
pub const CHANGE_KIND: &str = "asset";

/// One field that differs between the stored asset and a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactChange {
    pub field: String,
    /// `None`: the field is new.
    pub old: Option<String>,
    /// `None`: the field is gone.
    pub new: Option<String>,
}

/// Every field that differs between `old` and `new`, in key order. One merge walk over
/// the two sorted maps: linear, no allocation for equal fields.
pub fn diff_facts(old: &Facts, new: &Facts) -> Vec<FactChange> {
    let mut out = Vec::new();
    let mut a = old.iter().peekable();
    let mut b = new.iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => return out,
            (Some((ka, va)), Some((kb, vb))) if ka == kb => {
                if va != vb {
                    out.push(FactChange {
                        field: (*ka).clone(),
                        old: Some((*va).clone()),
                        new: Some((*vb).clone()),
                    });
                }
                a.next();
                b.next();
            }
            (Some((ka, va)), Some((kb, _))) if ka < kb => {
                out.push(FactChange {
                    field: (*ka).clone(),
                    old: Some((*va).clone()),
                    new: None,
                });
                a.next();
            }
            (Some((ka, va)), None) => {
                out.push(FactChange {
                    field: (*ka).clone(),
                    old: Some((*va).clone()),
                    new: None,
                });
                a.next();
            }
            (_, Some((kb, vb))) => {
                out.push(FactChange {
                    field: (*kb).clone(),
                    old: None,
                    new: Some((*vb).clone()),
                });
                b.next();
            }
        }
    }
}

/// Whether an asset reports in, or has gone quiet for longer than the configured
/// `cmdb.stale_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetStatus {
    Active,
    Stale,
}

impl AssetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetStatus::Active => "active",
            AssetStatus::Stale => "stale",
        }
    }

    pub fn parse(s: &str) -> Option<AssetStatus> {
        match s {
            "active" => Some(AssetStatus::Active),
            "stale" => Some(AssetStatus::Stale),
            _ => None,
        }
    }
}

/// A resource-pool VM an asset was matched to (by DMI UUID or serial).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmLink {
    pub provider: String,
    pub vm_id: String,
    pub name: String,
    /// The VM's permission scope path (`provider/datacenter/cluster/name`).
    pub scope_path: String,
}

/// A stored asset (its facts are read separately).
#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    pub id: i64,
    /// Stable identity: the hostname the host first reported (kept by the agent in a
    /// local file), or the configured name of an SSH target.
    pub identity: String,
    /// The hostname of the latest report (differs from `identity` after a rename).
    pub hostname: String,
    /// `agent` or `ssh`.
    pub source: String,
    pub status: AssetStatus,
    /// The agent token the asset is bound to (empty for agentless assets).
    pub token_id: String,
    pub vm: Option<VmLink>,
    pub first_seen: chrono::DateTime<chrono::Utc>,
    pub last_seen: chrono::DateTime<chrono::Utc>,
}

impl Asset {
    /// The path permission scopes match: the linked VM's path, else `cmdb/<identity>`.
    pub fn scope_path(&self) -> String {
        match &self.vm {
            Some(vm) => vm.scope_path.clone(),
            None => format!("{CHANGE_PROVIDER}/{}", self.identity),
        }
    }
}

/// What finding an asset by name gave.
#[derive(Debug, Clone, PartialEq)]
pub enum AssetLookup {
    Found(Box<Asset>),
    /// No such asset; up to a few names that look alike.
    NotFound {
        similar: Vec<String>,
    },
}

/// The CMDB as the chat engine sees it: find an asset, read what its card shows and its
/// recent changes. All of it is data (errors too: `DeskError::Unavailable`); the engine
/// words it.
#[async_trait]
pub trait AssetDesk: Send + Sync {
    /// By identity or hostname (case-insensitive).
    /// Among the assets `visible` admits: the others are absent (never found, never
    /// suggested), so an asset out of the asker's scope reads as one that does not exist.
    async fn find(
        &self,
        name: &str,
        visible: &(dyn for<'a> Fn(&'a Asset) -> bool + Send + Sync),
    ) -> Result<AssetLookup, crate::DeskError>;
    /// What the asset card (`资产:主机名`) shows.
    async fn card(&self, asset: &Asset) -> Result<AssetCard, crate::DeskError>;
    /// The latest `limit` changes (`变更:主机名`), newest first.
    async fn changes(
        &self,
        asset: &Asset,
        limit: u64,
    ) -> Result<Vec<crate::Change>, crate::DeskError>;
}

// The pieces of an agent report the asset card lists. They are the report's own wire
// format (opsbot-cmdb re-exports them in `facts`); they live here so the engine can
// word them without knowing the CMDB.

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Disk {
    pub name: String,
    pub size_bytes: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub rotational: Option<bool>,
    pub removable: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Filesystem {
    pub mount: String,
    pub device: String,
    pub fstype: String,
    pub size_bytes: Option<u64>,
    /// Volatile: not diffed.
    pub used_bytes: Option<u64>,
    /// Volatile: not diffed.
    pub avail_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Nic {
    pub name: String,
    pub mac: String,
    /// `address/prefix`.
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
    /// Link speed; unknown when the link is down or the driver does not say.
    pub speed_mbps: Option<u64>,
    /// `up`, `down`, … (operstate).
    pub state: String,
    pub mtu: Option<u32>,
}

/// Something a collector or plug-in could not do. The report still goes out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// `board`, `plugin:raid`, …
    pub collector: String,
    pub kind: ProblemKind,
    /// The file concerned, when there is one.
    #[serde(default)]
    pub path: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A file could not be read for lack of permission (run as root to read it).
    Denied,
    /// A file could not be read for another reason.
    Unreadable,
    /// A plug-in ran longer than its timeout and was killed.
    Timeout,
    /// A plug-in exited with a failure status or a signal.
    Failed,
    /// A plug-in printed something that is not a valid JSON object of facts.
    Garbage,
    /// A file in the plug-in folder was skipped (not executable, bad name).
    Skipped,
}

impl Problem {
    pub fn new(collector: &str, kind: ProblemKind, path: Option<&str>, message: String) -> Self {
        Problem {
            collector: collector.into(),
            kind,
            path: path.map(str::to_string),
            message,
        }
    }

    /// The plug-in's name (`raid` for collector `plugin:raid`).
    pub fn plugin_name(&self) -> &str {
        self.collector
            .strip_prefix("plugin:")
            .unwrap_or(&self.collector)
    }
}

/// What the latest report adds to the stored facts on the card: the lists, the
/// plug-ins that ran, uptime and what could not be collected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    pub disks: Vec<Disk>,
    pub filesystems: Vec<Filesystem>,
    pub nics: Vec<Nic>,
    /// Names of the plug-ins that reported, sorted.
    pub plugins: Vec<String>,
    pub uptime_secs: Option<u64>,
    pub problems: Vec<Problem>,
}

/// Everything the asset card (`资产:主机名`) shows, as data; the engine words it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetCard {
    pub asset: Asset,
    pub facts: Facts,
    /// `None` when no readable report is stored.
    pub collected: Option<Collected>,
    /// `cmdb.stale_after`: quiet longer than this reads as lost.
    pub stale_after: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pairs: &[(&str, &str)]) -> Facts {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn diff_finds_changed_added_and_removed_fields_in_key_order() {
        let old = facts(&[("a", "1"), ("b", "2"), ("d", "4"), ("z", "9")]);
        let new = facts(&[("a", "1"), ("b", "3"), ("c", "new"), ("z", "9")]);
        let got: Vec<_> = diff_facts(&old, &new)
            .into_iter()
            .map(|c| (c.field, c.old, c.new))
            .collect();
        assert_eq!(
            got,
            vec![
                ("b".into(), Some("2".into()), Some("3".into())),
                ("c".into(), None, Some("new".into())),
                ("d".into(), Some("4".into()), None),
            ]
        );
    }

    #[test]
    fn diff_of_equal_or_empty_maps_is_empty() {
        let f = facts(&[("x", "1")]);
        assert!(diff_facts(&f, &f).is_empty());
        assert!(diff_facts(&Facts::new(), &Facts::new()).is_empty());
        assert_eq!(diff_facts(&Facts::new(), &f).len(), 1);
        assert_eq!(diff_facts(&f, &Facts::new()).len(), 1);
    }

    #[test]
    fn scope_path_prefers_the_linked_vm() {
        let mut a = Asset {
            id: 1,
            identity: "db-01".into(),
            hostname: "db-01".into(),
            source: "agent".into(),
            status: AssetStatus::Active,
            token_id: String::new(),
            vm: None,
            first_seen: chrono::Utc::now(),
            last_seen: chrono::Utc::now(),
        };
        assert_eq!(a.scope_path(), "cmdb/db-01");
        a.vm = Some(VmLink {
            provider: "vc1".into(),
            vm_id: "vm-1".into(),
            name: "db-01".into(),
            scope_path: "vc1/DC0/C1/db-01".into(),
        });
        assert_eq!(a.scope_path(), "vc1/DC0/C1/db-01");
    }
}

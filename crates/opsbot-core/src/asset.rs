//! CMDB assets as the rest of opsbot sees them: the stored record, facts flattened to
//! `key → value`, the field-by-field diff that feeds the change history, and the
//! [`AssetDesk`] the chat engine answers `资产` / `变更` through. No I/O here.

use async_trait::async_trait;
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

/// The CMDB as the chat engine sees it: find an asset, render its card and its recent
/// changes for a phone. Errors are data (`DeskError::Unavailable`), worded by the engine.
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
    /// The asset card (`资产:主机名`).
    async fn card(&self, asset: &Asset) -> Result<String, crate::DeskError>;
    /// The latest `limit` changes (`变更:主机名`).
    async fn changes(&self, asset: &Asset, limit: u64) -> Result<String, crate::DeskError>;
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

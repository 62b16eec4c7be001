//! The pure part of a sync: what differs between the stored objects of one kind and
//! what a provider reports now, as row actions plus change-history records.

use super::object::{PoolObject, Stored, Time};
use opsbot_core::Change;
use std::collections::{HashMap, HashSet};

/// An object to overwrite in place (a changed or revived row).
#[derive(Debug)]
pub(crate) struct Update<'a, T> {
    pub pk: i64,
    pub obj: &'a T,
    /// Names of the fields that changed (all fields for a revived object).
    pub fields: Vec<&'static str>,
    pub revived: bool,
}

/// The row actions and history records for one kind of object.
#[derive(Debug)]
pub(crate) struct Diff<'a, T> {
    pub inserts: Vec<&'a T>,
    pub updates: Vec<Update<'a, T>>,
    /// Keys of rows to mark removed.
    pub removes: Vec<i64>,
    pub changes: Vec<Change>,
}

impl<T> Diff<'_, T> {
    pub(crate) fn is_empty(&self) -> bool {
        self.inserts.is_empty() && self.updates.is_empty() && self.removes.is_empty()
    }
}

/// Compares `stored` (every row of the provider, removed ones included) with `current`.
/// With `remove_missing`, live rows absent from `current` are marked removed; a single
/// VM upsert passes `false`. A removed row that is reported again is revived and
/// recorded as `created`. Duplicate ids in `current` keep their first occurrence.
pub(crate) fn diff<'a, T: PoolObject>(
    provider: &str,
    stored: Vec<Stored<T>>,
    current: &'a [T],
    remove_missing: bool,
    at: Time,
    source: &str,
) -> Diff<'a, T> {
    let change = |obj: &T, field: &str, old: Option<String>, new: Option<String>| Change {
        id: 0,
        at,
        provider: provider.to_string(),
        object_kind: T::KIND.to_string(),
        object_id: obj.object_id().to_string(),
        object_name: obj.name().to_string(),
        field: field.to_string(),
        old_value: old,
        new_value: new,
        source: source.to_string(),
    };
    let mut out = Diff {
        inserts: Vec::new(),
        updates: Vec::new(),
        removes: Vec::new(),
        changes: Vec::new(),
    };
    let mut by_id: HashMap<&str, &Stored<T>> =
        stored.iter().map(|s| (s.obj.object_id(), s)).collect();
    let mut seen = HashSet::new();
    for obj in current {
        if !seen.insert(obj.object_id()) {
            continue;
        }
        let Some(old) = by_id.remove(obj.object_id()) else {
            out.changes
                .push(change(obj, "created", None, Some(obj.name().into())));
            out.inserts.push(obj);
            continue;
        };
        if old.removed {
            out.changes
                .push(change(obj, "created", None, Some(obj.name().into())));
            out.updates.push(Update {
                pk: old.pk,
                obj,
                fields: obj.fields().into_iter().map(|(f, _)| f).collect(),
                revived: true,
            });
            continue;
        }
        // Cheap equality first: on a typical re-sync almost nothing changed.
        if old.obj == *obj {
            continue;
        }
        let mut fields = Vec::new();
        for ((field, old_value), (_, new_value)) in old.obj.fields().into_iter().zip(obj.fields()) {
            if old_value != new_value {
                out.changes.push(change(obj, field, old_value, new_value));
                fields.push(field);
            }
        }
        if !fields.is_empty() {
            out.updates.push(Update {
                pk: old.pk,
                obj,
                fields,
                revived: false,
            });
        }
    }
    if remove_missing {
        // Keep the stored order so the history reads in a stable order.
        for old in &stored {
            if !old.removed && by_id.contains_key(old.obj.object_id()) {
                out.changes.push(change(
                    &old.obj,
                    "removed",
                    Some(old.obj.name().into()),
                    None,
                ));
                out.removes.push(old.pk);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsbot_core::Datacenter;

    fn dc(id: &str, name: &str) -> Datacenter {
        Datacenter {
            provider: "p".into(),
            id: id.into(),
            name: name.into(),
        }
    }

    fn stored(pk: i64, removed: bool, obj: Datacenter) -> Stored<Datacenter> {
        Stored { pk, removed, obj }
    }

    fn summary(d: &Diff<'_, Datacenter>) -> Vec<String> {
        d.changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} {:?}->{:?}",
                    c.object_id, c.field, c.old_value, c.new_value
                )
            })
            .collect()
    }

    #[test]
    fn insert_update_remove_revive() {
        let old = vec![
            stored(1, false, dc("a", "A")),
            stored(2, false, dc("b", "B")),
            stored(3, true, dc("c", "C")),
            stored(4, false, dc("d", "D")),
        ];
        let now = vec![dc("a", "A"), dc("b", "B2"), dc("c", "C"), dc("e", "E")];
        let d = diff("p", old, &now, true, chrono::Utc::now(), "sync");
        assert_eq!(
            summary(&d),
            [
                "b name Some(\"B\")->Some(\"B2\")",
                "c created None->Some(\"C\")",
                "e created None->Some(\"E\")",
                "d removed Some(\"D\")->None",
            ]
        );
        assert_eq!(d.inserts.len(), 1);
        assert_eq!(d.updates.iter().map(|u| u.pk).collect::<Vec<_>>(), [2, 3]);
        assert!(d.updates[1].revived);
        assert_eq!(d.removes, [4]);
    }

    #[test]
    fn nothing_changed_is_empty_and_upsert_never_removes() {
        let old = vec![
            stored(1, false, dc("a", "A")),
            stored(2, false, dc("b", "B")),
        ];
        let now = vec![dc("a", "A")];
        let d = diff("p", old, &now, false, chrono::Utc::now(), "sync");
        assert!(d.is_empty() && d.changes.is_empty());
    }

    #[test]
    fn duplicate_ids_keep_the_first() {
        let now = vec![dc("a", "A"), dc("a", "other")];
        let d = diff("p", vec![], &now, true, chrono::Utc::now(), "sync");
        assert_eq!(d.inserts.len(), 1);
        assert_eq!(d.inserts[0].name, "A");
    }
}

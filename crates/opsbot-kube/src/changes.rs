//! The change history of workloads, nodes and namespaces. Watches report what they
//! see (an object's print: replicas, image, revision, paused, node ready); one
//! recorder task compares it with the last print it knew, writes the differences to the
//! store's change history, and keeps those prints as a baseline in the `StateStore`
//! (`kube/<provider>/<cluster>`), so what changed while opsbot was down is recorded
//! on the next start's first list. Pods are not recorded: their churn is noise.
//!
//! An operation from chat claims the object first ([`Recorder::claim`]), so the change
//! its watch then sees is recorded as `chat:<user>` rather than `watch`.

use chrono::Utc;
use opsbot_core::Change;
use opsbot_store::{ChangeLog, StateStore};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The fields of an object the history follows, by name.
pub type Print = BTreeMap<String, String>;

/// One recorded object's identity: the change history's `object_kind` and
/// `object_id` (`cluster/ns/name`, or `cluster/name` for nodes and namespaces).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: String,
    pub id: String,
}

/// What a watch saw.
#[derive(Debug)]
pub enum Observed {
    Upsert {
        key: ObjectKey,
        name: String,
        print: Print,
    },
    Remove {
        key: ObjectKey,
        name: String,
    },
    /// A full list of `kind` (within `prefix` of the id: one namespace's, or the
    /// cluster's): what the baseline has there and the list lacks was removed.
    Listed {
        kind: String,
        prefix: String,
        objects: Vec<(ObjectKey, String, Print)>,
    },
}

struct Message {
    provider: String,
    cluster: String,
    observed: Observed,
}

/// Who claimed an object's next changes, until when: by provider and object.
type Claims = Arc<Mutex<HashMap<(String, ObjectKey), (String, Instant)>>>;

/// The sending side, shared by every cluster's watches and operations.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Message>,
    claims: Claims,
}

/// The receiving side, run by [`Recorder::spawn`].
pub struct RecorderTask {
    rx: mpsc::UnboundedReceiver<Message>,
    claims: Claims,
    changes: Arc<dyn ChangeLog>,
    state: Arc<dyn StateStore>,
}

impl Recorder {
    pub fn new(
        changes: Arc<dyn ChangeLog>,
        state: Arc<dyn StateStore>,
    ) -> (Recorder, RecorderTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        let claims = Arc::new(Mutex::new(HashMap::new()));
        (
            Recorder {
                tx,
                claims: claims.clone(),
            },
            RecorderTask {
                rx,
                claims,
                changes,
                state,
            },
        )
    }

    pub fn observe(&self, provider: &str, cluster: &str, observed: Observed) {
        // The task is gone only at shutdown; nothing is left to record then.
        let _ = self.tx.send(Message {
            provider: provider.to_string(),
            cluster: cluster.to_string(),
            observed,
        });
    }

    /// Changes to `key` seen within `for_` are recorded with `source` (`chat:张三`).
    pub fn claim(&self, provider: &str, key: ObjectKey, source: &str, for_: Duration) {
        if let Ok(mut claims) = self.claims.lock() {
            let now = Instant::now();
            claims.retain(|_, (_, until)| *until > now);
            claims.insert(
                (provider.to_string(), key),
                (source.to_string(), now + for_),
            );
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Baseline {
    objects: BTreeMap<String, BTreeMap<String, (String, Print)>>,
}

impl Baseline {
    fn get(&self, key: &ObjectKey) -> Option<&(String, Print)> {
        self.objects.get(&key.kind)?.get(&key.id)
    }
}

struct Known {
    baseline: Baseline,
    /// No baseline was stored: the first list of each kind is adopted, not recorded
    /// (a first start would otherwise record every object as created).
    fresh: bool,
    adopted: std::collections::HashSet<String>,
    dirty: bool,
}

impl RecorderTask {
    /// Records until every [`Recorder`] is dropped.
    pub async fn run(mut self) {
        let mut known: HashMap<(String, String), Known> = HashMap::new();
        while let Some(first) = self.rx.recv().await {
            let mut batch = vec![first];
            while let Ok(m) = self.rx.try_recv() {
                batch.push(m);
            }
            let mut changes = Vec::new();
            for m in batch {
                let k = (m.provider.clone(), m.cluster.clone());
                if !known.contains_key(&k) {
                    let loaded = self.load(&m.provider, &m.cluster).await;
                    known.insert(k.clone(), loaded);
                }
                if let Some(entry) = known.get_mut(&k) {
                    self.apply(entry, &m, &mut changes);
                }
            }
            if !changes.is_empty() {
                if let Err(e) = self.changes.record_changes(&changes).await {
                    tracing::warn!(error = %e, count = changes.len(), "recording Kubernetes changes failed");
                }
            }
            for ((provider, cluster), entry) in known.iter_mut().filter(|(_, e)| e.dirty) {
                let Ok(json) = serde_json::to_string(&entry.baseline) else {
                    continue;
                };
                match self
                    .state
                    .put_state(&state_key(provider, cluster), &json)
                    .await
                {
                    Ok(()) => entry.dirty = false,
                    Err(e) => {
                        tracing::warn!(error = %e, provider, cluster, "saving the Kubernetes baseline failed")
                    }
                }
            }
        }
    }

    async fn load(&self, provider: &str, cluster: &str) -> Known {
        let stored = match self.state.get_state(&state_key(provider, cluster)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, provider, cluster, "reading the Kubernetes baseline failed");
                None
            }
        };
        let baseline = stored.as_deref().and_then(|s| serde_json::from_str(s).ok());
        Known {
            fresh: baseline.is_none(),
            baseline: baseline.unwrap_or_default(),
            adopted: Default::default(),
            dirty: false,
        }
    }

    fn source(&self, provider: &str, key: &ObjectKey) -> String {
        let now = Instant::now();
        self.claims
            .lock()
            .ok()
            .and_then(|c| {
                c.get(&(provider.to_string(), key.clone()))
                    .filter(|(_, until)| *until > now)
                    .map(|(s, _)| s.clone())
            })
            .unwrap_or_else(|| "watch".into())
    }

    fn apply(&self, known: &mut Known, m: &Message, out: &mut Vec<Change>) {
        let change = |key: &ObjectKey,
                      name: &str,
                      field: &str,
                      old: Option<&String>,
                      new: Option<&String>| Change {
            id: 0,
            at: Utc::now(),
            provider: m.provider.clone(),
            object_kind: key.kind.clone(),
            object_id: key.id.clone(),
            object_name: name.to_string(),
            field: field.to_string(),
            old_value: old.cloned(),
            new_value: new.cloned(),
            source: self.source(&m.provider, key),
        };
        let upsert = |known: &mut Known,
                      key: &ObjectKey,
                      name: &str,
                      print: &Print,
                      record: bool,
                      out: &mut Vec<Change>| {
            let before = known.baseline.get(key);
            if before.is_some_and(|(_, p)| p == print) {
                return;
            }
            if record {
                match before {
                    None => out.push(change(key, name, "created", None, Some(&name.to_string()))),
                    Some((_, old)) => {
                        for (field, value) in print {
                            if old.get(field) != Some(value) {
                                out.push(change(key, name, field, old.get(field), Some(value)));
                            }
                        }
                    }
                }
            }
            known
                .baseline
                .objects
                .entry(key.kind.clone())
                .or_default()
                .insert(key.id.clone(), (name.to_string(), print.clone()));
            known.dirty = true;
        };
        match &m.observed {
            Observed::Upsert { key, name, print } => upsert(known, key, name, print, true, out),
            Observed::Remove { key, name } => {
                if let Some(of_kind) = known.baseline.objects.get_mut(&key.kind) {
                    if of_kind.remove(&key.id).is_some() {
                        out.push(change(key, name, "removed", Some(name), None));
                        known.dirty = true;
                    }
                }
            }
            Observed::Listed {
                kind,
                prefix,
                objects,
            } => {
                let scope = format!("{kind} {prefix}");
                let record = !(known.fresh && known.adopted.insert(scope));
                let listed: std::collections::HashSet<&str> =
                    objects.iter().map(|(k, _, _)| k.id.as_str()).collect();
                let gone: Vec<(String, String)> = known
                    .baseline
                    .objects
                    .get(kind)
                    .map(|of_kind| {
                        of_kind
                            .iter()
                            .filter(|(id, _)| {
                                id.starts_with(prefix.as_str()) && !listed.contains(id.as_str())
                            })
                            .map(|(id, (name, _))| (id.clone(), name.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                for (id, name) in gone {
                    let key = ObjectKey {
                        kind: kind.clone(),
                        id,
                    };
                    if record {
                        out.push(change(&key, &name, "removed", Some(&name), None));
                    }
                    if let Some(of_kind) = known.baseline.objects.get_mut(kind) {
                        of_kind.remove(&key.id);
                    }
                    known.dirty = true;
                }
                for (key, name, print) in objects {
                    upsert(known, key, name, print, record, out);
                }
                // A first list is worth keeping even when nothing differs.
                known.dirty |= !record;
            }
        }
    }
}

fn state_key(provider: &str, cluster: &str) -> String {
    format!("kube/{provider}/{cluster}")
}

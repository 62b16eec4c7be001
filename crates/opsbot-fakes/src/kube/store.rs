//! The objects the fake holds, the global resourceVersion counter and the event history
//! watches resume from.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::resources::Kind;

/// Watch events kept for resuming; older ones are forgotten as etcd compacts.
const HISTORY_LIMIT: usize = 20_000;

/// (kind, namespace or "", name)
pub(crate) type Key = (Kind, String, String);

/// One change, as watches deliver it.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub kind: Kind,
    pub namespace: String,
    pub event_type: &'static str,
    /// The object with `kind` and `apiVersion`, as a watch event carries it.
    pub object: Value,
}

#[derive(Debug)]
pub(crate) struct Store {
    pub rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    /// A watch may resume from any resourceVersion >= this one.
    pub oldest_watchable: u64,
    changes: broadcast::Sender<Arc<Change>>,
    /// Seeding in bulk: no history, no broadcast.
    pub quiet: bool,
    uid_counter: u64,
    // controller state
    pub pod_ready_delay: Duration,
    pub ready_at: HashMap<(String, String), Instant>,
    pub dirty: BTreeSet<Key>,
    pub node_cursor: usize,
    pub name_counter: u64,
    pub conflicts: usize,
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    pub(crate) fn new(changes: broadcast::Sender<Arc<Change>>) -> Self {
        Store {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            oldest_watchable: 1,
            changes,
            quiet: false,
            uid_counter: 0,
            pod_ready_delay: Duration::from_millis(200),
            ready_at: HashMap::new(),
            dirty: BTreeSet::new(),
            node_cursor: 0,
            name_counter: 0,
            conflicts: 0,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    pub(crate) fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(kind, ns.to_string(), name.to_string()))
    }

    /// Objects of `kind`, in key order, within `ns` (or all namespaces), from `after`
    /// (exclusive, `ns/name`) on.
    pub(crate) fn list<'a>(
        &'a self,
        kind: Kind,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let start = (kind, ns.unwrap_or("").to_string(), String::new());
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.0 == kind && ns.is_none_or(|ns| k.1 == ns))
    }

    pub(crate) fn names(&self, kind: Kind, ns: Option<&str>) -> Vec<String> {
        self.list(kind, ns).map(|(k, _)| k.2.clone()).collect()
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        let n = self.uid_counter;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            n.wrapping_mul(2654435761) & 0xffff_ffff,
            (n >> 7) & 0xffff,
            n & 0xfff,
            (n * 7) & 0xfff,
            n
        )
    }

    fn record(&mut self, kind: Kind, ns: &str, event_type: &'static str, object: &Value) {
        if self.quiet {
            return;
        }
        let mut object = object.clone();
        object["kind"] = json!(kind.kind());
        object["apiVersion"] = json!(kind.api_version());
        let change = Arc::new(Change {
            rv: self.rv,
            kind,
            namespace: ns.to_string(),
            event_type,
            object,
        });
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.oldest_watchable = old.rv;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.changes.send(change);
    }

    /// Stores a new object: uid, creationTimestamp, generation 1, the next
    /// resourceVersion; an ADDED change. Returns the stored object.
    pub(crate) fn create(&mut self, kind: Kind, mut obj: Value) -> Value {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        self.rv += 1;
        let uid = self.next_uid();
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(uid);
        meta["resourceVersion"] = json!(self.rv.to_string());
        if meta.get("creationTimestamp").is_none_or(Value::is_null) {
            meta["creationTimestamp"] = json!(now_rfc3339());
        }
        if matches!(
            kind,
            Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet
        ) {
            meta["generation"] = json!(1);
        }
        if let Some(map) = obj.as_object_mut() {
            map.remove("kind");
            map.remove("apiVersion");
        }
        self.record(kind, &ns, "ADDED", &obj);
        self.objects.insert((kind, ns, name), obj.clone());
        obj
    }

    /// Replaces an object when anything but its resourceVersion differs: the next
    /// resourceVersion, generation + 1 when the spec changed; a MODIFIED change.
    /// Returns the stored object (the old one when nothing changed).
    pub(crate) fn update(&mut self, kind: Kind, mut obj: Value) -> Value {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let key = (kind, ns.clone(), name);
        if let Some(map) = obj.as_object_mut() {
            map.remove("kind");
            map.remove("apiVersion");
        }
        let Some(old) = self.objects.get(&key) else {
            return self.create(kind, obj);
        };
        // What the server owns comes from the stored object.
        for field in ["uid", "creationTimestamp", "generation"] {
            match old["metadata"].get(field) {
                Some(v) => obj["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if &obj == old {
            return obj;
        }
        if old.get("spec") != obj.get("spec") && old["metadata"].get("generation").is_some() {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            obj["metadata"]["generation"] = json!(generation);
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(kind, &ns, "MODIFIED", &obj);
        self.objects.insert(key, obj.clone());
        obj
    }

    /// Moves an object's resourceVersion as another writer would (an injected conflict).
    pub(crate) fn touch(&mut self, kind: Kind, ns: &str, name: &str) {
        if let Some(mut obj) = self.get(kind, ns, name).cloned() {
            let n = obj["metadata"]["annotations"]["fake.opsbot/touched"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            obj["metadata"]["annotations"]["fake.opsbot/touched"] = json!((n + 1).to_string());
            self.update(kind, obj);
        }
    }

    pub(crate) fn delete(&mut self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .remove(&(kind, ns.to_string(), name.to_string()))?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(kind, ns, "DELETED", &obj);
        Some(obj)
    }

    /// Changes after `rv` (exclusive), or None when they are no longer kept.
    pub(crate) fn changes_since(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        if rv < self.oldest_watchable {
            return None;
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Some(self.history.range(start..).cloned().collect())
    }

    /// Forgets the history: watches and continue tokens from before now get 410.
    pub(crate) fn compact(&mut self) {
        // The counter moves past every version handed out so far (as the writes that
        // come with a real compaction would), so that even the latest list is too old.
        self.rv += 1;
        self.history.clear();
        self.oldest_watchable = self.rv;
    }
}

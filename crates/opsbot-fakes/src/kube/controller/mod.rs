//! The controllers: Deployment → ReplicaSet → Pod, StatefulSet → Pod, and pods becoming
//! ready over time. They run synchronously after every write (so a client reading back
//! sees `observedGeneration` caught up, as a fast real controller manager gives) and from
//! a background task when a pod's ready time comes.

mod deployment;
mod pods;
mod statefulset;

use std::time::Instant;

use serde_json::{json, Value};

use super::events::Involved;
use super::resources::Kind;
use super::store::Store;

pub(crate) use pods::collect_garbage;

/// The annotation numbering a Deployment's ReplicaSets.
const REVISION: &str = "deployment.kubernetes.io/revision";
/// Passes over the dirty set per reconcile; each pass settles one level of ownership.
const PASSES: usize = 8;

fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or("")
}

fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Objects of `kind` in `ns` whose controller is the object with uid `owner`.
fn owned(st: &Store, kind: Kind, ns: &str, owner: &str) -> Vec<Value> {
    st.list(kind, Some(ns))
        .filter(|(_, o)| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner))
        })
        .map(|(_, o)| o.clone())
        .collect()
}

fn owner_ref(kind: Kind, owner: &Value) -> Value {
    json!([{
        "apiVersion": kind.api_version(),
        "kind": kind.kind(),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

fn involved<'a>(kind: Kind, ns: &'a str, obj: &'a Value) -> Involved<'a> {
    Involved {
        kind,
        namespace: ns,
        name: name(obj),
        uid: uid(obj),
    }
}

/// Sets a count the API omits when zero (`omitempty`).
fn put_count(status: &mut Value, key: &str, n: i64) {
    if let Some(m) = status.as_object_mut() {
        if n == 0 {
            m.remove(key);
        } else {
            m.insert(key.to_string(), json!(n));
        }
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Marks the workload owning `obj` (a pod or ReplicaSet) for reconciling.
pub(crate) fn mark_owner_dirty(st: &mut Store, ns: &str, obj: &Value) {
    let Some(r) = obj["metadata"]["ownerReferences"].get(0) else {
        return;
    };
    let owner = r["name"].as_str().unwrap_or("").to_string();
    match r["kind"].as_str() {
        Some("ReplicaSet") => {
            if let Some(rs) = st.get(Kind::ReplicaSet, ns, &owner).cloned() {
                mark_owner_dirty(st, ns, &rs);
            }
        }
        Some("Deployment") => {
            st.dirty.insert((Kind::Deployment, ns.to_string(), owner));
        }
        Some("StatefulSet") => {
            st.dirty.insert((Kind::StatefulSet, ns.to_string(), owner));
        }
        _ => {}
    }
}

/// Brings every due pod to ready and every dirty workload to its desired state.
pub(crate) fn reconcile(st: &mut Store, now: Instant) {
    let due: Vec<(String, String)> = st
        .ready_at
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(k, _)| k.clone())
        .collect();
    for (ns, pod) in due {
        st.ready_at.remove(&(ns.clone(), pod.clone()));
        pods::set_pod_ready(st, &ns, &pod);
    }
    for _ in 0..PASSES {
        let dirty = std::mem::take(&mut st.dirty);
        if dirty.is_empty() {
            break;
        }
        for (kind, ns, name) in dirty {
            match kind {
                Kind::Deployment => deployment::reconcile(st, &ns, &name),
                Kind::StatefulSet => statefulset::reconcile(st, &ns, &name),
                _ => {}
            }
        }
    }
}

/// When the background task must next run.
pub(crate) fn next_due(st: &Store) -> Option<Instant> {
    st.ready_at.values().min().copied()
}

//! Pods: creation as the scheduler and kubelet would leave them, readiness after the
//! ready delay, deletion, and garbage collection of a deleted workload.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{involved, mark_owner_dirty, name, owned, owner_ref, uid};
use crate::kube::events;
use crate::kube::resources::Kind;
use crate::kube::store::{now_rfc3339, Store};

pub(super) fn set_pod_ready(st: &mut Store, ns: &str, pod: &str) {
    let Some(mut p) = st.get(Kind::Pod, ns, pod).cloned() else {
        return;
    };
    let now = now_rfc3339();
    if let Some(conds) = p["status"]["conditions"].as_array_mut() {
        for c in conds {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                *c = json!({"type": c["type"], "status": "True", "lastProbeTime": null,
                            "lastTransitionTime": now});
            }
        }
    }
    if let Some(cs) = p["status"]["containerStatuses"].as_array_mut() {
        for c in cs {
            c["ready"] = json!(true);
        }
    }
    st.update(Kind::Pod, p.clone());
    mark_owner_dirty(st, ns, &p);
}

fn pick_node(st: &mut Store) -> Option<String> {
    let nodes: Vec<(String, bool)> = st
        .list(Kind::Node, None)
        .map(|(k, n)| {
            let ready = n["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            (k.2.clone(), ready)
        })
        .collect();
    let ready: Vec<&String> = nodes.iter().filter(|(_, r)| *r).map(|(n, _)| n).collect();
    let pool: Vec<&String> = if ready.is_empty() {
        nodes.iter().map(|(n, _)| n).collect()
    } else {
        ready
    };
    if pool.is_empty() {
        return None;
    }
    st.node_cursor = st.node_cursor.wrapping_add(1);
    Some(pool[st.node_cursor % pool.len()].clone())
}

/// Creates one pod from `template` for `owner`; it becomes ready after the ready delay.
pub(super) fn create_pod(
    st: &mut Store,
    ns: &str,
    owner_kind: Kind,
    owner: &Value,
    pod_name: &str,
    template: &Value,
    extra_labels: &[(&str, &str)],
) {
    let node = pick_node(st);
    st.name_counter += 1;
    let ip = st.name_counter;
    let now = now_rfc3339();
    let mut labels = template["metadata"]["labels"].clone();
    for (k, v) in extra_labels {
        labels[*k] = json!(v);
    }
    let mut spec = template["spec"].clone();
    if let Some(node) = &node {
        spec["nodeName"] = json!(node);
    }
    let containers: Vec<Value> = spec["containers"].as_array().cloned().unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"],
                "imageID": format!("{}@sha256:{:064x}", c["image"].as_str().unwrap_or(""), ip),
                "containerID": format!("containerd://{:064x}", ip),
                "ready": false, "restartCount": 0, "started": true,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let unready = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let cond = |t: &str, ok: bool| {
        if ok {
            json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now})
        } else {
            json!({"type": t, "status": "False", "lastProbeTime": null, "lastTransitionTime": now,
                   "reason": "ContainersNotReady",
                   "message": format!("containers with unready status: [{unready}]")})
        }
    };
    let mut metadata = json!({
        "name": pod_name,
        "namespace": ns,
        "labels": labels,
        "ownerReferences": owner_ref(owner_kind, owner),
    });
    if let Some(a) = template["metadata"].get("annotations") {
        metadata["annotations"] = a.clone();
    }
    if owner_kind == Kind::ReplicaSet {
        metadata["generateName"] = json!(format!("{}-", name(owner)));
    }
    let host_ip = node
        .as_deref()
        .and_then(|n| st.get(Kind::Node, "", n))
        .and_then(|n| n["status"]["addresses"][0]["address"].as_str())
        .unwrap_or("192.168.0.10")
        .to_string();
    let pod = json!({
        "metadata": metadata,
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [
                cond("PodReadyToStartContainers", true),
                cond("Initialized", true),
                cond("Ready", false),
                cond("ContainersReady", false),
                cond("PodScheduled", true),
            ],
            "hostIP": host_ip,
            "podIP": format!("10.244.{}.{}", (ip / 250) % 250, ip % 250 + 2),
            "startTime": now,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        },
    });
    let pod = st.create(Kind::Pod, pod);
    if owner_kind == Kind::ReplicaSet {
        events::record(
            st,
            involved(Kind::ReplicaSet, ns, owner),
            "replicaset-controller",
            "SuccessfulCreate",
            format!("Created pod: {pod_name}"),
        );
    } else {
        events::record(
            st,
            involved(owner_kind, ns, owner),
            "statefulset-controller",
            "SuccessfulCreate",
            format!(
                "create Pod {pod_name} in StatefulSet {} successful",
                name(owner)
            ),
        );
    }
    if let Some(node) = &node {
        events::record(
            st,
            involved(Kind::Pod, ns, &pod),
            "default-scheduler",
            "Scheduled",
            format!("Successfully assigned {ns}/{pod_name} to {node}"),
        );
    }
    for c in &containers {
        let (cname, image) = (
            c["name"].as_str().unwrap_or(""),
            c["image"].as_str().unwrap_or(""),
        );
        events::record(
            st,
            involved(Kind::Pod, ns, &pod),
            "kubelet",
            "Pulled",
            format!("Container image \"{image}\" already present on machine"),
        );
        events::record(
            st,
            involved(Kind::Pod, ns, &pod),
            "kubelet",
            "Created",
            format!("Created container: {cname}"),
        );
        events::record(
            st,
            involved(Kind::Pod, ns, &pod),
            "kubelet",
            "Started",
            format!("Started container {cname}"),
        );
    }
    let delay = st.pod_ready_delay;
    if delay.is_zero() {
        set_pod_ready(st, ns, pod_name);
    } else if let Some(at) = Instant::now().checked_add(delay) {
        if delay != Duration::MAX {
            st.ready_at
                .insert((ns.to_string(), pod_name.to_string()), at);
        }
    }
}

pub(super) fn delete_pod(st: &mut Store, ns: &str, pod: &str) {
    st.ready_at.remove(&(ns.to_string(), pod.to_string()));
    st.delete(Kind::Pod, ns, pod);
}

/// Deletes a workload's ReplicaSets, ControllerRevisions and pods (garbage collection).
pub(crate) fn collect_garbage(st: &mut Store, ns: &str, owner_uid: &str) {
    for rs in owned(st, Kind::ReplicaSet, ns, owner_uid) {
        collect_garbage(st, ns, uid(&rs));
        st.delete(Kind::ReplicaSet, ns, name(&rs));
    }
    for cr in owned(st, Kind::ControllerRevision, ns, owner_uid) {
        st.delete(Kind::ControllerRevision, ns, name(&cr));
    }
    for pod in owned(st, Kind::Pod, ns, owner_uid) {
        delete_pod(st, ns, name(&pod));
    }
}
